//! Writes what users read back with `kubectl get catalogs` and in a Config's `status.statistics`:
//! each finished Task into its PVC's Catalog and its Config's totals, and each retention's list of
//! kept snapshots into the Catalogs of the PVCs it covered.
//!
//! Every write is read-modify-write guarded by `resourceVersion`, so two replicas (or two Tasks of
//! one Config ending together) never overwrite each other's counts; a conflict re-reads and retries.

use super::Error;
use crate::api::{
    Catalog, CatalogSnapshot, CatalogSpec, Config, ConfigStatistics, Finished, Task, TaskPhase, TaskStatus, TaskType,
};
use crate::context::Context;
use crate::restic::{redact_target, short_id, Snapshot, NAMESPACE_TAG, PVC_TAG};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

const ATTEMPTS: usize = 5;

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Records a finished Task in its PVC's Catalog and in its Config's statistics. Called before the
/// Task's own final status is written: a crash in between finishes the Task again, and the
/// Catalog, which remembers the Tasks it counted, does not count it twice (nor, through it, the
/// Config). Best effort: a Catalog or Config that cannot be written is logged, and never keeps the
/// Task from finishing.
pub async fn record_finished(ctx: &Context, task: &Task, status: &TaskStatus, phase: TaskPhase, reason: &str, now: Timestamp) {
    // A Task the operator refused to run (another namespace's Config, say) is not that Config's.
    if reason == "NotAllowed" {
        return;
    }
    if let Err(error) = record(ctx, task, status, phase, now).await {
        tracing::warn!(task = %task.name_any(), namespace = ?task.namespace(), %error, "Catalog or Config statistics not updated");
    }
}

async fn record(ctx: &Context, task: &Task, status: &TaskStatus, phase: TaskPhase, now: Timestamp) -> Result<(), Error> {
    let namespace = task.namespace().ok_or(Error::MissingField("namespace"))?;
    let name = task.name_any();
    let finished = Finished {
        task: &name,
        type_: task.spec.type_,
        phase,
        status,
        repository: status.repository.as_deref().map(redact_target),
        name: task.spec.name.as_deref().filter(|_| task.spec.type_ == TaskType::Backup),
        now,
    };
    let config_name = format!("{}/{}", task.spec.config_ref.namespace, task.spec.config_ref.name);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let new = match pvcs.get_opt(&task.spec.pvc_name).await? {
        Some(pvc) => update_catalog(ctx, &pvc, &config_name, Missing::Make, |catalog| catalog.record(&finished)).await?,
        // No PVC, no Catalog: the Config's own memory of its newest Task is all that guards it.
        None => true,
    };
    if new {
        count_in_config(ctx, task, status, phase, now).await?;
    }
    Ok(())
}

/// One finished retention run of one repository.
pub struct RetentionRun<'a> {
    pub repository: &'a str,
    /// The hosts it was run for.
    pub hosts: &'a [String],
    /// What it kept.
    pub kept: &'a [Snapshot],
    /// When its Job was made: backups since are not in `kept`, and stay listed.
    pub started: Timestamp,
}

/// After a retention run: the snapshots the repository kept replace, per PVC, the lists in the
/// Catalogs of those of `pvcs` it was run for (only those that have a Catalog already). Best
/// effort: a failure is logged, and the next retention corrects it.
pub async fn record_retention(ctx: &Context, config: &Config, pvcs: &[&PersistentVolumeClaim], run: &RetentionRun<'_>) {
    let shown = redact_target(run.repository);
    let config_name = format!("{}/{}", config.namespace().unwrap_or_default(), config.name_any());
    for pvc in pvcs {
        let (namespace, name) = (pvc.namespace().unwrap_or_default(), pvc.name_any());
        let host = crate::api::snapshot_host(&namespace, &name);
        if !run.hosts.contains(&host) {
            continue;
        }
        // The host `{namespace}-{pvc}` can be two PVCs' (`a-b/c`, `a/b-c`): the tags tell.
        let ours = |s: &&Snapshot| {
            s.hostname == host && s.tag(NAMESPACE_TAG).is_none_or(|n| n == namespace) && s.tag(PVC_TAG).is_none_or(|p| p == name)
        };
        let snapshots: Vec<CatalogSnapshot> = run
            .kept
            .iter()
            .filter(ours)
            .filter_map(|s| {
                Some(CatalogSnapshot {
                    id: s.id.clone(),
                    short_id: if s.short_id.is_empty() { short_id(&s.id) } else { s.short_id.clone() },
                    time: Time(s.taken_at()?),
                    name: s.name().map(str::to_owned),
                })
            })
            .collect();
        mark_forgotten(ctx, &namespace, &host, &shown, &snapshots, run).await;
        let listed = |catalog: &mut crate::api::CatalogStatus| catalog.listed(&shown, snapshots.clone(), run.started);
        if let Err(error) = update_catalog(ctx, pvc, &config_name, Missing::Skip, listed).await {
            tracing::warn!(%namespace, pvc = %name, %error, "Catalog not updated after retention");
        }
    }
}

/// What `update_catalog` does when the PVC has no Catalog yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    Make,
    Skip,
}

/// Reads the PVC's Catalog (made when missing unless told to skip, replaced when left from an
/// earlier PVC of the same name), lets `change` edit its status, and writes the whole status back
/// (a replace guarded by the resourceVersion read) when `change` says it changed. Returns whether it
/// wrote a change.
async fn update_catalog(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    config: &str,
    missing: Missing,
    mut change: impl FnMut(&mut crate::api::CatalogStatus) -> bool,
) -> Result<bool, Error> {
    let namespace = pvc.namespace().ok_or(Error::MissingField("namespace"))?;
    let name = pvc.name_any();
    let uid = pvc.uid().ok_or(Error::MissingField("PVC uid"))?;
    let api: Api<Catalog> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let mut catalog = match api.get_opt(&name).await? {
            Some(catalog) if catalog.owner_references().iter().any(|o| o.uid == uid) => catalog,
            Some(_) => {
                // The Catalog of a deleted PVC of the same name, not yet collected.
                super::jobs::delete_if_present(&api, &name, &DeleteParams::default()).await?;
                continue;
            }
            None if missing == Missing::Skip => return Ok(false),
            None => match api.create(&PostParams::default(), &new_catalog(pvc, &uid, config)).await {
                Ok(catalog) => catalog,
                Err(e) if super::submit::is_already_exists(&e) => continue,
                Err(e) => return Err(e.into()),
            },
        };
        if catalog.spec.config != config {
            let patch =
                serde_json::json!({"metadata": {"resourceVersion": catalog.resource_version()}, "spec": {"config": config}});
            match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(patched) => catalog = patched,
                Err(e) if is_conflict(&e) => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut status = catalog.status.clone().unwrap_or_default();
        if !change(&mut status) {
            return Ok(false);
        }
        catalog.status = Some(status);
        match api.replace_status(&name, &PostParams::default(), &catalog).await {
            Ok(_) => return Ok(true),
            Err(e) if is_conflict(&e) => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_error.map_or(Error::MissingField("a Catalog that stays put"), Error::from))
}

fn new_catalog(pvc: &PersistentVolumeClaim, uid: &str, config: &str) -> Catalog {
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        name: pvc.name_any(),
        uid: uid.to_owned(),
        ..Default::default()
    };
    Catalog {
        metadata: ObjectMeta {
            name: Some(pvc.name_any()),
            namespace: pvc.namespace(),
            owner_references: Some(vec![owner]),
            labels: Some([("app.kubernetes.io/managed-by".to_owned(), "datarestor-operator".to_owned())].into()),
            ..Default::default()
        },
        spec: CatalogSpec { pvc_name: pvc.name_any(), config: config.to_owned() },
        status: None,
    }
}

/// Adds a finished Task to its Config's statistics (skipped when it is the Task counted last, as
/// after a crash between this write and the Task's).
async fn count_in_config(ctx: &Context, task: &Task, status: &TaskStatus, phase: TaskPhase, now: Timestamp) -> Result<(), Error> {
    let api: Api<Config> = Api::namespaced(ctx.client.clone(), &task.spec.config_ref.namespace);
    let name = task.name_any();
    let seconds = match (&status.start_time, &status.completion_time) {
        (Some(start), end) => (end.as_ref().map_or(now, |t| t.0).as_second() - start.0.as_second()).max(0),
        _ => 0,
    };
    for attempt in 1..=ATTEMPTS {
        let Some(config) = api.get_opt(&task.spec.config_ref.name).await? else { return Ok(()) };
        let mut statistics =
            config.status.as_ref().and_then(|s| s.statistics.clone()).unwrap_or_else(|| ConfigStatistics::starting(now));
        let counted_as = format!("{}/{name}", task.namespace().unwrap_or_default());
        if statistics.last_task.as_deref() == Some(counted_as.as_str()) {
            return Ok(());
        }
        let completed = phase == TaskPhase::Completed;
        match task.spec.type_ {
            TaskType::Backup => {
                if completed {
                    statistics.backups_completed += 1;
                    statistics.backup_bytes_processed += status.bytes_processed.unwrap_or(0).max(0);
                    statistics.backup_bytes_added += status.bytes_added.unwrap_or(0).max(0);
                } else {
                    statistics.backups_failed += 1;
                }
                statistics.backup_seconds += seconds;
            }
            TaskType::Restore => {
                if completed {
                    statistics.restores_completed += 1;
                    statistics.restore_bytes_written += status.bytes_processed.unwrap_or(0).max(0);
                } else {
                    statistics.restores_failed += 1;
                }
                statistics.restore_seconds += seconds;
            }
            TaskType::Drill => {
                if completed {
                    statistics.drills_passed += 1;
                } else {
                    statistics.drills_failed += 1;
                }
            }
        }
        statistics.last_task = Some(counted_as);
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": config.resource_version()},
            "status": {"statistics": statistics},
        });
        match api.patch_status(&config.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) && attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The condition a finished Task gets when its snapshot is no longer in its repository.
pub const SNAPSHOT_AVAILABLE: &str = "SnapshotAvailable";

/// Finished Tasks of `host` in `namespace` whose snapshot in `repository` is not among what a
/// retention run kept (forgotten by it, or earlier by hand) get `SnapshotAvailable=False`: their
/// snapshot id can no longer be restored. Tasks that ended after the run's listing are not judged.
async fn mark_forgotten(
    ctx: &Context,
    namespace: &str,
    host: &str,
    repository: &str,
    kept: &[CatalogSnapshot],
    run: &RetentionRun<'_>,
) {
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), namespace);
    let tasks = ctx.tasks.state();
    for task in tasks.iter().filter_map(|guard| guard.0.as_ref().ok()) {
        let Some(status) = &task.status else { continue };
        let judged = task.namespace().as_deref() == Some(namespace)
            && task.spec.host == host
            && status.phase.is_some_and(TaskPhase::is_finished)
            && status.repository.as_deref() == Some(repository)
            && status.completion_time.as_ref().is_some_and(|t| t.0 < run.started)
            && !status.conditions.iter().any(|c| c.type_ == SNAPSHOT_AVAILABLE && c.status == "False");
        let Some(id) = status.snapshot_id.as_deref().filter(|_| judged) else { continue };
        // restic 0.14's backup summary gives the short id, later ones the full one.
        if id.len() < 8 || kept.iter().any(|s| s.id.starts_with(id) || id.starts_with(&s.id)) {
            continue;
        }
        let mut conditions = status.conditions.clone();
        let message = format!(
            "snapshot {} is no longer in {repository} (not kept by the retention run of {})",
            short_id(id),
            Time(run.started).0
        );
        crate::api::set_condition(
            &mut conditions,
            SNAPSHOT_AVAILABLE,
            crate::api::ConditionStatus::False,
            "Forgotten",
            &message,
            task.metadata.generation,
            Timestamp::now(),
        );
        let patch = serde_json::json!({"status": {"conditions": conditions}});
        if let Err(error) = api.patch_status(&task.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!(%namespace, task = %task.name_any(), %error, "could not mark a Task whose snapshot is gone");
        }
    }
}
