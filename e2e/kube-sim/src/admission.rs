//! Mutating admission for pod creation: calls every matching webhook of every
//! MutatingWebhookConfiguration over HTTPS with an AdmissionReview v1 and applies the JSON patch it
//! returns. There is no cluster network: `clientConfig.url` is called as is, and a `service`
//! reference is resolved through the Service's `kube-sim.datarestor.io/url` annotation (a base URL
//! such as `https://127.0.0.1:9443`) plus the reference's path; without it the call fails and the
//! webhook's failurePolicy decides.

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::selectors::LabelSelector;
use crate::{patch, util, App};

fn rule_matches(rule: &Value) -> bool {
    let has = |field: &str, want: &str| rule[field].as_array().is_some_and(|a| a.iter().any(|x| x == "*" || x == want));
    has("operations", "CREATE") && has("apiGroups", "") && has("apiVersions", "v1") && has("resources", "pods")
}

/// Runs mutating admission for a pod about to be created in `ns`.
pub async fn mutate_pod(app: &App, ns: &str, mut pod: Value) -> ApiResult<Value> {
    let (configs, _) = app.store.list("admissionregistration.k8s.io/mutatingwebhookconfigurations", None);
    if configs.is_empty() {
        return Ok(pod);
    }
    let ns_labels = app.store.get("/namespaces", "", ns).map(|n| util::labels(&n)).unwrap_or_default();
    for cfg in configs {
        for hook in cfg["webhooks"].as_array().into_iter().flatten() {
            if !hook["rules"].as_array().is_some_and(|rs| rs.iter().any(rule_matches)) {
                continue;
            }
            if let Some(sel) = hook.get("namespaceSelector") {
                if !LabelSelector::from_object(sel).matches(&ns_labels) {
                    continue;
                }
            }
            if let Some(sel) = hook.get("objectSelector") {
                if !LabelSelector::from_object(sel).matches(&util::labels(&pod)) {
                    continue;
                }
            }
            let name = hook["name"].as_str().unwrap_or("webhook").to_string();
            match call(app, hook, ns, &pod).await {
                Ok(resp) => {
                    if resp["allowed"] != true {
                        let msg = resp.pointer("/status/message").and_then(Value::as_str).unwrap_or("");
                        let code = resp.pointer("/status/code").and_then(Value::as_u64).unwrap_or(403) as u16;
                        return Err(ApiError::from_code(code, format!("admission webhook \"{name}\" denied the request: {msg}")));
                    }
                    // Go's encoding/json reads a []byte from a base64 string or from an array of
                    // numbers (what kube-rs's AdmissionResponse writes); accept both, as the API server does.
                    let raw = match &resp["patch"] {
                        Value::String(p) => Some(
                            base64::engine::general_purpose::STANDARD
                                .decode(p)
                                .map_err(|e| ApiError::internal(format!("webhook {name} returned an invalid patch: {e}")))?,
                        ),
                        Value::Array(bytes) => Some(
                            bytes
                                .iter()
                                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                                .collect::<Option<Vec<u8>>>()
                                .ok_or_else(|| ApiError::internal(format!("webhook {name} returned an invalid patch")))?,
                        ),
                        _ => None,
                    };
                    if let Some(raw) = raw {
                        let ops: Value = serde_json::from_slice(&raw)
                            .map_err(|e| ApiError::internal(format!("webhook {name} returned an invalid patch: {e}")))?;
                        patch::json_patch(&mut pod, &ops)?;
                    }
                }
                Err(e) => {
                    if hook["failurePolicy"].as_str() == Some("Ignore") {
                        tracing::warn!(webhook = %name, error = %e, "webhook failed, ignored by failurePolicy");
                        continue;
                    }
                    return Err(ApiError::internal(format!("Internal error occurred: failed calling webhook \"{name}\": {e}")));
                }
            }
        }
    }
    Ok(pod)
}

/// Annotation on a Service giving the base URL kube-sim uses for webhooks that reference it.
pub const SERVICE_URL_ANNOTATION: &str = "kube-sim.datarestor.io/url";

async fn call(app: &App, hook: &Value, ns: &str, pod: &Value) -> Result<Value, String> {
    let cc = &hook["clientConfig"];
    let url = match cc["url"].as_str() {
        Some(u) => u.to_string(),
        None => {
            // There is no cluster network: a Service can point at a local URL through an annotation.
            let svc_ns = cc.pointer("/service/namespace").and_then(Value::as_str).unwrap_or("default");
            let svc = cc.pointer("/service/name").and_then(Value::as_str).unwrap_or("?");
            let path = cc.pointer("/service/path").and_then(Value::as_str).unwrap_or("");
            let base = app
                .store
                .get("/services", svc_ns, svc)
                .and_then(|s| {
                    s.pointer(&format!("/metadata/annotations/{}", SERVICE_URL_ANNOTATION.replace('/', "~1")))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .ok_or(format!(
                    "service {svc_ns}/{svc} has no {SERVICE_URL_ANNOTATION} annotation; kube-sim cannot reach cluster services"
                ))?;
            format!("{}{path}", base.trim_end_matches('/'))
        }
    };
    let timeout = hook["timeoutSeconds"].as_u64().unwrap_or(10);
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(timeout));
    if let Some(ca) = cc["caBundle"].as_str() {
        let pem = base64::engine::general_purpose::STANDARD.decode(ca).map_err(|e| format!("invalid caBundle: {e}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("invalid caBundle: {e}"))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    let uid = uuid::Uuid::new_v4().to_string();
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": util::name(pod),
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {"username": "system:kube-sim", "groups": ["system:masters"]},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    });
    let resp = client.post(&url).json(&review).send().await.map_err(|e| format!("Post \"{url}\": {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("Post \"{url}\": HTTP {}", resp.status()));
    }
    let body: Value = resp.json().await.map_err(|e| format!("invalid AdmissionReview response: {e}"))?;
    let r = body.get("response").cloned().ok_or("AdmissionReview response has no response")?;
    if r["uid"].as_str() != Some(uid.as_str()) {
        return Err("AdmissionReview response uid does not match the request".into());
    }
    Ok(r)
}
