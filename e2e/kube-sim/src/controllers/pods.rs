//! Scheduler and kubelet in one: binds pods to nodes (honouring schedulingGates, nodeName,
//! nodeSelector and hostname affinity), attaches volumes with ReadWriteOnce enforcement, starts
//! pods (run-to-completion pods through the process runner) and finishes graceful deletion.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::{modify, record_event, runner};
use crate::store::{DeleteOpts, Part};
use crate::util::{self, is_deleting, now_rfc3339};
use crate::App;

pub fn is_terminal(p: &Value) -> bool {
    matches!(util::str_at(p, "/status/phase"), Some("Succeeded" | "Failed"))
}

fn runs_to_completion(p: &Value) -> bool {
    util::str_at(p, "/spec/restartPolicy").unwrap_or("Always") != "Always"
}

/// Pods whose process the runner starts: run-to-completion pods, and long-running ones that ask
/// for it with this annotation (an application writing to its volume while it is backed up).
/// Others only look like they run, so that scenarios need no real program in every app pod.
pub const RUN_PROCESS_ANNOTATION: &str = "kube-sim.datarestor.test/run-process";

fn runs_a_process(p: &Value) -> bool {
    runs_to_completion(p)
        || util::str_at(p, &format!("/metadata/annotations/{}", RUN_PROCESS_ANNOTATION.replace('/', "~1"))) == Some("true")
}

pub fn claim_names(p: &Value) -> Vec<String> {
    p.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// After a (simulated) restart no process survives: run-to-completion pods that were running fail.
pub fn mark_lost_processes(app: &App) {
    let (pods, _) = app.store.list("/pods", None);
    for p in pods {
        if runs_to_completion(&p)
            && util::str_at(&p, "/status/phase") == Some("Running")
            && !app.processes.is_running(util::uid(&p))
        {
            let _ = modify(app, "/pods", util::namespace(&p), util::name(&p), Part::Status, |p| {
                p["status"]["phase"] = json!("Failed");
                p["status"]["reason"] = json!("ProcessLost");
                p["status"]["message"] = json!("the process was lost when kube-sim restarted");
            });
        }
    }
}

/// Nodes that accept new pods (not cordoned).
fn node_names(app: &App) -> Vec<String> {
    app.store
        .list("/nodes", None)
        .0
        .iter()
        .filter(|n| n.pointer("/spec/unschedulable") != Some(&Value::Bool(true)))
        .map(|n| util::name(n).to_string())
        .collect()
}

/// The node a pod must run on, if it pins one through nodeSelector, hostname node affinity, or a
/// required pod affinity on the hostname topology (co-location with running pods).
fn pinned_node(app: &App, p: &Value) -> Option<String> {
    if let Some(h) = p.pointer("/spec/nodeSelector/kubernetes.io~1hostname").and_then(Value::as_str) {
        return Some(h.to_string());
    }
    let pod_terms =
        p.pointer("/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution").and_then(Value::as_array);
    for t in pod_terms.into_iter().flatten() {
        if t["topologyKey"] != "kubernetes.io/hostname" {
            continue;
        }
        let sel = crate::selectors::LabelSelector::from_object(&t["labelSelector"]);
        let (pods, _) = app.store.list("/pods", Some(util::namespace(p)));
        let node = pods
            .iter()
            .find(|o| util::uid(o) != util::uid(p) && !is_terminal(o) && !is_deleting(o) && sel.matches(&util::labels(o)));
        if let Some(n) = node.and_then(|o| util::str_at(o, "/spec/nodeName")) {
            return Some(n.to_string());
        }
    }
    let terms = p.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?;
    for t in terms.as_array()? {
        for e in t["matchExpressions"].as_array().into_iter().flatten().chain(t["matchFields"].as_array().into_iter().flatten()) {
            let key = e["key"].as_str().unwrap_or("");
            if (key == "kubernetes.io/hostname" || key == "metadata.name") && e["operator"] == "In" {
                if let Some(v) = e["values"].get(0).and_then(Value::as_str) {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

fn pending_reason(app: &App, p: &Value) -> Option<String> {
    let ns = util::namespace(p);
    for c in claim_names(p) {
        match app.store.get("/persistentvolumeclaims", ns, &c) {
            None => return Some(format!("persistentvolumeclaim \"{c}\" not found")),
            Some(pvc) if util::str_at(&pvc, "/status/phase") != Some("Bound") => {
                return Some("pod has unbound immediate PersistentVolumeClaims".into())
            }
            _ => {}
        }
    }
    None
}

pub async fn reconcile(app: Arc<App>) {
    let (pods, _) = app.store.list("/pods", None);
    app.processes.kill_orphans(&pods.iter().map(|p| util::uid(p)).collect());
    let nodes = node_names(&app);
    let mut load: HashMap<String, usize> = nodes.iter().map(|n| (n.clone(), 0)).collect();
    for p in pods.iter().filter(|p| !is_terminal(p)) {
        if let Some(n) = util::str_at(p, "/spec/nodeName") {
            *load.entry(n.to_string()).or_default() += 1;
        }
    }
    let all_nodes: std::collections::HashSet<String> =
        app.store.list("/nodes", None).0.iter().map(|n| util::name(n).to_string()).collect();
    for p in &pods {
        let (ns, name) = (util::namespace(p), util::name(p));
        // Pods bound to a node that no longer exists are removed (the pod garbage collector).
        if util::str_at(p, "/spec/nodeName").is_some_and(|n| !n.is_empty() && !all_nodes.contains(n)) {
            app.processes.kill(util::uid(p));
            let opts = DeleteOpts { grace_seconds: Some(0), ..Default::default() };
            let _ = app.store.delete(&app.builtin("/pods"), ns, name, &opts);
            continue;
        }
        if is_deleting(p) {
            terminate(&app, p);
            continue;
        }
        if is_terminal(p) {
            continue;
        }
        let node = util::str_at(p, "/spec/nodeName").unwrap_or("").to_string();
        if node.is_empty() {
            schedule(&app, p, &nodes, &mut load);
            continue;
        }
        if util::str_at(p, "/status/phase") != Some("Pending") {
            if runs_to_completion(p)
                && !app.processes.is_running(util::uid(p))
                && util::str_at(p, "/status/phase") == Some("Running")
            {
                // The process finished between our list and now; its own status write wins.
                continue;
            }
            continue;
        }
        if let Some(conflict) = multi_attach(&app, p, &node) {
            let msg = format!("Multi-Attach error for volume \"{}\" Volume is already used by pod(s) {}", conflict.0, conflict.1);
            let already =
                p.pointer("/status/containerStatuses/0/state/waiting/message").and_then(Value::as_str) == Some(msg.as_str());
            if !already {
                record_event(&app, p, "Warning", "FailedAttachVolume", &msg, "attachdetach-controller");
                let _ = modify(&app, "/pods", ns, name, Part::Status, |p| set_waiting(p, "ContainerCreating", &msg));
            }
            continue;
        }
        start(&app, p, &node);
    }
}

fn set_waiting(p: &mut Value, reason: &str, message: &str) {
    let cs: Vec<Value> = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": false, "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": reason, "message": message}},
            })
        })
        .collect();
    p["status"]["containerStatuses"] = Value::Array(cs);
}

fn schedule(app: &App, p: &Value, nodes: &[String], load: &mut HashMap<String, usize>) {
    let (ns, name) = (util::namespace(p), util::name(p));
    let gated = p.pointer("/spec/schedulingGates").and_then(Value::as_array).is_some_and(|g| !g.is_empty());
    if gated {
        let _ = modify(app, "/pods", ns, name, Part::Status, |p| {
            util::set_condition(
                p,
                "PodScheduled",
                "False",
                "SchedulingGated",
                "Scheduling is blocked due to non-empty scheduling gates",
            );
        });
        return;
    }
    if let Some(why) = pending_reason(app, p) {
        let _ = modify(app, "/pods", ns, name, Part::Status, |p| {
            util::set_condition(p, "PodScheduled", "False", "Unschedulable", &why);
        });
        return;
    }
    let node = match pinned_node(app, p) {
        Some(n) if nodes.contains(&n) => n,
        Some(n) => {
            let msg = format!("0/{} nodes are available: node \"{n}\" not found", nodes.len());
            let _ = modify(app, "/pods", ns, name, Part::Status, |p| {
                util::set_condition(p, "PodScheduled", "False", "Unschedulable", &msg);
            });
            return;
        }
        None => match nodes.iter().min_by_key(|n| load.get(*n).copied().unwrap_or(0)) {
            Some(n) => n.clone(),
            None => return,
        },
    };
    *load.entry(node.clone()).or_default() += 1;
    let _ = modify(app, "/pods", ns, name, Part::Main, |p| p["spec"]["nodeName"] = json!(node));
    let _ = modify(app, "/pods", ns, name, Part::Status, |p| {
        util::set_condition(p, "PodScheduled", "True", "", "");
    });
}

/// An RWO claim of `p` attached to a pod on another node: (claim, other pod).
fn multi_attach(app: &App, p: &Value, node: &str) -> Option<(String, String)> {
    let ns = util::namespace(p);
    let claims = claim_names(p);
    if claims.is_empty() {
        return None;
    }
    let (others, _) = app.store.list("/pods", Some(ns));
    for c in claims {
        let pvc = app.store.get("/persistentvolumeclaims", ns, &c)?;
        let modes = pvc.pointer("/spec/accessModes").and_then(Value::as_array).cloned().unwrap_or_default();
        let rwo =
            modes.iter().any(|m| m == "ReadWriteOnce") && !modes.iter().any(|m| m == "ReadWriteMany" || m == "ReadOnlyMany");
        if !rwo {
            continue;
        }
        for o in others.iter() {
            let holds = util::uid(o) != util::uid(p)
                && !is_terminal(o)
                && util::str_at(o, "/status/phase") == Some("Running")
                && util::str_at(o, "/spec/nodeName").is_some_and(|n| n != node)
                && claim_names(o).contains(&c);
            if holds {
                return Some((c.clone(), util::name(o).to_string()));
            }
        }
    }
    None
}

fn start(app: &Arc<App>, p: &Value, node: &str) {
    let (ns, name) = (util::namespace(p), util::name(p));
    let now = now_rfc3339();
    if runs_a_process(p) {
        if let Err(msg) = runner::start(app.clone(), p) {
            let reason = if msg.contains("no command") { "RunContainerError" } else { "CreateContainerConfigError" };
            let already =
                p.pointer("/status/containerStatuses/0/state/waiting/message").and_then(Value::as_str) == Some(msg.as_str());
            if !already {
                record_event(app, p, "Warning", "Failed", &format!("Error: {msg}"), "kubelet");
                let _ = modify(app, "/pods", ns, name, Part::Status, |p| set_waiting(p, reason, &msg));
            }
            return;
        }
    }
    let uid = util::uid(p).to_string();
    let ready = "True";
    let ip = {
        let b = uid.as_bytes();
        format!("10.244.{}.{}", b.first().copied().unwrap_or(0) % 250, b.get(1).copied().unwrap_or(0) % 250 + 2)
    };
    let _ = modify(app, "/pods", ns, name, Part::Status, |p| {
        if util::uid(p) != uid || util::str_at(p, "/status/phase") != Some("Pending") {
            return;
        }
        p["status"]["phase"] = json!("Running");
        p["status"]["hostIP"] = json!("10.0.0.1");
        p["status"]["podIP"] = json!(ip);
        p["status"]["podIPs"] = json!([{"ip": ip}]);
        p["status"]["startTime"] = json!(now);
        let cs: Vec<Value> = p
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "", "containerID": format!("sim://{uid}"),
                    "ready": ready == "True", "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": now}},
                })
            })
            .collect();
        p["status"]["containerStatuses"] = Value::Array(cs);
        util::set_condition(p, "PodReadyToStartContainers", "True", "", "");
        util::set_condition(p, "Initialized", "True", "", "");
        util::set_condition(p, "Ready", ready, "", "");
        util::set_condition(p, "ContainersReady", ready, "", "");
        util::set_condition(p, "PodScheduled", "True", "", "");
    });
    tracing::debug!(pod = %format!("{ns}/{name}"), %node, "pod started");
}

/// Graceful deletion: the pod turns unready at once, its process is killed, and it disappears
/// when the grace period is over (or at once if it never ran).
fn terminate(app: &App, p: &Value) {
    let (ns, name, uid) = (util::namespace(p), util::name(p), util::uid(p));
    app.processes.kill(uid);
    let grace = p.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
    if grace > 0 && util::condition_true(p, "Ready") {
        let _ = modify(app, "/pods", ns, name, Part::Status, |p| {
            util::set_condition(p, "Ready", "False", "PodTerminating", "");
            util::set_condition(p, "ContainersReady", "False", "PodTerminating", "");
        });
    }
    let due = util::str_at(p, "/metadata/deletionTimestamp").is_none_or(|t| util::seconds_since(t) >= 0.0);
    if grace == 0 || due {
        let rt = app.builtin("/pods");
        let opts = DeleteOpts { grace_seconds: Some(0), ..Default::default() };
        let _ = app.store.delete(&rt, ns, name, &opts);
    }
}
