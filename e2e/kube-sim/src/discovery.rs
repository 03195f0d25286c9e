//! Discovery documents and the minimal OpenAPI v3 that kubectl needs: per group-version, a PATCH
//! operation per kind that declares `fieldValidation`, so kubectl leaves validation to the server.

use serde_json::{json, Value};

use crate::resources::{group_versions, ResourceType};

pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-sim", "gitCommit": "kube-sim",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

pub fn core_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions", "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs[0].clone()})
}

fn versions_of(types: &[ResourceType], group: &str) -> Vec<String> {
    group_versions(types).into_iter().filter(|(g, _)| g == group).map(|(_, v)| v).collect()
}

pub fn group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<String> = vec![];
    for (g, _) in group_versions(types) {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let docs: Vec<Value> = groups.iter().map(|g| group_doc(g, &versions_of(types, g))).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
}

pub fn group(types: &[ResourceType], group: &str) -> Option<Value> {
    let vs = versions_of(types, group);
    if vs.is_empty() {
        return None;
    }
    let mut d = group_doc(group, &vs);
    d["kind"] = json!("APIGroup");
    d["apiVersion"] = json!("v1");
    Some(d)
}

pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut resources = vec![];
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        let mut r = json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
            "kind": t.kind, "verbs": VERBS,
        });
        if !t.short_names.is_empty() {
            r["shortNames"] = json!(t.short_names);
        }
        if !t.categories.is_empty() {
            r["categories"] = json!(t.categories);
        }
        resources.push(r);
        for sub in &t.subresources {
            // Subresources must not repeat the parent's short names (kubectl reports ambiguity).
            let r = match sub.as_str() {
                "log" => {
                    json!({"name": format!("{}/log", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": "Pod", "verbs": ["get"]})
                }
                "eviction" => json!({"name": format!("{}/eviction", t.plural), "singularName": "", "namespaced": t.namespaced,
                    "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
                "scale" => json!({"name": format!("{}/scale", t.plural), "singularName": "", "namespaced": t.namespaced,
                    "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}),
                _ => json!({"name": format!("{}/{}", t.plural, sub), "singularName": "", "namespaced": t.namespaced,
                    "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            };
            resources.push(r);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

pub fn openapi_v3_index(types: &[ResourceType], rv: u64) -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in group_versions(types) {
        let p = gv_path(&g, &v);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={rv}")}));
    }
    json!({"paths": paths})
}

pub fn openapi_v3_doc(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let field_validation = json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    for t in types.iter().filter(|t| t.group == group && t.version == version) {
        let base = format!("/{}", gv_path(group, version));
        let path = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{base}/{}/{{name}}", t.plural)
        };
        let gvk = json!({"group": group, "version": version, "kind": t.kind});
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", t.kind),
                "parameters": [field_validation.clone()],
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk.clone(),
            })
        };
        paths.insert(path, json!({"patch": op("patch"), "put": op("put"), "parameters": [field_validation.clone()]}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kube-sim)", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
