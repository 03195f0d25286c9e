//! `Task`: one backup or restore of one PVC, and the history users inspect.

// kube's repeated `printcolumn(...)`/`shortname` arguments look like duplicates to clippy.
#![allow(clippy::duplicated_attributes)]

use super::RestoreMode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One backup or restore of one PersistentVolumeClaim. Lives in the PVC's namespace and owns the
/// restic Job that does the work. Never holds credentials.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "backup.datarestor-operator.com",
    version = "v1alpha1",
    kind = "Task",
    namespaced,
    status = "TaskStatus",
    derive = "PartialEq",
    shortname = "drtask",
    shortname = "drt",
    category = "datarestor",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Trigger", type_ = "string", json_path = ".spec.trigger"),
    printcolumn(name = "PVC", type_ = "string", json_path = ".spec.pvcName"),
    printcolumn(name = "Repository", type_ = "string", json_path = ".status.repository"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Snapshot", type_ = "string", json_path = ".status.shortSnapshotId"),
    printcolumn(name = "Size", type_ = "string", json_path = ".status.size"),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.duration"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.message", priority = 1),
    doc = "One backup or restore of one PersistentVolumeClaim, run by a restic Job."
)]
#[serde(rename_all = "camelCase")]
pub struct TaskSpec {
    /// `backup` or `restore`.
    #[serde(rename = "type")]
    pub type_: TaskType,

    /// What created the Task: `scheduled`, `manual` (an annotation) or `auto` (a new PVC).
    pub trigger: TaskTrigger,

    /// The PVC in this Task's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub pvc_name: String,

    /// The Config whose repositories and settings apply.
    pub config_ref: ConfigRef,

    /// The repository target to use. Backups always name one; a restore without one tries the
    /// Config's repositories in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,

    /// Snapshot host: for a backup, this PVC's `{namespace}-{pvcName}`; for a restore, the host to
    /// restore from (another PVC's host clones its data).
    #[schemars(length(min = 1, max = 512))]
    pub host: String,

    /// Backup: the name recorded as tag `name=<name>`. Restore: a backup name, a snapshot id or an
    /// id prefix; absent means the newest snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Restore only: what to do with files already in the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_mode: Option<RestoreMode>,

    /// Scheduled Tasks: the schedule slot this Task is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_for: Option<Time>,

    /// Restore of the newest snapshot (no `name`): the newest taken at or before this time, when
    /// the request was accepted. A backup that ran after the request is not what it restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_as_of: Option<Time>,
}

/// The kind of work a Task does.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    Backup,
    Restore,
    /// A restore drill: the newest snapshot restored into a scratch volume and verified, the PVC
    /// itself untouched.
    Drill,
}

impl TaskType {
    /// The lowercase name (`backup`, `restore`, `drill`): labels, metrics, Events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Restore => "restore",
            Self::Drill => "drill",
        }
    }
}

/// What created a Task.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TaskTrigger {
    Scheduled,
    Manual,
    Auto,
}

/// Points at a Config.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ConfigRef {
    pub name: String,
    pub namespace: String,
}

/// Where a Task is in its life.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TaskPhase {
    #[default]
    Pending,
    ScalingDown,
    Running,
    ScalingUp,
    Completed,
    Failed,
}

impl TaskPhase {
    /// Completed and Failed are final: nothing more happens to the Task.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

/// Observed state of a Task.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<TaskPhase>,

    /// What is happening, or what went wrong, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,

    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// restic Jobs started for this Task (more than one after a stale lock was cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,

    /// Workloads (`Deployment/name`, `StatefulSet/name`) this Task scaled to zero (stopPods).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiesced_workloads: Vec<String>,

    /// A drill's scratch volume and what it found there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillReport>,

    /// The backup hooks that ran, in order (see the Config's `hooks`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookRecord>,

    /// The restic Job doing the work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,

    /// The repository target used (resolved before the Job starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,

    /// The snapshot written (backup) or read (restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,

    /// First eight characters of `snapshotId`, as restic prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_snapshot_id: Option<String>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,

    /// From restic's backup summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_new: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_changed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_unmodified: Option<i64>,
    /// Bytes added to the repository (after deduplication and compression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_added: Option<i64>,
    /// Bytes read from the volume (backup), or written into it (Clean or IfEmpty restore, drill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_processed: Option<i64>,
    /// restic's own duration of the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,

    /// `bytesProcessed` for people, e.g. `1.2 GiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Wall-clock duration for people, e.g. `3m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// One run of a backup hook.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HookRecord {
    /// `preBackup` or `postBackup`.
    pub point: String,
    /// The pod and container it ran in.
    pub pod: String,
    pub container: String,
    /// The program run (the command's first argument; its arguments are in the Config or annotation).
    pub command: String,
    pub start_time: Time,
    pub duration_seconds: f64,
    /// Absent when the command did not run to an exit (timed out, pod unreachable, not found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub result: HookResult,
    /// The last of its output (stderr when it wrote any), or why it did not run.
    #[serde(default)]
    pub message: String,
}

/// How a hook ended.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookResult {
    Succeeded,
    Failed,
    TimedOut,
}

/// What a restore drill found: the snapshot's own totals (`restic stats --mode restore-size`) and
/// what the scratch volume held after the restore, and how the drill's command ended.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DrillReport {
    /// The scratch PVC the snapshot was restored into (deleted when the drill ends).
    pub claim: String,
    /// Files and directories the snapshot holds under `/data`, and their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_entries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_bytes: Option<i64>,
    /// What the restore put there (`lost+found` is not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_entries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_bytes: Option<i64>,
    /// The drill's `command`, run in the restored volume: its exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_exit_code: Option<i32>,
}
