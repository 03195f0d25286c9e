//! The four patch flavours: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge (with
//! the list merge keys of the built-in kinds) and an approximation of server-side apply.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

// ---------------------------------------------------------------- JSON merge patch

pub fn merge(target: &mut Value, patch: &Value) {
    let Some(pm) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let tm = target.as_object_mut().expect("object");
    for (k, v) in pm {
        if v.is_null() {
            tm.remove(k);
        } else {
            merge(tm.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

// ---------------------------------------------------------------- JSON patch

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn split_pointer(path: &str) -> ApiResult<Vec<String>> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    if !path.starts_with('/') {
        return Err(ApiError::bad_request(format!("invalid JSON pointer {path:?}")));
    }
    Ok(path[1..].split('/').map(unescape).collect())
}

fn unprocessable(msg: String) -> ApiError {
    ApiError::new(422, "Invalid", msg)
}

fn parent_mut<'a>(doc: &'a mut Value, toks: &[String], path: &str) -> ApiResult<&'a mut Value> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| {
            unprocessable(format!(
                "the server rejected our request due to an error in our request: doc is missing path: \"{path}\""
            ))
        })?;
    }
    Ok(cur)
}

fn add(doc: &mut Value, path: &str, value: Value) -> ApiResult<()> {
    let toks = split_pointer(path)?;
    let Some((last, parents)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse().map_err(|_| unprocessable(format!("invalid index in {path}")))?
            };
            if i > a.len() {
                return Err(unprocessable(format!("index out of range in {path}")));
            }
            a.insert(i, value);
        }
        _ => return Err(unprocessable(format!("doc is missing path: \"{path}\""))),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> ApiResult<Value> {
    let toks = split_pointer(path)?;
    let Some((last, parents)) = toks.split_last() else {
        return Err(unprocessable("cannot remove the root".into()));
    };
    let missing = || {
        unprocessable(format!("the server rejected our request due to an error in our request: doc is missing key: \"{path}\""))
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(missing),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing())?;
            if i >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(i))
        }
        _ => Err(missing()),
    }
}

pub fn json_patch(doc: &mut Value, ops: &Value) -> ApiResult<()> {
    let ops = ops.as_array().ok_or_else(|| ApiError::bad_request("a JSON patch must be an array"))?;
    for op in ops {
        let path = op["path"].as_str().unwrap_or("");
        match op["op"].as_str().unwrap_or("") {
            "add" => add(doc, path, op["value"].clone())?,
            "remove" => {
                remove(doc, path)?;
            }
            "replace" => {
                remove(doc, path)?;
                add(doc, path, op["value"].clone())?;
            }
            "move" => {
                let from = op["from"].as_str().unwrap_or("");
                let v = remove(doc, from)?;
                add(doc, path, v)?;
            }
            "copy" => {
                let from = op["from"].as_str().unwrap_or("");
                let v = doc.pointer(from).cloned().ok_or_else(|| unprocessable(format!("doc is missing path: \"{from}\"")))?;
                add(doc, path, v)?;
            }
            "test" => {
                // A missing path compares equal to null (kube-rs finalizer helper relies on it).
                let got = doc.pointer(path).cloned().unwrap_or(Value::Null);
                if got != op["value"] {
                    return Err(unprocessable(format!(
                        "the server rejected our request due to an error in our request: testing value {path} failed: test failed"
                    )));
                }
            }
            other => return Err(ApiError::bad_request(format!("unknown JSON patch operation {other:?}"))),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- strategic merge patch

/// How a list field merges under strategic merge patch. Built-in kinds only; the merge key is
/// chosen by field name, which is how the Kubernetes types declare them in practice.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ListStrategy {
    Replace,
    MergeBy(&'static str),
    /// Lists of scalars merged as sets (finalizers).
    MergePrimitive,
}

fn list_strategy(field: &str, sample: &[&Value]) -> ListStrategy {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates"
        | "schedulingGates" => ListStrategy::MergeBy("name"),
        "volumeMounts" => ListStrategy::MergeBy("mountPath"),
        "volumeDevices" => ListStrategy::MergeBy("devicePath"),
        "conditions" => ListStrategy::MergeBy("type"),
        "ownerReferences" => ListStrategy::MergeBy("uid"),
        "hostAliases" => ListStrategy::MergeBy("ip"),
        "topologySpreadConstraints" => ListStrategy::MergeBy("topologyKey"),
        "ports" => {
            if sample.iter().any(|e| e.get("containerPort").is_some()) {
                ListStrategy::MergeBy("containerPort")
            } else {
                ListStrategy::MergeBy("port")
            }
        }
        "finalizers" => ListStrategy::MergePrimitive,
        _ => ListStrategy::Replace,
    }
}

pub fn strategic(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let Some(pm) = patch.as_object() else {
        *target = patch.clone();
        return Ok(());
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = pm.clone();
        p.remove("$patch");
        *target = strip_directives(&Value::Object(p));
        return Ok(());
    }
    if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
        *target = Value::Object(Map::new());
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let tm = target.as_object_mut().expect("object");
    if let Some(keep) = pm.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        tm.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in pm {
        if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(cur), Some(del)) = (tm.get_mut(field).and_then(Value::as_array_mut), v.as_array()) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            tm.remove(k);
            continue;
        }
        match v {
            Value::Object(_) => strategic(tm.entry(k.clone()).or_insert(Value::Null), v)?,
            Value::Array(items) => {
                let existing = tm.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
                let sample: Vec<&Value> = existing.iter().chain(items.iter()).collect();
                let merged = match list_strategy(k, &sample) {
                    ListStrategy::Replace => strip_directives(v),
                    ListStrategy::MergePrimitive => {
                        let mut out = existing.clone();
                        for i in items {
                            if !out.contains(i) {
                                out.push(i.clone());
                            }
                        }
                        Value::Array(out)
                    }
                    ListStrategy::MergeBy(key) => Value::Array(merge_keyed(existing, items, key)?),
                };
                tm.insert(k.clone(), merged);
            }
            _ => {
                tm.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

fn merge_keyed(mut existing: Vec<Value>, items: &[Value], key: &str) -> ApiResult<Vec<Value>> {
    if items.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        return Ok(items.iter().filter(|i| i.get("$patch").is_none()).map(strip_directives).collect());
    }
    for item in items {
        let Some(kv) = item.get(key) else {
            return Err(ApiError::bad_request(format!("map: {item} does not contain declared merge key: {key}")));
        };
        let pos = existing.iter().position(|e| e.get(key) == Some(kv));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(p) = pos {
                existing.remove(p);
            }
            continue;
        }
        match pos {
            Some(p) => strategic(&mut existing[p], item)?,
            None => existing.push(strip_directives(item)),
        }
    }
    Ok(existing)
}

/// Removes `$...` directives so they are never stored.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

// ---------------------------------------------------------------- server-side apply

/// How a list merges under server-side apply: from the CRD schema's x-kubernetes-list-type, or,
/// where there is no schema (built-in kinds, metadata), from the strategic merge keys.
#[derive(Debug, Clone, PartialEq)]
enum ListKind {
    Atomic,
    Map(Vec<String>),
    Set,
}

fn list_kind(field: &str, schema: Option<&Value>, sample: &[&Value]) -> ListKind {
    if let Some(s) = schema {
        return match s["x-kubernetes-list-type"].as_str() {
            Some("map") => ListKind::Map(
                s["x-kubernetes-list-map-keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect(),
            ),
            Some("set") => ListKind::Set,
            _ => ListKind::Atomic,
        };
    }
    match list_strategy(field, sample) {
        ListStrategy::MergeBy(k) => ListKind::Map(vec![k.to_string()]),
        ListStrategy::MergePrimitive => ListKind::Set,
        ListStrategy::Replace => ListKind::Atomic,
    }
}

fn child_schema<'a>(schema: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let s = schema?;
    s.get("properties").and_then(|p| p.get(field)).or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))
}

fn key_of(elem: &Value, keys: &[String]) -> Value {
    Value::Object(keys.iter().map(|k| (k.clone(), elem.get(k).cloned().unwrap_or(Value::Null))).collect())
}

fn ssa_merge(live: &mut Value, applied: &Value, schema: Option<&Value>) {
    let Some(am) = applied.as_object() else {
        *live = applied.clone();
        return;
    };
    if !live.is_object() {
        *live = Value::Object(Map::new());
    }
    let lm = live.as_object_mut().expect("object");
    for (k, v) in am {
        let cs = child_schema(schema, k);
        match v {
            Value::Null => {
                lm.remove(k);
            }
            Value::Object(_) => ssa_merge(lm.entry(k.clone()).or_insert(Value::Null), v, cs),
            Value::Array(items) => {
                let existing = lm.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
                let sample: Vec<&Value> = existing.iter().chain(items.iter()).collect();
                let merged = match list_kind(k, cs, &sample) {
                    ListKind::Atomic => v.clone(),
                    ListKind::Set => {
                        let mut out = existing.clone();
                        out.extend(items.iter().filter(|i| !existing.contains(i)).cloned());
                        Value::Array(out)
                    }
                    ListKind::Map(keys) => {
                        let item_schema = cs.and_then(|s| s.get("items"));
                        let mut out = existing;
                        for item in items {
                            let kv = key_of(item, &keys);
                            match out.iter_mut().find(|e| key_of(e, &keys) == kv) {
                                Some(e) => ssa_merge(e, item, item_schema),
                                None => out.push(item.clone()),
                            }
                        }
                        Value::Array(out)
                    }
                };
                lm.insert(k.clone(), merged);
            }
            _ => {
                lm.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The FieldsV1 set (`{"f:spec": {"f:replicas": {}}}`) an applied configuration owns.
fn field_set(v: &Value, schema: Option<&Value>, top: bool) -> Value {
    let mut out = Map::new();
    for (k, child) in v.as_object().into_iter().flatten() {
        if top && matches!(k.as_str(), "apiVersion" | "kind") {
            continue;
        }
        let cs = child_schema(schema, k);
        let entry = match child {
            Value::Object(_) => {
                let mut inner = field_set(child, cs, false);
                if top && k == "metadata" {
                    for f in [
                        "f:name",
                        "f:namespace",
                        "f:resourceVersion",
                        "f:uid",
                        "f:managedFields",
                        "f:creationTimestamp",
                        "f:generation",
                    ] {
                        inner.as_object_mut().expect("object").remove(f);
                    }
                }
                inner
            }
            Value::Array(items) => {
                let sample: Vec<&Value> = items.iter().collect();
                match list_kind(k, cs, &sample) {
                    ListKind::Atomic => Value::Object(Map::new()),
                    ListKind::Set => Value::Object(items.iter().map(|i| (format!("v:{i}"), Value::Object(Map::new()))).collect()),
                    ListKind::Map(keys) => {
                        let item_schema = cs.and_then(|s| s.get("items"));
                        Value::Object(
                            items
                                .iter()
                                .map(|i| {
                                    let mut f = field_set(i, item_schema, false);
                                    f.as_object_mut().expect("object").insert(".".into(), Value::Object(Map::new()));
                                    (format!("k:{}", key_of(i, &keys)), f)
                                })
                                .collect(),
                        )
                    }
                }
            }
            _ => Value::Object(Map::new()),
        };
        out.insert(format!("f:{k}"), entry);
    }
    Value::Object(out)
}

/// Removes from `live` what `prev` owned and `now` no longer does, unless `others` still own it.
fn remove_released(live: &mut Value, prev: &Value, now: &Value, others: &[&Value]) {
    for (k, sub) in prev.as_object().into_iter().flatten() {
        if k == "." {
            continue;
        }
        let now_sub = now.get(k);
        let other_subs: Vec<&Value> = others.iter().filter_map(|o| o.get(k)).collect();
        if now_sub.is_none() && other_subs.is_empty() {
            if let Some(f) = k.strip_prefix("f:") {
                if let Some(m) = live.as_object_mut() {
                    m.remove(f);
                }
            } else if let Some(key) = k.strip_prefix("k:").and_then(|j| serde_json::from_str::<Value>(j).ok()) {
                if let Some(a) = live.as_array_mut() {
                    let keys: Vec<String> = key.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
                    a.retain(|e| key_of(e, &keys) != key);
                }
            } else if let Some(val) = k.strip_prefix("v:").and_then(|j| serde_json::from_str::<Value>(j).ok()) {
                if let Some(a) = live.as_array_mut() {
                    a.retain(|e| *e != val);
                }
            }
            continue;
        }
        // Still owned: descend, so released children can go.
        let empty = Value::Object(Map::new());
        let now_sub = now_sub.unwrap_or(&empty);
        let child: Option<&mut Value> = if let Some(f) = k.strip_prefix("f:") {
            live.get_mut(f)
        } else if let Some(key) = k.strip_prefix("k:").and_then(|j| serde_json::from_str::<Value>(j).ok()) {
            let keys: Vec<String> = key.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            live.as_array_mut().and_then(|a| a.iter_mut().find(|e| key_of(e, &keys) == key))
        } else {
            None
        };
        if let Some(c) = child {
            remove_released(c, sub, now_sub, &other_subs);
        }
    }
}

/// Server-side apply: merges the applied configuration into the live object (maps recursively;
/// lists per their list type), removes fields this field manager applied before but no longer
/// applies (unless another apply manager owns them), and records the manager's field set in
/// metadata.managedFields. Conflicts with other managers are not detected (as if always forced),
/// and fields set by non-apply writes are not tracked.
pub fn apply(
    live: &mut Value,
    applied: &Value,
    manager: &str,
    subresource: Option<&str>,
    schema: Option<&Value>,
) -> ApiResult<()> {
    let mut applied = applied.clone();
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    if let Some(sub) = subresource {
        // Applying to a subresource only touches that part.
        let part = applied.get(sub).cloned();
        applied = serde_json::json!({});
        if let Some(p) = part {
            applied[sub] = p;
        }
    }
    let mut managed: Vec<Value> = live.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    let is_mine = |m: &Value| {
        m["manager"] == manager && m["operation"] == "Apply" && m.get("subresource").and_then(Value::as_str) == subresource
    };
    let prev = managed.iter().find(|m| is_mine(m)).map(|m| m["fieldsV1"].clone()).unwrap_or(Value::Object(Map::new()));
    let others: Vec<Value> =
        managed.iter().filter(|m| !is_mine(m) && m["operation"] == "Apply").map(|m| m["fieldsV1"].clone()).collect();
    let now = field_set(&applied, schema, true);
    ssa_merge(live, &applied, schema);
    let other_refs: Vec<&Value> = others.iter().collect();
    remove_released(live, &prev, &now, &other_refs);
    // An apply that changes nothing must stay a no-op (no new resourceVersion, no watch event):
    // the manager's entry keeps its place and time unless its field set changed.
    match managed.iter_mut().find(|m| is_mine(m)) {
        Some(m) if m["fieldsV1"] == now => {}
        Some(m) => {
            m["fieldsV1"] = now;
            m["time"] = Value::from(crate::util::now_rfc3339());
        }
        None => {
            let mut entry = serde_json::json!({
                "manager": manager, "operation": "Apply", "apiVersion": live["apiVersion"].clone(),
                "time": crate::util::now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": now,
            });
            if let Some(sub) = subresource {
                entry["subresource"] = Value::from(sub);
            }
            managed.push(entry);
        }
    }
    crate::util::ensure_obj(live, &["metadata"]).insert("managedFields".into(), Value::Array(managed));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_treats_missing_as_null() {
        let mut doc = json!({"metadata": {}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": ["a"]},
            ]),
        )
        .unwrap();
        assert_eq!(doc["metadata"]["finalizers"], json!(["a"]));
        let err = json_patch(&mut doc, &json!([{"op": "test", "path": "/metadata/finalizers", "value": null}])).unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "add", "path": "/a/-", "value": 3},
                {"op": "replace", "path": "/b/c", "value": 2},
                {"op": "copy", "from": "/b/c", "path": "/d"},
                {"op": "move", "from": "/d", "path": "/e"},
                {"op": "remove", "path": "/a/0"},
            ]),
        )
        .unwrap();
        assert_eq!(doc, json!({"a": [2, 3], "b": {"c": 2}, "e": 2}));
        assert_eq!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/zz"}])).unwrap_err().code, 422);
    }

    #[test]
    fn merge_patch_deletes_nulls() {
        let mut doc = json!({"a": 1, "b": {"c": 1, "d": 2}});
        merge(&mut doc, &json!({"a": null, "b": {"c": null, "e": 3}, "l": [1]}));
        assert_eq!(doc, json!({"b": {"d": 2, "e": 3}, "l": [1]}));
    }

    #[test]
    fn strategic_merges_containers_by_name_and_handles_directives() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "y"},
        ], "tolerations": [{"key": "k"}]}, "metadata": {"finalizers": ["f1"]}});
        strategic(
            &mut doc,
            &json!({
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "metadata": {"finalizers": ["f2"]},
                "spec": {"containers": [
                    {"name": "a", "image": "x2", "env": [{"name": "F", "value": "2"}]},
                    {"name": "b", "$patch": "delete"},
                ], "tolerations": [{"key": "z"}]},
            }),
        )
        .unwrap();
        assert_eq!(
            doc["spec"]["containers"],
            json!([{"name": "a", "image": "x2", "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]}])
        );
        assert_eq!(doc["spec"]["tolerations"], json!([{"key": "z"}]));
        assert_eq!(doc["metadata"]["finalizers"], json!(["f1", "f2"]));
        assert!(doc.get("$setElementOrder/containers").is_none());
    }

    #[test]
    fn apply_removes_what_a_manager_stops_applying() {
        let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"keep": "x"}});
        apply(
            &mut live,
            &json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"a": "1", "b": "2"}}),
            "m1",
            None,
            None,
        )
        .unwrap();
        apply(&mut live, &json!({"data": {"c": "3"}}), "m2", None, None).unwrap();
        apply(&mut live, &json!({"data": {"a": "9", "c": "3"}}), "m1", None, None).unwrap();
        assert_eq!(live["data"], json!({"keep": "x", "a": "9", "c": "3"}), "b released, c still owned by m2, keep never applied");
        assert!(live["metadata"].get("labels").is_none_or(|l| l.get("a").is_none()));
        let mf = live["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert!(mf.iter().any(|m| m["manager"] == "m1" && m["fieldsV1"]["f:data"]["f:a"] == json!({})));
        // Re-applying the same configuration changes nothing at all.
        let before = live.clone();
        apply(&mut live, &json!({"data": {"a": "9", "c": "3"}}), "m1", None, None).unwrap();
        assert_eq!(live, before);
    }

    #[test]
    fn apply_uses_list_types_from_the_schema() {
        let schema = json!({"properties": {"status": {"properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}},
            "log": {"type": "array", "items": {"type": "string"}}}}}});
        let mut live = json!({"apiVersion": "x/v1", "metadata": {}, "status": {}});
        let a1 = json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}], "log": ["1", "2"]}});
        apply(&mut live, &a1, "op", Some("status"), Some(&schema)).unwrap();
        let a2 = json!({"status": {"conditions": [{"type": "A", "status": "False"}], "log": ["3"]}});
        apply(&mut live, &a2, "op", Some("status"), Some(&schema)).unwrap();
        assert_eq!(live["status"]["conditions"], json!([{"type": "A", "status": "False"}]), "B released by its manager");
        assert_eq!(live["status"]["log"], json!(["3"]), "atomic lists are replaced");
    }

    #[test]
    fn strategic_retain_keys_and_replace() {
        let mut doc = json!({"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}, "m": {"a": 1}});
        strategic(
            &mut doc,
            &json!({"strategy": {"$retainKeys": ["type"], "type": "Recreate"}, "m": {"$patch": "replace", "b": 2}}),
        )
        .unwrap();
        assert_eq!(doc, json!({"strategy": {"type": "Recreate"}, "m": {"b": 2}}));
    }
}
