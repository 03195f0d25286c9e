//! What is known of each protected PVC, read from Configs, PVCs and Tasks: the Config that protects
//! it, its newest backup, when the next one is due, its restore state and its health. The metrics
//! (from the operator's caches) and the `status` command (from a fresh listing) both read it.

use crate::api::{ClusterWide, Config, Task, TaskPhase, TaskType};
use crate::restic::redact_target;
use crate::schedule::Schedule;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The objects the catalog is read from.
pub struct ClusterView<'a> {
    pub configs: &'a [&'a Config],
    pub pvcs: &'a [&'a PersistentVolumeClaim],
    pub tasks: &'a [&'a Task],
    pub cluster_wide: &'a ClusterWide,
    pub now: Timestamp,
}

/// A PVC's newest successful backup.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub time: Timestamp,
    pub task: String,
    pub repository: Option<String>,
    pub snapshot: Option<String>,
    pub bytes: Option<i64>,
}

/// One PVC a Config protects, or whose pods wait for a restore.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PvcRecord {
    pub namespace: String,
    pub pvc: String,
    /// `namespace/name` of the Config that protects it.
    pub config: Option<String>,
    pub last_backup: Option<Backup>,
    /// Completed backups on record (the Task history keeps the newest few per repository).
    pub backups: usize,
    /// The newest finished backup failed (after the last success).
    pub last_backup_failed: bool,
    /// The next scheduled slot after the newest backup, in the repository the PVC is most behind in.
    pub backup_due: Option<Timestamp>,
    /// `Pending`, `Restoring`, `Released`, ... (the restore-state annotation).
    pub restore_state: Option<String>,
    /// Its pods wait for a restore (since the PVC was created).
    pub held_since: Option<Timestamp>,
    /// Repositories it is backed up to whose last check failed (credentials removed).
    pub repositories_down: Vec<String>,
}

impl PvcRecord {
    /// One word for a glance, worst first.
    pub fn health(&self, now: Timestamp) -> &'static str {
        if self.held_since.is_some() {
            "WaitingForRestore"
        } else if !self.repositories_down.is_empty() {
            "RepositoryDown"
        } else if self.last_backup_failed {
            "BackupFailing"
        } else if self.backup_due.is_some_and(|due| due < now) {
            "BackupOverdue"
        } else if self.last_backup.is_none() {
            "NotBackedUpYet"
        } else {
            "Healthy"
        }
    }
}

/// Every protected (or held) PVC, by namespace and name.
pub fn records(view: &ClusterView<'_>) -> Vec<PvcRecord> {
    let mut newest: BTreeMap<(&str, &str), (Backup, usize)> = BTreeMap::new();
    let mut newest_in: BTreeMap<(&str, &str, String), Timestamp> = BTreeMap::new();
    let mut newest_finished: BTreeMap<(&str, &str), (Timestamp, bool)> = BTreeMap::new();
    for task in view.tasks.iter().filter(|t| t.spec.type_ == TaskType::Backup) {
        let (Some(namespace), Some(status)) = (task.metadata.namespace.as_deref(), task.status.as_ref()) else { continue };
        let phase = status.phase.unwrap_or_default();
        let Some(done) = status.completion_time.as_ref().map(|t| t.0).filter(|_| phase.is_finished()) else { continue };
        let key = (namespace, task.spec.pvc_name.as_str());
        let succeeded = phase == TaskPhase::Completed;
        if newest_finished.get(&key).is_none_or(|(at, _)| done > *at) {
            newest_finished.insert(key, (done, succeeded));
        }
        if !succeeded {
            continue;
        }
        let backup = Backup {
            time: done,
            task: task.name_any(),
            repository: status.repository.as_deref().map(redact_target),
            snapshot: status.short_snapshot_id.clone(),
            bytes: status.bytes_processed,
        };
        let entry = newest.entry(key).or_insert_with(|| (backup.clone(), 0));
        entry.1 += 1;
        if done > entry.0.time {
            entry.0 = backup;
        }
        if let Some(repository) = &status.repository {
            let at = newest_in.entry((key.0, key.1, redact_target(repository))).or_insert(done);
            *at = (*at).max(done);
        }
    }

    let mut configs: Vec<&Config> = view.configs.to_vec();
    configs.sort_by_key(|c| (c.metadata.namespace.clone(), c.metadata.name.clone()));
    let mut records = Vec::new();
    for pvc in view.pvcs {
        let namespace = pvc.namespace().unwrap_or_default();
        let name = pvc.name_any();
        let config = configs.iter().copied().find(|c| c.selects(&namespace, pvc.labels(), view.cluster_wide));
        let held = crate::controller::restore::holds_pods(pvc, config);
        if config.is_none() && !held {
            continue;
        }
        let created = pvc.metadata.creation_timestamp.as_ref().map_or(view.now, |t| t.0);
        let key = (namespace.as_str(), name.as_str());
        let (last_backup, backups) = newest.get(&key).cloned().map_or((None, 0), |(b, n)| (Some(b), n));
        let last_backup_failed = newest_finished.get(&key).is_some_and(|(_, succeeded)| !succeeded);
        let mut backup_due = None;
        let mut repositories_down = Vec::new();
        if let Some(config) = config {
            let view_of_pvc = config.for_pvc(&namespace, &name);
            let targets: BTreeSet<String> = view_of_pvc.spec.repositories.iter().map(|r| r.shown()).collect();
            // Due: in each repository, the first scheduled slot after the newest backup there (or
            // after the PVC appeared); the earliest of those.
            backup_due = view_of_pvc
                .spec
                .repositories
                .iter()
                .filter_map(|repository| {
                    let schedule = repository.backup_schedule.parse::<Schedule>().ok()?;
                    let last = newest_in.get(&(key.0, key.1, repository.shown())).copied();
                    schedule.next_after(last.unwrap_or(created).max(created))
                })
                .min();
            let statuses = config.status.as_ref().map(|s| s.repositories.as_slice()).unwrap_or_default();
            repositories_down = statuses
                .iter()
                .map(|r| (redact_target(&r.target), r.ready))
                .filter(|(target, ready)| !ready && targets.contains(target))
                .map(|(target, _)| target)
                .collect();
        }
        records.push(PvcRecord {
            config: config.map(|c| format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any())),
            last_backup,
            backups,
            last_backup_failed,
            backup_due,
            restore_state: pvc.annotations().get(crate::controller::restore::STATE_ANNOTATION).cloned(),
            held_since: held.then(|| hold_started(pvc, view.tasks, created)),
            repositories_down,
            namespace,
            pvc: name,
        });
    }
    records.sort_by(|a, b| (&a.namespace, &a.pvc).cmp(&(&b.namespace, &b.pvc)));
    records
}

/// Since when a PVC's pods wait: a manual restore of an existing PVC holds them from its Task's
/// creation; a new PVC (automatic restore) from its own creation.
fn hold_started(pvc: &PersistentVolumeClaim, tasks: &[&Task], created: Timestamp) -> Timestamp {
    let namespace = pvc.namespace();
    pvc.annotations()
        .get(crate::controller::restore::TASK_ANNOTATION)
        .and_then(|name| tasks.iter().find(|t| t.metadata.name.as_ref() == Some(name) && t.metadata.namespace == namespace))
        .filter(|task| task.spec.trigger != crate::api::TaskTrigger::Auto)
        .and_then(|task| task.metadata.creation_timestamp.as_ref())
        .map_or(created, |t| t.0)
}

/// Workloads held at zero replicas by unfinished Tasks, and the start of the oldest such Task.
pub fn held_workloads(view: &ClusterView<'_>) -> (usize, Option<Timestamp>) {
    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut since: Option<Timestamp> = None;
    for task in view.tasks {
        let (Some(namespace), Some(status)) = (task.metadata.namespace.as_deref(), task.status.as_ref()) else { continue };
        if status.phase.unwrap_or_default().is_finished() || status.quiesced_workloads.is_empty() {
            continue;
        }
        held.extend(status.quiesced_workloads.iter().map(|w| format!("{namespace}/{w}")));
        let start = status.start_time.as_ref().map_or(view.now, |t| t.0);
        since = Some(since.map_or(start, |s| s.min(start)));
    }
    (held.len(), since)
}
