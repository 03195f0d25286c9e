//! The Job controller: runs pods until enough succeed, retries failures up to backoffLimit,
//! enforces activeDeadlineSeconds, and deletes finished Jobs after ttlSecondsAfterFinished.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{controlled_by, modify, owner_ref, pods::is_terminal};
use crate::store::{DeleteOpts, Part};
use crate::util::{self, condition_true, is_deleting, now_rfc3339};
use crate::App;

fn int(o: &Value, ptr: &str, default: i64) -> i64 {
    o.pointer(ptr).and_then(Value::as_i64).unwrap_or(default)
}

fn finished_at(job: &Value) -> Option<String> {
    job.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
}

pub async fn reconcile(app: Arc<App>) {
    for job in app.store.list("batch/jobs", None).0 {
        if is_deleting(&job) {
            continue;
        }
        if let Some(at) = finished_at(&job) {
            if let Some(ttl) = job.pointer("/spec/ttlSecondsAfterFinished").and_then(Value::as_i64) {
                if util::seconds_since(&at) >= ttl as f64 {
                    let rt = app.builtin("batch/jobs");
                    let opts = DeleteOpts { propagation: Some("Background".into()), ..Default::default() };
                    let _ = app.store.delete(&rt, util::namespace(&job), util::name(&job), &opts);
                }
            }
            continue;
        }
        if job.pointer("/spec/suspend") == Some(&json!(true)) {
            continue;
        }
        run(&app, &job).await;
    }
}

async fn run(app: &Arc<App>, job: &Value) {
    let (ns, name, uid) = (util::namespace(job), util::name(job), util::uid(job));
    let pod_rt = app.builtin("/pods");
    let pods: Vec<Arc<Value>> = app.store.list("/pods", Some(ns)).0.into_iter().filter(|p| controlled_by(p, uid)).collect();
    let active: Vec<&Arc<Value>> = pods.iter().filter(|p| !is_terminal(p) && !is_deleting(p)).collect();
    let phase = |ph: &str| pods.iter().filter(|p| util::str_at(p, "/status/phase") == Some(ph)).count() as i64;
    // With restartPolicy OnFailure, failures are container restarts inside the pods.
    let restarts: i64 =
        pods.iter().filter_map(|p| p.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_i64)).sum();
    let (succeeded, failed) = (phase("Succeeded"), phase("Failed") + restarts);
    let completions = int(job, "/spec/completions", 1);
    let parallelism = int(job, "/spec/parallelism", 1);
    let backoff = int(job, "/spec/backoffLimit", 6);
    let start = util::str_at(job, "/status/startTime").map(str::to_string).unwrap_or_else(now_rfc3339);
    let deadline = job.pointer("/spec/activeDeadlineSeconds").and_then(Value::as_i64);

    let outcome: Option<(&str, &str, &str)> = if succeeded >= completions {
        Some(("Complete", "CompletionsReached", "Reached expected number of succeeded pods"))
    } else if failed > backoff {
        Some(("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    } else if deadline.is_some_and(|d| util::seconds_since(&start) >= d as f64) {
        Some(("Failed", "DeadlineExceeded", "Job was active longer than specified deadline"))
    } else {
        None
    };
    let mut created = 0;
    if outcome.is_some_and(|o| o.0 == "Failed") {
        for p in &active {
            let _ = app.store.delete(&pod_rt, ns, util::name(p), &DeleteOpts::default());
        }
    } else if outcome.is_none() {
        let want = parallelism.min(completions - succeeded) - active.len() as i64;
        for _ in 0..want.max(0) {
            let t = job.pointer("/spec/template").cloned().unwrap_or(json!({}));
            let mut meta = t.get("metadata").cloned().unwrap_or(json!({}));
            meta["generateName"] = json!(format!("{name}-"));
            meta["ownerReferences"] = json!([owner_ref(job)]);
            let pod = json!({"metadata": meta, "spec": t.get("spec").cloned().unwrap_or(json!({}))});
            match app.create(&pod_rt, ns, pod).await {
                Ok(_) => created += 1,
                Err(e) => {
                    super::record_event(
                        app,
                        job,
                        "Warning",
                        "FailedCreate",
                        &format!("Error creating: {}", e.message),
                        "job-controller",
                    );
                    break;
                }
            }
        }
    }
    let still_active = if outcome.is_some() { 0 } else { active.len() as i64 + created };
    let ready = active.iter().filter(|p| condition_true(p, "Ready")).count();
    let _ = modify(app, "batch/jobs", ns, name, Part::Status, |j| {
        j["status"]["startTime"] = json!(start);
        j["status"]["active"] = json!(still_active);
        j["status"]["succeeded"] = json!(succeeded);
        j["status"]["failed"] = json!(failed);
        j["status"]["ready"] = json!(ready);
        j["status"]["terminating"] = json!(0);
        j["status"]["uncountedTerminatedPods"] = json!({});
        if let Some((ty, reason, msg)) = outcome {
            let interim = if ty == "Complete" { "SuccessCriteriaMet" } else { "FailureTarget" };
            util::set_condition(j, interim, "True", reason, msg);
            util::set_condition(j, ty, "True", reason, msg);
            if ty == "Complete" {
                j["status"]["completionTime"] = json!(now_rfc3339());
            }
        }
    });
    if let Some((ty, reason, msg)) = outcome {
        let kind = if ty == "Complete" { "Normal" } else { "Warning" };
        super::record_event(app, job, kind, if ty == "Complete" { "Completed" } else { reason }, msg, "job-controller");
    }
}
