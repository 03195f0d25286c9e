//! The API server core over raw HTTP: discovery, bookkeeping, verbs, patches, watches, CRDs,
//! persistence and fault injection.

mod common;

use common::{wait_for_async, Sim};
use reqwest::Method;
use serde_json::{json, Value};

const CM: &str = "/api/v1/namespaces/default/configmaps";

fn rv(o: &Value) -> u64 {
    o["metadata"]["resourceVersion"].as_str().expect("resourceVersion").parse().expect("numeric rv")
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_serves_core_v1_groups_and_openapi() {
    let sim = Sim::start();
    let (_, api) = sim.req(Method::GET, "/api", None, None).await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, core) = sim.req(Method::GET, "/api/v1", None, None).await;
    assert_eq!(core["groupVersion"], "v1");
    let res = core["resources"].as_array().unwrap();
    let pvc = res.iter().find(|r| r["name"] == "persistentvolumeclaims").unwrap();
    assert_eq!(pvc["shortNames"], json!(["pvc"]));
    assert_eq!(pvc["namespaced"], true);
    let log = res.iter().find(|r| r["name"] == "pods/log").unwrap();
    assert!(log.get("shortNames").is_none(), "subresources must not repeat short names");
    let (_, groups) = sim.req(Method::GET, "/apis", None, None).await;
    let names: Vec<&str> = groups["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    for g in ["apps", "batch", "coordination.k8s.io", "events.k8s.io", "apiextensions.k8s.io", "admissionregistration.k8s.io"] {
        assert!(names.contains(&g), "{g} missing from {names:?}");
    }
    let (_, apps) = sim.req(Method::GET, "/apis/apps/v1", None, None).await;
    let scale = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "statefulsets/scale").unwrap();
    assert_eq!(scale["kind"], "Scale");
    let (_, idx) = sim.req(Method::GET, "/openapi/v3", None, None).await;
    let url = idx["paths"]["api/v1"]["serverRelativeURL"].as_str().unwrap().to_string();
    let (_, doc) = sim.req(Method::GET, &url, None, None).await;
    let p = &doc["paths"]["/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"]["patch"];
    assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "PersistentVolumeClaim");
    assert_eq!(p["parameters"][0]["name"], "fieldValidation");
    let (code, v) = sim.req(Method::GET, "/version", None, None).await;
    assert_eq!((code, v["major"].as_str()), (200, Some("1")));
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_update_bookkeeping_and_errors() {
    let sim = Sim::start();
    let (code, cm) = sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "a"}, "data": {"k": "v"}}))).await;
    assert_eq!(code, 201);
    assert!(cm["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(cm["metadata"]["creationTimestamp"].is_string());
    assert_eq!(cm["metadata"]["generation"], 1);
    assert_eq!((cm["kind"].as_str(), cm["apiVersion"].as_str()), (Some("ConfigMap"), Some("v1")));
    let rv1 = rv(&cm);

    let (code, err) = sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "a"}}))).await;
    assert_eq!((code, err["reason"].as_str(), err["kind"].as_str()), (409, Some("AlreadyExists"), Some("Status")));
    let (code, err) = sim.req(Method::GET, &format!("{CM}/missing"), None, None).await;
    assert_eq!((code, err["reason"].as_str()), (404, Some("NotFound")));
    let (code, err) =
        sim.req(Method::POST, "/api/v1/namespaces/nope/configmaps", None, Some(json!({"metadata": {"name": "a"}}))).await;
    assert_eq!((code, err["reason"].as_str()), (404, Some("NotFound")), "create into a missing namespace");
    let (code, gen) = sim.req(Method::POST, CM, None, Some(json!({"metadata": {"generateName": "gen-"}}))).await;
    assert_eq!(code, 201);
    assert!(
        gen["metadata"]["name"].as_str().unwrap().starts_with("gen-") && gen["metadata"]["name"].as_str().unwrap().len() == 9
    );

    // Update with the current resourceVersion works; a stale one is a Conflict.
    let mut upd = cm.clone();
    upd["data"]["k"] = json!("v2");
    let (code, cm2) = sim.req(Method::PUT, &format!("{CM}/a"), None, Some(upd.clone())).await;
    assert_eq!(code, 200);
    assert!(rv(&cm2) > rv1);
    let (code, err) = sim.req(Method::PUT, &format!("{CM}/a"), None, Some(upd)).await;
    assert_eq!((code, err["reason"].as_str()), (409, Some("Conflict")));
    // A no-op write keeps the resourceVersion.
    let (code, cm3) = sim.req(Method::PUT, &format!("{CM}/a"), None, Some(cm2.clone())).await;
    assert_eq!((code, rv(&cm3)), (200, rv(&cm2)));
    let (code, _) = sim
        .req(Method::PATCH, &format!("{CM}/a"), Some("application/merge-patch+json"), Some(json!({"data": {"k": "v2"}})))
        .await;
    assert_eq!(code, 200);
    let (_, cm4) = sim.req(Method::GET, &format!("{CM}/a"), None, None).await;
    assert_eq!(rv(&cm4), rv(&cm2), "no-op patch must not bump the resourceVersion");
    let (code, err) = sim.req(Method::PUT, "/api/v1/namespaces/default/pods", None, Some(json!({}))).await;
    assert_eq!((code, err["reason"].as_str()), (405, Some("MethodNotAllowed")));
}

#[tokio::test(flavor = "multi_thread")]
async fn generation_status_subresource_and_scale() {
    let sim = Sim::start();
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
        "status": {"replicas": 99}});
    let (code, created) = sim.req(Method::POST, path, None, Some(d)).await;
    assert_eq!(code, 201);
    assert_ne!(created.pointer("/status/replicas"), Some(&json!(99)), "status is dropped on create");
    let merge = Some("application/merge-patch+json");
    let (_, o) = sim.req(Method::PATCH, &format!("{path}/d"), merge, Some(json!({"metadata": {"labels": {"x": "y"}}}))).await;
    assert_eq!(o["metadata"]["generation"], 1, "metadata changes do not bump generation");
    let (_, o) = sim.req(Method::PATCH, &format!("{path}/d"), merge, Some(json!({"spec": {"paused": true}}))).await;
    assert_eq!(o["metadata"]["generation"], 2, "spec changes bump generation");
    // Writes to the main resource ignore status; writes to /status ignore spec.
    let (_, o) = sim.req(Method::PATCH, &format!("{path}/d"), merge, Some(json!({"status": {"collisionCount": 7}}))).await;
    assert_ne!(o.pointer("/status/collisionCount"), Some(&json!(7)));
    let (_, o) = sim
        .req(
            Method::PATCH,
            &format!("{path}/d/status"),
            merge,
            Some(json!({"spec": {"paused": false}, "status": {"collisionCount": 7}})),
        )
        .await;
    assert_eq!((o["spec"]["paused"].as_bool(), o["status"]["collisionCount"].as_i64()), (Some(true), Some(7)));
    assert_eq!(o["metadata"]["generation"], 2);
    // Scale subresource.
    let (code, s) = sim.req(Method::GET, &format!("{path}/d/scale"), None, None).await;
    assert_eq!((code, s["kind"].as_str(), s["spec"]["replicas"].as_i64()), (200, Some("Scale"), Some(0)));
    let (code, s) = sim.req(Method::PATCH, &format!("{path}/d/scale"), merge, Some(json!({"spec": {"replicas": 3}}))).await;
    assert_eq!((code, s["spec"]["replicas"].as_i64()), (200, Some(3)));
    let (_, o) = sim.req(Method::GET, &format!("{path}/d"), None, None).await;
    assert_eq!(o["spec"]["replicas"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn finalizers_hold_deletion_and_namespaces_cascade() {
    let sim = Sim::start();
    sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "f", "finalizers": ["test/hold"]}}))).await;
    let (code, o) = sim.req(Method::DELETE, &format!("{CM}/f"), None, None).await;
    assert_eq!(code, 200);
    assert!(o["metadata"]["deletionTimestamp"].is_string());
    let (code, _) = sim.req(Method::GET, &format!("{CM}/f"), None, None).await;
    assert_eq!(code, 200, "an object with finalizers stays until they are removed");
    let (code, err) = sim
        .req(
            Method::PATCH,
            &format!("{CM}/f"),
            Some("application/merge-patch+json"),
            Some(json!({"metadata": {"finalizers": ["test/hold", "new"]}})),
        )
        .await;
    assert_eq!((code, err["reason"].as_str()), (422, Some("Invalid")), "no new finalizers while deleting");
    let (code, _) = sim
        .req(
            Method::PATCH,
            &format!("{CM}/f"),
            Some("application/merge-patch+json"),
            Some(json!({"metadata": {"finalizers": null}})),
        )
        .await;
    assert_eq!(code, 200);
    let (code, _) = sim.req(Method::GET, &format!("{CM}/f"), None, None).await;
    assert_eq!(code, 404, "removing the last finalizer deletes the object");

    sim.req(Method::POST, "/api/v1/namespaces", None, Some(json!({"metadata": {"name": "gone"}}))).await;
    sim.req(Method::POST, "/api/v1/namespaces/gone/configmaps", None, Some(json!({"metadata": {"name": "x"}}))).await;
    let (_, ns) = sim.req(Method::DELETE, "/api/v1/namespaces/gone", None, None).await;
    assert_eq!(ns["status"]["phase"], "Terminating");
    wait_for_async(10, "namespace and its content to go", || async {
        let (a, _) = sim.req(Method::GET, "/api/v1/namespaces/gone/configmaps/x", None, None).await;
        let (b, _) = sim.req(Method::GET, "/api/v1/namespaces/gone", None, None).await;
        (a == 404 && b == 404).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_paging_and_selectors() {
    let sim = Sim::start();
    for (i, tier) in ["front", "back", "front", "db", "back"].iter().enumerate() {
        sim.req(
            Method::POST,
            CM,
            None,
            Some(json!({"metadata": {"name": format!("c{i}"), "labels": {"tier": tier, "n": i.to_string()}}})),
        )
        .await;
    }
    let (_, l) = sim.req(Method::GET, &format!("{CM}?limit=2"), None, None).await;
    assert_eq!((l["kind"].as_str(), l["apiVersion"].as_str()), (Some("ConfigMapList"), Some("v1")));
    let mut names: Vec<String> =
        l["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect();
    let mut tok = l["metadata"]["continue"].as_str().unwrap().to_string();
    loop {
        let (_, l) = sim.req(Method::GET, &format!("{CM}?limit=2&continue={tok}"), None, None).await;
        names.extend(l["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()));
        match l["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => tok = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    for (sel, want) in [
        ("tier%3Dfront", vec!["c0", "c2"]),
        ("tier%20in%20(db,back)", vec!["c1", "c3", "c4"]),
        ("tier%20notin%20(front),n!%3D1", vec!["c3", "c4"]),
        ("!tier", vec![]),
        ("tier", vec!["c0", "c1", "c2", "c3", "c4"]),
    ] {
        let (_, l) = sim.req(Method::GET, &format!("{CM}?labelSelector={sel}"), None, None).await;
        let got: Vec<&str> = l["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(got, want, "selector {sel}");
    }
    let (_, l) = sim
        .req(Method::GET, "/api/v1/configmaps?fieldSelector=metadata.name%3Dc3,metadata.namespace%3Ddefault", None, None)
        .await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
}

async fn read_events(mut resp: reqwest::Response, n: usize) -> Vec<Value> {
    let mut out = vec![];
    let mut buf = Vec::new();
    while out.len() < n {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            out.push(serde_json::from_slice(&line).expect("watch event json"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_from_resource_version_bookmarks_and_gone() {
    let mut sim = Sim::start();
    let (_, l) = sim.req(Method::GET, CM, None, None).await;
    let start = l["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "w1", "labels": {"w": "yes"}}}))).await;
    sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "w2"}}))).await;
    sim.req(Method::PATCH, &format!("{CM}/w1"), Some("application/merge-patch+json"), Some(json!({"data": {"a": "b"}}))).await;
    sim.req(Method::DELETE, &format!("{CM}/w1"), None, None).await;
    let url = format!("{}{CM}?watch=true&resourceVersion={start}&allowWatchBookmarks=true&labelSelector=w%3Dyes", sim.url);
    let resp = sim.http().get(url).send().await.unwrap();
    let evs = read_events(resp, 4).await;
    let types: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);
    assert!(evs.iter().all(|e| e["object"]["metadata"]["resourceVersion"].is_string()));
    // timeoutSeconds ends the stream.
    let url = format!("{}{CM}?watch=true&timeoutSeconds=1", sim.url);
    let t0 = std::time::Instant::now();
    let body = sim.http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(t0.elapsed().as_secs_f64() < 5.0);
    assert!(body.contains("\"ADDED\""), "a watch without resourceVersion starts with the current objects");
    // After a restart the history is gone: an old resourceVersion gets 410 Expired.
    sim.restart();
    let url = format!("{}{CM}?watch=true&resourceVersion={start}", sim.url);
    let evs = read_events(sim.http().get(url).send().await.unwrap(), 1).await;
    assert_eq!((evs[0]["type"].as_str(), evs[0]["object"]["code"].as_i64()), (Some("ERROR"), Some(410)));
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_flavours() {
    let sim = Sim::start();
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let d = json!({"metadata": {"name": "p"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
            {"name": "one", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "two", "image": "y"}]}}}});
    sim.req(Method::POST, path, None, Some(d)).await;
    let smp = Some("application/strategic-merge-patch+json");
    let (code, o) = sim
        .req(
            Method::PATCH,
            &format!("{path}/p"),
            smp,
            Some(json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "one"}, {"name": "two"}],
            "containers": [{"name": "one", "env": [{"name": "B", "value": "2"}]}, {"name": "two", "$patch": "delete"}]}}}})),
        )
        .await;
    assert_eq!(code, 200, "{o}");
    let cs = &o["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs.as_array().unwrap().len(), 1);
    assert_eq!(cs[0]["image"], "x");
    assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]));
    assert!(!o.to_string().contains("$setElementOrder"), "directives are never stored");

    let jp = Some("application/json-patch+json");
    let (code, _) = sim
        .req(
            Method::PATCH,
            &format!("{path}/p"),
            jp,
            Some(json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]}])),
        )
        .await;
    assert_eq!(code, 200, "test against a missing path equals null");
    let (code, err) = sim
        .req(
            Method::PATCH,
            &format!("{path}/p"),
            jp,
            Some(json!([{"op": "test", "path": "/metadata/finalizers", "value": null}])),
        )
        .await;
    assert_eq!((code, err["reason"].as_str()), (422, Some("Invalid")));
    sim.req(Method::PATCH, &format!("{path}/p"), jp, Some(json!([{"op": "remove", "path": "/metadata/finalizers"}]))).await;

    // Server-side apply creates, then merges.
    let ssa = Some("application/apply-patch+yaml");
    let (code, o) = sim
        .req(
            Method::PATCH,
            &format!("{CM}/ssa?fieldManager=t&force=true"),
            ssa,
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"a": "1"}})),
        )
        .await;
    assert_eq!((code, o["data"]["a"].as_str()), (201, Some("1")));
    let (code, _) = sim
        .req(
            Method::PATCH,
            &format!("{CM}/ssa?fieldManager=other"),
            ssa,
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"o": "3"}})),
        )
        .await;
    assert_eq!(code, 200);
    let (code, o) = sim.req(Method::PATCH, &format!("{CM}/ssa?fieldManager=t"), ssa,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"l": "v"}}, "data": {"b": "2"}}))).await;
    assert_eq!(code, 200);
    assert_eq!(
        o["data"],
        json!({"b": "2", "o": "3"}),
        "a field the manager stopped applying is removed, another manager's stays"
    );
    assert_eq!(o["metadata"]["labels"]["l"], "v");
    let mut managers: Vec<&str> =
        o["metadata"]["managedFields"].as_array().unwrap().iter().map(|m| m["manager"].as_str().unwrap()).collect();
    managers.sort();
    assert_eq!(managers, ["other", "t"]);
    // Re-applying the same configuration is a no-op: same resourceVersion (no reconcile hot loops).
    let (_, again) = sim.req(Method::PATCH, &format!("{CM}/ssa?fieldManager=t&force=true"), ssa,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"l": "v"}}, "data": {"b": "2"}}))).await;
    assert_eq!(again["metadata"]["resourceVersion"], o["metadata"]["resourceVersion"]);
}

const CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "widgets.example.com"},
  "spec": {"group": "example.com", "scope": "Namespaced",
    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
    "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
          "size": {"type": "integer", "minimum": 1, "maximum": 10},
          "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
          "auto": {"type": "boolean", "default": true},
          "name": {"type": "string", "pattern": "^[a-z]+$"},
          "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
          "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}}]}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn custom_resources_are_validated_defaulted_and_pruned() {
    let sim = Sim::start();
    let (code, crd) = sim
        .req(
            Method::POST,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            None,
            Some(serde_json::from_str(CRD).unwrap()),
        )
        .await;
    assert_eq!(code, 201);
    let conds = crd["status"]["conditions"].as_array().unwrap();
    assert!(conds.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
    assert!(conds.iter().any(|c| c["type"] == "NamesAccepted" && c["status"] == "True"));
    let (_, disc) = sim.req(Method::GET, "/apis/example.com/v1", None, None).await;
    assert_eq!(disc["resources"][0]["name"], "widgets");
    let base = "/apis/example.com/v1/namespaces/default/widgets";
    let (code, w) = sim
        .req(
            Method::POST,
            base,
            None,
            Some(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 3, "junk": 1, "extra": {"kept": true}}, "status": {"phase": "dropped"}})),
        )
        .await;
    assert_eq!(code, 201, "{w}");
    assert_eq!((w["spec"]["color"].as_str(), w["spec"]["auto"].as_bool()), (Some("red"), Some(true)), "defaults applied");
    assert!(w["spec"].get("junk").is_none(), "unknown fields pruned");
    assert_eq!(w["spec"]["extra"]["kept"], true, "preserve-unknown-fields honoured");
    assert!(w.get("status").is_none(), "status dropped on create");
    let (code, err) = sim
        .req(
            Method::POST,
            base,
            None,
            Some(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"},
            "spec": {"size": 11, "color": "green", "name": "X1", "tags": []}})),
        )
        .await;
    assert_eq!((code, err["reason"].as_str()), (422, Some("Invalid")));
    let fields: Vec<&str> = err["details"]["causes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    for f in ["spec.size", "spec.color", "spec.name", "spec.tags"] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    let (code, err) = sim
        .req(
            Method::POST,
            base,
            None,
            Some(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {}})),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(err["details"]["causes"][0]["field"], "spec.size");
    let (code, w) = sim
        .req(
            Method::PATCH,
            &format!("{base}/w/status"),
            Some("application/merge-patch+json"),
            Some(json!({"status": {"phase": "Ready"}})),
        )
        .await;
    assert_eq!((code, w["status"]["phase"].as_str()), (200, Some("Ready")));
    // Deleting the CRD removes its objects and its discovery entry.
    sim.req(Method::DELETE, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com", None, None).await;
    let (code, _) = sim.req(Method::GET, base, None, None).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_restart() {
    let mut sim = Sim::start();
    let (_, cm) = sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "keep"}, "data": {"x": "1"}}))).await;
    sim.restart();
    let (code, again) = sim.req(Method::GET, &format!("{CM}/keep"), None, None).await;
    assert_eq!(code, 200);
    assert_eq!(again["metadata"]["uid"], cm["metadata"]["uid"]);
    let (_, n) = sim.req(Method::POST, CM, None, Some(json!({"metadata": {"name": "next"}}))).await;
    assert!(rv(&n) > rv(&cm), "resourceVersion keeps increasing across restarts");
    // The in-process restart endpoint reloads from the snapshot too.
    let (code, _) = sim.req(Method::POST, "/sim/restart?downSeconds=0.2", None, Some(json!({}))).await;
    assert_eq!(code, 200);
    let (code, _) = sim.req(Method::GET, &format!("{CM}/next"), None, None).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn fault_injection_and_closing_watches() {
    let sim = Sim::start();
    let (code, _) = sim
        .req(Method::POST, "/sim/faults", None, Some(json!({"verb": "list", "resource": "configmaps", "code": 503, "count": 2})))
        .await;
    assert_eq!(code, 200);
    let (a, err) = sim.req(Method::GET, CM, None, None).await;
    let (b, _) = sim.req(Method::GET, CM, None, None).await;
    let (c, _) = sim.req(Method::GET, CM, None, None).await;
    assert_eq!((a, b, c), (503, 503, 200));
    assert_eq!(err["reason"], "ServiceUnavailable");
    let (code, _) = sim.req(Method::GET, "/api/v1/namespaces/default/secrets", None, None).await;
    assert_eq!(code, 200, "other resources are unaffected");

    let resp = sim.http().get(format!("{}{CM}?watch=true&resourceVersion=1", sim.url)).send().await.unwrap();
    let reader = tokio::spawn(async move { resp.text().await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    sim.req(Method::POST, "/sim/close-watches", None, Some(json!({}))).await;
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
    assert!(ended.is_ok(), "the watch stream ends when watches are closed");
}
