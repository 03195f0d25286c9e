//! Serving a request annotation exactly once.
//!
//! A request (`manual-backup=...`) is first *claimed*: in one atomic JSON patch the request
//! annotation is removed and `claimed-<request>` records `<resourceVersion>:<value>`, the identity
//! the Task names derive from. Then the Tasks are created (an existing one means it was already
//! done) and the claim is dropped. A crash or a conflict at any point retries with the same
//! identity, so a request makes its Tasks once; a request written again later is a new one.

use super::Error;
use crate::context::Context;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::fmt::Debug;

/// The annotation that holds a claimed request.
pub fn claimed_key(request_key: &str) -> String {
    let (prefix, name) = request_key.rsplit_once('/').unwrap_or(("", request_key));
    format!("{prefix}/claimed-{name}")
}

/// A claimed request: the resourceVersion at which it was claimed, and its value.
pub fn claimed<K: Resource>(object: &K, request_key: &str) -> Option<(String, String)> {
    let identity = object.annotations().get(&claimed_key(request_key))?;
    let (version, value) = identity.split_once(':')?;
    Some((version.to_owned(), value.to_owned()))
}

fn pointer(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"))
}

async fn json_patch<K>(api: &Api<K>, name: &str, ops: serde_json::Value) -> Result<bool, Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + Debug,
{
    let patch: json_patch::Patch = serde_json::from_value(ops)?;
    match api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch)).await {
        Ok(_) => Ok(true),
        // The object changed under us (a new value, already claimed, deleted): look again.
        Err(kube::Error::Api(status)) if [404, 409, 422].contains(&status.code) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Claims the request `value` found under `request_key`. Returns false when it changed meanwhile.
pub async fn claim<K>(api: &Api<K>, object: &K, request_key: &str, value: &str) -> Result<bool, Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + Debug,
{
    let identity = format!("{}:{value}", object.resource_version().unwrap_or_default());
    json_patch(
        api,
        &object.name_any(),
        serde_json::json!([
            {"op": "test", "path": pointer(request_key), "value": value},
            {"op": "remove", "path": pointer(request_key)},
            {"op": "add", "path": pointer(&claimed_key(request_key)), "value": identity},
        ]),
    )
    .await
}

/// Drops a claim once its Tasks exist and it has been answered.
pub async fn release<K>(api: &Api<K>, object: &K, request_key: &str) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + Debug,
{
    let key = claimed_key(request_key);
    let Some(identity) = object.annotations().get(&key).cloned() else { return Ok(()) };
    json_patch(
        api,
        &object.name_any(),
        serde_json::json!([
            {"op": "test", "path": pointer(&key), "value": identity},
            {"op": "remove", "path": pointer(&key)},
        ]),
    )
    .await?;
    Ok(())
}

/// Records the outcome of a request on a PVC: an Event, and on rejection an answer annotation
/// (accepted requests are answered when their Task finishes).
pub async fn answer(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    api: &Api<PersistentVolumeClaim>,
    what: &str,
    result_annotation: &str,
    value: &str,
    outcome: Result<String, String>,
) -> Result<(), Error> {
    let object_ref = pvc.object_ref(&());
    let reason = if what == "manual-backup" { "BackupRequested" } else { "RestoreRequested" };
    match outcome {
        Ok(message) => ctx.event(&object_ref, EventType::Normal, reason, what, message).await,
        Err(message) => {
            let message = format!("{what}={value:?} rejected: {message}");
            ctx.event(&object_ref, EventType::Warning, "InvalidRequest", what, &message).await;
            let patch = serde_json::json!({"metadata": {"annotations": {result_annotation: format!("Rejected: {message}")}}});
            api.patch(&pvc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;

    #[test]
    fn claimed_identity_round_trips_values_with_colons() {
        assert_eq!(
            claimed_key("backup.datarestor-operator.com/manual-restore"),
            "backup.datarestor-operator.com/claimed-manual-restore"
        );
        let mut pvc = PersistentVolumeClaim::default();
        pvc.metadata.annotations = Some(
            [(
                "backup.datarestor-operator.com/claimed-manual-restore".to_owned(),
                "41:s3:http://minio:9000/pg|ns-pvc|now".to_owned(),
            )]
            .into(),
        );
        assert_eq!(
            claimed(&pvc, "backup.datarestor-operator.com/manual-restore"),
            Some(("41".to_owned(), "s3:http://minio:9000/pg|ns-pvc|now".to_owned()))
        );
        assert_eq!(claimed(&pvc, "backup.datarestor-operator.com/manual-backup"), None);
    }
}
