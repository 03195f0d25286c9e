//! Small helpers for working with objects held as `serde_json::Value`.

use serde_json::{Map, Value};

/// RFC 3339 with second precision, the format of `metav1.Time`.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Seconds elapsed since an RFC 3339 timestamp (0 if unparsable).
pub fn seconds_since(s: &str) -> f64 {
    parse_time(s).map(|t| (jiff::Timestamp::now().as_millisecond() - t.as_millisecond()) as f64 / 1000.0).unwrap_or(0.0)
}

pub fn name(o: &Value) -> &str {
    o.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}
pub fn namespace(o: &Value) -> &str {
    o.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}
pub fn uid(o: &Value) -> &str {
    o.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
}
pub fn str_at<'a>(o: &'a Value, ptr: &str) -> Option<&'a str> {
    o.pointer(ptr).and_then(Value::as_str)
}
pub fn labels(o: &Value) -> Map<String, Value> {
    o.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default()
}
pub fn is_deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// Mutable access to `ptr`, creating intermediate objects as needed.
pub fn ensure_obj<'a>(o: &'a mut Value, keys: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = o;
    for k in keys {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let m = cur.as_object_mut().expect("object");
        cur = m.entry(k.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    cur.as_object_mut().expect("object")
}

/// A short random suffix like the API server's generateName suffix (5 lowercase alphanumerics).
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let extra = uuid::Uuid::new_v4().into_bytes();
    bytes.iter().chain(extra.iter()).take(n).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// A stable short hash (FNV-1a) of a JSON value, used for pod-template-hash and revisions.
pub fn short_hash(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10).map(|i| alphabet[((h >> (i * 6)) % alphabet.len() as u64) as usize] as char).collect()
}

/// A condition list entry setter: replaces the entry of `type_` keeping lastTransitionTime when the
/// status did not change. Returns whether anything changed.
pub fn set_condition(obj: &mut Value, type_: &str, status: &str, reason: &str, message: &str) -> bool {
    let st = ensure_obj(obj, &["status"]);
    let conds = st.entry("conditions").or_insert_with(|| Value::Array(vec![]));
    if !conds.is_array() {
        *conds = Value::Array(vec![]);
    }
    let arr = conds.as_array_mut().expect("array");
    let now = now_rfc3339();
    if let Some(c) = arr.iter_mut().find(|c| c["type"] == type_) {
        let same = c["status"] == status && c["reason"] == reason && c["message"] == message;
        if same {
            return false;
        }
        if c["status"] != status {
            c["lastTransitionTime"] = Value::from(now.clone());
        }
        c["status"] = Value::from(status);
        c["reason"] = Value::from(reason);
        c["message"] = Value::from(message);
        return true;
    }
    arr.push(serde_json::json!({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now, "lastProbeTime": null,
    }));
    true
}

pub fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|c| c["type"] == type_ && c["status"] == "True"))
}
