//! Just enough of Kubernetes' protobuf encoding to accept the bodies kubectl's typed clients send
//! (`kubectl create namespace|configmap|secret|serviceaccount|job|deployment` post protobuf, not
//! JSON, and client-go does not retry with JSON on 415). Field numbers follow k8s.io/api
//! generated.proto; only the fields those commands set are decoded.

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy)]
enum F {
    Str,
    Bytes,
    Int,
    Bool,
    Time,
    Msg(&'static [Field]),
    MapStr,
    MapBytes,
    RepStr,
    RepMsg(&'static [Field]),
}

type Field = (u64, &'static str, F);

const OWNER_REF: &[Field] = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];
const OBJECT_META: &[Field] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (8, "creationTimestamp", F::Time),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];
const NAMESPACE: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META)), (2, "spec", F::Msg(&[(1, "finalizers", F::RepStr)]))];
const CONFIG_MAP: &[Field] =
    &[(1, "metadata", F::Msg(OBJECT_META)), (2, "data", F::MapStr), (3, "binaryData", F::MapBytes), (4, "immutable", F::Bool)];
const SECRET: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];
const SERVICE_ACCOUNT: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META)), (4, "automountServiceAccountToken", F::Bool)];
const LABEL_SELECTOR: &[Field] = &[(1, "matchLabels", F::MapStr)];
const CONTAINER_PORT: &[Field] = &[(1, "name", F::Str), (3, "containerPort", F::Int), (4, "protocol", F::Str)];
const ENV_VAR: &[Field] = &[(1, "name", F::Str), (2, "value", F::Str)];
const VOLUME_MOUNT: &[Field] = &[(1, "name", F::Str), (2, "readOnly", F::Bool), (3, "mountPath", F::Str)];
const CONTAINER: &[Field] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::RepStr),
    (4, "args", F::RepStr),
    (5, "workingDir", F::Str),
    (6, "ports", F::RepMsg(CONTAINER_PORT)),
    (7, "env", F::RepMsg(ENV_VAR)),
    (9, "volumeMounts", F::RepMsg(VOLUME_MOUNT)),
    (14, "imagePullPolicy", F::Str),
];
const POD_SPEC: &[Field] = &[
    (2, "containers", F::RepMsg(CONTAINER)),
    (3, "restartPolicy", F::Str),
    (7, "nodeSelector", F::MapStr),
    (8, "serviceAccountName", F::Str),
    (10, "nodeName", F::Str),
];
const POD_TEMPLATE: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META)), (2, "spec", F::Msg(POD_SPEC))];
const JOB: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "parallelism", F::Int),
            (2, "completions", F::Int),
            (3, "activeDeadlineSeconds", F::Int),
            (6, "template", F::Msg(POD_TEMPLATE)),
            (7, "backoffLimit", F::Int),
            (8, "ttlSecondsAfterFinished", F::Int),
        ]),
    ),
];
const DEPLOYMENT: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[(1, "replicas", F::Int), (2, "selector", F::Msg(LABEL_SELECTOR)), (3, "template", F::Msg(POD_TEMPLATE))]),
    ),
];

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn bad(msg: &str) -> ApiError {
    ApiError::bad_request(format!("could not decode protobuf body: {msg}"))
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> ApiResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }
    fn bytes(&mut self) -> ApiResult<&'a [u8]> {
        let n = self.varint()? as usize;
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| bad("truncated field"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// Next (field number, wire type, varint value or length-delimited bytes).
    fn next(&mut self) -> ApiResult<Option<(u64, u64, &'a [u8])>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        match wt {
            0 => {
                let start = self.pos;
                self.varint()?;
                Ok(Some((num, wt, &self.buf[start..self.pos])))
            }
            2 => Ok(Some((num, wt, self.bytes()?))),
            1 => {
                self.pos += 8;
                Ok(Some((num, wt, &[])))
            }
            5 => {
                self.pos += 4;
                Ok(Some((num, wt, &[])))
            }
            _ => Err(bad("unsupported wire type")),
        }
    }
}

fn varint_of(b: &[u8]) -> ApiResult<u64> {
    Reader { buf: b, pos: 0 }.varint()
}

fn map_entry(b: &[u8]) -> ApiResult<(String, Vec<u8>)> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), vec![]);
    while let Some((num, _, val)) = r.next()? {
        match num {
            1 => k = String::from_utf8_lossy(val).into_owned(),
            2 => v = val.to_vec(),
            _ => {}
        }
    }
    Ok((k, v))
}

fn decode(b: &[u8], schema: &[Field]) -> ApiResult<Value> {
    let mut r = Reader { buf: b, pos: 0 };
    let mut out = Map::new();
    while let Some((num, _, val)) = r.next()? {
        let Some((_, name, f)) = schema.iter().find(|(n, _, _)| *n == num) else { continue };
        let name = name.to_string();
        let s = || String::from_utf8_lossy(val).into_owned();
        match f {
            // Go's protobuf writes unset strings as ""; the API treats them as absent.
            F::Str if val.is_empty() => {}
            F::Str => {
                out.insert(name, json!(s()));
            }
            F::Bytes => {
                out.insert(name, json!(base64::engine::general_purpose::STANDARD.encode(val)));
            }
            F::Int => {
                out.insert(name, json!(varint_of(val)? as i64));
            }
            F::Bool => {
                out.insert(name, json!(varint_of(val)? != 0));
            }
            F::Time => {
                let t = decode(val, &[(1, "s", F::Int)])?;
                let Some(secs) = t["s"].as_i64() else { continue };
                let ts = jiff::Timestamp::from_second(secs).map_err(|e| bad(&e.to_string()))?;
                out.insert(name, json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
            }
            F::Msg(sub) => {
                out.insert(name, decode(val, sub)?);
            }
            F::MapStr | F::MapBytes => {
                let (k, v) = map_entry(val)?;
                let v = match f {
                    F::MapStr => json!(String::from_utf8_lossy(&v)),
                    _ => json!(base64::engine::general_purpose::STANDARD.encode(&v)),
                };
                out.entry(name).or_insert_with(|| json!({}))[k] = v;
            }
            F::RepStr => {
                if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(json!(s()));
                }
            }
            F::RepMsg(sub) => {
                let item = decode(val, sub)?;
                if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(item);
                }
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `k8s\0`-prefixed runtime.Unknown envelope into a JSON object.
pub fn decode_body(body: &[u8]) -> ApiResult<Value> {
    let inner = body.strip_prefix(b"k8s\0").ok_or_else(|| bad("missing k8s magic prefix"))?;
    let envelope =
        decode(inner, &[(1, "typeMeta", F::Msg(&[(1, "apiVersion", F::Str), (2, "kind", F::Str)])), (2, "raw", F::Bytes)])?;
    let kind = envelope.pointer("/typeMeta/kind").and_then(Value::as_str).unwrap_or("").to_string();
    let api_version = envelope.pointer("/typeMeta/apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(envelope["raw"].as_str().unwrap_or(""))
        .map_err(|e| bad(&e.to_string()))?;
    let schema = match kind.as_str() {
        "Namespace" => NAMESPACE,
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "Job" => JOB,
        "Deployment" => DEPLOYMENT,
        // Access reviews are answered without reading them (see server.rs).
        "SelfSubjectAccessReview" | "SubjectAccessReview" => &[],
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!("kube-sim decodes protobuf only for Namespace, ConfigMap, Secret, ServiceAccount, Job and Deployment (as kubectl create writes them), not {other}; send JSON (kubectl apply)"),
            ))
        }
    };
    let mut obj = decode(&raw, schema)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let meta = [field(1, b"s"), field(11, &[field(1, b"a").as_slice(), field(2, b"b").as_slice()].concat())].concat();
        let secret = [
            field(1, &meta),
            field(2, &[field(1, b"k").as_slice(), field(2, b"v\x00").as_slice()].concat()),
            field(3, b"Opaque"),
        ]
        .concat();
        let type_meta = [field(1, b"v1"), field(2, b"Secret")].concat();
        let body = [b"k8s\0".as_slice(), &field(1, &type_meta), &field(2, &secret)].concat();
        let o = decode_body(&body).unwrap();
        assert_eq!(o["kind"], "Secret");
        assert_eq!(o["metadata"]["name"], "s");
        assert_eq!(o["metadata"]["labels"]["a"], "b");
        assert_eq!(o["data"]["k"], "dgA=");
        assert_eq!(o["type"], "Opaque");
    }
}
