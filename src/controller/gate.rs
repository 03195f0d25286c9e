//! The restore gate: which pods must wait for their volumes, and letting them go.
//!
//! The admission webhook (`crate::webhook`) puts a scheduling gate on a new pod that mounts a PVC
//! still to be restored (or a PVC that does not exist yet where an autoRestore Config may select
//! it). The PVC reconcile calls `release_pods` whenever a PVC stops holding pods.

use super::{restore, Error};
use crate::context::Context;
use crate::job::{MANAGED_BY, MANAGED_BY_LABEL};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};

/// Label the webhook puts on pods it gates, so they can be found cheaply.
pub const GATED_LABEL: &str = "backup.datarestor-operator.com/gated";

/// Why `pod` must wait, or `None` when all its volumes are ready for it.
pub async fn hold_reason(ctx: &Context, namespace: &str, pod: &Pod) -> Result<Option<String>, Error> {
    if pod.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY) {
        return Ok(None); // the operator's own restic Jobs are what fills the volumes
    }
    if !ctx.settings.cluster_wide.watches(namespace) {
        return Ok(None); // nothing there is protected (--watch-namespaces)
    }
    let claims: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map(|volumes| volumes.iter().filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone())).collect())
        .unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), namespace);
    for claim in claims {
        match api.get_opt(&claim).await? {
            None => {
                if ctx.may_auto_restore_in(namespace).await {
                    return Ok(Some(format!("PVC {claim} does not exist yet and may need a restore")));
                }
            }
            Some(pvc) => {
                let config = ctx.selecting_config(namespace, pvc.labels()).await;
                if restore::holds_pods(&pvc, config.as_ref()) {
                    let why =
                        pvc.annotations().get(restore::MESSAGE_ANNOTATION).cloned().unwrap_or_else(|| "not restored yet".into());
                    return Ok(Some(format!("PVC {claim}: {why}")));
                }
            }
        }
    }
    Ok(None)
}

/// Removes the restore gate from every gated pod in `namespace` whose volumes are all ready.
pub async fn release_pods(ctx: &Context, namespace: &str) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let gated = pods.list(&ListParams::default().labels(&format!("{GATED_LABEL}=true"))).await?;
    for pod in gated.items {
        let gates = pod.spec.as_ref().and_then(|s| s.scheduling_gates.clone()).unwrap_or_default();
        if !gates.iter().any(|g| g.name == restore::GATE) || hold_reason(ctx, namespace, &pod).await?.is_some() {
            continue;
        }
        let remaining: Vec<_> = gates.into_iter().filter(|g| g.name != restore::GATE).collect();
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "replace", "path": "/spec/schedulingGates", "value": remaining},
        ]))?;
        match pods.patch(&pod.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch)).await {
            Ok(_) => {
                tracing::info!(namespace, pod = %pod.name_any(), "restore gate removed");
                ctx.event(&pod.object_ref(&()), EventType::Normal, "RestoreGateRemoved", "Release", "its volumes are ready")
                    .await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
