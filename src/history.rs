//! Which finished Tasks to delete so each PVC keeps only its last N succeeded and failed ones.
//! Completed backups are counted per repository, so a PVC's newest backup in every repository
//! stays on record (the metrics' last-backup and due times read it) however often another
//! repository is backed up.

use crate::api::{Task, TaskPhase, TaskType};
use std::collections::BTreeMap;

/// Names of the Tasks to delete: per PVC and type, all but the newest `succeeded_limit` Completed
/// (for backups: per repository, and at least one) and the newest `failed_limit` Failed Tasks.
/// Unfinished Tasks are never chosen.
pub fn to_prune(tasks: &[Task], succeeded_limit: usize, failed_limit: usize) -> Vec<String> {
    let mut groups: BTreeMap<(String, TaskType, bool, Option<String>), Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        let phase = task.status.as_ref().and_then(|s| s.phase).unwrap_or_default();
        if !phase.is_finished() {
            continue;
        }
        let succeeded = phase == TaskPhase::Completed;
        let repository = (succeeded && task.spec.type_ == TaskType::Backup)
            .then(|| task.status.as_ref().and_then(|s| s.repository.clone()))
            .flatten();
        groups.entry((task.spec.pvc_name.clone(), task.spec.type_, succeeded, repository)).or_default().push(task);
    }
    let mut doomed = Vec::new();
    for ((_, type_, succeeded, _), mut group) in groups {
        // Newest first: by completion, then creation, then name for a stable order.
        group.sort_by_key(|t| {
            let status = t.status.as_ref();
            std::cmp::Reverse((
                status.and_then(|s| s.completion_time.clone()).map(|t| t.0),
                t.metadata.creation_timestamp.clone().map(|t| t.0),
                t.metadata.name.clone(),
            ))
        });
        // A PVC's newest backup in each repository always stays: it is the record of when the PVC
        // was last protected there (the metrics' due time and `status` read it).
        let keep = match (succeeded, type_) {
            (true, TaskType::Backup) => succeeded_limit.max(1),
            (true, _) => succeeded_limit,
            (false, _) => failed_limit,
        };
        doomed.extend(group.into_iter().skip(keep).filter_map(|t| t.metadata.name.clone()));
    }
    doomed.sort();
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ConfigRef, TaskSpec, TaskStatus, TaskTrigger};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn task(name: &str, pvc: &str, type_: TaskType, phase: TaskPhase, completed_minute: i64) -> Task {
        let mut task = Task::new(
            name,
            TaskSpec {
                type_,
                trigger: TaskTrigger::Scheduled,
                pvc_name: pvc.into(),
                config_ref: ConfigRef { name: "c".into(), namespace: "ns".into() },
                repository: None,
                host: format!("ns-{pvc}"),
                name: None,
                restore_mode: None,
                scheduled_for: None,
                latest_as_of: None,
            },
        );
        let at = jiff::Timestamp::from_second(1_800_000_000 + completed_minute * 60).unwrap();
        task.status = Some(TaskStatus {
            phase: Some(phase),
            completion_time: phase.is_finished().then_some(Time(at)),
            ..Default::default()
        });
        task
    }

    #[test]
    fn keeps_the_newest_per_pvc_type_and_outcome() {
        use TaskPhase::*;
        use TaskType::*;
        let tasks = vec![
            task("b1", "data", Backup, Completed, 1),
            task("b2", "data", Backup, Completed, 2),
            task("b3", "data", Backup, Completed, 3),
            task("b4", "data", Backup, Completed, 4),
            task("f1", "data", Backup, Failed, 1),
            task("f2", "data", Backup, Failed, 5),
            task("r1", "data", Restore, Completed, 0),
            task("run", "data", Backup, Running, 0),
            task("pending", "data", Backup, Pending, 0),
            task("o1", "other", Backup, Completed, 0),
            task("o2", "other", Backup, Completed, 9),
        ];
        assert_eq!(to_prune(&tasks, 2, 1), ["b1", "b2", "f1"]);
        assert_eq!(to_prune(&tasks, 1, 1), ["b1", "b2", "b3", "f1", "o1"]);
        // The newest backup (of each repository) is the PVC's record and stays even at 0.
        assert_eq!(to_prune(&tasks, 0, 0), ["b1", "b2", "b3", "f1", "f2", "o1", "r1"]);
        assert!(to_prune(&tasks, 10, 10).is_empty());
    }

    #[test]
    fn the_newest_backup_in_each_repository_stays() {
        use TaskPhase::*;
        use TaskType::*;
        let in_repository = |name: &str, repository: &str, minute: i64| {
            let mut t = task(name, "data", Backup, Completed, minute);
            t.status.as_mut().unwrap().repository = Some(repository.into());
            t
        };
        // Hourly to the near repository, daily to the far one: the far one's backup is older than
        // three near ones, and still kept.
        let tasks = vec![
            in_repository("far", "s3:far", 0),
            in_repository("near1", "s3:near", 60),
            in_repository("near2", "s3:near", 120),
            in_repository("near3", "s3:near", 180),
        ];
        assert_eq!(to_prune(&tasks, 1, 1), ["near1", "near2"]);
    }
}
