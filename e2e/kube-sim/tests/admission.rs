//! Mutating admission webhooks over HTTPS: caBundle trust, rules, object and namespace selectors,
//! failurePolicy, denial, and JSON patches applied to pods (including controller-created pods).

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;
use common::{wait_for_async, Sim};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use reqwest::Method;
use serde_json::{json, Value};

/// A TLS webhook server on a free port: adds label mutated=yes, denies pods labelled deny=true.
async fn webhook_server(calls: Arc<AtomicUsize>) -> (u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, calls) = (acceptor.clone(), calls.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let calls = calls.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let review: Value = serde_json::from_slice(&body).unwrap();
                        let uid = review["request"]["uid"].clone();
                        let pod = &review["request"]["object"];
                        let response = if pod.pointer("/metadata/labels/deny") == Some(&json!("true")) {
                            json!({"uid": uid, "allowed": false, "status": {"code": 403, "message": "pods labelled deny are not welcome"}})
                        } else {
                            let patch = json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]).to_string();
                            // Go's []byte decodes from base64 or from an array of numbers (kube-rs' form).
                            let patch = if pod.pointer("/metadata/labels/bytes").is_some() {
                                json!(patch.as_bytes())
                            } else {
                                json!(base64::engine::general_purpose::STANDARD.encode(patch))
                            };
                            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch})
                        };
                        let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(out.to_string()))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), svc).await;
            });
        }
    });
    (port, base64::engine::general_purpose::STANDARD.encode(cert_pem))
}

fn webhook(name: &str, url: &str, ca: Option<&str>, policy: &str) -> Value {
    let mut cc = json!({"url": url});
    if let Some(ca) = ca {
        cc["caBundle"] = json!(ca);
    }
    json!({
        "name": name, "clientConfig": cc, "failurePolicy": policy, "sideEffects": "None",
        "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]},
        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}]},
    })
}

const MWC: &str = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";

fn pod(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
}

#[tokio::test(flavor = "multi_thread")]
async fn mutating_webhooks_patch_filter_deny_and_honour_failure_policy() {
    let sim = Sim::start();
    let calls = Arc::new(AtomicUsize::new(0));
    let (port, ca) = webhook_server(calls.clone()).await;
    let url = format!("https://127.0.0.1:{port}/mutate");
    let (code, _) = sim
        .req(
            Method::POST,
            MWC,
            None,
            Some(json!({"metadata": {"name": "labeler"}, "webhooks": [webhook("labeler.test", &url, Some(&ca), "Fail")]})),
        )
        .await;
    assert_eq!(code, 201);
    let pods = "/api/v1/namespaces/default/pods";

    let (code, p) = sim.req(Method::POST, pods, None, Some(pod("plain", json!({"app": "a"})))).await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["metadata"]["labels"]["mutated"], "yes", "the webhook's JSON patch is applied");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let (code, p) = sim.req(Method::POST, pods, None, Some(pod("as-bytes", json!({"bytes": "1"})))).await;
    assert_eq!((code, p["metadata"]["labels"]["mutated"].as_str()), (201, Some("yes")), "a patch as a byte array: {p}");
    let (code, p) = sim.req(Method::POST, pods, None, Some(pod("skipped", json!({"skip": "1"})))).await;
    assert_eq!(code, 201);
    assert!(p["metadata"]["labels"].get("mutated").is_none(), "objectSelector excludes the pod");
    let (code, p) =
        sim.req(Method::POST, "/api/v1/namespaces/kube-system/pods", None, Some(pod("system", json!({"a": "b"})))).await;
    assert_eq!(code, 201);
    assert!(p["metadata"]["labels"].get("mutated").is_none(), "namespaceSelector excludes kube-system");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the webhook was not called for excluded pods");

    let (code, err) = sim.req(Method::POST, pods, None, Some(pod("denied", json!({"deny": "true"})))).await;
    assert_eq!(code, 403);
    assert!(err["message"].as_str().unwrap().contains("denied the request: pods labelled deny are not welcome"), "{err}");

    // Pods created by controllers go through admission too.
    let (code, _) = sim
        .req(
            Method::POST,
            "/apis/apps/v1/namespaces/default/deployments",
            None,
            Some(json!({"metadata": {"name": "d"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})),
        )
        .await;
    assert_eq!(code, 201);
    wait_for_async(10, "deployment pod mutated", || async {
        let (_, l) = sim.req(Method::GET, &format!("{pods}?labelSelector=app%3Dd"), None, None).await;
        (l["items"][0]["metadata"]["labels"]["mutated"] == "yes").then_some(())
    })
    .await;

    // A service reference resolves through the Service's kube-sim URL annotation.
    sim.req(Method::DELETE, &format!("{MWC}/labeler"), None, None).await;
    let mut by_service = webhook("svc.test", "unused", Some(&ca), "Fail");
    by_service["clientConfig"] = json!({"service": {"namespace": "default", "name": "hook", "path": "/mutate"}, "caBundle": ca});
    sim.req(Method::POST, MWC, None, Some(json!({"metadata": {"name": "by-service"}, "webhooks": [by_service]}))).await;
    let (code, err) = sim.req(Method::POST, pods, None, Some(pod("no-service", json!({"a": "b"})))).await;
    assert_eq!(code, 500, "an unresolvable service fails the call: {err}");
    sim.req(Method::POST, "/api/v1/namespaces/default/services", None, Some(json!({"metadata": {"name": "hook",
        "annotations": {"kube-sim.datarestor.io/url": format!("https://127.0.0.1:{port}")}}, "spec": {"ports": [{"port": 443}]}}))).await;
    let (code, p) = sim.req(Method::POST, pods, None, Some(pod("via-service", json!({"a": "b"})))).await;
    assert_eq!((code, p["metadata"]["labels"]["mutated"].as_str()), (201, Some("yes")), "{p}");
    sim.req(Method::DELETE, &format!("{MWC}/by-service"), None, None).await;

    // An unreachable webhook: Ignore lets pods through, Fail rejects them.
    let dead = "https://127.0.0.1:1/mutate";
    sim.req(
        Method::POST,
        MWC,
        None,
        Some(json!({"metadata": {"name": "dead-ignore"}, "webhooks": [webhook("ignore.test", dead, Some(&ca), "Ignore")]})),
    )
    .await;
    let (code, _) = sim.req(Method::POST, pods, None, Some(pod("through", json!({"a": "b"})))).await;
    assert_eq!(code, 201);
    sim.req(
        Method::POST,
        MWC,
        None,
        Some(json!({"metadata": {"name": "dead-fail"}, "webhooks": [webhook("fail.test", dead, Some(&ca), "Fail")]})),
    )
    .await;
    let (code, err) = sim.req(Method::POST, pods, None, Some(pod("blocked", json!({"a": "b"})))).await;
    assert_eq!(code, 500);
    assert!(err["message"].as_str().unwrap().contains("failed calling webhook \"fail.test\""), "{err}");
    sim.req(Method::DELETE, &format!("{MWC}/dead-fail"), None, None).await;

    // Without the right caBundle the TLS handshake fails (and Fail rejects the pod).
    let (code, _) = sim
        .req(
            Method::POST,
            MWC,
            None,
            Some(json!({"metadata": {"name": "untrusted"}, "webhooks": [webhook("untrusted.test", &url, None, "Fail")]})),
        )
        .await;
    assert_eq!(code, 201);
    let (code, err) = sim.req(Method::POST, pods, None, Some(pod("untrusted", json!({"a": "b"})))).await;
    assert_eq!(code, 500, "{err}");
}
