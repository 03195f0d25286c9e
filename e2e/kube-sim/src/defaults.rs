//! Per-kind defaulting done by the API server on writes (the fields clients expect to find).

use base64::Engine;
use serde_json::{json, Value};

use crate::resources::ResourceType;
use crate::util::{self, ensure_obj};

fn default(o: &mut Value, ptr: &[&str], v: Value) {
    let (last, parents) = ptr.split_last().expect("non-empty path");
    let m = ensure_obj(o, parents);
    if m.get(*last).is_none_or(Value::is_null) {
        m.insert(last.to_string(), v);
    }
}

fn pod_spec(spec: &mut Value) {
    default(spec, &["restartPolicy"], json!("Always"));
    default(spec, &["terminationGracePeriodSeconds"], json!(30));
    default(spec, &["dnsPolicy"], json!("ClusterFirst"));
    default(spec, &["schedulerName"], json!("default-scheduler"));
    default(spec, &["serviceAccountName"], json!("default"));
    default(spec, &["securityContext"], json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                default(c, &["terminationMessagePath"], json!("/dev/termination-log"));
                default(c, &["terminationMessagePolicy"], json!("File"));
                default(c, &["imagePullPolicy"], json!("IfNotPresent"));
                default(c, &["resources"], json!({}));
            }
        }
    }
}

fn template(o: &mut Value) {
    if let Some(spec) = o.pointer_mut("/spec/template/spec") {
        pod_spec(spec);
    }
}

pub fn on_create(rt: &ResourceType, o: &mut Value) {
    match rt.key().as_str() {
        "/namespaces" => {
            let name = util::name(o).to_string();
            ensure_obj(o, &["metadata", "labels"]).insert("kubernetes.io/metadata.name".into(), json!(name));
            o["spec"] = json!({"finalizers": ["kubernetes"]});
            o["status"] = json!({"phase": "Active"});
        }
        "/pods" => {
            if let Some(spec) = o.get_mut("spec") {
                pod_spec(spec);
            }
            o["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        "/persistentvolumeclaims" => {
            default(o, &["spec", "volumeMode"], json!("Filesystem"));
            default(o, &["spec", "storageClassName"], json!("standard"));
            o["status"] = json!({"phase": "Pending"});
        }
        "/persistentvolumes" => {
            default(o, &["spec", "persistentVolumeReclaimPolicy"], json!("Retain"));
            default(o, &["spec", "volumeMode"], json!("Filesystem"));
            o["status"] = json!({"phase": "Available"});
        }
        "/nodes" => {}
        "apps/deployments" => {
            default(o, &["spec", "replicas"], json!(1));
            default(o, &["spec", "revisionHistoryLimit"], json!(10));
            default(o, &["spec", "progressDeadlineSeconds"], json!(600));
            default(
                o,
                &["spec", "strategy"],
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
            );
            template(o);
        }
        "apps/replicasets" => {
            default(o, &["spec", "replicas"], json!(1));
            template(o);
        }
        "apps/statefulsets" => {
            default(o, &["spec", "replicas"], json!(1));
            default(o, &["spec", "podManagementPolicy"], json!("OrderedReady"));
            default(o, &["spec", "revisionHistoryLimit"], json!(10));
            default(o, &["spec", "updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
            default(
                o,
                &["spec", "persistentVolumeClaimRetentionPolicy"],
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            template(o);
        }
        "batch/jobs" => {
            default(o, &["spec", "backoffLimit"], json!(6));
            default(o, &["spec", "completions"], json!(1));
            default(o, &["spec", "parallelism"], json!(1));
            default(o, &["spec", "completionMode"], json!("NonIndexed"));
            default(o, &["spec", "suspend"], json!(false));
            default(o, &["spec", "podReplacementPolicy"], json!("TerminatingOrFailed"));
            default(o, &["spec", "manualSelector"], json!(false));
            // The API server labels the pod template and selects on the Job's uid.
            let uid = util::uid(o).to_string();
            let name = util::name(o).to_string();
            let labels = ensure_obj(o, &["spec", "template", "metadata", "labels"]);
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", &uid),
                ("batch.kubernetes.io/job-name", &name),
                ("controller-uid", &uid),
                ("job-name", &name),
            ] {
                labels.insert(k.into(), json!(v));
            }
            if o.pointer("/spec/selector").is_none() {
                o["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
            }
            default(o, &["spec", "template", "spec", "restartPolicy"], json!("Never"));
            template(o);
        }
        "/secrets" => secret(o),
        "/services" => {
            default(o, &["spec", "type"], json!("ClusterIP"));
            default(o, &["spec", "clusterIP"], json!("10.96.0.10"));
        }
        "apiextensions.k8s.io/customresourcedefinitions" => {
            if let Some(names) = o.pointer_mut("/spec/names") {
                let kind = names["kind"].as_str().unwrap_or("").to_string();
                default(names, &["singular"], json!(kind.to_lowercase()));
                default(names, &["listKind"], json!(format!("{kind}List")));
            }
        }
        _ => {}
    }
}

pub fn on_update(rt: &ResourceType, old: &Value, o: &mut Value) {
    match rt.key().as_str() {
        "/secrets" => secret(o),
        "/namespaces" => {
            o["spec"] = old["spec"].clone();
        }
        "apiextensions.k8s.io/customresourcedefinitions" => {
            if o.get("status").is_none_or(Value::is_null) {
                o["status"] = old["status"].clone();
            }
            crd_established(o);
        }
        "/pods" => {
            if let Some(spec) = o.get_mut("spec") {
                pod_spec(spec);
            }
        }
        "apps/deployments" | "apps/replicasets" | "apps/statefulsets" | "batch/jobs" => template(o),
        _ => {}
    }
}

/// Folds `stringData` into base64 `data`, as the API server does.
fn secret(o: &mut Value) {
    default(o, &["type"], json!("Opaque"));
    if let Some(sd) = o.as_object_mut().and_then(|m| m.remove("stringData")) {
        let data = ensure_obj(o, &["data"]);
        for (k, v) in sd.as_object().into_iter().flatten() {
            let s = v.as_str().unwrap_or("");
            data.insert(k.clone(), json!(base64::engine::general_purpose::STANDARD.encode(s)));
        }
    }
}

/// A CRD is accepted and established as soon as it is stored: names cannot clash here.
pub fn crd_established(o: &mut Value) {
    let names = o.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let versions: Vec<Value> = o
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter(|v| v["storage"] == true).filter_map(|v| v.get("name").cloned()).collect())
        .unwrap_or_default();
    o["status"]["acceptedNames"] = names;
    o["status"]["storedVersions"] = Value::Array(versions);
    util::set_condition(o, "NamesAccepted", "True", "NoConflicts", "no conflicts found");
    util::set_condition(o, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted");
    // lastProbeTime is not part of CRD conditions.
    if let Some(cs) = o.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
        for c in cs {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastProbeTime");
            }
        }
    }
}
