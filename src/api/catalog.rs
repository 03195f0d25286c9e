//! `Catalog`: what is known of one PVC's backups, kept beside it so `kubectl get` answers "when was
//! this volume last backed up, and what can it be restored from" without the operator's CLI.

// kube's repeated `printcolumn(...)`/`shortname` arguments look like duplicates to clippy.
#![allow(clippy::duplicated_attributes)]

use super::{TaskPhase, TaskStatus, TaskType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Snapshots kept per repository in a Catalog: enough for any retention policy people read by
/// eye, and a bound on the object's size whatever the policy keeps.
pub const SNAPSHOTS_PER_REPOSITORY: usize = 50;
/// Finished Tasks remembered as already counted, so counting one twice (after a crash between the
/// Catalog's write and the Task's) cannot happen.
const COUNTED_TASKS: usize = 20;

/// The backup catalog of one PersistentVolumeClaim, named after it and deleted with it. Written by
/// the operator when a backup or restore of the PVC finishes and after retention; users read it.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "backup.datarestor-operator.com",
    version = "v1alpha1",
    kind = "Catalog",
    namespaced,
    status = "CatalogStatus",
    derive = "PartialEq",
    derive = "Default",
    shortname = "drcatalog",
    shortname = "drcat",
    category = "datarestor",
    printcolumn(name = "Config", type_ = "string", json_path = ".spec.config"),
    printcolumn(name = "Last Backup", type_ = "date", json_path = ".status.lastBackup.time"),
    printcolumn(name = "Snapshot", type_ = "string", json_path = ".status.lastBackup.shortSnapshotId"),
    printcolumn(name = "Size", type_ = "string", json_path = ".status.lastBackup.size"),
    printcolumn(
        name = "Snapshots",
        type_ = "string",
        json_path = ".status.snapshotSummary",
        description = "Snapshots known per repository"
    ),
    printcolumn(name = "Last Restore", type_ = "date", json_path = ".status.lastRestore.time"),
    printcolumn(name = "Restore", type_ = "string", json_path = ".status.lastRestore.result"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.backupsFailed", priority = 1),
    printcolumn(name = "Drill", type_ = "string", json_path = ".status.lastDrill.result", priority = 1),
    doc = "What is known of one PersistentVolumeClaim's backups: the newest, the snapshots per repository, the last restore."
)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSpec {
    /// The PVC (same namespace, same name as this Catalog).
    pub pvc_name: String,
    /// `namespace/name` of the Config whose Tasks last wrote it.
    #[serde(default)]
    pub config: String,
}

/// One finished backup or restore, as its Task reported it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEvent {
    pub time: Time,
    /// The Task that did it.
    pub task: String,
    /// `Completed` or `Failed`.
    pub result: String,
    /// The repository used (credentials removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_snapshot_id: Option<String>,
    /// Bytes read from the volume (backup) or written into it (restore), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A snapshot of this PVC in one repository.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CatalogSnapshot {
    pub id: String,
    pub short_id: String,
    /// When it was taken: restic's time for a listed snapshot; for one recorded from a backup Task,
    /// the Task's start (seconds before restic's own).
    pub time: Time,
    /// The backup name (tag `name=`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The snapshots of this PVC in one repository.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogRepository {
    /// The repository (credentials removed).
    pub repository: String,
    /// How many snapshots of this PVC it holds, as last known.
    pub count: i64,
    /// The newest first, at most 50 of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<CatalogSnapshot>,
    /// When the list was last read from the repository itself (after retention). Without it, or
    /// for snapshots taken since, the list is what this operator's backups recorded; snapshots
    /// removed by hand show up missing only at the next retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listed_at: Option<Time>,
}

/// Observed state of a Catalog.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CatalogStatus {
    /// The newest successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<CatalogEvent>,
    /// The newest finished restore into this PVC, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restore: Option<CatalogEvent>,
    /// The newest finished restore drill of this PVC, passed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill: Option<CatalogEvent>,
    /// One entry per repository holding snapshots of this PVC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<CatalogRepository>,
    /// The count in each repository, in the order of `repositories`, for `kubectl get` (`3/3`: three
    /// snapshots in each of two repositories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_summary: Option<String>,
    /// Backups and restores finished since the Catalog was made.
    #[serde(default)]
    pub backups_completed: i64,
    #[serde(default)]
    pub backups_failed: i64,
    #[serde(default)]
    pub restores_completed: i64,
    #[serde(default)]
    pub restores_failed: i64,
    /// The newest finished Tasks already counted (names), newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_tasks: Vec<String>,
}

/// A finished Task, as the Catalog records it.
pub struct Finished<'a> {
    pub task: &'a str,
    pub type_: TaskType,
    pub phase: TaskPhase,
    pub status: &'a TaskStatus,
    /// Its repository with credentials removed.
    pub repository: Option<String>,
    /// Its backup name (backups only).
    pub name: Option<&'a str>,
    pub now: jiff::Timestamp,
}

impl CatalogStatus {
    /// Records a finished Task. `false` when it was already recorded (nothing changed).
    pub fn record(&mut self, finished: &Finished<'_>) -> bool {
        if self.counted_tasks.iter().any(|t| t == finished.task) {
            return false;
        }
        self.counted_tasks.push(finished.task.to_owned());
        let excess = self.counted_tasks.len().saturating_sub(COUNTED_TASKS);
        self.counted_tasks.drain(..excess);

        let status = finished.status;
        let completed = finished.phase == TaskPhase::Completed;
        let event = CatalogEvent {
            time: status.completion_time.clone().unwrap_or(Time(finished.now)),
            task: finished.task.to_owned(),
            result: if completed { "Completed" } else { "Failed" }.to_owned(),
            repository: finished.repository.clone(),
            snapshot_id: status.snapshot_id.clone(),
            short_snapshot_id: status.short_snapshot_id.clone(),
            size: status.size.clone(),
            bytes: status.bytes_processed,
            message: status.message.clone(),
        };
        // A backup's snapshot is in its repository from now on (a restore's snapshot time is not
        // known here, so restores add none; the next retention lists them).
        if let (TaskType::Backup, true, Some(repository), Some(id)) =
            (finished.type_, completed, &event.repository, &event.snapshot_id)
        {
            let snapshot = CatalogSnapshot {
                id: id.clone(),
                short_id: event.short_snapshot_id.clone().unwrap_or_else(|| crate::restic::short_id(id)),
                time: status.start_time.clone().unwrap_or_else(|| event.time.clone()),
                name: finished.name.map(str::to_owned),
            };
            self.add_snapshot(&repository.clone(), snapshot);
        }
        match (finished.type_, completed) {
            (TaskType::Backup, true) => {
                self.backups_completed += 1;
                self.last_backup = Some(event);
            }
            (TaskType::Backup, false) => self.backups_failed += 1,
            (TaskType::Restore, completed) => {
                if completed {
                    self.restores_completed += 1;
                } else {
                    self.restores_failed += 1;
                }
                self.last_restore = Some(event);
            }
            (TaskType::Drill, _) => self.last_drill = Some(event),
        }
        self.summarize();
        true
    }

    /// Replaces one repository's list with what the repository itself held at `listed_at`;
    /// snapshots recorded since (backups that finished while it was listed) stay. `false` when
    /// nothing changed.
    pub fn listed(&mut self, repository: &str, mut snapshots: Vec<CatalogSnapshot>, listed_at: jiff::Timestamp) -> bool {
        let entry = self.repository(repository);
        let since: Vec<CatalogSnapshot> = entry
            .snapshots
            .iter()
            .filter(|s| s.time.0 >= listed_at && !snapshots.iter().any(|k| k.id == s.id))
            .cloned()
            .collect();
        snapshots.extend(since);
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.time.0));
        let count = snapshots.len() as i64;
        snapshots.truncate(SNAPSHOTS_PER_REPOSITORY);
        if entry.count == count && entry.snapshots == snapshots && entry.listed_at == Some(Time(listed_at)) {
            return false;
        }
        entry.count = count;
        entry.snapshots = snapshots;
        entry.listed_at = Some(Time(listed_at));
        self.repositories.retain(|r| r.count > 0 || r.listed_at.is_none());
        self.summarize();
        true
    }

    fn add_snapshot(&mut self, repository: &str, snapshot: CatalogSnapshot) {
        let entry = self.repository(repository);
        if entry.snapshots.iter().any(|s| s.id == snapshot.id) {
            return;
        }
        entry.count += 1;
        entry.snapshots.insert(0, snapshot);
        entry.snapshots.truncate(SNAPSHOTS_PER_REPOSITORY);
    }

    fn repository(&mut self, repository: &str) -> &mut CatalogRepository {
        let index = match self.repositories.iter().position(|r| r.repository == repository) {
            Some(index) => index,
            None => {
                self.repositories.push(CatalogRepository { repository: repository.to_owned(), ..Default::default() });
                self.repositories.sort_by(|a, b| a.repository.cmp(&b.repository));
                self.repositories.iter().position(|r| r.repository == repository).expect("just added")
            }
        };
        &mut self.repositories[index]
    }

    fn summarize(&mut self) {
        let counts: Vec<String> = self.repositories.iter().map(|r| r.count.to_string()).collect();
        self.snapshot_summary = (!counts.is_empty()).then(|| counts.join("/"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, at: i64, phase: TaskPhase) -> TaskStatus {
        TaskStatus {
            phase: Some(phase),
            snapshot_id: Some(format!("{id}000000000000")),
            short_snapshot_id: Some(id.to_owned()),
            completion_time: Some(Time(jiff::Timestamp::from_second(at).unwrap())),
            bytes_processed: Some(2048),
            size: Some("2.0 KiB".into()),
            ..Default::default()
        }
    }

    fn finished<'a>(task: &'a str, type_: TaskType, phase: TaskPhase, status: &'a TaskStatus, repo: &str) -> Finished<'a> {
        Finished {
            task,
            type_,
            phase,
            status,
            repository: Some(repo.to_owned()),
            name: None,
            now: jiff::Timestamp::from_second(1_000_000).unwrap(),
        }
    }

    #[test]
    fn backups_and_restores_are_counted_once_each() {
        let mut catalog = CatalogStatus::default();
        let first = backup("aaaaaaaa", 100, TaskPhase::Completed);
        assert!(catalog.record(&finished("t1", TaskType::Backup, TaskPhase::Completed, &first, "s3:one")));
        assert!(!catalog.record(&finished("t1", TaskType::Backup, TaskPhase::Completed, &first, "s3:one")));
        let second = backup("bbbbbbbb", 200, TaskPhase::Completed);
        assert!(catalog.record(&finished("t2", TaskType::Backup, TaskPhase::Completed, &second, "s3:two")));
        let failed = TaskStatus { phase: Some(TaskPhase::Failed), ..Default::default() };
        assert!(catalog.record(&finished("t3", TaskType::Backup, TaskPhase::Failed, &failed, "s3:one")));
        let restore = backup("aaaaaaaa", 300, TaskPhase::Completed);
        assert!(catalog.record(&finished("t4", TaskType::Restore, TaskPhase::Completed, &restore, "s3:one")));

        assert_eq!((catalog.backups_completed, catalog.backups_failed, catalog.restores_completed), (2, 1, 1));
        assert_eq!(catalog.last_backup.as_ref().unwrap().short_snapshot_id.as_deref(), Some("bbbbbbbb"));
        assert_eq!(catalog.last_restore.as_ref().unwrap().result, "Completed");
        assert_eq!(catalog.snapshot_summary.as_deref(), Some("1/1"));
        assert_eq!(catalog.repositories[0].snapshots[0].short_id, "aaaaaaaa");
    }

    #[test]
    fn a_listing_replaces_what_backups_recorded_and_the_list_stays_bounded() {
        let mut catalog = CatalogStatus::default();
        for i in 0..60 {
            let status = backup(&format!("{i:08}"), 100 + i, TaskPhase::Completed);
            catalog.record(&finished(&format!("t{i}"), TaskType::Backup, TaskPhase::Completed, &status, "s3:one"));
        }
        assert_eq!(catalog.repositories[0].count, 60);
        assert_eq!(catalog.repositories[0].snapshots.len(), SNAPSHOTS_PER_REPOSITORY);
        assert_eq!(catalog.repositories[0].snapshots[0].short_id, "00000059", "newest first");
        assert_eq!(catalog.counted_tasks.len(), COUNTED_TASKS);

        let kept: Vec<CatalogSnapshot> = (57..60)
            .map(|i| CatalogSnapshot {
                id: format!("{i:08}000000000000"),
                short_id: format!("{i:08}"),
                time: Time(jiff::Timestamp::from_second(100 + i).unwrap()),
                name: None,
            })
            .collect();
        let now = jiff::Timestamp::from_second(2_000_000).unwrap();
        assert!(catalog.listed("s3:one", kept.clone(), now));
        assert!(!catalog.listed("s3:one", kept, now), "the same listing changes nothing");
        assert_eq!(catalog.snapshot_summary.as_deref(), Some("3"));
        assert_eq!(catalog.repositories[0].snapshots[0].short_id, "00000059");
        assert!(catalog.listed("s3:one", Vec::new(), now));
        assert!(catalog.repositories.is_empty(), "a repository listed empty drops out");

        // A backup that finished while retention was listing stays.
        let status = backup("bbbbbbbb", 3_000_000, TaskPhase::Completed);
        catalog.record(&finished("late", TaskType::Backup, TaskPhase::Completed, &status, "s3:one"));
        assert!(catalog.listed("s3:one", Vec::new(), jiff::Timestamp::from_second(2_500_000).unwrap()));
        assert_eq!(catalog.repositories[0].count, 1, "{catalog:?}");
    }
}
