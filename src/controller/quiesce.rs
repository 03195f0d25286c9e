//! Quiesce: scale the Deployments and StatefulSets that mount a PVC to zero for a backup or
//! restore, and always bring them back.
//!
//! The original replica count and the Tasks holding a workload down are written on the workload
//! itself before it is scaled (`original-replicas`, `quiesced-by`), so any operator instance can
//! bring it back after a crash. Several Tasks (a StatefulSet's PVCs) share one scale-down; the last
//! one to finish scales up. If someone changed `replicas` meanwhile, their value stays.

use super::Error;
use crate::api::{Task, TaskPhase};
use crate::context::Context;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};

pub const ORIGINAL_REPLICAS: &str = "backup.datarestor-operator.com/original-replicas";
pub const QUIESCED_BY: &str = "backup.datarestor-operator.com/quiesced-by";
/// Label on quiesced workloads, so they are found without listing every workload.
pub const QUIESCED_LABEL: &str = "backup.datarestor-operator.com/quiesced";

/// A workload that can be scaled: `Deployment/name` or `StatefulSet/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl std::str::FromStr for Workload {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (kind, name) = s.split_once('/').ok_or(())?;
        Ok(Workload { kind: kind.into(), name: name.into() })
    }
}

/// Who runs pods on a PVC.
#[derive(Debug, Default)]
pub struct Owners {
    pub workloads: BTreeSet<Workload>,
    /// Pods no Deployment or StatefulSet owns (bare pods, DaemonSets, Jobs, other controllers).
    pub unmanaged: Vec<String>,
}

fn mounts(pod: &Pod, claim: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|volumes| volumes.iter().any(|v| v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == claim)))
}

fn is_ours(pod: &Pod) -> bool {
    pod.labels().get(crate::job::MANAGED_BY_LABEL).map(String::as_str) == Some(crate::job::MANAGED_BY)
}

/// Pods (terminating ones too: their volume is not free yet) other than the operator's own Jobs
/// that mount the PVC. Unscheduled pods (held by the restore gate) have mounted nothing.
pub async fn pods_mounting(ctx: &Context, namespace: &str, claim: &str) -> Result<Vec<Pod>, Error> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), namespace).list(&ListParams::default()).await?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| mounts(p, claim) && !is_ours(p) && p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .collect())
}

/// Pods other than the operator's own that name the claim and have not finished, scheduled or not.
pub async fn pods_naming(ctx: &Context, namespace: &str, claim: &str) -> Result<Vec<Pod>, Error> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), namespace).list(&ListParams::default()).await?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| mounts(p, claim) && !is_ours(p))
        .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
        .collect())
}

/// Names of the pods (not being deleted) that mount the PVC and are scheduled, i.e. not held.
pub async fn pods_using(ctx: &Context, pvc: &k8s_openapi::api::core::v1::PersistentVolumeClaim) -> Result<Vec<String>, Error> {
    let pods = pods_mounting(ctx, &pvc.namespace().unwrap_or_default(), &pvc.name_any()).await?;
    Ok(pods.into_iter().filter(|pod| pod.metadata.deletion_timestamp.is_none()).map(|pod| pod.name_any()).collect())
}

/// The workloads behind the pods that mount a PVC.
pub async fn owners(ctx: &Context, namespace: &str, claim: &str) -> Result<Owners, Error> {
    let mut owners = Owners::default();
    let replica_sets: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), namespace);
    for pod in pods_mounting(ctx, namespace, claim).await? {
        let controller = pod.owner_references().iter().find(|o| o.controller == Some(true)).cloned();
        match controller {
            Some(owner) if owner.kind == "StatefulSet" => {
                owners.workloads.insert(Workload { kind: "StatefulSet".into(), name: owner.name });
            }
            Some(owner) if owner.kind == "ReplicaSet" => {
                let deployment = replica_sets.get_opt(&owner.name).await?.and_then(|rs| {
                    rs.owner_references().iter().find(|o| o.controller == Some(true) && o.kind == "Deployment").cloned()
                });
                match deployment {
                    Some(d) => {
                        owners.workloads.insert(Workload { kind: "Deployment".into(), name: d.name });
                    }
                    None => owners.unmanaged.push(pod.name_any()),
                }
            }
            _ => owners.unmanaged.push(pod.name_any()),
        }
    }
    // A workload that other Tasks hold at zero runs no pod on the claim now, but comes back the
    // moment they finish: this Task joins the hold, or the app would start under its Job.
    let held = ListParams::default().labels(&format!("{QUIESCED_LABEL}=true"));
    for d in Api::<Deployment>::namespaced(ctx.client.clone(), namespace).list(&held).await?.items {
        let template = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        if template.is_some_and(|t| declares_claim(t, claim)) {
            owners.workloads.insert(Workload { kind: "Deployment".into(), name: d.name_any() });
        }
    }
    for sts in Api::<StatefulSet>::namespaced(ctx.client.clone(), namespace).list(&held).await?.items {
        if stateful_set_declares(&sts, claim) {
            owners.workloads.insert(Workload { kind: "StatefulSet".into(), name: sts.name_any() });
        }
    }
    Ok(owners)
}

/// Whether a pod template mounts `claim` by name.
fn declares_claim(template: &k8s_openapi::api::core::v1::PodSpec, claim: &str) -> bool {
    template
        .volumes
        .as_ref()
        .is_some_and(|volumes| volumes.iter().any(|v| v.persistent_volume_claim.as_ref().is_some_and(|c| c.claim_name == claim)))
}

/// Whether a StatefulSet's pods mount `claim`: by name, or as one of its volumeClaimTemplates'
/// claims (`{template}-{statefulset}-{ordinal}`).
fn stateful_set_declares(sts: &StatefulSet, claim: &str) -> bool {
    let Some(spec) = sts.spec.as_ref() else { return false };
    let name = sts.name_any();
    let from_template = spec.volume_claim_templates.iter().flatten().any(|t| {
        let prefix = format!("{}-{name}-", t.metadata.name.as_deref().unwrap_or_default());
        claim.strip_prefix(&prefix).is_some_and(|ordinal| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
    });
    from_template || spec.template.spec.as_ref().is_some_and(|t| declares_claim(t, claim))
}

fn holders(annotations: &BTreeMap<String, String>) -> BTreeSet<String> {
    annotations.get(QUIESCED_BY).map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

/// The bits of a workload quiesce touches, for Deployments and StatefulSets alike.
trait Scalable:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::de::DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
    fn replicas(&self) -> Option<i32>;
    fn set_replicas(&mut self, replicas: i32);
}

impl Scalable for Deployment {
    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }
    fn set_replicas(&mut self, replicas: i32) {
        self.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
    }
}

impl Scalable for StatefulSet {
    fn replicas(&self) -> Option<i32> {
        self.spec.as_ref().and_then(|s| s.replicas)
    }
    fn set_replicas(&mut self, replicas: i32) {
        self.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
    }
}

/// Records `holder` on the workload and scales it to zero (the first holder stores the replicas).
pub async fn scale_down(ctx: &Context, namespace: &str, workload: &Workload, holder: &str) -> Result<(), Error> {
    match workload.kind.as_str() {
        "Deployment" => scale_down_typed::<Deployment>(ctx, namespace, &workload.name, holder).await,
        _ => scale_down_typed::<StatefulSet>(ctx, namespace, &workload.name, holder).await,
    }
}

async fn scale_down_typed<K: Scalable>(ctx: &Context, namespace: &str, name: &str, holder: &str) -> Result<(), Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(mut object) = api.get_opt(name).await? else { return Ok(()) };
    let annotations = object.meta().annotations.clone().unwrap_or_default();
    let mut set = holders(&annotations);
    if set.contains(holder) && object.replicas() == Some(0) {
        return Ok(());
    }
    if !object.meta().annotations.as_ref().is_some_and(|a| a.contains_key(ORIGINAL_REPLICAS)) {
        let replicas = object.replicas().unwrap_or(1);
        object.meta_mut().annotations.get_or_insert_with(Default::default).insert(ORIGINAL_REPLICAS.into(), replicas.to_string());
    }
    set.insert(holder.to_owned());
    let meta = object.meta_mut();
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(QUIESCED_BY.into(), set.into_iter().collect::<Vec<_>>().join(","));
    meta.labels.get_or_insert_with(Default::default).insert(QUIESCED_LABEL.into(), "true".into());
    object.set_replicas(0);
    // Replace carries the resourceVersion: a concurrent change makes this fail and retry.
    api.replace(name, &PostParams::default(), &object).await?;
    Ok(())
}

/// Removes `holder`; the last holder restores the original replicas, unless someone changed them
/// meanwhile. Returns what happened, for the Task's message.
pub async fn scale_up(ctx: &Context, namespace: &str, workload: &Workload, holder: &str) -> Result<Option<String>, Error> {
    match workload.kind.as_str() {
        "Deployment" => scale_up_typed::<Deployment>(ctx, namespace, workload, holder).await,
        _ => scale_up_typed::<StatefulSet>(ctx, namespace, workload, holder).await,
    }
}

async fn scale_up_typed<K: Scalable>(
    ctx: &Context,
    namespace: &str,
    workload: &Workload,
    holder: &str,
) -> Result<Option<String>, Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(mut object) = api.get_opt(&workload.name).await? else {
        return Ok(Some(format!("{workload} was deleted meanwhile; nothing to scale up")));
    };
    let annotations = object.meta().annotations.clone().unwrap_or_default();
    let mut set = holders(&annotations);
    if !set.remove(holder) {
        return Ok(None);
    }
    let meta = object.meta_mut();
    let stored = meta.annotations.get_or_insert_with(Default::default);
    let mut outcome = None;
    if set.is_empty() {
        let original: Option<i32> = stored.get(ORIGINAL_REPLICAS).and_then(|v| v.parse().ok());
        stored.remove(QUIESCED_BY);
        stored.remove(ORIGINAL_REPLICAS);
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(QUIESCED_LABEL);
        }
        match (object.replicas(), original) {
            (Some(0) | None, Some(original)) => {
                object.set_replicas(original);
                outcome = Some(format!("{workload} scaled back to {original}"));
            }
            (Some(current), _) => {
                outcome = Some(format!("{workload} was set to {current} replicas meanwhile; left as it is"));
                ctx.event(
                    &object.object_ref(&()),
                    EventType::Warning,
                    "ReplicasChanged",
                    "ScaleUp",
                    outcome.clone().unwrap_or_default(),
                )
                .await;
            }
            (None, None) => {}
        }
    } else {
        stored.insert(QUIESCED_BY.into(), set.into_iter().collect::<Vec<_>>().join(","));
    }
    api.replace(&workload.name, &PostParams::default(), &object).await?;
    Ok(outcome)
}

/// Where a workload stands with respect to one holder.
#[derive(Debug, PartialEq, Eq)]
pub enum Hold {
    /// The workload no longer exists.
    Gone,
    /// The holder is not recorded on it (the scale-down did not happen yet).
    NotHeld,
    /// The holder is recorded; `replicas` is what the workload asks for now.
    Held { replicas: i32 },
}

/// Whether `holder` holds `workload` down, and its replicas now.
pub async fn hold(ctx: &Context, namespace: &str, workload: &Workload, holder: &str) -> Result<Hold, Error> {
    let found = match workload.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
            .get_opt(&workload.name)
            .await?
            .map(|d| (holders(d.annotations()), d.replicas().unwrap_or(1))),
        _ => Api::<StatefulSet>::namespaced(ctx.client.clone(), namespace)
            .get_opt(&workload.name)
            .await?
            .map(|s| (holders(s.annotations()), s.replicas().unwrap_or(1))),
    };
    Ok(match found {
        None => Hold::Gone,
        Some((holders, _)) if !holders.contains(holder) => Hold::NotHeld,
        Some((_, replicas)) => Hold::Held { replicas },
    })
}

/// Brings back every quiesced workload whose holders are all finished or gone: the recovery
/// after a crash, a deleted Task, or anything else that skipped a scale-up.
pub async fn recover_orphans(ctx: &Context) -> Result<(), Error> {
    let selector = ListParams::default().labels(&format!("{QUIESCED_LABEL}=true"));
    let mut found: Vec<(String, Workload, BTreeSet<String>)> = Vec::new();
    for d in Api::<Deployment>::all(ctx.client.clone()).list(&selector).await?.items {
        found.push((
            d.namespace().unwrap_or_default(),
            Workload { kind: "Deployment".into(), name: d.name_any() },
            holders(d.annotations()),
        ));
    }
    for s in Api::<StatefulSet>::all(ctx.client.clone()).list(&selector).await?.items {
        found.push((
            s.namespace().unwrap_or_default(),
            Workload { kind: "StatefulSet".into(), name: s.name_any() },
            holders(s.annotations()),
        ));
    }
    for (namespace, workload, holders) in found {
        for holder in holders {
            let (task_namespace, task_name) = holder.split_once('/').unwrap_or((namespace.as_str(), holder.as_str()));
            let task = Api::<Task>::namespaced(ctx.client.clone(), task_namespace).get_opt(task_name).await?;
            let active =
                task.as_ref().is_some_and(|t| !t.status.as_ref().and_then(|s| s.phase).unwrap_or_default().is_finished());
            if !active {
                let outcome = scale_up(ctx, &namespace, &workload, &holder).await?;
                tracing::info!(%namespace, %workload, %holder, ?outcome, "recovered a workload left scaled down");
            }
        }
    }
    Ok(())
}

/// The holder key of a Task.
pub fn holder(task: &Task) -> String {
    format!("{}/{}", task.namespace().unwrap_or_default(), task.name_any())
}

/// Whether a phase means the Task may still hold workloads down.
pub fn may_hold(phase: TaskPhase) -> bool {
    matches!(phase, TaskPhase::ScalingDown | TaskPhase::Running | TaskPhase::ScalingUp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stateful_set_declares_its_template_claims_and_named_ones() {
        let sts: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db"},
            "spec": {
                "selector": {}, "serviceName": "db",
                "template": {"spec": {"containers": [], "volumes": [{"name": "shared", "persistentVolumeClaim": {"claimName": "shared-data"}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}}]
            }
        }))
        .unwrap();
        for claim in ["data-db-0", "data-db-12", "shared-data"] {
            assert!(stateful_set_declares(&sts, claim), "{claim}");
        }
        for claim in ["data-db-", "data-db-x", "data-dbx-0", "data-other-0", "web-data"] {
            assert!(!stateful_set_declares(&sts, claim), "{claim}");
        }
    }
}
