//! Owner-reference garbage collection (background and foreground) and namespace termination.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::modify;
use crate::store::{finalizers, owner_uids, DeleteOpts, Part};
use crate::util::{self, is_deleting};
use crate::App;

pub async fn reconcile(app: Arc<App>) {
    let all = app.store.all();
    let uids: HashSet<&str> = all.iter().map(|(_, o)| util::uid(o)).collect();
    let foreground: HashSet<&str> = all
        .iter()
        .filter(|(_, o)| is_deleting(o) && finalizers(o).iter().any(|f| f == "foregroundDeletion"))
        .map(|(_, o)| util::uid(o))
        .collect();
    let mut blocking: HashSet<&str> = HashSet::new();
    for (key, o) in &all {
        let owners: Vec<&str> = owner_uids(o).collect();
        if owners.is_empty() {
            continue;
        }
        for u in &owners {
            if foreground.contains(u) {
                blocking.insert(u);
            }
        }
        let orphaned = owners.iter().all(|u| !uids.contains(u));
        let owner_going = owners.iter().any(|u| foreground.contains(u));
        if (orphaned || owner_going) && !is_deleting(o) {
            let Some(rt) = app.store.type_for_key(key) else { continue };
            let propagation = if owner_going { "Foreground" } else { "Background" };
            let opts = DeleteOpts { propagation: Some(propagation.into()), ..Default::default() };
            let _ = app.store.delete(&rt, util::namespace(o), util::name(o), &opts);
        }
    }
    // Foreground deletion completes once no dependent is left.
    for (key, o) in &all {
        let u = util::uid(o);
        if foreground.contains(u) && !blocking.contains(u) {
            if let Some(rt) = app.store.type_for_key(key) {
                let _ = modify(&app, &rt.key(), util::namespace(o), util::name(o), Part::Main, |o| {
                    if let Some(f) = o.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
                        f.retain(|x| x != "foregroundDeletion");
                    }
                });
            }
        }
    }
    namespaces(&app, &all);
}

/// A terminating namespace deletes everything in it and goes away when it is empty.
fn namespaces(app: &App, all: &[(String, Arc<Value>)]) {
    for (_, ns) in all.iter().filter(|(k, o)| k == "/namespaces" && is_deleting(o)) {
        let name = util::name(ns);
        let mut left = 0;
        for (key, o) in all.iter().filter(|(k, o)| k != "/namespaces" && util::namespace(o) == name) {
            left += 1;
            if !is_deleting(o) {
                if let Some(rt) = app.store.type_for_key(key) {
                    let opts = DeleteOpts { propagation: Some("Background".into()), ..Default::default() };
                    let _ = app.store.delete(&rt, name, util::name(o), &opts);
                }
            }
        }
        if left == 0 {
            app.store.remove("/namespaces", "", name);
        }
    }
}
