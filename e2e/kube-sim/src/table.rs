//! Server-side printing (`Accept: ...;as=Table;g=meta.k8s.io`), so `kubectl get` shows the usual
//! columns for built-in kinds and a CRD's additionalPrinterColumns.

use serde_json::{json, Value};

use crate::resources::ResourceType;
use crate::util::{self, str_at};

pub fn wanted(accept: &str) -> bool {
    accept.contains("as=Table")
}

/// kubectl's human duration (`45s`, `3m20s`, `5h`, `12d`).
pub fn human_age(ts: &str) -> String {
    let Some(t) = util::parse_time(ts) else { return "<unknown>".into() };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    match () {
        _ if secs < 120 => format!("{secs}s"),
        _ if m < 10 => match secs % 60 {
            0 => format!("{m}m"),
            s => format!("{m}m{s}s"),
        },
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => match m % 60 {
            0 => format!("{h}h"),
            mm => format!("{h}h{mm}m"),
        },
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => match h % 24 {
            0 => format!("{d}d"),
            hh => format!("{d}d{hh}h"),
        },
        _ => format!("{d}d"),
    }
}

/// A small JSONPath subset for printer columns: `.a.b`, `.a[0]`, `.a[*].b`,
/// `.a[?(@.k=="v")].b`. Several matches are joined with commas.
pub fn jsonpath(o: &Value, path: &str) -> Vec<Value> {
    let mut cur = vec![o.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}').trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            cur = cur.iter().filter_map(|v| v.get(field).cloned()).collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            let sel = &r[..end];
            rest = &r[end + 1..];
            let items: Vec<Value> = cur.iter().filter_map(|v| v.as_array().cloned()).flatten().collect();
            cur = if sel == "*" {
                items
            } else if let Ok(i) = sel.parse::<usize>() {
                cur.iter().filter_map(|v| v.get(i).cloned()).collect()
            } else if let Some(f) = sel.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, want) = f.split_once("==").unwrap_or((f, ""));
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                items
                    .into_iter()
                    .filter(|i| i.get(k.trim()).is_some_and(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()) == want))
                    .collect()
            } else {
                vec![]
            };
        } else {
            break;
        }
    }
    cur
}

fn cell_of(values: Vec<Value>, ty: &str) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    if ty == "date" {
        return json!(values[0].as_str().map(human_age).unwrap_or_default());
    }
    if values.len() == 1 {
        return values[0].clone();
    }
    json!(values.iter().map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string())).collect::<Vec<_>>().join(","))
}

fn col(name: &str, ty: &str, priority: i64) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn access_modes(v: &Value) -> String {
    let short = |m: &str| match m {
        "ReadWriteOnce" => "RWO",
        "ReadOnlyMany" => "ROX",
        "ReadWriteMany" => "RWX",
        "ReadWriteOncePod" => "RWOP",
        _ => "?",
    };
    v.as_array().into_iter().flatten().filter_map(|m| m.as_str().map(short)).collect::<Vec<_>>().join(",")
}

fn pod_status(p: &Value) -> String {
    if util::is_deleting(p) {
        return "Terminating".into();
    }
    let waiting = p.pointer("/status/containerStatuses/0/state/waiting/reason").and_then(Value::as_str);
    let terminated = p.pointer("/status/containerStatuses/0/state/terminated/reason").and_then(Value::as_str);
    if let Some(r) = waiting.or(terminated) {
        return r.to_string();
    }
    if str_at(p, "/status/phase") == Some("Pending")
        && p.pointer("/spec/schedulingGates").and_then(Value::as_array).is_some_and(|g| !g.is_empty())
    {
        return "SchedulingGated".into();
    }
    str_at(p, "/status/phase").unwrap_or("Pending").to_string()
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let mut cols = vec![col("Name", "string", 0)];
    let extra: &[(&str, &str, i64)] = match rt.key().as_str() {
        "/pods" => &[
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        "/persistentvolumeclaims" => &[
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("Age", "string", 0),
        ],
        "/persistentvolumes" => &[
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("Reclaim Policy", "string", 0),
            ("Status", "string", 0),
            ("Claim", "string", 0),
            ("StorageClass", "string", 0),
            ("Age", "string", 0),
        ],
        "apps/deployments" => {
            &[("Ready", "string", 0), ("Up-to-date", "integer", 0), ("Available", "integer", 0), ("Age", "string", 0)]
        }
        "apps/replicasets" => {
            &[("Desired", "integer", 0), ("Current", "integer", 0), ("Ready", "integer", 0), ("Age", "string", 0)]
        }
        "apps/statefulsets" => &[("Ready", "string", 0), ("Age", "string", 0)],
        "batch/jobs" => &[("Status", "string", 0), ("Completions", "string", 0), ("Duration", "string", 0), ("Age", "string", 0)],
        "/nodes" => &[("Status", "string", 0), ("Roles", "string", 0), ("Age", "string", 0), ("Version", "string", 0)],
        "/namespaces" => &[("Status", "string", 0), ("Age", "string", 0)],
        "/events" => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _ => &[],
    };
    if rt.key() == "/events" {
        cols[0]["priority"] = json!(1);
    }
    cols.extend(extra.iter().map(|(n, t, p)| col(n, t, *p)));
    if let Some(pc) = rt.columns.as_ref().and_then(Value::as_array) {
        for c in pc {
            cols.push(json!({"name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
                "description": c.get("description").cloned().unwrap_or(json!("")), "priority": c.get("priority").cloned().unwrap_or(json!(0))}));
        }
    }
    if cols.len() == 1 || (rt.columns.is_some() && !cols.iter().any(|c| c["name"] == "Age")) {
        cols.push(col("Age", "string", 0));
    }
    cols
}

fn cells(rt: &ResourceType, o: &Value, cols: &[Value]) -> Vec<Value> {
    let age = json!(human_age(str_at(o, "/metadata/creationTimestamp").unwrap_or("")));
    let i = |p: &str| o.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let s = |p: &str| json!(str_at(o, p).unwrap_or(""));
    let mut out = vec![json!(util::name(o))];
    if rt.key() == "/events" {
        // Name is a wide-only column for events; cells follow column order.
        out.clear();
    }
    match rt.key().as_str() {
        "/pods" => {
            let cs = o.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
            let total = o.pointer("/spec/containers").and_then(Value::as_array).map(|a| a.len()).unwrap_or(0);
            let ready = cs.iter().filter(|c| c["ready"] == true).count();
            out.extend([
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!("0"),
                age,
                s("/status/podIP"),
                s("/spec/nodeName"),
            ]);
        }
        "/persistentvolumeclaims" => out.extend([
            s("/status/phase"),
            s("/spec/volumeName"),
            s("/status/capacity/storage"),
            json!(access_modes(&o.pointer("/status/accessModes").cloned().unwrap_or_default())),
            s("/spec/storageClassName"),
            age,
        ]),
        "/persistentvolumes" => {
            let claim = match (str_at(o, "/spec/claimRef/namespace"), str_at(o, "/spec/claimRef/name")) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                _ => String::new(),
            };
            out.extend([
                s("/spec/capacity/storage"),
                json!(access_modes(&o.pointer("/spec/accessModes").cloned().unwrap_or_default())),
                s("/spec/persistentVolumeReclaimPolicy"),
                s("/status/phase"),
                json!(claim),
                s("/spec/storageClassName"),
                age,
            ]);
        }
        "apps/deployments" => out.extend([
            json!(format!("{}/{}", i("/status/readyReplicas"), i("/spec/replicas"))),
            json!(i("/status/updatedReplicas")),
            json!(i("/status/availableReplicas")),
            age,
        ]),
        "apps/replicasets" => {
            out.extend([json!(i("/spec/replicas")), json!(i("/status/replicas")), json!(i("/status/readyReplicas")), age])
        }
        "apps/statefulsets" => out.extend([json!(format!("{}/{}", i("/status/readyReplicas"), i("/spec/replicas"))), age]),
        "batch/jobs" => {
            let status = if util::condition_true(o, "Complete") {
                "Complete"
            } else if util::condition_true(o, "Failed") {
                "Failed"
            } else {
                "Running"
            };
            let duration = match (str_at(o, "/status/startTime"), str_at(o, "/status/completionTime")) {
                (Some(st), Some(ct)) => {
                    let d =
                        util::parse_time(ct).zip(util::parse_time(st)).map(|(c, s)| c.as_second() - s.as_second()).unwrap_or(0);
                    format!("{d}s")
                }
                (Some(st), None) => human_age(st),
                _ => String::new(),
            };
            out.extend([
                json!(status),
                json!(format!("{}/{}", i("/status/succeeded"), i("/spec/completions"))),
                json!(duration),
                age,
            ]);
        }
        "/nodes" => {
            let ready = if util::condition_true(o, "Ready") { "Ready" } else { "NotReady" };
            out.extend([json!(ready), json!("<none>"), age, s("/status/nodeInfo/kubeletVersion")]);
        }
        "/namespaces" => out.extend([s("/status/phase"), age]),
        "/events" => {
            let last = str_at(o, "/lastTimestamp").or(str_at(o, "/eventTime")).map(human_age).unwrap_or_default();
            let obj = format!(
                "{}/{}",
                str_at(o, "/involvedObject/kind").unwrap_or("").to_lowercase(),
                str_at(o, "/involvedObject/name").unwrap_or("")
            );
            out.extend([json!(util::name(o)), json!(last), s("/type"), s("/reason"), json!(obj), s("/message")]);
        }
        _ => {}
    }
    if let Some(pc) = rt.columns.as_ref().and_then(Value::as_array) {
        for c in pc {
            out.push(cell_of(jsonpath(o, c["jsonPath"].as_str().unwrap_or("")), c["type"].as_str().unwrap_or("string")));
        }
    }
    while out.len() < cols.len() {
        out.push(json!(human_age(str_at(o, "/metadata/creationTimestamp").unwrap_or(""))));
    }
    out
}

fn row(rt: &ResourceType, o: &Value, cols: &[Value]) -> Value {
    json!({
        "cells": cells(rt, o, cols),
        "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
    })
}

/// A Table for a list (or a single object); `headers` false for watch events after the first.
pub fn table(rt: &ResourceType, items: &[Value], list_meta: Value, headers: bool) -> Value {
    let cols = columns(rt);
    let rows: Vec<Value> = items.iter().map(|o| row(rt, o, &cols)).collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": if headers { json!(cols) } else { json!([]) },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o =
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}], "n": 3}});
        assert_eq!(jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"), vec![json!("True")]);
        assert_eq!(jsonpath(&o, ".status.n"), vec![json!(3)]);
        assert_eq!(jsonpath(&o, ".status.conditions[*].type"), vec![json!("Ready"), json!("X")]);
        assert_eq!(jsonpath(&o, ".status.conditions[1].status"), vec![json!("False")]);
        assert!(jsonpath(&o, ".missing.x").is_empty());
    }
}
