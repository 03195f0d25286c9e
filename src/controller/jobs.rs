//! What a restic Job did: its pods, its output, its exit code, and whether the cluster refused
//! to create its pods. Shared by the Task controller (backups, restores) and the Config
//! controller (retention).

use super::Error;
use crate::context::Context;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::api::{DeleteParams, ListParams, LogParams};
use kube::{Api, ResourceExt};

/// The Job controller's `FailedCreate` message for this Job, if it could not create a pod.
pub async fn pod_creation_refused(ctx: &Context, namespace: &str, job: &Job) -> Result<Option<String>, Error> {
    let Some(uid) = job.metadata.uid.as_deref() else { return Ok(None) };
    let events: Api<CoreEvent> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("involvedObject.uid={uid},reason=FailedCreate");
    let refused = events.list(&ListParams::default().fields(&selector)).await?;
    Ok(refused.items.into_iter().find_map(|event| event.message))
}

pub async fn job_pods(ctx: &Context, namespace: &str, job_name: &str) -> Result<Vec<Pod>, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let mut list = pods.list(&ListParams::default().labels(&format!("job-name={job_name}"))).await?.items;
    list.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    Ok(list)
}

/// The logs of the Job's newest pod (restic's JSON summary or its error).
pub async fn job_output(ctx: &Context, namespace: &str, job_name: &str) -> Result<String, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(pod) = job_pods(ctx, namespace, job_name).await?.pop() else { return Ok(String::new()) };
    match pods.logs(&pod.name_any(), &LogParams::default()).await {
        Ok(logs) => Ok(logs),
        Err(e) => Ok(format!("(logs unavailable: {e})")),
    }
}

pub async fn last_exit_code(ctx: &Context, namespace: &str, job_name: &str) -> Result<Option<i32>, Error> {
    let pod = job_pods(ctx, namespace, job_name).await?.pop();
    Ok(pod
        .and_then(|p| p.status)
        .and_then(|s| s.container_statuses)
        .and_then(|c| c.into_iter().next())
        .and_then(|c| c.state)
        .and_then(|s| s.terminated)
        .map(|t| t.exit_code))
}

/// Deletes an object; one that is already gone is what was wanted.
pub async fn delete_if_present<K>(api: &Api<K>, name: &str, params: &DeleteParams) -> Result<(), Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
