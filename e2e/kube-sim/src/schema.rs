//! Structural-schema handling for custom resources, as the API server does on every write:
//! prune unknown fields, apply `default`s, then validate. `x-kubernetes-validations` (CEL rules)
//! and `format` are not evaluated.

use serde_json::Value;

pub type Causes = Vec<(String, String)>;

/// Prunes, defaults and validates `obj` against a CRD version's openAPIV3Schema.
pub fn apply(schema: &Value, obj: &mut Value) -> Result<(), Causes> {
    // apiVersion, kind and metadata are the API server's business, never pruned or validated.
    let mut root_schema = schema.clone();
    if let Some(props) = root_schema.get_mut("properties").and_then(Value::as_object_mut) {
        for k in ["apiVersion", "kind", "metadata"] {
            props.remove(k);
        }
    }
    let saved: Vec<(String, Value)> = ["apiVersion", "kind", "metadata"]
        .iter()
        .filter_map(|k| obj.as_object_mut().and_then(|m| m.remove(*k)).map(|v| (k.to_string(), v)))
        .collect();
    prune_and_default(&root_schema, obj);
    let mut causes = vec![];
    validate(&root_schema, obj, "", &mut causes);
    if let Some(m) = obj.as_object_mut() {
        for (k, v) in saved {
            m.insert(k, v);
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(causes)
    }
}

fn preserves_unknown(s: &Value) -> bool {
    s["x-kubernetes-preserve-unknown-fields"] == true
}

fn prune_and_default(s: &Value, v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, ps) in props {
                if !m.contains_key(k) {
                    if let Some(d) = ps.get("default") {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            if !preserves_unknown(s) && s.get("additionalProperties").is_none() {
                m.retain(|k, _| props.contains_key(k));
            }
            for (k, child) in m.iter_mut() {
                if let Some(ps) = props.get(k) {
                    prune_and_default(ps, child);
                }
            }
        } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
            for child in m.values_mut() {
                prune_and_default(ap, child);
            }
        }
    } else if let (Some(a), Some(items)) = (v.as_array_mut(), s.get("items")) {
        for child in a {
            prune_and_default(items, child);
        }
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn type_ok(t: &str, v: &Value, s: &Value) -> bool {
    if s["x-kubernetes-int-or-string"] == true {
        return v.is_i64() || v.is_u64() || v.is_string();
    }
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn validate(s: &Value, v: &Value, path: &str, causes: &mut Causes) {
    let field = if path.is_empty() { "<root>".to_string() } else { path.to_string() };
    if v.is_null() {
        if s["nullable"] != true && s.get("type").is_some() {
            causes.push((
                field,
                format!("Invalid value: \"null\": {path} in body must be of type {}", s["type"].as_str().unwrap_or("object")),
            ));
        }
        return;
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        if !type_ok(t, v, s) {
            let got = match v {
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(_) => "number",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
                Value::Null => "null",
            };
            causes.push((field, format!("Invalid value: \"{got}\": {path} in body must be of type {t}: \"{got}\"")));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            let allowed: Vec<String> = e.iter().map(show).collect();
            causes.push((field.clone(), format!("Unsupported value: {}: supported values: {}", show(v), allowed.join(", "))));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            let excl = s["exclusiveMinimum"] == true;
            if n < min || (excl && n == min) {
                causes.push((
                    field.clone(),
                    format!("Invalid value: {v}: {path} in body should be greater than or equal to {min}"),
                ));
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            let excl = s["exclusiveMaximum"] == true;
            if n > max || (excl && n == max) {
                causes.push((field.clone(), format!("Invalid value: {v}: {path} in body should be less than or equal to {max}")));
            }
        }
    }
    if let Some(st) = v.as_str() {
        let len = st.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
            if len < min {
                causes.push((
                    field.clone(),
                    format!("Invalid value: {}: {path} in body should be at least {min} chars long", show(v)),
                ));
            }
        }
        if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                causes.push((field.clone(), format!("Too long: may not be more than {max} bytes")));
            }
        }
        if let Some(p) = s.get("pattern").and_then(Value::as_str) {
            if let Ok(re) = regex::Regex::new(p) {
                if !re.is_match(st) {
                    causes.push((field.clone(), format!("Invalid value: {}: {path} in body should match '{p}'", show(v))));
                }
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < min {
                causes.push((
                    field.clone(),
                    format!("Invalid value: {}: {path} in body should have at least {min} items", a.len()),
                ));
            }
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > max {
                causes.push((field.clone(), format!("Too many: {}: must have at most {max} items", a.len())));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, child) in a.iter().enumerate() {
                validate(items, child, &format!("{path}[{i}]"), causes);
            }
        }
    }
    if let Some(m) = v.as_object() {
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(r) = r.as_str() {
                if !m.contains_key(r) {
                    causes.push((join(path, r), "Required value".to_string()));
                }
            }
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, child) in m {
                if let Some(ps) = props.get(k) {
                    validate(ps, child, &join(path, k), causes);
                }
            }
        } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
            for (k, child) in m {
                validate(ap, child, &join(path, k), causes);
            }
        }
        if let Some(min) = s.get("minProperties").and_then(Value::as_u64) {
            if (m.len() as u64) < min {
                causes.push((field, format!("Invalid value: {}: {path} in body should have at least {min} properties", m.len())));
            }
        }
    }
}

/// Paths of fields pruning would drop (what `fieldValidation=Strict` rejects).
pub fn unknown_fields(schema: &Value, obj: &Value) -> Vec<String> {
    let mut out = vec![];
    for (k, v) in obj.as_object().into_iter().flatten() {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        walk_unknown(schema, k, v, k, &mut out);
    }
    out
}

fn walk_unknown(parent: &Value, key: &str, v: &Value, path: &str, out: &mut Vec<String>) {
    let s = match parent.get("properties").and_then(|p| p.get(key)) {
        Some(s) => s,
        None => match parent.get("additionalProperties") {
            Some(ap) if ap.is_object() => ap,
            Some(_) => return,
            None if preserves_unknown(parent) => return,
            None => {
                out.push(path.to_string());
                return;
            }
        },
    };
    match v {
        Value::Object(m) if s.get("properties").is_some() || s.get("additionalProperties").is_some() || !preserves_unknown(s) => {
            for (k, c) in m {
                walk_unknown(s, k, c, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, c) in a.iter().enumerate() {
                    if let Some(m) = c.as_object() {
                        for (k, cc) in m {
                            walk_unknown(items, k, cc, &format!("{path}[{i}].{k}"), out);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}
