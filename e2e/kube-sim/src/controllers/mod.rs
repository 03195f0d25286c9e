//! The simulated cluster: each controller is a loop that re-examines its objects whenever one of
//! the kinds it watches changes (bursts coalesced) and on a timer for time-based work.

pub mod gc;
pub mod jobs;
pub mod pods;
pub mod pvc;
pub mod runner;
pub mod workloads;

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::error::ApiResult;
use crate::store::Part;
use crate::{util, App};

pub fn spawn_all(app: Arc<App>) {
    pods::mark_lost_processes(&app);
    spawn_loop(app.clone(), &["/persistentvolumeclaims", "/persistentvolumes", "/pods"], pvc::reconcile);
    spawn_loop(
        app.clone(),
        &["apps/deployments", "apps/replicasets", "apps/statefulsets", "/pods", "/persistentvolumeclaims"],
        workloads::reconcile,
    );
    spawn_loop(app.clone(), &["/pods", "/persistentvolumeclaims", "/nodes"], pods::reconcile);
    spawn_loop(app.clone(), &["batch/jobs", "/pods"], jobs::reconcile);
    spawn_loop(app.clone(), &[GC_EVENTS], gc::reconcile);
    let saver = app.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if !saver.down.load(Ordering::SeqCst) {
                if let Err(e) = saver.store.save_if_dirty() {
                    tracing::error!(error = %e, "saving state");
                }
            }
        }
    });
}

/// Pseudo-key for the garbage collector: it only cares about deletions.
const GC_EVENTS: &str = "<deletions>";

fn spawn_loop<F, Fut>(app: Arc<App>, keys: &'static [&'static str], f: F)
where
    F: Fn(Arc<App>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut rx = app.store.subscribe();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let relevant = |ev: &crate::store::Event| {
            keys.iter().any(|x| {
                *x == ev.key || (*x == GC_EVENTS && (ev.etype == crate::store::EventType::Deleted || util::is_deleting(&ev.obj)))
            })
        };
        loop {
            let dirty = tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => relevant(&ev),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => true,
            };
            if !dirty || app.down.load(Ordering::SeqCst) {
                continue;
            }
            while let Ok(_) | Err(TryRecvError::Lagged(_)) = rx.try_recv() {}
            let started = std::time::Instant::now();
            f(app.clone()).await;
            // Passes are O(objects): under a flood of writes, spend at most half the time in them.
            tokio::time::sleep(started.elapsed().clamp(Duration::from_millis(10), Duration::from_millis(500))).await;
        }
    });
}

/// Read-modify-write of an object's status (or main part), retried on conflicts.
pub fn modify(app: &App, key: &str, ns: &str, name: &str, part: Part, f: impl Fn(&mut Value)) -> ApiResult<Option<Value>> {
    let rt = app.builtin(key);
    for _ in 0..10 {
        let Some(cur) = app.store.get(key, ns, name) else { return Ok(None) };
        let mut n = (*cur).clone();
        f(&mut n);
        if n == *cur {
            return Ok(Some(n));
        }
        match app.store.update(&rt, ns, name, n, part) {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Records a core/v1 Event about `obj`.
pub fn record_event(app: &App, obj: &Value, type_: &str, reason: &str, message: &str, component: &str) {
    let rt = app.builtin("/events");
    let now = util::now_rfc3339();
    let ns = match util::namespace(obj) {
        "" => "default",
        n => n,
    };
    let ev = json!({
        "metadata": {"name": format!("{}.{}", util::name(obj), util::random_suffix(10)), "namespace": ns},
        "involvedObject": {
            "kind": obj["kind"], "apiVersion": obj["apiVersion"], "name": util::name(obj),
            "namespace": util::namespace(obj), "uid": util::uid(obj),
        },
        "reason": reason, "message": message, "type": type_, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now,
        "source": {"component": component}, "reportingComponent": component, "reportingInstance": "kube-sim",
    });
    if let Err(e) = app.store.create(&rt, ns, ev) {
        tracing::debug!(error = %e, "recording event");
    }
}

/// POST /sim/restart: stop serving, lose every running process and in-memory state, come back
/// from the last snapshot.
pub async fn simulate_restart(app: &Arc<App>, down: Duration) -> anyhow::Result<()> {
    app.down.store(true, Ordering::SeqCst);
    app.close_watches.send_modify(|v| *v += 1);
    app.store.save()?;
    app.processes.kill_all();
    tokio::time::sleep(down).await;
    app.store.reload()?;
    pods::mark_lost_processes(app);
    app.down.store(false, Ordering::SeqCst);
    Ok(())
}

/// The owner reference a controller puts on what it creates.
pub fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": util::name(owner),
        "uid": util::uid(owner), "controller": true, "blockOwnerDeletion": true,
    })
}

/// Whether `o` is controlled by the object with `uid`.
pub fn controlled_by(o: &Value, uid: &str) -> bool {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|r| r["uid"] == uid && r["controller"] == true))
}
