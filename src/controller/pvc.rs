//! PVC reconcile: serve `manual-backup` requests written on a PVC.
//!
//! The request becomes a Task (deterministic name, so retries find it) before the annotation is
//! removed; the outcome is written back onto the PVC (`manual-backup-result`) and as Events.

use super::config::{backup_task, create_task, is_backupable, remove_annotation};
use super::task::BACKUP_RESULT_ANNOTATION;
use super::{retry_soon, Error};
use crate::annotation;
use crate::api::{snapshot_host, Config, TaskTrigger, MANUAL_BACKUP_ANNOTATION};
use crate::context::Context;
use crate::naming;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;

pub async fn reconcile(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(value) = pvc.annotations().get(MANUAL_BACKUP_ANNOTATION).cloned() else { return Ok(Action::await_change()) };
    let namespace = pvc.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let object_ref = pvc.object_ref(&());

    match serve_backup_request(&pvc, &ctx, &value).await? {
        Ok(message) => ctx.event(&object_ref, EventType::Normal, "BackupRequested", "ManualBackup", message).await,
        Err(message) => {
            let message = format!("manual-backup={value:?} rejected: {message}");
            ctx.event(&object_ref, EventType::Warning, "InvalidRequest", "ManualBackup", &message).await;
            let patch =
                serde_json::json!({"metadata": {"annotations": {BACKUP_RESULT_ANNOTATION: format!("Rejected: {message}")}}});
            api.patch(&pvc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    remove_annotation(&api, &pvc.name_any(), MANUAL_BACKUP_ANNOTATION, &value).await?;
    Ok(Action::await_change())
}

/// Creates the Task for a request, or says why it cannot be served.
async fn serve_backup_request(pvc: &PersistentVolumeClaim, ctx: &Context, value: &str) -> Result<Result<String, String>, Error> {
    let namespace = pvc.namespace().unwrap_or_default();
    let request = match annotation::parse(value) {
        Ok(request) => request,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let own_host = snapshot_host(&namespace, &pvc.name_any());
    if request.host.as_deref().is_some_and(|h| h != own_host) {
        return Ok(Err(format!("a backup is always stored under this PVC's own host {own_host}")));
    }
    let Some(config) = selecting_config(ctx, pvc).await? else {
        return Ok(Err("no Config selects this PVC".into()));
    };
    if !is_backupable(pvc) {
        return Ok(Err("the PVC is not bound".into()));
    }
    let repository = match request.resolve_repository(&config.spec.repositories) {
        Ok(Some(repository)) => repository,
        Ok(None) => config.spec.repositories_by_priority()[0],
        Err(e) => return Ok(Err(e.to_string())),
    };
    let name = naming::request_task_name(
        "backup",
        &pvc.name_any(),
        &pvc.uid().unwrap_or_default(),
        &pvc.resource_version().unwrap_or_default(),
        value,
    );
    let backup_name = request.name().map_or_else(|| name.clone(), str::to_owned);
    let task = backup_task(&config, pvc, &name, repository, TaskTrigger::Manual, Some(backup_name.clone()), None)?;
    create_task(ctx, &task).await?;
    Ok(Ok(format!("backup {backup_name:?} to {} requested as Task {name}", repository.target)))
}

/// The Config that protects a PVC; when several do, the first by namespace and name.
pub async fn selecting_config(ctx: &Context, pvc: &PersistentVolumeClaim) -> Result<Option<Config>, Error> {
    let namespace = pvc.namespace().unwrap_or_default();
    let mut configs: Vec<Config> = Api::<Config>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|c| c.spec.selects(&namespace, pvc.labels()))
        .collect();
    configs.sort_by_key(|c| (c.namespace(), c.name_any()));
    Ok(configs.into_iter().next())
}

pub fn error_policy(_: Arc<PersistentVolumeClaim>, error: &Error, _: Arc<Context>) -> Action {
    retry_soon(error)
}
