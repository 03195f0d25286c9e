//! Deployments (through ReplicaSets) and StatefulSets: create and delete pods to match replicas,
//! create StatefulSet claims from volumeClaimTemplates, and report replica counts in status.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{controlled_by, modify, owner_ref, pods::is_terminal};
use crate::store::{DeleteOpts, Part};
use crate::util::{self, is_deleting};
use crate::App;

fn replicas(o: &Value) -> i64 {
    o.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn ready(p: &Value) -> bool {
    util::condition_true(p, "Ready") && !is_deleting(p)
}

/// Pods controlled by `owner`, in the owner's namespace.
fn owned_pods(app: &App, owner: &Value) -> Vec<Arc<Value>> {
    let uid = util::uid(owner);
    app.store.list("/pods", Some(util::namespace(owner))).0.into_iter().filter(|p| controlled_by(p, uid)).collect()
}

fn pod_from_template(owner: &Value, name: Option<String>, extra_labels: &[(&str, String)]) -> Value {
    let t = owner.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let mut meta = t.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.remove("creationTimestamp");
        m.remove("name");
    }
    match name {
        Some(n) => meta["name"] = json!(n),
        None => meta["generateName"] = json!(format!("{}-", util::name(owner))),
    }
    for (k, v) in extra_labels {
        util::ensure_obj(&mut meta, &["labels"]).insert(k.to_string(), json!(v));
    }
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t.get("spec").cloned().unwrap_or(json!({}))})
}

pub async fn reconcile(app: Arc<App>) {
    for d in app.store.list("apps/deployments", None).0 {
        if !is_deleting(&d) {
            deployment(&app, &d);
        }
    }
    for rs in app.store.list("apps/replicasets", None).0 {
        if !is_deleting(&rs) {
            replicaset(&app, &rs).await;
        }
    }
    for s in app.store.list("apps/statefulsets", None).0 {
        if !is_deleting(&s) {
            statefulset(&app, &s).await;
        }
    }
}

fn deployment(app: &App, d: &Value) {
    let (ns, name, uid) = (util::namespace(d), util::name(d), util::uid(d));
    let hash = util::short_hash(d.pointer("/spec/template").unwrap_or(&Value::Null));
    let rs_name = format!("{name}-{hash}");
    let rs_rt = app.builtin("apps/replicasets");
    let owned: Vec<Arc<Value>> =
        app.store.list("apps/replicasets", Some(ns)).0.into_iter().filter(|r| controlled_by(r, uid)).collect();
    let want = replicas(d);
    // The current template's ReplicaSet gets all replicas; older ones are scaled to zero.
    if !owned.iter().any(|r| util::name(r) == rs_name) {
        let mut template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        util::ensure_obj(&mut template, &["metadata", "labels"]).insert("pod-template-hash".into(), json!(hash));
        let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
        util::ensure_obj(&mut selector, &["matchLabels"]).insert("pod-template-hash".into(), json!(hash));
        let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        labels["pod-template-hash"] = json!(hash);
        let rs = json!({
            "metadata": {"name": rs_name, "labels": labels, "ownerReferences": [owner_ref(d)],
                "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": want, "selector": selector, "template": template},
        });
        if let Err(e) = app.store.create(&rs_rt, ns, rs) {
            tracing::debug!(error = %e, "creating replicaset");
        }
    }
    for r in &owned {
        let target = if util::name(r) == rs_name { want } else { 0 };
        if replicas(r) != target {
            let _ = modify(app, "apps/replicasets", ns, util::name(r), Part::Main, |r| r["spec"]["replicas"] = json!(target));
        }
    }
    let sum =
        |f: &str| owned.iter().map(|r| r.pointer(&format!("/status/{f}")).and_then(Value::as_i64).unwrap_or(0)).sum::<i64>();
    let (total, ready_n) = (sum("replicas"), sum("readyReplicas"));
    let updated = owned
        .iter()
        .find(|r| util::name(r) == rs_name)
        .and_then(|r| r.pointer("/status/replicas").and_then(Value::as_i64))
        .unwrap_or(0);
    let gen = d.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let _ = modify(app, "apps/deployments", ns, name, Part::Status, |d| {
        d["status"]["observedGeneration"] = gen.clone();
        d["status"]["replicas"] = json!(total);
        d["status"]["readyReplicas"] = json!(ready_n);
        d["status"]["availableReplicas"] = json!(ready_n);
        d["status"]["updatedReplicas"] = json!(updated);
        d["status"]["unavailableReplicas"] = json!((want - ready_n).max(0));
        if ready_n >= want {
            util::set_condition(d, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.");
        } else {
            util::set_condition(
                d,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            );
        }
        util::set_condition(
            d,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
        );
        if let Some(cs) = d.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("lastProbeTime");
                }
            }
        }
    });
}

async fn replicaset(app: &Arc<App>, rs: &Value) {
    let (ns, name) = (util::namespace(rs), util::name(rs));
    let pods = owned_pods(app, rs);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !is_deleting(p) && !is_terminal(p)).collect();
    let want = replicas(rs) as usize;
    let pod_rt = app.builtin("/pods");
    if active.len() < want {
        for _ in active.len()..want {
            let hash = util::str_at(rs, "/metadata/labels/pod-template-hash").unwrap_or("").to_string();
            let extra: Vec<(&str, String)> = if hash.is_empty() { vec![] } else { vec![("pod-template-hash", hash)] };
            let pod = pod_from_template(rs, None, &extra);
            if let Err(e) = app.create(&pod_rt, ns, pod).await {
                tracing::warn!(replicaset = %format!("{ns}/{name}"), error = %e, "creating pod");
                super::record_event(
                    app,
                    rs,
                    "Warning",
                    "FailedCreate",
                    &format!("Error creating: {}", e.message),
                    "replicaset-controller",
                );
                break;
            }
        }
    } else if active.len() > want {
        // Unready pods go first, then the newest.
        let mut victims = active.clone();
        victims.sort_by_key(|p| {
            (ready(p), std::cmp::Reverse(util::str_at(p, "/metadata/creationTimestamp").unwrap_or("").to_string()))
        });
        for p in victims.into_iter().take(active.len() - want) {
            let _ = app.store.delete(&pod_rt, ns, util::name(p), &DeleteOpts::default());
        }
    }
    let pods = owned_pods(app, rs);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !is_deleting(p) && !is_terminal(p)).collect();
    let ready_n = active.iter().filter(|p| ready(p)).count();
    let gen = rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let _ = modify(app, "apps/replicasets", ns, name, Part::Status, |r| {
        r["status"] = json!({
            "replicas": active.len(), "fullyLabeledReplicas": active.len(), "readyReplicas": ready_n,
            "availableReplicas": ready_n, "observedGeneration": gen,
        });
    });
}

async fn statefulset(app: &Arc<App>, s: &Value) {
    let (ns, name) = (util::namespace(s), util::name(s));
    let want = replicas(s);
    let parallel = util::str_at(s, "/spec/podManagementPolicy") == Some("Parallel");
    let revision = format!("{name}-{}", util::short_hash(s.pointer("/spec/template").unwrap_or(&Value::Null)));
    let pods = owned_pods(app, s);
    let pod_rt = app.builtin("/pods");
    let pvc_rt = app.builtin("/persistentvolumeclaims");
    let by_ordinal = |i: i64| pods.iter().find(|p| util::name(p) == format!("{name}-{i}"));
    let templates = s.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array).cloned().unwrap_or_default();
    let delete_claims = util::str_at(s, "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted") == Some("Delete");
    for i in 0..want {
        if let Some(p) = by_ordinal(i) {
            // Pods from an older template are replaced, highest ordinal first, one at a time.
            let stale = util::str_at(p, "/metadata/labels/controller-revision-hash").is_some_and(|r| r != revision);
            if stale && !is_deleting(p) && (i + 1..want).all(|j| by_ordinal(j).is_some_and(|q| ready(q))) {
                let _ = app.store.delete(&pod_rt, ns, util::name(p), &DeleteOpts::default());
                break;
            }
            if !parallel && !ready(p) {
                break;
            }
            continue;
        }
        for t in &templates {
            let claim = format!("{}-{name}-{i}", util::name(t));
            if app.store.get("/persistentvolumeclaims", ns, &claim).is_none() {
                let mut pvc = json!({"metadata": {"name": claim}, "spec": t.get("spec").cloned().unwrap_or(json!({}))});
                if let Some(l) = s.pointer("/spec/selector/matchLabels") {
                    pvc["metadata"]["labels"] = l.clone();
                }
                if delete_claims {
                    let mut r = owner_ref(s);
                    r["controller"] = json!(false);
                    pvc["metadata"]["ownerReferences"] = json!([r]);
                }
                if let Err(e) = app.store.create(&pvc_rt, ns, pvc) {
                    tracing::warn!(error = %e, "creating statefulset claim");
                }
            }
        }
        let pod_name = format!("{name}-{i}");
        let mut pod = pod_from_template(
            s,
            Some(pod_name.clone()),
            &[
                ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                ("apps.kubernetes.io/pod-index", i.to_string()),
                ("controller-revision-hash", revision.clone()),
            ],
        );
        pod["spec"]["hostname"] = json!(pod_name);
        let vols = util::ensure_obj(&mut pod, &["spec"]).entry("volumes").or_insert_with(|| json!([]));
        if let Some(vols) = vols.as_array_mut() {
            for t in &templates {
                let tname = util::name(t);
                vols.retain(|v| v["name"] != tname);
                vols.push(json!({"name": tname, "persistentVolumeClaim": {"claimName": format!("{tname}-{name}-{i}")}}));
            }
        }
        if let Err(e) = app.create(&pod_rt, ns, pod).await {
            if e.reason != "AlreadyExists" {
                tracing::warn!(error = %e, "creating statefulset pod");
                super::record_event(
                    app,
                    s,
                    "Warning",
                    "FailedCreate",
                    &format!("create Pod {pod_name} in StatefulSet {name} failed error: {}", e.message),
                    "statefulset-controller",
                );
            }
        }
        if !parallel {
            break;
        }
    }
    // Scale down from the highest ordinal; OrderedReady waits for each pod to be gone.
    let ordinal = |p: &Value| util::name(p).rsplit('-').next().and_then(|o| o.parse::<i64>().ok()).unwrap_or(-1);
    let terminating = pods.iter().any(|p| ordinal(p) >= want && is_deleting(p));
    let mut extra: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| {
            let ord = util::name(p).rsplit('-').next().and_then(|o| o.parse::<i64>().ok()).unwrap_or(-1);
            ord >= want && !is_deleting(p)
        })
        .collect();
    extra.sort_by_key(|p| std::cmp::Reverse(util::name(p).rsplit('-').next().and_then(|o| o.parse::<i64>().ok()).unwrap_or(0)));
    let batch = if parallel {
        usize::MAX
    } else if terminating {
        0
    } else {
        1
    };
    for p in extra.into_iter().take(batch) {
        let _ = app.store.delete(&pod_rt, ns, util::name(p), &DeleteOpts::default());
    }
    let pods = owned_pods(app, s);
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !is_deleting(p) && !is_terminal(p)).collect();
    let ready_n = active.iter().filter(|p| ready(p)).count();
    let current =
        active.iter().filter(|p| util::str_at(p, "/metadata/labels/controller-revision-hash") == Some(revision.as_str())).count();
    let gen = s.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let _ = modify(app, "apps/statefulsets", ns, name, Part::Status, |st| {
        st["status"] = json!({
            "replicas": active.len(), "readyReplicas": ready_n, "availableReplicas": ready_n,
            "currentReplicas": current, "updatedReplicas": current, "currentRevision": revision,
            "updateRevision": revision, "observedGeneration": gen, "collisionCount": 0,
        });
    });
}
