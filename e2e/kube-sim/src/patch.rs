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

/// Server-side apply, approximated: the applied configuration is merged into the live object like
/// a strategic merge patch (keyed lists merge, other lists are replaced). Field ownership is not
/// tracked, so fields a manager stops applying are not removed, and conflicts never occur.
pub fn apply(target: &mut Value, applied: &Value) -> ApiResult<()> {
    let mut applied = applied.clone();
    if let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    strategic(target, &applied)
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
