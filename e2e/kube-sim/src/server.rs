//! HTTP front end: parses Kubernetes REST paths by hand (the URL space is regular but too
//! irregular for a router) and maps each request onto the store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{DeleteOpts, EventType, Part};
use crate::{discovery, faults::FaultRule, patch, util, App};

pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

fn json_response(code: u16, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

const AS_TABLE: &str = "__as_table";
const AS_META: &str = "__as_partial_metadata";

/// The PartialObjectMetadata form clients like kube-rs' metadata_watcher ask for.
fn partial(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

/// A parsed resource request.
struct Target {
    rt: ResourceType,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if method == Method::GET || method == Method::POST {
        if let Some((ns, name)) = crate::exec::target(&path) {
            if app.down.load(Ordering::SeqCst) {
                return error_response(&ApiError::from_code(503, "kube-sim is restarting"));
            }
            return crate::exec::handle(app, req, ns, name).await;
        }
    }
    let mut query = parse_query(req.uri().query());
    // kubectl get asks for server-side printing; remembered as a pseudo query parameter.
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if crate::table::wanted(accept) {
        query.insert(AS_TABLE.into(), "1".into());
    } else if accept.contains("as=PartialObjectMetadata") {
        query.insert(AS_META.into(), "1".into());
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body = match axum::body::to_bytes(req.into_body(), 256 << 20).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    if let Some(rest) = path.strip_prefix("/sim") {
        return sim_control(&app, &method, rest, &query, &body).await;
    }
    if app.down.load(Ordering::SeqCst) {
        return error_response(&ApiError::from_code(503, "kube-sim is restarting"));
    }
    // kubectl's typed clients send protobuf; a few kinds are decoded into JSON here.
    let body = if content_type.starts_with("application/vnd.kubernetes.protobuf") {
        match crate::protobuf::decode_body(&body) {
            Ok(v) => Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            Err(e) => return error_response(&e),
        }
    } else {
        body
    };
    let started = std::time::Instant::now();
    let resp = match route(&app, &method, &path, &query, &content_type, body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

async fn route(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
    ct: &str,
    body: Bytes,
) -> ApiResult<Response> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let types = app.store.types();
    let not_found = || ApiError::new(404, "NotFound", "the server could not find the requested resource");
    match segs.as_slice() {
        ["version"] => return Ok(json_response(200, &discovery::version())),
        ["healthz"] | ["readyz"] | ["livez"] => return Ok((StatusCode::OK, "ok").into_response()),
        ["api"] => return Ok(json_response(200, &discovery::core_versions(&app.config.listen.to_string()))),
        ["apis"] => return Ok(json_response(200, &discovery::group_list(&types))),
        ["api", v] => return discovery::resource_list(&types, "", v).map(|d| json_response(200, &d)).ok_or_else(not_found),
        ["apis", g] => return discovery::group(&types, g).map(|d| json_response(200, &d)).ok_or_else(not_found),
        ["apis", g, v] => return discovery::resource_list(&types, g, v).map(|d| json_response(200, &d)).ok_or_else(not_found),
        ["openapi", "v3"] => return Ok(json_response(200, &discovery::openapi_v3_index(&types, types.len() as u64))),
        ["openapi", "v3", "api", v] => {
            return discovery::openapi_v3_doc(&types, "", v).map(|d| json_response(200, &d)).ok_or_else(not_found)
        }
        ["openapi", "v3", "apis", g, v] => {
            return discovery::openapi_v3_doc(&types, g, v).map(|d| json_response(200, &d)).ok_or_else(not_found)
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return Err(not_found()),
    };
    let (ns, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, r, tail @ ..] if !(tail.is_empty() && (*r == "status" || *r == "finalize")) => (Some(*ns), &rest[2..]),
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(not_found()),
    };
    let rt = app.store.resolve(group, version, plural).ok_or_else(not_found)?;
    if ns.is_some() && !rt.namespaced {
        return Err(not_found());
    }
    if let Some(s) = &sub {
        if !rt.has_sub(s) {
            return Err(not_found());
        }
    }
    if rt.namespaced && ns.is_none() && (name.is_some() || *method == Method::POST) {
        return Err(not_found());
    }
    let t = Target { rt, ns: ns.map(str::to_string), name, sub };
    let watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match (method.as_str(), &t.name) {
        ("GET", None) if watch => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", None) => "create",
        ("POST", Some(_)) if t.sub.as_deref() == Some("eviction") => "create",
        ("PUT", Some(_)) => "update",
        ("PATCH", Some(_)) => "patch",
        ("DELETE", Some(_)) => "delete",
        ("DELETE", None) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource: {method}"
            )))
        }
    };
    let fault_res = match &t.sub {
        Some(s) => format!("{}/{s}", t.rt.plural),
        None => t.rt.plural.clone(),
    };
    if let Some(e) = app.faults.check(verb, &fault_res, t.ns.as_deref().unwrap_or("")) {
        return Err(e);
    }
    // No authorization here: every access review is allowed, and nothing is stored.
    if t.rt.group == "authorization.k8s.io" {
        let mut review = parse_body(&body).unwrap_or(json!({}));
        review["apiVersion"] = json!("authorization.k8s.io/v1");
        review["kind"] = json!(t.rt.kind);
        review["status"] = json!({"allowed": true, "reason": "kube-sim allows everything"});
        return Ok(json_response(201, &review));
    }
    // An eviction is a graceful delete (PodDisruptionBudgets are not consulted).
    if t.sub.as_deref() == Some("eviction") {
        let b = parse_body(&body)?;
        let opts = DeleteOpts {
            grace_seconds: b.pointer("/deleteOptions/gracePeriodSeconds").and_then(Value::as_i64),
            ..Default::default()
        };
        app.store.delete(&t.rt, ns_of(&t), t.name.as_deref().unwrap_or(""), &opts)?;
        return Ok(json_response(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ));
    }
    match verb {
        "watch" => watch_handler(app, &t, q),
        "list" => list(app, &t, q),
        "get" => get(app, &t, q).await,
        "create" => create(app, &t, q, &body).await.map(|v| json_response(201, &v)),
        "update" => update(app, &t, q, &body).map(|v| json_response(200, &v)),
        "patch" => patch_handler(app, &t, ct, q, &body).await,
        "delete" => delete(app, &t, q, &body).map(|v| json_response(200, &v)),
        _ => delete_collection(app, &t, q, &body).map(|v| json_response(200, &v)),
    }
}

fn parse_body(body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| ApiError::bad_request(format!("could not decode the request body: {e}")))
}

/// Objects are returned at the version they were requested at (CRD versions share storage).
fn present(rt: &ResourceType, o: &Value) -> Value {
    if rt.group == "events.k8s.io" {
        return crate::events::from_core(o);
    }
    let mut o = o.clone();
    if o.is_object() {
        o["apiVersion"] = Value::from(rt.api_version());
        o["kind"] = Value::from(rt.kind.clone());
    }
    o
}

/// `fieldValidation=Strict` (kubectl's default): unknown fields of a custom resource are an error
/// rather than silently pruned.
fn check_strict(t: &Target, q: &HashMap<String, String>, obj: &Value) -> ApiResult<()> {
    let Some(schema) = &t.rt.schema else { return Ok(()) };
    if q.get("fieldValidation").map(String::as_str) != Some("Strict") {
        return Ok(());
    }
    let unknown = crate::schema::unknown_fields(schema, obj);
    if unknown.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
    Err(ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
        t.rt.kind,
        t.rt.api_version(),
        t.rt.kind,
        list.join(", ")
    )))
}

/// Label values are at most 63 characters (the real API server's metadata validation), on the
/// object and on a pod template it carries.
fn check_labels(t: &Target, obj: &Value) -> ApiResult<()> {
    let mut causes = Vec::new();
    for (path, labels) in [
        ("metadata.labels", obj.pointer("/metadata/labels")),
        ("spec.template.labels", obj.pointer("/spec/template/metadata/labels")),
    ] {
        for (key, value) in labels.and_then(Value::as_object).into_iter().flatten() {
            let value = value.as_str().unwrap_or_default();
            if value.len() > 63 {
                causes.push((
                    path.to_owned(),
                    format!("Invalid value: \"{value}\": must be no more than 63 characters (label {key})"),
                ));
            }
        }
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    Err(ApiError::invalid(&t.rt.qualified(), name, causes))
}

fn ns_of(t: &Target) -> &str {
    t.ns.as_deref().unwrap_or("")
}

fn current(app: &App, t: &Target) -> ApiResult<Arc<Value>> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = if t.rt.namespaced { ns_of(t) } else { "" };
    app.store.get(&t.rt.key(), ns, name).ok_or_else(|| ApiError::not_found(&t.rt.qualified(), name))
}

struct Filters {
    labels: LabelSelector,
    fields: FieldSelector,
    ns: Option<String>,
}

impl Filters {
    fn new(t: &Target, q: &HashMap<String, String>) -> ApiResult<Self> {
        Ok(Filters {
            labels: LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?,
            fields: FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))?,
            ns: t.ns.clone(),
        })
    }
    fn matches(&self, o: &Value) -> bool {
        self.ns.as_deref().is_none_or(|n| util::namespace(o) == n)
            && self.labels.matches(&util::labels(o))
            && self.fields.matches(o)
    }
}

fn list(app: &App, t: &Target, q: &HashMap<String, String>) -> ApiResult<Response> {
    let f = Filters::new(t, q)?;
    let (items, rv) = app.store.list(&t.rt.key(), t.ns.as_deref());
    // continue token = base64("<list rv>/<namespace>/<name>") of the last item served.
    let (list_rv, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(tok) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(tok)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            let mut parts = raw.splitn(3, '/');
            let r: u64 = parts.next().and_then(|x| x.parse().ok()).unwrap_or(rv);
            let ns = parts.next().unwrap_or("").to_string();
            let name = parts.next().unwrap_or("").to_string();
            (r, Some((ns, name)))
        }
        None => (rv, None),
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut out = vec![];
    let mut more = None;
    let mut remaining = 0u64;
    // Items are shared with the store; only objects served at another version are copied.
    let served = items.into_iter().map(|o| {
        if t.rt.group == "events.k8s.io" || o["apiVersion"] != t.rt.api_version().as_str() {
            Arc::new(present(&t.rt, &o))
        } else {
            o
        }
    });
    for o in served.filter(|o| f.matches(o)) {
        if let Some((ans, aname)) = &after {
            if (util::namespace(&o), util::name(&o)) <= (ans.as_str(), aname.as_str()) {
                continue;
            }
        }
        if out.len() >= limit {
            remaining += 1;
            continue;
        }
        if out.len() + 1 == limit {
            more = Some(format!("{list_rv}/{}/{}", util::namespace(&o), util::name(&o)));
        }
        out.push(o);
    }
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if remaining > 0 {
        if let Some(m) = more {
            meta["continue"] = Value::from(base64::engine::general_purpose::STANDARD.encode(m));
            meta["remainingItemCount"] = Value::from(remaining);
        }
    }
    if q.contains_key(AS_TABLE) {
        let items: Vec<Value> = out.iter().map(|o| (**o).clone()).collect();
        return Ok(json_response(200, &crate::table::table(&t.rt, &items, meta, true)));
    }
    if q.contains_key(AS_META) {
        let items: Vec<Value> = out.iter().map(|o| partial(o)).collect();
        let l = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
        return Ok(json_response(200, &l));
    }
    // Written piecewise: a list of thousands of objects is never copied into one Value.
    let mut buf = Vec::with_capacity(256 + out.len() * 1024);
    let head = json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    buf.extend_from_slice(&head[..head.len() - 1]);
    buf.extend_from_slice(b",\"items\":[");
    for (i, o) in out.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let _ = serde_json::to_writer(&mut buf, &**o);
    }
    buf.extend_from_slice(b"]}");
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], buf).into_response())
}

async fn get(app: &Arc<App>, t: &Target, q: &HashMap<String, String>) -> ApiResult<Response> {
    let obj = current(app, t)?;
    match t.sub.as_deref() {
        Some("scale") => Ok(json_response(200, &scale_of(&obj))),
        Some("log") => crate::controllers::runner::log_response(app, &obj, q).await,
        _ if q.contains_key(AS_TABLE) => {
            Ok(json_response(200, &crate::table::table(&t.rt, &[present(&t.rt, &obj)], json!({}), true)))
        }
        _ if q.contains_key(AS_META) => Ok(json_response(200, &partial(&obj))),
        _ => Ok(json_response(200, &present(&t.rt, &obj))),
    }
}

fn scale_of(o: &Value) -> Value {
    let sel = o.pointer("/spec/selector").map(LabelSelector::from_object).unwrap_or_default();
    let sel_str: Vec<String> = sel
        .0
        .iter()
        .filter_map(|r| match r {
            crate::selectors::Req::Eq(k, v) => Some(format!("{k}={v}")),
            _ => None,
        })
        .collect();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": o["metadata"]["name"], "namespace": o["metadata"]["namespace"], "uid": o["metadata"]["uid"],
            "resourceVersion": o["metadata"]["resourceVersion"], "creationTimestamp": o["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": o.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": o.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": sel_str.join(",")},
    })
}

/// Writes a new Scale: only spec.replicas reaches the object.
fn set_scale(app: &App, t: &Target, obj: &Value, scale: &Value) -> ApiResult<Value> {
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    let mut n = obj.clone();
    n["spec"]["replicas"] = replicas;
    if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
        n["metadata"]["resourceVersion"] = Value::from(rv);
    }
    let updated = app.store.update(&t.rt, ns_of(t), util::name(obj), n, Part::Main)?;
    Ok(scale_of(&updated))
}

async fn create(app: &Arc<App>, t: &Target, q: &HashMap<String, String>, body: &[u8]) -> ApiResult<Value> {
    let obj = parse_body(body)?;
    check_strict(t, q, &obj)?;
    check_labels(t, &obj)?;
    if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Ok(present(&t.rt, &obj));
    }
    app.create(&t.rt, ns_of(t), obj).await.map(|o| present(&t.rt, &o))
}

fn update(app: &App, t: &Target, q: &HashMap<String, String>, body: &[u8]) -> ApiResult<Value> {
    let obj = parse_body(body)?;
    check_strict(t, q, &obj)?;
    check_labels(t, &obj)?;
    let name = t.name.as_deref().unwrap_or("");
    match t.sub.as_deref() {
        Some("scale") => {
            let cur = current(app, t)?;
            set_scale(app, t, &cur, &obj)
        }
        Some("status") => app.store.update(&t.rt, ns_of(t), name, obj, Part::Status).map(|o| present(&t.rt, &o)),
        _ => app.store.update(&t.rt, ns_of(t), name, obj, Part::Main).map(|o| present(&t.rt, &o)),
    }
}

async fn patch_handler(app: &Arc<App>, t: &Target, ct: &str, q: &HashMap<String, String>, body: &[u8]) -> ApiResult<Response> {
    let ct = ct.split(';').next().unwrap_or("").trim();
    let is_apply = ct == "application/apply-patch+yaml" || ct == "application/apply-patch+json";
    let p: Value = if is_apply {
        serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid apply configuration: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid patch: {e}")))?
    };
    let name = t.name.clone().unwrap_or_default();
    // Server-side apply creates what does not exist yet.
    if is_apply && t.sub.is_none() && current(app, t).is_err() {
        check_strict(t, q, &p)?;
        if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
            return Ok(json_response(201, &present(&t.rt, &p)));
        }
        let manager = q.get("fieldManager").map(String::as_str).unwrap_or("unknown");
        let mut obj = json!({"apiVersion": t.rt.api_version(), "kind": t.rt.kind, "metadata": {"name": name}});
        patch::apply(&mut obj, &p, manager, None, t.rt.schema.as_ref())?;
        return app.create(&t.rt, ns_of(t), obj).await.map(|o| json_response(201, &present(&t.rt, &o)));
    }
    let explicit_rv = p.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
    // Like the API server, retry internally when another writer changed the object meanwhile.
    for _ in 0..10 {
        let cur = current(app, t)?;
        let base = if t.sub.as_deref() == Some("scale") { scale_of(&cur) } else { present(&t.rt, &cur) };
        let mut target = base.clone();
        match ct {
            "application/json-patch+json" => patch::json_patch(&mut target, &p)?,
            "application/merge-patch+json" => patch::merge(&mut target, &p),
            "application/strategic-merge-patch+json" => {
                if t.rt.schema.is_some() {
                    return Err(ApiError::new(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources; use merge or apply"));
                }
                patch::strategic(&mut target, &p)?
            }
            _ if is_apply => {
                let manager = q.get("fieldManager").map(String::as_str).unwrap_or("unknown");
                patch::apply(&mut target, &p, manager, t.sub.as_deref().filter(|s| *s == "status"), t.rt.schema.as_ref())?
            }
            other => return Err(ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"))),
        }
        if explicit_rv.is_none() {
            target["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"].clone();
        }
        check_strict(t, q, &target)?;
        if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
            return Ok(json_response(200, &target));
        }
        let res = match t.sub.as_deref() {
            Some("scale") => set_scale(app, t, &cur, &target),
            Some("status") => app.store.update(&t.rt, ns_of(t), &name, target, Part::Status).map(|o| present(&t.rt, &o)),
            _ => app.store.update(&t.rt, ns_of(t), &name, target, Part::Main).map(|o| present(&t.rt, &o)),
        };
        match res {
            Err(e) if e.reason == "Conflict" && explicit_rv.is_none() => continue,
            other => return other.map(|v| json_response(200, &v)),
        }
    }
    Err(ApiError::conflict(&t.rt.qualified(), &name, "too many concurrent writers"))
}

fn delete_opts(q: &HashMap<String, String>, body: &[u8]) -> ApiResult<DeleteOpts> {
    let b = parse_body(body)?;
    let mut o = DeleteOpts {
        propagation: b["propagationPolicy"].as_str().map(str::to_string),
        grace_seconds: b["gracePeriodSeconds"].as_i64(),
        precondition_uid: b.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string),
        precondition_rv: b.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_string),
    };
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.clone());
    }
    if let Some(g) = q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        o.grace_seconds = Some(g);
    }
    if b["orphanDependents"] == true || q.get("orphanDependents").is_some_and(|v| v == "true") {
        o.propagation = Some("Orphan".into());
    }
    Ok(o)
}

fn delete(app: &App, t: &Target, q: &HashMap<String, String>, body: &[u8]) -> ApiResult<Value> {
    let opts = delete_opts(q, body)?;
    let name = t.name.as_deref().unwrap_or("");
    if q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return current(app, t).map(|o| present(&t.rt, &o));
    }
    app.store.delete(&t.rt, ns_of(t), name, &opts).map(|o| present(&t.rt, &o))
}

fn delete_collection(app: &App, t: &Target, q: &HashMap<String, String>, body: &[u8]) -> ApiResult<Value> {
    let opts = delete_opts(q, body)?;
    let f = Filters::new(t, q)?;
    let (items, _) = app.store.list(&t.rt.key(), t.ns.as_deref());
    let mut out = vec![];
    for o in items.iter().filter(|o| f.matches(o)) {
        if let Ok(d) = app.store.delete(&t.rt, util::namespace(o), util::name(o), &opts) {
            out.push(present(&t.rt, &d));
        }
    }
    Ok(json!({"kind": format!("{}List", t.rt.kind), "apiVersion": t.rt.api_version(), "metadata": {}, "items": out}))
}

// ---------------------------------------------------------------- watch

fn watch_line(etype: &str, obj: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": etype, "object": obj})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A watch line for a store event, reusing the event's shared serialization when the object is
/// served at its stored version (always, except for other versions of a multi-version CRD).
fn event_line(etype: &str, rt: &ResourceType, ev: &crate::store::Event) -> Bytes {
    if ev.obj["apiVersion"] == rt.api_version().as_str() {
        let obj = ev.obj_json();
        let mut line = Vec::with_capacity(obj.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(etype.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(obj);
        line.extend_from_slice(b"}\n");
        return Bytes::from(line);
    }
    watch_line(etype, &present(rt, &ev.obj))
}

/// What a selector-filtered watcher should see for one store event, if anything.
fn translate(ev: &crate::store::Event, f: &Filters) -> Option<&'static str> {
    let now = f.matches(&ev.obj);
    let before = ev.old.as_deref().is_some_and(|o| f.matches(o));
    match ev.etype {
        EventType::Added => now.then_some("ADDED"),
        EventType::Deleted => (before || now).then_some("DELETED"),
        EventType::Modified => match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        },
    }
}

fn watch_handler(app: &Arc<App>, t: &Target, q: &HashMap<String, String>) -> ApiResult<Response> {
    let f = Filters::new(t, q)?;
    let key = t.rt.key();
    let rt = t.rt.clone();
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let as_table = q.contains_key(AS_TABLE);
    let as_meta = q.contains_key(AS_META);
    let timeout = q.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()).unwrap_or(1800);
    // sendInitialEvents (streaming lists): the current state first, then a marked bookmark.
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let start: Option<u64> = q.get("resourceVersion").and_then(|r| r.parse().ok()).filter(|r| *r > 0).filter(|_| !send_initial);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(256);
    // Synthetic ADDED events for the current state when no resourceVersion is given.
    let (initial, start_rv) = match start {
        Some(rv) => (vec![], rv),
        None => {
            let (items, rv) = app.store.list(&key, t.ns.as_deref());
            (items.into_iter().filter(|o| f.matches(o)).collect::<Vec<_>>(), rv)
        }
    };
    let Some((replay, mut live)) = app.store.watch_from(start_rv) else {
        let e = ApiError::gone(format!("too old resource version: {start_rv} ({})", app.store.current_rv()));
        let line = watch_line("ERROR", &e.to_status());
        tokio::spawn(async move {
            let _ = tx.send(Ok(line)).await;
        });
        return Ok(stream_response(rx));
    };
    let mut closed = app.close_watches.subscribe();
    tokio::spawn(async move {
        let mut seen = start_rv;
        // Watch events as one-row Tables when kubectl asked for them; headers only in the first.
        let mut first = true;
        let mut line = |ty: &str, ev: Option<&crate::store::Event>, obj: &Value| {
            if as_table {
                let rv = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""));
                let t = crate::table::table(&rt, &[present(&rt, obj)], json!({"resourceVersion": rv}), first);
                first = false;
                return watch_line(ty, &t);
            }
            if as_meta {
                return watch_line(ty, &partial(obj));
            }
            match ev {
                Some(ev) => event_line(ty, &rt, ev),
                None => watch_line(ty, &present(&rt, obj)),
            }
        };
        for o in initial {
            if tx.send(Ok(line("ADDED", None, &o))).await.is_err() {
                return;
            }
        }
        if send_initial {
            let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {
                "resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx.send(Ok(watch_line("BOOKMARK", &bm))).await.is_err() {
                return;
            }
        }
        for ev in replay {
            seen = seen.max(ev.rv);
            if ev.key == key {
                if let Some(ty) = translate(&ev, &f) {
                    if tx.send(Ok(line(ty, Some(&ev), &ev.obj))).await.is_err() {
                        return;
                    }
                }
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                r = live.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= seen { continue; }
                        seen = ev.rv;
                        if ev.key != key { continue; }
                        if let Some(ty) = translate(&ev, &f) {
                            if tx.send(Ok(line(ty, Some(&ev), &ev.obj))).await.is_err() { return; }
                        }
                    }
                    // A watcher too slow for the event rate is cut off; clients re-watch.
                    Err(_) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let bm = json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": seen.to_string()}});
                    let bm = if as_table { json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": seen.to_string()}, "columnDefinitions": [], "rows": []}) } else { bm };
                    if tx.send(Ok(watch_line("BOOKMARK", &bm))).await.is_err() { return; }
                }
                _ = &mut deadline => return,
                _ = closed.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(stream_response(rx))
}

fn stream_response(rx: tokio::sync::mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(stream))
        .expect("response")
}

// ---------------------------------------------------------------- /sim control endpoint

async fn sim_control(app: &Arc<App>, method: &Method, rest: &str, q: &HashMap<String, String>, body: &[u8]) -> Response {
    match (method.as_str(), rest.trim_end_matches('/')) {
        ("GET", "/faults") => json_response(200, &serde_json::to_value(app.faults.list()).unwrap_or_default()),
        ("POST", "/faults") => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => {
                app.faults.add(rule);
                json_response(200, &json!({"ok": true}))
            }
            Err(e) => error_response(&ApiError::bad_request(e.to_string())),
        },
        ("DELETE", "/faults") => {
            app.faults.clear();
            json_response(200, &json!({"ok": true}))
        }
        ("POST", "/close-watches") => {
            app.close_watches.send_modify(|v| *v += 1);
            json_response(200, &json!({"ok": true}))
        }
        ("POST", "/restart") => {
            let down = q.get("downSeconds").and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
            match crate::controllers::simulate_restart(app, Duration::from_secs_f64(down)).await {
                Ok(()) => json_response(200, &json!({"ok": true})),
                Err(e) => error_response(&ApiError::internal(e.to_string())),
            }
        }
        ("POST", "/save") => match app.store.save() {
            Ok(()) => json_response(200, &json!({"ok": true})),
            Err(e) => error_response(&ApiError::internal(e.to_string())),
        },
        ("GET", "/healthz") => json_response(200, &json!({"ok": true, "resourceVersion": app.store.current_rv()})),
        _ => error_response(&ApiError::new(404, "NotFound", format!("unknown /sim endpoint {method} {rest}"))),
    }
}
