//! The object store: every object of every kind as JSON, one global resourceVersion counter, a
//! broadcast channel of change events and a bounded history of them so a watch can resume from a
//! resourceVersion. All API-server bookkeeping rules live here so that HTTP handlers and the
//! simulated controllers get identical behaviour.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceType};
use crate::util::{self, is_deleting, now_rfc3339};
use crate::{defaults, schema};

/// How many past events are kept for watch resumption; older resourceVersions get 410 Gone.
pub const HISTORY: usize = 20_000;
/// Live events buffered per watcher; a watcher further behind than this is disconnected.
const LIVE_BUFFER: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    /// Storage key of the resource ("apps/deployments").
    pub key: String,
    pub etype: EventType,
    pub obj: Arc<Value>,
    /// The previous state, so selector-filtered watches can turn a change into ADDED/DELETED.
    pub old: Option<Arc<Value>>,
    /// `obj` serialized once, shared by every watcher.
    json: std::sync::OnceLock<bytes::Bytes>,
}

impl Event {
    pub fn obj_json(&self) -> &bytes::Bytes {
        self.json.get_or_init(|| bytes::Bytes::from(serde_json::to_vec(&*self.obj).unwrap_or_default()))
    }
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

type ObjKey = (String, String);

/// Replayed history plus the live feed that continues it.
pub type WatchStart = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

struct Inner {
    rv: u64,
    types: Vec<ResourceType>,
    objects: HashMap<String, BTreeMap<ObjKey, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    /// Every event with rv greater than this is still in `history`.
    history_start: u64,
    dirty: bool,
}

pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<Event>>,
    state_file: PathBuf,
    /// Default grace period for pod deletion (the simulated kubelet's stop time).
    pub pod_grace_seconds: i64,
}

impl Store {
    pub fn new(state_dir: &std::path::Path, pod_grace_seconds: i64) -> anyhow::Result<Arc<Store>> {
        let (tx, _) = broadcast::channel(LIVE_BUFFER);
        let store = Store {
            inner: Mutex::new(Inner {
                rv: 0,
                types: resources::builtins(),
                objects: HashMap::new(),
                history: VecDeque::new(),
                history_start: 0,
                dirty: false,
            }),
            tx,
            state_file: state_dir.join("state.json"),
            pod_grace_seconds,
        };
        store.load()?;
        Ok(Arc::new(store))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---------------------------------------------------------------- persistence

    fn load(&self) -> anyhow::Result<()> {
        let mut inner = self.lock();
        inner.objects.clear();
        inner.types = resources::builtins();
        inner.history.clear();
        if let Ok(bytes) = std::fs::read(&self.state_file) {
            let snap: Value = serde_json::from_slice(&bytes)?;
            inner.rv = snap["resourceVersion"].as_u64().unwrap_or(0);
            if let Some(objs) = snap["objects"].as_object() {
                for (key, list) in objs {
                    let bucket = inner.objects.entry(key.clone()).or_default();
                    for o in list.as_array().into_iter().flatten() {
                        let k = (util::namespace(o).to_string(), util::name(o).to_string());
                        bucket.insert(k, Arc::new(o.clone()));
                    }
                }
            }
            let crds: Vec<Arc<Value>> = inner
                .objects
                .get("apiextensions.k8s.io/customresourcedefinitions")
                .map(|b| b.values().cloned().collect())
                .unwrap_or_default();
            for crd in crds {
                register_crd(&mut inner, &crd);
            }
        }
        inner.history_start = inner.rv;
        Ok(())
    }

    /// Drops everything in memory and reloads the last snapshot (the simulated restart).
    pub fn reload(&self) -> anyhow::Result<()> {
        self.save()?;
        self.load()
    }

    /// Writes a snapshot if anything changed since the last one. The lock is held only to copy
    /// the object handles.
    pub fn save_if_dirty(&self) -> anyhow::Result<()> {
        if self.lock().dirty {
            self.save()?;
        }
        Ok(())
    }

    pub fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        let (rv, objects) = {
            let mut inner = self.lock();
            inner.dirty = false;
            let objects: Vec<(String, Vec<Arc<Value>>)> =
                inner.objects.iter().map(|(k, b)| (k.clone(), b.values().cloned().collect())).collect();
            (inner.rv, objects)
        };
        // Written piecewise from the shared handles: no deep copy of the whole store.
        let tmp = self.state_file.with_extension("json.tmp");
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        write!(w, "{{\"resourceVersion\":{rv},\"objects\":{{")?;
        let mut first = true;
        for (k, list) in objects.iter().filter(|(_, l)| !l.is_empty()) {
            if !first {
                w.write_all(b",")?;
            }
            first = false;
            serde_json::to_writer(&mut w, k)?;
            w.write_all(b":[")?;
            for (i, o) in list.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                serde_json::to_writer(&mut w, &**o)?;
            }
            w.write_all(b"]")?;
        }
        w.write_all(b"}}")?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &self.state_file)?;
        Ok(())
    }

    // ---------------------------------------------------------------- types

    pub fn types(&self) -> Vec<ResourceType> {
        self.lock().types.clone()
    }

    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.lock().types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    /// The (first served version of the) type stored under `key`, e.g. "apps/deployments".
    pub fn type_for_key(&self, key: &str) -> Option<ResourceType> {
        self.lock().types.iter().find(|t| t.key() == key).cloned()
    }

    pub fn type_for_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.lock().types.iter().find(|t| t.api_version() == api_version && t.kind == kind).cloned()
    }

    // ---------------------------------------------------------------- reads

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.lock().objects.get(key)?.get(&(ns.to_string(), name.to_string())).cloned()
    }

    /// Objects of one resource (optionally one namespace), in name order, with the list RV.
    pub fn list(&self, key: &str, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = match inner.objects.get(key) {
            None => vec![],
            Some(b) => match ns {
                Some(ns) => {
                    b.range((ns.to_string(), String::new())..).take_while(|((n, _), _)| n == ns).map(|(_, v)| v.clone()).collect()
                }
                None => b.values().cloned().collect(),
            },
        };
        (items, inner.rv)
    }

    /// Every object of every kind, with its storage key (for garbage collection).
    pub fn all(&self) -> Vec<(String, Arc<Value>)> {
        let inner = self.lock();
        inner.objects.iter().flat_map(|(k, b)| b.values().map(move |o| (k.clone(), o.clone()))).collect()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Events after `rv` still in history plus a live receiver, taken atomically so nothing is
    /// missed or repeated. `None` when `rv` is older than the history (410 Gone).
    pub fn watch_from(&self, rv: u64) -> Option<WatchStart> {
        let inner = self.lock();
        if rv < inner.history_start {
            return None;
        }
        let rx = self.tx.subscribe();
        let replay = inner.history.iter().filter(|e| e.rv > rv).cloned().collect();
        Some((replay, rx))
    }

    // ---------------------------------------------------------------- writes

    fn emit(&self, inner: &mut Inner, key: &str, etype: EventType, obj: Arc<Value>, old: Option<Arc<Value>>) {
        let ev = Arc::new(Event { rv: inner.rv, key: key.to_string(), etype, obj, old, json: Default::default() });
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            if let Some(e) = inner.history.pop_front() {
                inner.history_start = e.rv;
            }
        }
        inner.dirty = true;
        let _ = self.tx.send(ev);
    }

    pub fn create(&self, rt: &ResourceType, ns: &str, mut obj: Value) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request was not an object"));
        }
        obj["apiVersion"] = Value::from(rt.api_version());
        obj["kind"] = Value::from(rt.kind.clone());
        if rt.group == "events.k8s.io" {
            obj = crate::events::to_core(&obj);
        }
        let meta = util::ensure_obj(&mut obj, &["metadata"]);
        let mut name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if name.is_empty() {
            match meta.get("generateName").and_then(Value::as_str) {
                Some(g) if !g.is_empty() => name = format!("{g}{}", util::random_suffix(5)),
                _ => {
                    return Err(ApiError::invalid(
                        &rt.kind,
                        "",
                        vec![("metadata.name".into(), "Required value: name or generateName is required".into())],
                    ))
                }
            }
        }
        if rt.namespaced {
            let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta.insert("namespace".into(), Value::from(ns));
        } else {
            meta.remove("namespace");
        }
        validate_name(rt, &name)?;
        meta.insert("name".into(), Value::from(name.clone()));
        meta.insert("uid".into(), Value::from(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), Value::from(now_rfc3339()));
        meta.insert("generation".into(), Value::from(1));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.remove("selfLink");
        if meta.get("finalizers").is_some_and(|f| f.as_array().is_some_and(|a| a.is_empty())) {
            meta.remove("finalizers");
        }
        if rt.has_sub("status") {
            obj.as_object_mut().expect("object").remove("status");
        }
        defaults::on_create(rt, &mut obj);
        if let Some(s) = &rt.schema {
            schema::apply(s, &mut obj).map_err(|c| ApiError::invalid(&rt.kind, &name, c))?;
        }
        if rt.key() == "apiextensions.k8s.io/customresourcedefinitions" {
            defaults::crd_established(&mut obj);
        }

        let mut inner = self.lock();
        if rt.namespaced {
            check_namespace_open(&inner, ns)?;
        }
        let key = rt.key();
        let okey = (if rt.namespaced { ns.to_string() } else { String::new() }, name.clone());
        if inner.objects.get(&key).is_some_and(|b| b.contains_key(&okey)) {
            return Err(ApiError::already_exists(&rt.qualified(), &name));
        }
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::from(inner.rv.to_string());
        let arc = Arc::new(obj);
        inner.objects.entry(key.clone()).or_default().insert(okey, arc.clone());
        if key == "apiextensions.k8s.io/customresourcedefinitions" {
            register_crd(&mut inner, &arc);
        }
        self.emit(&mut inner, &key, EventType::Added, arc.clone(), None);
        Ok((*arc).clone())
    }

    /// Replaces an object (PUT semantics): optimistic concurrency on metadata.resourceVersion,
    /// immutable bookkeeping fields, generation bumped on spec changes only, no-op writes ignored.
    pub fn update(&self, rt: &ResourceType, ns: &str, name: &str, mut obj: Value, part: Part) -> ApiResult<Value> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body of the request was not an object"));
        }
        let key = rt.key();
        let ns = if rt.namespaced { ns } else { "" };
        let old = self.get(&key, ns, name).ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        let body_name = util::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request("the name of the object does not match the name on the URL"));
        }
        let given_rv = util::str_at(&obj, "/metadata/resourceVersion").unwrap_or("").to_string();
        if !given_rv.is_empty() && given_rv != util::str_at(&old, "/metadata/resourceVersion").unwrap_or("") {
            return Err(ApiError::conflict(
                &rt.qualified(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        obj["apiVersion"] = Value::from(rt.api_version());
        obj["kind"] = Value::from(rt.kind.clone());
        if rt.group == "events.k8s.io" {
            obj = crate::events::to_core(&obj);
        }
        let mut new = match part {
            // Status writes change only status; everything else comes from the stored object.
            Part::Status => {
                let mut n = (*old).clone();
                // Field ownership of a status apply is recorded with the object.
                if let Some(mf) = obj.pointer("/metadata/managedFields") {
                    n["metadata"]["managedFields"] = mf.clone();
                }
                match obj.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        n.as_object_mut().expect("object").remove("status");
                    }
                }
                n
            }
            Part::Main => {
                if rt.has_sub("status") {
                    match old.get("status") {
                        Some(s) => obj["status"] = s.clone(),
                        None => {
                            obj.as_object_mut().expect("object").remove("status");
                        }
                    }
                }
                obj
            }
        };
        {
            let meta = util::ensure_obj(&mut new, &["metadata"]);
            for f in
                ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "namespace", "name", "generation"]
            {
                match old["metadata"].get(f) {
                    Some(v) => meta.insert(f.into(), v.clone()),
                    None => meta.remove(f),
                };
            }
            meta.remove("selfLink");
            if meta.get("finalizers").is_some_and(|f| f.as_array().is_some_and(|a| a.is_empty())) {
                meta.remove("finalizers");
            }
        }
        if is_deleting(&old) {
            let old_f = finalizers(&old);
            if finalizers(&new).iter().any(|f| !old_f.contains(f)) {
                return Err(ApiError::invalid(
                    &rt.kind,
                    name,
                    vec![(
                        "metadata.finalizers".into(),
                        "Forbidden: no new finalizers can be added if the object is being deleted".into(),
                    )],
                ));
            }
        }
        defaults::on_update(rt, &old, &mut new);
        if let Some(s) = &rt.schema {
            schema::apply(s, &mut new).map_err(|c| ApiError::invalid(&rt.kind, name, c))?;
        }
        if spec_of(&new) != spec_of(&old) {
            let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            new["metadata"]["generation"] = Value::from(g + 1);
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == *old {
            return Ok(new);
        }

        let mut inner = self.lock();
        let okey = (ns.to_string(), name.to_string());
        let current = inner.objects.get(&key).and_then(|b| b.get(&okey)).cloned();
        // Another writer got in between our read and this lock: same answer as a stale RV.
        if current.as_ref().map(|c| c["metadata"]["resourceVersion"].clone()) != Some(old["metadata"]["resourceVersion"].clone())
        {
            return match current {
                None => Err(ApiError::not_found(&rt.qualified(), name)),
                Some(_) => Err(ApiError::conflict(
                    &rt.qualified(),
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )),
            };
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = Value::from(inner.rv.to_string());
        let arc = Arc::new(new);
        inner.objects.entry(key.clone()).or_default().insert(okey.clone(), arc.clone());
        if key == "apiextensions.k8s.io/customresourcedefinitions" {
            register_crd(&mut inner, &arc);
        }
        self.emit(&mut inner, &key, EventType::Modified, arc.clone(), Some(old));
        if is_deleting(&arc) && finalizers(&arc).is_empty() && ready_to_remove(&key, &arc) {
            self.remove_locked(&mut inner, &key, &okey);
        }
        Ok((*arc).clone())
    }

    pub fn delete(&self, rt: &ResourceType, ns: &str, name: &str, opts: &DeleteOpts) -> ApiResult<Value> {
        let key = rt.key();
        let ns = if rt.namespaced { ns } else { "" };
        let okey = (ns.to_string(), name.to_string());
        // Orphaning rewrites the dependents first (outside the main critical section).
        let propagation = opts.propagation.clone().unwrap_or_else(|| {
            // batch/v1 Jobs keep the legacy default of orphaning their pods.
            if key == "batch/jobs" {
                "Orphan".into()
            } else {
                "Background".into()
            }
        });
        let obj = self.get(&key, ns, name).ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        if let Some(u) = &opts.precondition_uid {
            if u != util::uid(&obj) {
                return Err(ApiError::conflict(&rt.qualified(), name, "Precondition failed: UID in precondition does not match"));
            }
        }
        if let Some(r) = &opts.precondition_rv {
            if Some(r.as_str()) != util::str_at(&obj, "/metadata/resourceVersion") {
                return Err(ApiError::conflict(
                    &rt.qualified(),
                    name,
                    "Precondition failed: ResourceVersion in precondition does not match",
                ));
            }
        }
        if propagation == "Orphan" {
            self.orphan_dependents(util::uid(&obj));
        }
        let has_dependents = propagation == "Foreground" && self.has_dependents(util::uid(&obj));

        let mut inner = self.lock();
        let Some(cur) = inner.objects.get(&key).and_then(|b| b.get(&okey)).cloned() else {
            return Err(ApiError::not_found(&rt.qualified(), name));
        };
        let mut new = (*cur).clone();
        let mut keep = !finalizers(&cur).is_empty();
        if has_dependents {
            let f = util::ensure_obj(&mut new, &["metadata"]).entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = f.as_array_mut() {
                if !a.iter().any(|x| x == "foregroundDeletion") {
                    a.push(Value::from("foregroundDeletion"));
                }
            }
            keep = true;
        }
        // Namespaces are emptied by the namespace controller; scheduled pods are stopped by the
        // simulated kubelet after their grace period.
        if key == "/namespaces" {
            keep = true;
            new["status"]["phase"] = Value::from("Terminating");
        }
        if key == "/pods" {
            let grace = opts.grace_seconds.unwrap_or(self.pod_grace_seconds);
            let scheduled = util::str_at(&cur, "/spec/nodeName").is_some_and(|n| !n.is_empty());
            let terminal = matches!(util::str_at(&cur, "/status/phase"), Some("Succeeded" | "Failed"));
            if scheduled && !terminal && grace > 0 {
                keep = true;
                let prev = cur.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
                if prev.is_none_or(|p| grace < p) {
                    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                    new["metadata"]["deletionTimestamp"] = Value::from(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                    new["metadata"]["deletionGracePeriodSeconds"] = Value::from(grace);
                }
            } else {
                new["metadata"]["deletionGracePeriodSeconds"] = Value::from(0);
            }
        }
        if !keep {
            let removed = self.remove_locked(&mut inner, &key, &okey);
            return Ok(removed.map(|r| (*r).clone()).unwrap_or(new));
        }
        if !is_deleting(&new) {
            new["metadata"]["deletionTimestamp"] = Value::from(now_rfc3339());
            if new["metadata"].get("deletionGracePeriodSeconds").is_none() {
                new["metadata"]["deletionGracePeriodSeconds"] = Value::from(0);
            }
        }
        if new == *cur {
            return Ok(new);
        }
        inner.rv += 1;
        new["metadata"]["resourceVersion"] = Value::from(inner.rv.to_string());
        let arc = Arc::new(new);
        inner.objects.entry(key.clone()).or_default().insert(okey.clone(), arc.clone());
        self.emit(&mut inner, &key, EventType::Modified, arc.clone(), Some(cur));
        if finalizers(&arc).is_empty() && ready_to_remove(&key, &arc) {
            self.remove_locked(&mut inner, &key, &okey);
        }
        Ok((*arc).clone())
    }

    /// Removes an object for good (controllers use it to finish namespace and pod termination).
    pub fn remove(&self, key: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        let mut inner = self.lock();
        self.remove_locked(&mut inner, key, &(ns.to_string(), name.to_string()))
    }

    fn remove_locked(&self, inner: &mut Inner, key: &str, okey: &ObjKey) -> Option<Arc<Value>> {
        let old = inner.objects.get_mut(key)?.remove(okey)?;
        inner.rv += 1;
        let mut gone = (*old).clone();
        gone["metadata"]["resourceVersion"] = Value::from(inner.rv.to_string());
        let gone = Arc::new(gone);
        self.emit(inner, key, EventType::Deleted, gone.clone(), Some(old.clone()));
        if key == "apiextensions.k8s.io/customresourcedefinitions" {
            // A deleted CRD takes its custom resources with it.
            let types = resources::from_crd(&old);
            if let Some(t) = types.first() {
                let ck = t.key();
                let keys: Vec<ObjKey> = inner.objects.get(&ck).map(|b| b.keys().cloned().collect()).unwrap_or_default();
                for k in keys {
                    self.remove_locked(inner, &ck, &k);
                }
                inner.types.retain(|x| x.key() != ck);
            }
        }
        Some(gone)
    }

    fn has_dependents(&self, uid: &str) -> bool {
        let inner = self.lock();
        inner.objects.values().flat_map(|b| b.values()).any(|o| owner_uids(o).any(|u| u == uid))
    }

    /// Removes owner references to `uid` from every dependent (orphan propagation).
    pub fn orphan_dependents(&self, uid: &str) {
        let deps: Vec<(String, Arc<Value>)> = self.all().into_iter().filter(|(_, o)| owner_uids(o).any(|u| u == uid)).collect();
        for (key, o) in deps {
            let Some(rt) = self.type_for_key(&key) else { continue };
            let mut n = (*o).clone();
            if let Some(refs) = n.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                refs.retain(|r| r["uid"] != uid);
                if refs.is_empty() {
                    n["metadata"].as_object_mut().expect("meta").remove("ownerReferences");
                }
            }
            n["metadata"].as_object_mut().expect("meta").remove("resourceVersion");
            let _ = self.update(&rt, util::namespace(&o), util::name(&o), n, Part::Main);
        }
    }
}

pub fn finalizers(o: &Value) -> Vec<String> {
    o.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

pub fn owner_uids(o: &Value) -> impl Iterator<Item = &str> {
    o.pointer("/metadata/ownerReferences").and_then(Value::as_array).into_iter().flatten().filter_map(|r| r["uid"].as_str())
}

/// A deleting object whose finalizers are gone can be removed, except namespaces (emptied first by
/// their controller) and pods still inside their grace period (the kubelet removes them).
fn ready_to_remove(key: &str, o: &Value) -> bool {
    match key {
        "/namespaces" => false,
        "/pods" => o.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) == 0,
        _ => true,
    }
}

/// What counts as "spec" for generation: everything but metadata and status.
fn spec_of(o: &Value) -> Value {
    let mut m = o.as_object().cloned().unwrap_or_default();
    m.remove("metadata");
    m.remove("status");
    m.remove("apiVersion");
    m.remove("kind");
    Value::Object(m)
}

fn check_namespace_open(inner: &Inner, ns: &str) -> ApiResult<()> {
    match inner.objects.get("/namespaces").and_then(|b| b.get(&(String::new(), ns.to_string()))) {
        None => Err(ApiError::not_found("namespaces", ns)),
        Some(n) if is_deleting(n) => {
            Err(ApiError::forbidden(format!("unable to create new content in namespace {ns} because it is being terminated")))
        }
        Some(_) => Ok(()),
    }
}

fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let ok = name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    // Nodes, RBAC objects and a few others allow ':' and uppercase-free names; accept them loosely.
    if ok || rt.group == "rbac.authorization.k8s.io" {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &rt.kind,
            name,
            vec![("metadata.name".into(), format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"))],
        ))
    }
}

fn register_crd(inner: &mut Inner, crd: &Value) {
    let new = resources::from_crd(crd);
    if let Some(t) = new.first() {
        let k = t.key();
        inner.types.retain(|x| x.key() != k);
    }
    inner.types.extend(new);
}
