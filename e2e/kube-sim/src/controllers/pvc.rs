//! Volume provisioning and binding: every claim gets a hostPath PersistentVolume backed by a real
//! directory under `<state-dir>/volumes`, the pvc-protection finalizer holds a claim while pods use
//! it, and released volumes are reclaimed (Delete removes the directory, Retain marks Released).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use super::modify;
use crate::store::{finalizers, DeleteOpts, Part};
use crate::util::{self, is_deleting};
use crate::App;

const PROTECTION: &str = "kubernetes.io/pvc-protection";

pub async fn reconcile(app: Arc<App>) {
    let (claims, _) = app.store.list("/persistentvolumeclaims", None);
    let (pods, _) = app.store.list("/pods", None);
    let in_use: HashSet<(String, String)> = pods
        .iter()
        .filter(|p| !super::pods::is_terminal(p))
        .flat_map(|p| super::pods::claim_names(p).into_iter().map(|c| (util::namespace(p).to_string(), c)))
        .collect();
    let mut live_uids = HashSet::new();
    for c in &claims {
        let (ns, name) = (util::namespace(c), util::name(c));
        live_uids.insert(util::uid(c).to_string());
        if is_deleting(c) {
            if finalizers(c).iter().any(|f| f == PROTECTION) && !in_use.contains(&(ns.to_string(), name.to_string())) {
                let _ = modify(&app, "/persistentvolumeclaims", ns, name, Part::Main, |c| {
                    if let Some(f) = c.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                        f.retain(|x| x != PROTECTION);
                    }
                });
            }
            continue;
        }
        if !finalizers(c).iter().any(|f| f == PROTECTION) {
            let _ = modify(&app, "/persistentvolumeclaims", ns, name, Part::Main, |c| {
                let f = util::ensure_obj(c, &["metadata"]).entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = f.as_array_mut() {
                    if !a.iter().any(|x| x == PROTECTION) {
                        a.push(json!(PROTECTION));
                    }
                }
            });
        }
        if util::str_at(c, "/status/phase") != Some("Bound") {
            if let Err(e) = bind(&app, c) {
                tracing::warn!(claim = %format!("{ns}/{name}"), error = %e, "binding claim");
            }
        }
    }
    reclaim(&app, &live_uids);
}

fn bind(app: &App, c: &Value) -> anyhow::Result<()> {
    let (ns, name, uid) = (util::namespace(c), util::name(c), util::uid(c));
    let pv_rt = app.builtin("/persistentvolumes");
    let pv_name = match util::str_at(c, "/spec/volumeName").filter(|v| !v.is_empty()) {
        // Pre-bound claim: only an existing volume that is free (or already ours) will do.
        Some(v) => {
            let Some(pv) = app.store.get("/persistentvolumes", "", v) else { return Ok(()) };
            let claim_uid = util::str_at(&pv, "/spec/claimRef/uid");
            if claim_uid.is_some_and(|u| u != uid) {
                return Ok(());
            }
            v.to_string()
        }
        None => format!("pvc-{uid}"),
    };
    if app.store.get("/persistentvolumes", "", &pv_name).is_none() {
        let dir = app.config.state_dir.join("volumes").join(&pv_name);
        std::fs::create_dir_all(&dir)?;
        let storage = c.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"));
        let sc = util::str_at(c, "/spec/storageClassName").unwrap_or("standard").to_string();
        let reclaim = app
            .store
            .get("storage.k8s.io/storageclasses", "", &sc)
            .and_then(|s| s["reclaimPolicy"].as_str().map(str::to_string))
            .unwrap_or_else(|| "Delete".into());
        app.store.create(
            &pv_rt,
            "",
            json!({
                "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": "kube-sim/hostpath"}},
                "spec": {
                    "capacity": {"storage": storage},
                    "accessModes": c.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
                    "persistentVolumeReclaimPolicy": reclaim,
                    "storageClassName": sc,
                    "volumeMode": c.pointer("/spec/volumeMode").cloned().unwrap_or(json!("Filesystem")),
                },
            }),
        )?;
    }
    modify(app, "/persistentvolumes", "", &pv_name, Part::Main, |pv| {
        pv["spec"]["claimRef"] =
            json!({"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": name, "uid": uid});
    })?;
    modify(app, "/persistentvolumes", "", &pv_name, Part::Status, |pv| pv["status"] = json!({"phase": "Bound"}))?;
    let pv = app.store.get("/persistentvolumes", "", &pv_name);
    modify(app, "/persistentvolumeclaims", ns, name, Part::Main, |c| {
        c["spec"]["volumeName"] = json!(pv_name);
        util::ensure_obj(c, &["metadata", "annotations"]).insert("pv.kubernetes.io/bind-completed".into(), json!("yes"));
    })?;
    modify(app, "/persistentvolumeclaims", ns, name, Part::Status, |c| {
        c["status"] = json!({
            "phase": "Bound",
            "accessModes": pv.as_ref().and_then(|p| p.pointer("/spec/accessModes").cloned()).unwrap_or(json!(["ReadWriteOnce"])),
            "capacity": pv.as_ref().and_then(|p| p.pointer("/spec/capacity").cloned()).unwrap_or(json!({})),
        });
    })?;
    Ok(())
}

/// Volumes whose claim is gone are deleted (with their directory) or released.
fn reclaim(app: &App, live_claims: &HashSet<String>) {
    let (pvs, _) = app.store.list("/persistentvolumes", None);
    let rt = app.builtin("/persistentvolumes");
    for pv in pvs {
        let Some(claim_uid) = util::str_at(&pv, "/spec/claimRef/uid") else { continue };
        if live_claims.contains(claim_uid) || is_deleting(&pv) {
            continue;
        }
        let name = util::name(&pv);
        if util::str_at(&pv, "/spec/persistentVolumeReclaimPolicy") == Some("Delete") {
            if let Some(path) = util::str_at(&pv, "/spec/hostPath/path") {
                // Only directories we provisioned are ever removed.
                let ours = std::path::Path::new(path).starts_with(app.config.state_dir.join("volumes"));
                if ours {
                    let _ = std::fs::remove_dir_all(path);
                }
            }
            let _ = app.store.delete(&rt, "", name, &DeleteOpts::default());
        } else if util::str_at(&pv, "/status/phase") != Some("Released") {
            let _ = modify(app, "/persistentvolumes", "", name, Part::Status, |pv| pv["status"] = json!({"phase": "Released"}));
        }
    }
}
