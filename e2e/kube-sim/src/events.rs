//! core/v1 and events.k8s.io/v1 Events are one resource stored in the core form, as in
//! Kubernetes: kube-rs' event recorder writes events.k8s.io, `kubectl describe` reads core.

use serde_json::{json, Map, Value};

fn seconds(t: &Value) -> Value {
    match t.as_str().and_then(crate::util::parse_time) {
        Some(ts) => json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => Value::Null,
    }
}

fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    if !v.is_null() {
        m.insert(k.to_string(), v);
    }
}

/// events.k8s.io/v1 → core/v1.
pub fn to_core(o: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Event"));
    put(&mut m, "metadata", o["metadata"].clone());
    put(&mut m, "involvedObject", o["regarding"].clone());
    put(&mut m, "related", o["related"].clone());
    put(&mut m, "reason", o["reason"].clone());
    put(&mut m, "message", o["note"].clone());
    put(&mut m, "type", o["type"].clone());
    put(&mut m, "action", o["action"].clone());
    put(&mut m, "eventTime", o["eventTime"].clone());
    put(&mut m, "series", o["series"].clone());
    put(&mut m, "reportingComponent", o["reportingController"].clone());
    put(&mut m, "reportingInstance", o["reportingInstance"].clone());
    let source = if o["deprecatedSource"].is_object() {
        o["deprecatedSource"].clone()
    } else {
        json!({"component": o["reportingController"]})
    };
    put(&mut m, "source", source);
    let first =
        if o["deprecatedFirstTimestamp"].is_null() { seconds(&o["eventTime"]) } else { o["deprecatedFirstTimestamp"].clone() };
    let last = [&o["deprecatedLastTimestamp"], &o["series"]["lastObservedTime"], &o["eventTime"]]
        .into_iter()
        .find(|v| !v.is_null())
        .map(|v| if v.as_str().is_some_and(|s| s.contains('.')) { seconds(v) } else { v.clone() })
        .unwrap_or(Value::Null);
    put(&mut m, "firstTimestamp", first);
    put(&mut m, "lastTimestamp", last);
    let count = o["series"]["count"].as_i64().or_else(|| o["deprecatedCount"].as_i64()).unwrap_or(1);
    m.insert("count".into(), json!(count));
    Value::Object(m)
}

/// core/v1 → events.k8s.io/v1.
pub fn from_core(o: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    m.insert("kind".into(), json!("Event"));
    put(&mut m, "metadata", o["metadata"].clone());
    put(&mut m, "regarding", o["involvedObject"].clone());
    put(&mut m, "related", o["related"].clone());
    put(&mut m, "reason", o["reason"].clone());
    put(&mut m, "note", o["message"].clone());
    put(&mut m, "type", o["type"].clone());
    put(&mut m, "action", o["action"].clone());
    // eventTime is required in events.k8s.io; core events written by old clients lack it.
    let event_time = match &o["eventTime"] {
        Value::Null => o["firstTimestamp"].as_str().map(|t| json!(t.replace('Z', ".000000Z"))).unwrap_or(Value::Null),
        t => t.clone(),
    };
    put(&mut m, "eventTime", event_time);
    put(&mut m, "series", o["series"].clone());
    let controller =
        if o["reportingComponent"].is_null() { o["source"]["component"].clone() } else { o["reportingComponent"].clone() };
    put(&mut m, "reportingController", controller);
    put(&mut m, "reportingInstance", o["reportingInstance"].clone());
    put(&mut m, "deprecatedSource", o["source"].clone());
    put(&mut m, "deprecatedFirstTimestamp", o["firstTimestamp"].clone());
    put(&mut m, "deprecatedLastTimestamp", o["lastTimestamp"].clone());
    put(&mut m, "deprecatedCount", o["count"].clone());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_between_groups() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
            "regarding": {"kind": "Pod", "name": "p"}, "reason": "Started", "note": "hello", "type": "Normal",
            "action": "Start", "eventTime": "2025-01-01T00:00:00.123456Z", "reportingController": "op", "reportingInstance": "op-1",
            "series": {"count": 3, "lastObservedTime": "2025-01-01T00:01:00.000001Z"}});
        let core = to_core(&new);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["count"], 3);
        assert_eq!(core["firstTimestamp"], "2025-01-01T00:00:00Z");
        assert_eq!(core["lastTimestamp"], "2025-01-01T00:01:00Z");
        let back = from_core(&core);
        for k in
            ["regarding", "note", "reason", "type", "action", "eventTime", "series", "reportingController", "reportingInstance"]
        {
            assert_eq!(back[k], new[k], "{k}");
        }
    }
}
