//! PVC reconcile: serve `manual-backup` and `manual-restore` requests written on a PVC, drive
//! automatic restore of new PVCs, and release pods held for PVCs that are ready.
//!
//! A request becomes a Task (deterministic name, so retries find it) before its annotation is
//! removed; the outcome is written back onto the PVC (`manual-backup-result`,
//! `manual-restore-result`) and as Events.

use super::task::BACKUP_RESULT_ANNOTATION;
use super::{gate, request, restore, retry_soon, submit, Error};
use crate::annotation;
use crate::api::{snapshot_host, Config, TaskTrigger, MANUAL_BACKUP_ANNOTATION, MANUAL_RESTORE_ANNOTATION};
use crate::context::Context;
use crate::naming;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use std::sync::Arc;

pub async fn reconcile(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = pvc.namespace().ok_or(Error::MissingField("namespace"))?;
    if pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let selecting = ctx.selecting_config(&namespace, pvc.labels()).await;
    // Restores may read another PVC's snapshots (and so its instance of a per-PVC repository):
    // they get the Config as written; everything else sees this PVC's own repositories.
    let config = selecting.as_ref().map(|c| c.for_pvc(&namespace, &pvc.name_any()));
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);

    // Requests: claim (atomically), then serve with the claimed identity, then drop the claim.
    for (key, result_key, what) in [
        (MANUAL_RESTORE_ANNOTATION, restore::RESULT_ANNOTATION, "manual-restore"),
        (MANUAL_BACKUP_ANNOTATION, BACKUP_RESULT_ANNOTATION, "manual-backup"),
    ] {
        if let Some((version, value)) = request::claimed(pvc.as_ref(), key) {
            let outcome = if what == "manual-restore" {
                let identity = pvc.uid().unwrap_or_default();
                restore::serve_manual_restore(&pvc, selecting.as_ref(), &ctx, &identity, &version, &value).await?
            } else {
                serve_backup_request(&pvc, config.as_ref(), &ctx, &version, &value).await?
            };
            request::answer(&ctx, &pvc, &api, what, result_key, &value, outcome).await?;
            request::release(&api, pvc.as_ref(), key).await?;
            return Ok(Action::requeue(std::time::Duration::from_millis(100)));
        }
        if let Some(value) = pvc.annotations().get(key).cloned() {
            request::claim(&api, pvc.as_ref(), key, &value).await?;
            return Ok(Action::requeue(std::time::Duration::from_millis(100)));
        }
    }
    let action = restore::reconcile_auto(&pvc, config.as_ref(), &ctx).await?;
    if !restore::holds_pods(&pvc, config.as_ref()) {
        gate::release_pods(&ctx, &namespace).await?;
    }
    Ok(action)
}

/// Creates the Task for a backup request, or says why it cannot be served.
async fn serve_backup_request(
    pvc: &PersistentVolumeClaim,
    config: Option<&Config>,
    ctx: &Context,
    version: &str,
    value: &str,
) -> Result<Result<String, String>, Error> {
    let namespace = pvc.namespace().unwrap_or_default();
    let request = match annotation::parse(value) {
        Ok(request) => request,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let own_host = snapshot_host(&namespace, &pvc.name_any());
    if request.host.as_deref().is_some_and(|h| h != own_host) {
        return Ok(Err(format!("a backup is always stored under this PVC's own host {own_host}")));
    }
    let Some(config) = config else {
        return Ok(Err("no Config selects this PVC".into()));
    };
    if !submit::is_backupable(pvc) {
        return Ok(Err("the PVC is not bound".into()));
    }
    let repository = match request.resolve_repository(&config.spec.repositories) {
        Ok(Some(repository)) => repository,
        Ok(None) => config.spec.repositories_by_priority()[0],
        Err(e) => return Ok(Err(e.to_string())),
    };
    let name = naming::request_task_name("backup", &pvc.name_any(), &pvc.uid().unwrap_or_default(), version, value);
    let backup_name = request.name().map_or_else(|| name.clone(), str::to_owned);
    let task = submit::backup(config, pvc, &name, repository, TaskTrigger::Manual, Some(backup_name.clone()), None);
    submit::create(ctx, &task).await?;
    Ok(Ok(format!("backup {backup_name:?} to {} requested as Task {name}", repository.shown())))
}

pub fn error_policy(_: Arc<PersistentVolumeClaim>, error: &Error, ctx: Arc<Context>) -> Action {
    retry_soon(&ctx, "pvc", error)
}
