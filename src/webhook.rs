//! The restore gate's admission webhook: an HTTPS endpoint that adds a scheduling gate to new pods
//! whose volumes are still to be restored, and the MutatingWebhookConfiguration that routes pod
//! creations to it.
//!
//! The operator makes its own self-signed certificate at start-up and publishes it as the
//! configuration's caBundle. `failurePolicy: Ignore` keeps the cluster working when the operator
//! is down; the operator's own Jobs and the kube-system and operator namespaces are never sent.

use crate::context::Context;
use crate::controller::gate::{self, GATED_LABEL};
use crate::controller::restore::GATE;
use crate::controller::task::FIELD_MANAGER;
use crate::job::{MANAGED_BY, MANAGED_BY_LABEL};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::{Api, ResourceExt};
use std::net::SocketAddr;
use std::sync::Arc;

/// Name of the MutatingWebhookConfiguration the operator maintains.
pub const CONFIGURATION_NAME: &str = "datarestor-restore-gate";
pub const PATH: &str = "/mutate-pods";
const WEBHOOK_NAME: &str = "restore-gate.backup.datarestor-operator.com";

/// How the restore gate is served.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub listen: SocketAddr,
    pub endpoint: Endpoint,
    /// The Secret (in the operator's namespace) every replica takes the certificate from.
    pub certificate_secret: Option<String>,
    /// `Fail` instead of `Ignore`: no pod is created in a selected namespace while no operator
    /// answers (safer for data, stricter for availability).
    pub fail_closed: bool,
}

/// Where the API server reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A URL (outside a cluster, or a simulator).
    Url(String),
    /// A Service in the cluster: namespace, name, port.
    Service { namespace: String, name: String, port: i32 },
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot publish the webhook configuration or read its certificate: {0}")]
    Kube(#[from] kube::Error),
    #[error("the shared serving certificate: {0}")]
    SharedCertificate(String),
    #[error("cannot serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// A self-signed certificate for the names the API server may use.
fn certificate_names(endpoint: &Endpoint) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    match endpoint {
        Endpoint::Url(url) => {
            if let Some(host) = url.split("://").nth(1).and_then(|rest| rest.split(['/', ':']).next()) {
                names.push(host.to_owned());
            }
        }
        Endpoint::Service { namespace, name, .. } => {
            names.extend([format!("{name}.{namespace}.svc"), format!("{name}.{namespace}.svc.cluster.local")]);
        }
    }
    names.dedup();
    names
}

/// Which names a shared certificate was made for, so one made for another endpoint is replaced.
const CERTIFICATE_NAMES_ANNOTATION: &str = "backup.datarestor-operator.com/certificate-names";

async fn serving_certificate(ctx: &Context, endpoint: &Endpoint, secret: Option<&str>) -> Result<(String, String), WebhookError> {
    let names = certificate_names(endpoint);
    let make = || rcgen::generate_simple_self_signed(names.clone()).map(|c| (c.cert.pem(), c.key_pair.serialize_pem()));
    let Some(name) = secret else { return Ok(make()?) };
    let namespace =
        std::env::var("POD_NAMESPACE").map_err(|_| WebhookError::SharedCertificate("POD_NAMESPACE is not set".into()))?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    for _ in 0..5 {
        let existing = secrets.get_opt(name).await?;
        let field = |key: &str| {
            existing
                .as_ref()?
                .data
                .as_ref()?
                .get(key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                .filter(|v| !v.is_empty())
        };
        let made_for = existing.as_ref().and_then(|s| s.annotations().get(CERTIFICATE_NAMES_ANNOTATION).cloned());
        if let (Some(cert), Some(key), true) = (field("tls.crt"), field("tls.key"), made_for == Some(names.join(","))) {
            return Ok((cert, key));
        }
        let (cert, key) = make()?;
        let data = serde_json::json!({"tls.crt": base64::engine::general_purpose::STANDARD.encode(&cert),
                                      "tls.key": base64::engine::general_purpose::STANDARD.encode(&key)});
        let written = match existing {
            // The chart's (empty) Secret, or one made for other names: written only as read, so two
            // replicas never both write (the resourceVersion makes the second write fail and read
            // the first's).
            Some(secret) => {
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": secret.metadata.resource_version, "annotations": {CERTIFICATE_NAMES_ANNOTATION: names.join(",")}},
                    "data": data,
                });
                secrets.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await
            }
            None => {
                let secret: Secret = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name, "labels": {MANAGED_BY_LABEL: MANAGED_BY}, "annotations": {CERTIFICATE_NAMES_ANNOTATION: names.join(",")}},
                    "type": "Opaque", "data": data,
                }))?;
                secrets.create(&PostParams::default(), &secret).await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = name, "made the webhook's serving certificate");
                return Ok((cert, key));
            }
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WebhookError::SharedCertificate(format!("Secret {namespace}/{name} keeps changing while it is read")))
}

/// Starts serving and publishes the configuration; returns once both are in place.
pub async fn start(ctx: Arc<Context>, webhook: &Webhook) -> Result<(), WebhookError> {
    use rustls::pki_types::pem::PemObject;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (listen, endpoint) = (webhook.listen, &webhook.endpoint);
    let (cert_pem, key_pem) = serving_certificate(&ctx, endpoint, webhook.certificate_secret.as_deref()).await?;
    let unreadable = |what: &str, e: rustls::pki_types::pem::Error| WebhookError::SharedCertificate(format!("{what}: {e}"));
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| unreadable("tls.crt", e))?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| unreadable("tls.key", e))?;
    let tls = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|source| WebhookError::Listen { addr: listen, source })?;
    tracing::info!(%listen, "restore-gate webhook listening");

    let serving = ctx.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let acceptor = acceptor.clone();
            let ctx = serving.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                let service = hyper::service::service_fn(move |request| handle(ctx.clone(), request));
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                    tracing::debug!(%error, "webhook connection ended");
                }
            });
        }
    });

    publish_configuration(&ctx, endpoint, cert_pem.as_bytes(), webhook.fail_closed).await?;
    Ok(())
}

async fn publish_configuration(ctx: &Context, endpoint: &Endpoint, ca_pem: &[u8], fail_closed: bool) -> Result<(), kube::Error> {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let client_config = match endpoint {
        Endpoint::Url(url) => serde_json::json!({"url": format!("{}{PATH}", url.trim_end_matches('/')), "caBundle": ca_bundle}),
        Endpoint::Service { namespace, name, port } => serde_json::json!({
            "service": {"namespace": namespace, "name": name, "path": PATH, "port": port},
            "caBundle": ca_bundle,
        }),
    };
    let mut excluded = vec!["kube-system".to_owned()];
    if let Ok(own) = std::env::var("POD_NAMESPACE") {
        excluded.push(own);
    }
    let api = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone());
    // Installed by Helm: the release owns the configuration (Helm applies it server-side), so the
    // operator fills in only where its webhook is reached and the CA; applying more fields would
    // take them over and make the next `helm upgrade` conflict with the operator.
    let helm_owned =
        api.get_opt(CONFIGURATION_NAME).await?.is_some_and(|c| c.annotations().contains_key("meta.helm.sh/release-name"));
    // With --watch-namespaces the API server does not even ask about pods elsewhere.
    let mut namespace_expressions =
        vec![serde_json::json!({"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded})];
    let watched = &ctx.settings.cluster_wide.1 .0;
    if !watched.is_empty() {
        namespace_expressions
            .push(serde_json::json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": watched}));
    }
    let webhook = if helm_owned {
        serde_json::json!({"name": WEBHOOK_NAME, "clientConfig": client_config})
    } else {
        serde_json::json!({
            "name": WEBHOOK_NAME,
            "clientConfig": client_config,
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": if fail_closed { "Fail" } else { "Ignore" },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
            "reinvocationPolicy": "Never",
            "namespaceSelector": {"matchExpressions": namespace_expressions},
            "objectSelector": {"matchExpressions": [{"key": MANAGED_BY_LABEL, "operator": "NotIn", "values": [MANAGED_BY]}]},
        })
    };
    let configuration = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME},
        "webhooks": [webhook],
    });
    api.patch(CONFIGURATION_NAME, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&configuration)).await?;
    Ok(())
}

async fn handle(ctx: Arc<Context>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let reply = |status: StatusCode, body: Vec<u8>| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("response"))
    };
    if request.uri().path() != PATH {
        return reply(StatusCode::NOT_FOUND, b"{}".to_vec());
    }
    let admission = match read_review(request.into_body()).await {
        Ok(admission) => admission,
        Err((status, message)) => {
            tracing::warn!(%status, %message, "malformed admission review");
            return reply(status, serde_json::json!({ "error": message }).to_string().into_bytes());
        }
    };
    let response = admit(&ctx, &admission).await;
    reply(StatusCode::OK, serde_json::to_vec(&response.into_review()).unwrap_or_default())
}

/// Largest review read: the API server's own limit on a request body (3 MiB) plus the review's
/// envelope. A bigger body is refused unread.
pub const MAX_REVIEW_BYTES: usize = 4 * 1024 * 1024;

/// Reads one AdmissionReview of a pod: a body that is too big, not JSON, not a review or has no
/// request is answered with an error status and a message, never a crash.
pub async fn read_review<B>(body: B) -> Result<AdmissionRequest<Pod>, (StatusCode, String)>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = match http_body_util::Limited::new(body, MAX_REVIEW_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let too_big = error.downcast_ref::<http_body_util::LengthLimitError>().is_some();
            return Err(if too_big {
                (StatusCode::PAYLOAD_TOO_LARGE, format!("admission review larger than {MAX_REVIEW_BYTES} bytes"))
            } else {
                (StatusCode::BAD_REQUEST, format!("cannot read the request body: {error}"))
            });
        }
    };
    let review: AdmissionReview<Pod> =
        serde_json::from_slice(&bytes).map_err(|e| (StatusCode::BAD_REQUEST, format!("not an AdmissionReview: {e}")))?;
    review.try_into().map_err(|e: kube::core::admission::ConvertAdmissionReviewError| {
        (StatusCode::BAD_REQUEST, format!("AdmissionReview without a request: {e}"))
    })
}

/// Gates the pod when it must wait. Errors while deciding gate it too (fail closed): the PVC
/// reconcile lets it go as soon as its volumes are known to be ready.
async fn admit(ctx: &Context, admission: &AdmissionRequest<Pod>) -> AdmissionResponse {
    let response = AdmissionResponse::from(admission);
    let (Some(pod), Some(namespace)) = (admission.object.as_ref(), admission.namespace.as_deref()) else { return response };
    let reason = match gate::hold_reason(ctx, namespace, pod).await {
        Ok(None) => return response,
        Ok(Some(reason)) => reason,
        Err(error) => format!("could not check its volumes: {error}"),
    };
    tracing::info!(namespace, pod = ?pod.metadata.name.as_ref().or(pod.metadata.generate_name.as_ref()), %reason, "holding pod until its volumes are restored");
    let mut ops = Vec::new();
    match pod.spec.as_ref().and_then(|s| s.scheduling_gates.as_ref()) {
        Some(_) => ops.push(serde_json::json!({"op": "add", "path": "/spec/schedulingGates/-", "value": {"name": GATE}})),
        None => ops.push(serde_json::json!({"op": "add", "path": "/spec/schedulingGates", "value": [{"name": GATE}]})),
    }
    match pod.metadata.labels.as_ref() {
        Some(_) => ops.push(serde_json::json!({"op": "add", "path": format!("/metadata/labels/{}", GATED_LABEL.replace('/', "~1")), "value": "true"})),
        None => ops.push(serde_json::json!({"op": "add", "path": "/metadata/labels", "value": {GATED_LABEL: "true"}})),
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops)).expect("well-formed patch");
    match response.clone().with_patch(patch) {
        Ok(patched) => patched,
        Err(_) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: Vec<u8>) -> Full<Bytes> {
        Full::new(Bytes::from(bytes))
    }

    #[tokio::test]
    async fn malformed_or_oversized_reviews_are_answered_not_crashed_on() {
        let too_big = read_review(body(vec![b' '; MAX_REVIEW_BYTES + 1])).await.unwrap_err();
        assert_eq!(too_big.0, StatusCode::PAYLOAD_TOO_LARGE);
        for junk in [&b""[..], b"{", b"[]", b"{\"kind\":\"AdmissionReview\"}", b"\xff\xfe", b"{\"request\": 7}"] {
            let (status, message) = read_review(body(junk.to_vec())).await.unwrap_err();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");
        }
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "CREATE", "namespace": "shop", "userInfo": {},
                "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
            }
        });
        let admission = read_review(body(review.to_string().into_bytes())).await.expect("a well-formed review");
        assert_eq!(admission.namespace.as_deref(), Some("shop"));
    }
}
