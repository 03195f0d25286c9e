//! `Config`: which restic repositories exist, which PVCs they protect, and when.

// kube's repeated `printcolumn(...)`/`shortname` arguments look like duplicates to clippy.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Drill, Hooks, ResticOptions};

/// Loose shape of a schedule, checked by the API server so that typos are rejected at `kubectl
/// apply`. The operator parses it fully and reports anything subtler in the Config's status.
const SCHEDULE_PATTERN: &str = r"^((CRON_TZ|TZ)=[^\s]+\s+)?(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[^\s]+\s+[^\s]+\s+[^\s]+\s+[^\s]+\s+[^\s]+)$";

/// Protects PersistentVolumeClaims with restic: names the repositories (by priority), selects the
/// PVCs (by labels and namespaces), and schedules backups and retention. New PVCs it selects are
/// restored from their newest snapshot before use.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[kube(
    group = "backup.datarestor-operator.com",
    version = "v1alpha1",
    kind = "Config",
    namespaced,
    status = "ConfigStatus",
    derive = "PartialEq",
    shortname = "drconfig",
    shortname = "drc",
    category = "datarestor",
    printcolumn(
        name = "Repositories",
        type_ = "string",
        json_path = ".status.repositorySummary",
        description = "Ready repositories out of all"
    ),
    printcolumn(name = "PVCs", type_ = "integer", json_path = ".status.matchedPvcs", description = "PVCs this Config selects"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(
        name = "Backups",
        type_ = "integer",
        json_path = ".status.statistics.backupsCompleted",
        description = "Backups completed",
        priority = 1
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.statistics.backupsFailed",
        description = "Backups failed",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    doc = "Protects PersistentVolumeClaims with restic: repositories by priority, PVC selectors, backup and retention schedules."
)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSpec {
    /// restic repositories. Backups go to each repository on its own schedule; restores try them
    /// in priority order (lowest number first).
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = kube::core::Rule::new("self.all(r, self.exists_one(o, o.priority == r.priority))").message("repository priorities must be unique"))]
    #[x_kube(validation = kube::core::Rule::new("self.all(r, self.exists_one(o, o.target == r.target))").message("repository targets must be unique"))]
    pub repositories: Vec<Repository>,

    /// Environment shared by every repository (for example `RESTIC_PASSWORD`); an entry of the
    /// same name on a repository wins. `valueFrom.secretKeyRef` refers to a Secret in this
    /// Config's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// Which PVCs are protected. A PVC is selected when any selector matches it (OR); within one
    /// selector, labels and namespaces must all match (AND). No selectors: no PVCs. A Config
    /// outside the operator's cluster-wide namespaces only ever selects PVCs of its own namespace.
    #[serde(default)]
    #[schemars(length(max = 64))]
    #[x_kube(validation = kube::core::Rule::new("self.all(s, (has(s.matchLabels) && size(s.matchLabels) > 0) || (has(s.matchNamespaces) && size(s.matchNamespaces) > 0))").message("a selector needs matchLabels or matchNamespaces: an empty one would select every PVC in the cluster"))]
    pub selectors: Vec<Selector>,

    /// Scale the Deployments and StatefulSets that mount a PVC to zero while it is backed up or
    /// restored, and back to their original replicas afterwards.
    #[serde(default)]
    pub stop_pods: bool,

    /// With stopPods, what a backup does when pods that no Deployment or StatefulSet runs (bare
    /// pods, DaemonSets, Jobs, other controllers) mount the PVC and so cannot be stopped: `Proceed`
    /// (back up while they run, with a Warning Event) or `Refuse` (fail the Task). A restore always
    /// refuses.
    #[serde(default)]
    pub unmanaged_pods: UnmanagedPods,

    /// Run backup and restore Jobs as this user and group instead of root, with no added
    /// capability: admissible in namespaces that enforce Pod Security `restricted`. A backup then
    /// reads only the files this user may read; a restore writes files owned by this user (the
    /// owners recorded in the snapshot are not restored) and a Clean restore removes only what this
    /// user may remove. Absent: root with `DAC_OVERRIDE` (and, to restore owners and modes,
    /// `CHOWN`, `FOWNER`, `FSETID`), admissible under `baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_jobs_as: Option<RunAs>,

    /// How this Config's restic Jobs (backups, restores, retention) are run; each field absent
    /// falls back to the operator's own setting (its `--job-*` flags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobOverrides>,

    /// Restore PVCs this Config selects from their newest snapshot when they are new.
    #[serde(default = "default_true")]
    pub auto_restore: bool,

    /// A new PVC with no snapshot in any repository: `Release` hands it to its pods empty (the
    /// default); `Wait` keeps its pods waiting and looks again until a snapshot appears (a DR
    /// whose repository is still being copied back) or `missingSnapshotWaitSeconds` pass.
    #[serde(default)]
    pub on_missing_snapshot: OnMissingSnapshot,

    /// With `onMissingSnapshot: Wait`: how long after the PVC's creation it is released empty
    /// when no snapshot has appeared (a Warning Event says so).
    #[serde(default = "default_missing_snapshot_wait")]
    #[schemars(range(min = 10, max = 2592000))]
    pub missing_snapshot_wait_seconds: i64,

    /// restic settings for every repository (compression, pack size, excludes, a CA certificate,
    /// ...); a repository's own `restic` wins field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic: Option<ResticOptions>,

    /// Restore drills of every selected PVC (a selector's `drill` replaces it for its PVCs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Drill>,

    /// Commands run in a pod of the workload before and after each backup (see `Hooks`); a
    /// selector's `hooks` or the PVC's hook annotations replace them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,

    /// Allow `manual-restore` requests to clone a PVC of another namespace (a host
    /// `{namespace}-{pvc}` outside the requesting PVC's namespace).
    #[serde(default)]
    pub allow_cross_namespace_restore: bool,

    /// What a manual restore does with files already in the volume: `Clean` (the default) empties
    /// the volume first so it holds exactly the snapshot; `Merge` writes the snapshot's files over
    /// the existing ones and keeps the rest; `IfEmpty` refuses to touch a volume that holds data.
    #[serde(default)]
    pub manual_restore_mode: RestoreMode,

    /// Completed Tasks kept per PVC and type (backups: per repository); older ones are deleted.
    /// The newest backup in each repository always stays, as the record of the PVC's protection.
    #[serde(default = "default_succeeded_history")]
    #[schemars(range(min = 0, max = 100))]
    pub succeeded_tasks_history_limit: i32,

    /// Failed Tasks kept per PVC and type; older ones are deleted.
    #[serde(default = "default_failed_history")]
    #[schemars(range(min = 0, max = 100))]
    pub failed_tasks_history_limit: i32,
}

/// One restic repository and its schedules.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// restic repository: `s3:http://minio:9000/bucket`, `s3:s3.amazonaws.com/bucket/path`,
    /// `/local/path`, `rest:https://...`, `b2:...`, `azure:...`, `gs:...`, `sftp:...`.
    /// `{namespace}` and `{pvc}` in it give each namespace (or PVC) a repository of its own, e.g.
    /// `s3:http://minio:9000/backups/{namespace}`; the same placeholders in the names of the
    /// Secrets its `env` refers to give each its own credentials.
    #[schemars(length(min = 1, max = 1024))]
    pub target: String,

    /// Lower is preferred: restores try repositories in ascending priority.
    #[schemars(range(min = 0))]
    pub priority: i32,

    /// When every selected PVC is backed up to this repository: five cron fields or a macro
    /// (`@daily`), optionally prefixed by `CRON_TZ=<zone>` (default UTC).
    #[serde(default = "default_backup_schedule")]
    #[schemars(pattern(SCHEDULE_PATTERN))]
    pub backup_schedule: String,

    /// When retention (`restic forget` with `forgetArgs`, then prune) runs on this repository.
    /// The original operator's spelling; `forgetSchedule` is accepted too and wins when both are set.
    #[serde(default = "default_forget_schedule")]
    #[schemars(pattern(SCHEDULE_PATTERN))]
    pub forgot_schedule: String,

    /// Alias of `forgotSchedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SCHEDULE_PATTERN))]
    pub forget_schedule: Option<String>,

    /// Retention policy passed to `restic forget`, e.g. `["--keep-last", "10", "--keep-daily", "7"]`.
    #[serde(default = "default_forget_args")]
    pub forget_args: Vec<String>,

    /// restic environment for this repository (`AWS_ACCESS_KEY_ID`, `RESTIC_PASSWORD`, ...).
    /// `valueFrom.secretKeyRef` refers to a Secret in the Config's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,

    /// When `restic check` verifies this repository's structure (and, with `checkReadDataSubset`,
    /// re-reads part of its data) in a Job: a schedule like `backupSchedule`. Absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(SCHEDULE_PATTERN))]
    pub check_schedule: Option<String>,

    /// With `checkSchedule`: the part of the data each check downloads and verifies, as restic's
    /// `--read-data-subset` takes it: a percentage (`10%`), one of n parts (`1/7`, a different part
    /// each run, so seven runs read everything) or a size (`500M`). Absent: structure only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]{1,3}(\.[0-9]+)?%|[0-9]+/[0-9]+|[0-9]+[KMGT]?)$"))]
    pub check_read_data_subset: Option<String>,

    /// restic settings for this repository; each field set here wins over the Config's `restic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restic: Option<ResticOptions>,

    /// At most this many restic Jobs run against this repository at once.
    #[serde(default = "default_max_concurrent_jobs")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_concurrent_jobs: i32,
}

/// In a target (and in the names of the Secrets and ConfigMaps its `env` refers to): the PVC's
/// namespace, so each namespace gets its own repository (and, with per-namespace Secrets, its own
/// password).
pub const NAMESPACE_PLACEHOLDER: &str = "{namespace}";
/// In a target (and in `env` reference names): the PVC's name, so each PVC gets its own repository.
pub const PVC_PLACEHOLDER: &str = "{pvc}";

fn expand(text: &str, namespace: &str, pvc: &str) -> String {
    text.replace(NAMESPACE_PLACEHOLDER, namespace).replace(PVC_PLACEHOLDER, pvc)
}

fn has_placeholder(text: &str) -> bool {
    text.contains(NAMESPACE_PLACEHOLDER) || text.contains(PVC_PLACEHOLDER)
}

/// Every `{...}` in `text` that is not a placeholder DataRestor fills in.
pub fn unknown_placeholders(text: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            unknown.push(after.to_owned());
            break;
        };
        let found = &after[..=close];
        if found != NAMESPACE_PLACEHOLDER && found != PVC_PLACEHOLDER {
            unknown.push(found.to_owned());
        }
        rest = &after[close + 1..];
    }
    unknown
}

/// The Secret and ConfigMap names an env entry refers to.
fn reference_names(var: &mut EnvVar) -> impl Iterator<Item = &mut String> {
    let from = var.value_from.as_mut();
    let (secret, config_map) = match from {
        Some(from) => (from.secret_key_ref.as_mut().map(|s| &mut s.name), from.config_map_key_ref.as_mut().map(|c| &mut c.name)),
        None => (None, None),
    };
    secret.into_iter().chain(config_map)
}

fn expand_env(env: &[EnvVar], namespace: &str, pvc: &str) -> Vec<EnvVar> {
    let mut env = env.to_vec();
    for var in &mut env {
        for name in reference_names(var) {
            *name = expand(name, namespace, pvc);
        }
    }
    env
}

/// The names of the Secrets and ConfigMaps `env` refers to.
pub fn referenced_names(env: &[EnvVar]) -> Vec<&str> {
    env.iter()
        .filter_map(|var| var.value_from.as_ref())
        .flat_map(|from| {
            let secret = from.secret_key_ref.as_ref().map(|s| s.name.as_str());
            secret.into_iter().chain(from.config_map_key_ref.as_ref().map(|c| c.name.as_str()))
        })
        .collect()
}

impl Repository {
    /// Whether the target has a placeholder: one repository per namespace (or per PVC).
    pub fn is_template(&self) -> bool {
        has_placeholder(&self.target)
    }

    /// The repository a PVC uses: placeholders in the target and in `env` reference names filled
    /// in. A repository without placeholders is its own instance.
    pub fn instance(&self, namespace: &str, pvc: &str) -> Repository {
        Repository { target: expand(&self.target, namespace, pvc), env: expand_env(&self.env, namespace, pvc), ..self.clone() }
    }

    /// The target as it may be shown anywhere but to restic itself (credentials in a URL hidden).
    pub fn shown(&self) -> String {
        crate::restic::redact_target(&self.target)
    }

    /// The retention schedule, honouring both spellings (`forgetSchedule` wins).
    pub fn retention_schedule(&self) -> &str {
        self.forget_schedule.as_deref().unwrap_or(&self.forgot_schedule)
    }
}

impl ConfigSpec {
    /// The repository a Task or a status names by its shown (or real) target.
    pub fn repository(&self, target: &str) -> Option<&Repository> {
        self.repositories.iter().find(|r| r.target == target || r.shown() == target)
    }

    /// Repositories ordered by priority, the order restores try them in.
    pub fn repositories_by_priority(&self) -> Vec<&Repository> {
        let mut repos: Vec<&Repository> = self.repositories.iter().collect();
        repos.sort_by_key(|r| r.priority);
        repos
    }

    /// Whether some repository is per namespace or per PVC.
    pub fn has_templates(&self) -> bool {
        self.repositories.iter().any(Repository::is_template)
    }

    /// The Config as a PVC sees it: each repository its instance for that PVC's namespace and name.
    pub fn for_pvc(&self, namespace: &str, pvc: &str) -> ConfigSpec {
        ConfigSpec {
            repositories: self.repositories.iter().map(|r| r.instance(namespace, pvc)).collect(),
            env: expand_env(&self.env, namespace, pvc),
            ..self.clone()
        }
    }

    /// Every variable any repository uses (to fetch the Secrets and ConfigMaps they name at once).
    pub fn all_env(&self) -> Vec<EnvVar> {
        let mut env = self.env.clone();
        env.extend(self.repositories.iter().flat_map(|r| r.env.iter().cloned()));
        env.extend(self.repositories.iter().filter_map(|r| self.restic_options(r).ca_env()));
        env
    }

    /// The restic settings of one repository: the Config's, with the repository's own over them.
    pub fn restic_options(&self, repository: &Repository) -> ResticOptions {
        self.restic.clone().unwrap_or_default().overlaid(repository.restic.as_ref())
    }

    /// The restic environment of one repository: the shared `env` overlaid with its own.
    pub fn effective_env(&self, repository: &Repository) -> Vec<EnvVar> {
        let mut merged: Vec<EnvVar> =
            self.env.iter().filter(|shared| !repository.env.iter().any(|own| own.name == shared.name)).cloned().collect();
        merged.extend(repository.env.iter().cloned());
        // The CA certificate is fetched and resolved with the credentials (see `ResticOptions`).
        merged.extend(self.restic_options(repository).ca_env());
        merged
    }
}

/// Per-Config settings of the restic Jobs.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct JobOverrides {
    /// The restic container's requests and limits, replacing the operator's whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<k8s_openapi::api::core::v1::ResourceRequirements>,
    /// Nodes the Jobs may run on. A Job that must run beside a pod using a ReadWriteOnce volume is
    /// pinned to that pod's node, and this is not applied to it (it could only make it unschedulable).
    /// Placement (this, `tolerations`, `priorityClassName`) is honoured only on Configs in the
    /// administrators' namespaces.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the Jobs tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<k8s_openapi::api::core::v1::Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^(Always|IfNotPresent|Never)$"))]
    pub image_pull_policy: Option<String>,
    /// Pod retries inside one Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub backoff_limit: Option<i32>,
    /// A Job still running after this long is stopped and its Task fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60))]
    pub active_deadline_seconds: Option<i64>,
}

/// An unprivileged identity for restic Jobs: usually the user and group the application writes
/// its files as.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunAs {
    /// User id (not 0: root is what this avoids).
    #[schemars(range(min = 1))]
    pub user: i64,
    /// Group id.
    #[schemars(range(min = 0))]
    pub group: i64,
}

/// Selects PVCs by labels and namespaces; both must match when both are given.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Labels the PVC must carry (all of them, equal values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,

    /// Namespaces the PVC may live in (any of them). Empty or absent: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub match_namespaces: Vec<String>,

    // The settings below, when set, replace the Config's for the PVCs this selector is the first
    // (in order) to pick.
    /// `stopPods` for these PVCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_pods: Option<bool>,
    /// `autoRestore` for these PVCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_restore: Option<bool>,
    /// `manualRestoreMode` for these PVCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_restore_mode: Option<RestoreMode>,
    /// `hooks` for these PVCs, replacing the Config's whole (`hooks: {}` runs none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// `drill` for these PVCs, replacing the Config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Drill>,
    /// Retention policy for these PVCs' snapshots in every repository, replacing each repository's
    /// `forgetArgs` policy (e.g. `["--keep-daily", "30"]`); prune's tuning stays the repository's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub forget_args: Option<Vec<String>>,
}

impl Selector {
    /// Whether a PVC with these labels in this namespace is selected.
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        let namespace_ok = self.match_namespaces.is_empty() || self.match_namespaces.iter().any(|n| n == namespace);
        let labels_ok = self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
        namespace_ok && labels_ok
    }
}

impl ConfigSpec {
    /// Whether any selector picks this PVC (before the reach of the Config's namespace applies:
    /// see `Config::selects`).
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.selectors.iter().any(|s| s.matches(namespace, labels))
    }
}

/// Which namespaces' Configs may protect PVCs of other namespaces (the administrators' ones, such
/// as `backup-system`); a Config anywhere else protects only its own namespace, the way a team's
/// resources stay within its namespace. With `watched`, only PVCs of those namespaces are protected
/// at all, whatever a Config selects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterWide(pub Vec<String>, pub Watched);

/// The namespaces whose PVCs this operator protects; none named: every namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watched(pub Vec<String>);

impl ClusterWide {
    /// The administrators' namespaces, every namespace watched.
    pub fn new(namespaces: Vec<String>) -> Self {
        Self(namespaces, Watched::default())
    }

    pub fn contains(&self, namespace: &str) -> bool {
        self.0.iter().any(|n| n == namespace)
    }

    /// Whether PVCs of `namespace` may be protected at all.
    pub fn watches(&self, namespace: &str) -> bool {
        self.1 .0.is_empty() || self.1 .0.iter().any(|n| n == namespace)
    }
}

impl Config {
    /// This Config as the PVC `namespace/pvc` sees it (see `ConfigSpec::for_pvc`); its status
    /// already lists each instance under its own target.
    pub fn for_pvc(&self, namespace: &str, pvc: &str) -> Config {
        if !self.spec.has_templates() {
            return self.clone();
        }
        Config { spec: self.spec.for_pvc(namespace, pvc), ..self.clone() }
    }

    /// Whether this Config protects a PVC in `namespace` with `labels`: a selector picks it, and
    /// the Config may reach that namespace.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>, cluster_wide: &ClusterWide) -> bool {
        // The operator's own volumes (a drill's scratch PVC) are never protected.
        let ours = labels.get(crate::job::MANAGED_BY_LABEL).map(String::as_str) == Some(crate::job::MANAGED_BY);
        !ours && self.reaches(namespace, cluster_wide) && self.spec.selects(namespace, labels)
    }

    /// Whether this Config may protect PVCs in `namespace` at all: a watched namespace, its own
    /// or any when it lives in an administrators' namespace.
    pub fn reaches(&self, namespace: &str, cluster_wide: &ClusterWide) -> bool {
        let own = self.metadata.namespace.as_deref().unwrap_or_default();
        cluster_wide.watches(namespace) && (own == namespace || cluster_wide.contains(own))
    }

    /// Namespaces its selectors name that it may not reach (said in its status).
    pub fn unreachable_namespaces(&self, cluster_wide: &ClusterWide) -> Vec<String> {
        let mut named: Vec<String> = self
            .spec
            .selectors
            .iter()
            .flat_map(|s| s.match_namespaces.iter())
            .filter(|n| !self.reaches(n, cluster_wide))
            .cloned()
            .collect();
        named.sort();
        named.dedup();
        named
    }
}

/// What a stopPods backup does about pods it cannot stop.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UnmanagedPods {
    /// Back up while they run, and say so.
    #[default]
    Proceed,
    /// Fail the Task without touching anything.
    Refuse,
}

/// What happens to a new PVC none of whose repositories holds a snapshot of it.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnMissingSnapshot {
    /// Hand it to its pods empty: it is new.
    #[default]
    Release,
    /// Keep its pods waiting until a snapshot appears, or the wait is over.
    Wait,
}

/// What a restore does with files already present in the volume.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RestoreMode {
    /// Empty the volume first, so it holds exactly the snapshot's files.
    #[default]
    Clean,
    /// Write the snapshot's files over the volume, keeping files the snapshot does not have.
    Merge,
    /// Restore only into an empty volume; a volume with data is left untouched and the Task fails.
    IfEmpty,
}

/// Observed state of a Config.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` (spec valid and every repository reachable), `Valid`, `RepositoriesReady`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// How many PVCs the selectors match right now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_pvcs: Option<i32>,

    /// `ready/total` repositories, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_summary: Option<String>,

    /// One entry per repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<RepositoryStatus>,

    /// Backups and restores of this Config's Tasks, counted as each finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<ConfigStatistics>,

    /// One entry per drill schedule in use (the Config's and its selectors').
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<DrillSchedule>,
}

/// Where one drill schedule stands.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DrillSchedule {
    pub schedule: String,
    /// The last slot turned into drill Tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_slot: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_drill: Option<Time>,
}

/// Totals over every Task of a Config that finished since `since`. Counted by the operator as each
/// Task ends (a Task ending while the operator crashes may be missed, never counted twice).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatistics {
    /// When counting began.
    pub since: Time,
    #[serde(default)]
    pub backups_completed: i64,
    #[serde(default)]
    pub backups_failed: i64,
    #[serde(default)]
    pub restores_completed: i64,
    #[serde(default)]
    pub restores_failed: i64,
    /// Bytes read from volumes by completed backups.
    #[serde(default)]
    pub backup_bytes_processed: i64,
    /// Bytes those backups added to the repositories (after deduplication and compression).
    #[serde(default)]
    pub backup_bytes_added: i64,
    /// Bytes completed Clean and IfEmpty restores wrote into volumes.
    #[serde(default)]
    pub restore_bytes_written: i64,
    /// Wall-clock seconds of finished backups and restores (from start to end, failures included).
    #[serde(default)]
    pub backup_seconds: i64,
    #[serde(default)]
    pub restore_seconds: i64,
    /// Restore drills passed and failed.
    #[serde(default)]
    pub drills_passed: i64,
    #[serde(default)]
    pub drills_failed: i64,
    /// The newest finished Task counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task: Option<String>,
}

impl ConfigStatistics {
    /// Nothing counted yet, counting from `now`.
    pub fn starting(now: jiff::Timestamp) -> Self {
        Self {
            since: Time(now),
            backups_completed: 0,
            backups_failed: 0,
            restores_completed: 0,
            restores_failed: 0,
            backup_bytes_processed: 0,
            backup_bytes_added: 0,
            restore_bytes_written: 0,
            backup_seconds: 0,
            restore_seconds: 0,
            drills_passed: 0,
            drills_failed: 0,
            last_task: None,
        }
    }
}

/// Observed state of one repository.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryStatus {
    pub target: String,
    /// For a per-namespace or per-PVC repository: the target with placeholders this is one
    /// instance of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_of: Option<String>,
    pub priority: i32,
    /// Whether the last connectivity check succeeded.
    pub ready: bool,
    /// Machine-readable cause of `ready`, e.g. `Connected`, `Unreachable`, `WrongPassword`.
    #[serde(default)]
    pub reason: String,
    /// Human-readable detail of the last check.
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// The next scheduled backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_backup: Option<Time>,
    /// The next scheduled retention run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_forget: Option<Time>,
    /// The last backup slot that was turned into Tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_slot: Option<Time>,
    /// The last retention slot that was run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_forget_slot: Option<Time>,
    /// The retention Job of the last slot, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_job: Option<String>,
    /// What the last retention run did, e.g. `kept 10 and removed 2 snapshots, then pruned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retention: Option<String>,
    /// The last integrity-check slot that was run (`checkSchedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_integrity_check_slot: Option<Time>,
    /// The next scheduled integrity check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_integrity_check: Option<Time>,
    /// The integrity-check Job of the last slot, while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity_check_job: Option<String>,
    /// How the last integrity check ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_integrity_check: Option<IntegrityCheck>,
}

/// The outcome of one `restic check`.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IntegrityCheck {
    /// When it ended.
    pub time: Time,
    /// `Passed`: no error found; `Failed`: restic found damage (see `message`); `NotRun`: the
    /// check could not run (repository unreachable, Job refused), which says nothing of the data.
    pub result: IntegrityCheckResult,
    /// What restic reported (its last lines), or why it did not run.
    #[serde(default)]
    pub message: String,
    /// The part of the data it read (`checkReadDataSubset`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_data_subset: Option<String>,
    /// The Job that ran it.
    pub job: String,
}

/// How an integrity check ended.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityCheckResult {
    Passed,
    Failed,
    NotRun,
}

fn default_missing_snapshot_wait() -> i64 {
    3600
}

fn default_true() -> bool {
    true
}
fn default_backup_schedule() -> String {
    "0 2 * * *".into()
}
fn default_forget_schedule() -> String {
    "0 4 * * 0".into()
}
fn default_forget_args() -> Vec<String> {
    vec!["--keep-last".into(), "10".into()]
}
fn default_max_concurrent_jobs() -> i32 {
    4
}
fn default_succeeded_history() -> i32 {
    3
}
fn default_failed_history() -> i32 {
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> ConfigSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn each_namespace_and_pvc_sees_its_own_repository_and_credentials() {
        let spec = spec(serde_json::json!({
            "env": [{"name": "RESTIC_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "restic-{namespace}", "key": "password"}}}],
            "repositories": [
                {"target": "s3:http://minio:9000/backups/{namespace}/{pvc}", "priority": 1,
                 "env": [{"name": "AWS_ACCESS_KEY_ID", "value": "literal-{namespace}"},
                         {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"configMapKeyRef": {"name": "s3-{namespace}", "key": "k"}}}]},
                {"target": "s3:http://minio:9000/shared", "priority": 2}
            ],
        }));
        assert!(spec.has_templates());
        let shop = spec.for_pvc("shop", "db");
        assert_eq!(shop.repositories[0].target, "s3:http://minio:9000/backups/shop/db");
        assert_eq!(shop.repositories[1].target, "s3:http://minio:9000/shared", "no placeholder: shared");
        assert_eq!(shop.env[0].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().name, "restic-shop");
        let own = &shop.repositories[0].env;
        assert_eq!(own[0].value.as_deref(), Some("literal-{namespace}"), "values are never rewritten");
        assert_eq!(own[1].value_from.as_ref().unwrap().config_map_key_ref.as_ref().unwrap().name, "s3-shop");
        assert!(!shop.repositories.iter().any(Repository::is_template));
        let per_namespace = |env: &[EnvVar]| referenced_names(env).iter().any(|name| has_placeholder(name));
        assert!(per_namespace(&spec.env) && !per_namespace(&shop.env));
    }

    #[test]
    fn only_the_two_placeholders_are_known() {
        assert!(unknown_placeholders("s3:http://h/{namespace}/{pvc}").is_empty());
        assert_eq!(unknown_placeholders("s3:http://h/{ns}/{pvc}/{x"), ["{ns}", "{x"]);
        assert!(unknown_placeholders("/plain/path").is_empty());
    }
}
