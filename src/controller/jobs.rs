//! restic Jobs: the credentials Secret they read, and what they did (their pods, output, exit
//! code, and whether the cluster refused to create their pods). Shared by the Task controller
//! (backups, restores) and the Config controller (retention).

use super::Error;
use crate::api::{Config, Repository};
use crate::context::Context;
use crate::credentials::{self, ResolvedEnv};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

/// Writes the credentials Secret `name` that a restic Job in `namespace` reads, whole: the operator
/// owns every key in it, so a key someone else added (`RESTIC_PASSWORD_COMMAND`, say) is removed
/// rather than passed on. Applied fresh for every Job, so rotations propagate; `owner` takes it
/// away with its Task (or Config). Returns its keys (the variables a Job reads from it, by name).
pub async fn apply_credentials(
    ctx: &Context,
    (config, repository): (&Config, &Repository),
    namespace: &str,
    name: &str,
    owner: Option<OwnerReference>,
    env: &ResolvedEnv,
) -> Result<Vec<String>, kube::Error> {
    let mut secret = credentials::secret(config, repository, namespace, env);
    secret.metadata.name = Some(name.to_owned());
    secret.metadata.owner_references = owner.map(|o| vec![o]);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {}
        Err(e) if super::submit::is_already_exists(&e) => {
            let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
                {"op": "add", "path": "/data", "value": secret.data.clone().unwrap_or_default()},
                {"op": "add", "path": "/metadata/labels", "value": secret.metadata.labels.clone().unwrap_or_default()},
            ]))
            .map_err(kube::Error::SerdeError)?;
            api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
        }
        Err(e) => return Err(e),
    }
    Ok(env.0.keys().cloned().collect())
}

/// The credentials Secret of a Task's Jobs: it exists only while the Task runs.
pub fn task_credentials_name(task_name: &str) -> String {
    format!("{task_name}-credentials")
}

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
