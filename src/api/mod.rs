//! The custom resources: `Config` (what to protect, where, when), `Task` (one backup or restore) and
//! `Catalog` (what is known of one PVC's backups).

mod catalog;
mod condition;
mod config;
mod options;
mod policy;
mod task;

pub use catalog::*;
pub use condition::{set_condition, ConditionStatus};
pub use config::*;
pub use options::*;
pub use policy::*;
pub use task::*;

/// API group of every DataRestor resource and annotation.
pub const GROUP: &str = "backup.datarestor-operator.com";

/// Annotation that requests a backup (on a PVC, or on a Config for every PVC it selects).
pub const MANUAL_BACKUP_ANNOTATION: &str = "backup.datarestor-operator.com/manual-backup";
/// Annotation that requests a restore (on a PVC, or on a Config for every PVC it selects).
pub const MANUAL_RESTORE_ANNOTATION: &str = "backup.datarestor-operator.com/manual-restore";

/// The snapshot host of a PVC, as the original operator wrote it: `{namespace}-{pvcName}`.
pub fn snapshot_host(namespace: &str, pvc_name: &str) -> String {
    format!("{namespace}-{pvc_name}")
}

/// The path a PVC is mounted at in every restic Job, and so the path recorded in every snapshot.
pub const DATA_PATH: &str = "/data";
