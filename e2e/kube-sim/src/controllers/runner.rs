//! The simulated container runtime for run-to-completion pods: the first container's
//! command+args run as a local process under bubblewrap, with volumes bind-mounted at their
//! mountPaths, the env resolved from the API, and output captured for `pods/log`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};
use crate::store::Part;
use crate::{util, App};

/// Running processes by pod uid; dropping or firing the sender kills the process.
#[derive(Default)]
pub struct Processes {
    map: Mutex<HashMap<String, oneshot::Sender<()>>>,
}

impl Processes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn is_running(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }
    pub fn kill(&self, uid: &str) {
        if let Some(tx) = self.lock().remove(uid) {
            let _ = tx.send(());
        }
    }
    /// Kills processes whose pod is gone (e.g. force-deleted with gracePeriodSeconds=0).
    pub fn kill_orphans(&self, live_pods: &std::collections::HashSet<&str>) {
        let mut map = self.lock();
        let gone: Vec<String> = map.keys().filter(|u| !live_pods.contains(u.as_str())).cloned().collect();
        for u in gone {
            if let Some(tx) = map.remove(&u) {
                let _ = tx.send(());
            }
        }
    }
    pub fn kill_all(&self) {
        for (_, tx) in self.lock().drain() {
            let _ = tx.send(());
        }
    }
}

pub fn log_path(app: &App, pod: &Value) -> PathBuf {
    app.config.state_dir.join("logs").join(format!("{}_{}_{}.log", util::namespace(pod), util::name(pod), util::uid(pod)))
}

fn pod_dir(app: &App, pod: &Value) -> PathBuf {
    app.config.state_dir.join("pods").join(util::uid(pod))
}

fn lookup_data(app: &App, kind: &str, ns: &str, name: &str) -> Option<HashMap<String, String>> {
    let key = if kind == "secret" { "/secrets" } else { "/configmaps" };
    let o = app.store.get(key, ns, name)?;
    let mut out = HashMap::new();
    for (k, v) in o["data"].as_object().into_iter().flatten() {
        let s = v.as_str().unwrap_or("");
        let val = if kind == "secret" {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            s.to_string()
        };
        out.insert(k.clone(), val);
    }
    Some(out)
}

fn field_ref(pod: &Value, path: &str) -> String {
    if let Some(label) = path.strip_prefix("metadata.labels['").and_then(|p| p.strip_suffix("']")) {
        return util::labels(pod).get(label).and_then(Value::as_str).unwrap_or("").to_string();
    }
    let ptr = format!("/{}", path.replace('.', "/"));
    match pod.pointer(&ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// The container's environment as the kubelet would build it. Errors mirror
/// CreateContainerConfigError messages.
pub fn resolve_env(app: &App, pod: &Value, c: &Value) -> Result<Vec<(String, String)>, String> {
    let ns = util::namespace(pod);
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), util::name(pod).into()),
        ("KUBERNETES_SERVICE_HOST".into(), app.config.listen.ip().to_string()),
        ("KUBERNETES_SERVICE_PORT".into(), app.config.listen.port().to_string()),
    ];
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| {
        env.retain(|(x, _)| *x != k);
        env.push((k, v));
    };
    for ef in c["envFrom"].as_array().into_iter().flatten() {
        let prefix = ef["prefix"].as_str().unwrap_or("");
        for (kind, field) in [("secret", "secretRef"), ("configmap", "configMapRef")] {
            if let Some(r) = ef.get(field) {
                let name = r["name"].as_str().unwrap_or("");
                match lookup_data(app, kind, ns, name) {
                    Some(data) => {
                        for (k, v) in data {
                            set(&mut env, format!("{prefix}{k}"), v);
                        }
                    }
                    None if r["optional"] == true => {}
                    None => return Err(format!("{kind} \"{name}\" not found")),
                }
            }
        }
    }
    for e in c["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or("").to_string();
        if let Some(v) = e.get("value") {
            set(&mut env, name, v.as_str().unwrap_or("").to_string());
            continue;
        }
        let vf = &e["valueFrom"];
        for (kind, field) in [("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")] {
            if let Some(r) = vf.get(field) {
                let (src, key) = (r["name"].as_str().unwrap_or(""), r["key"].as_str().unwrap_or(""));
                match lookup_data(app, kind, ns, src).and_then(|d| d.get(key).cloned()) {
                    Some(v) => set(&mut env, name.clone(), v),
                    None if r["optional"] == true => {}
                    None => return Err(format!("couldn't find key {key} in {kind} {ns}/{src}")),
                }
            }
        }
        if let Some(p) = vf.pointer("/fieldRef/fieldPath").and_then(Value::as_str) {
            set(&mut env, name.clone(), field_ref(pod, p));
        }
    }
    Ok(env)
}

/// Host directory backing a volume, materializing secrets, config maps and emptyDirs.
fn volume_source(app: &App, pod: &Value, vol: &Value) -> Result<Option<PathBuf>, String> {
    let ns = util::namespace(pod);
    let vname = vol["name"].as_str().unwrap_or("");
    if let Some(claim) = vol.pointer("/persistentVolumeClaim/claimName").and_then(Value::as_str) {
        let pvc =
            app.store.get("/persistentvolumeclaims", ns, claim).ok_or(format!("persistentvolumeclaim \"{claim}\" not found"))?;
        let pv_name = util::str_at(&pvc, "/spec/volumeName").ok_or(format!("persistentvolumeclaim \"{claim}\" is not bound"))?;
        let pv = app.store.get("/persistentvolumes", "", pv_name).ok_or(format!("persistentvolume \"{pv_name}\" not found"))?;
        let path = util::str_at(&pv, "/spec/hostPath/path")
            .or_else(|| util::str_at(&pv, "/spec/local/path"))
            .ok_or(format!("persistentvolume \"{pv_name}\" has no hostPath"))?;
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        return Ok(Some(PathBuf::from(path)));
    }
    if let Some(p) = vol.pointer("/hostPath/path").and_then(Value::as_str) {
        return Ok(Some(PathBuf::from(p)));
    }
    let dir = pod_dir(app, pod).join("volumes").join(vname);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (kind, field, name_field) in [("secret", "secret", "secretName"), ("configmap", "configMap", "name")] {
        if let Some(src) = vol.get(field) {
            let name = src[name_field].as_str().unwrap_or("");
            let data = match lookup_data(app, kind, ns, name) {
                Some(d) => d,
                None if src["optional"] == true => HashMap::new(),
                None => return Err(format!("{kind} \"{name}\" not found")),
            };
            let items: Vec<(String, String)> = match src["items"].as_array() {
                Some(items) => items
                    .iter()
                    .map(|i| (i["key"].as_str().unwrap_or("").to_string(), i["path"].as_str().unwrap_or("").to_string()))
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (k, p) in items {
                let target = dir.join(&p);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                std::fs::write(&target, data.get(&k).cloned().unwrap_or_default()).map_err(|e| e.to_string())?;
            }
            return Ok(Some(dir));
        }
    }
    if vol.get("emptyDir").is_some() {
        return Ok(Some(dir));
    }
    // projected, downwardAPI and others are not emulated: the mount point is left out.
    Ok(None)
}

/// bubblewrap arguments that bind every volume mount of `c`.
pub fn sandbox_args(app: &App, pod: &Value, c: &Value) -> Result<Vec<String>, String> {
    let vols = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    // A PID namespace whose init dies with bwrap: killing bwrap kills every process of the pod.
    let mut args: Vec<String> =
        ["--dev-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "--die-with-parent"].iter().map(|s| s.to_string()).collect();
    // (mountPath, host dir) pairs, to create a missing workingDir where it will be seen.
    let mut mounts: Vec<(String, PathBuf)> = vec![];
    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or("");
        let vol = vols.iter().find(|v| v["name"] == name).ok_or(format!("volume \"{name}\" not found"))?;
        let Some(mut src) = volume_source(app, pod, vol)? else { continue };
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            src = src.join(sub);
            std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
        }
        let ro = m["readOnly"] == true
            || vol.pointer("/persistentVolumeClaim/readOnly") == Some(&Value::Bool(true))
            || vol.get("secret").is_some()
            || vol.get("configMap").is_some();
        args.push(if ro { "--ro-bind" } else { "--bind" }.into());
        args.push(src.to_string_lossy().into_owned());
        args.push(m["mountPath"].as_str().unwrap_or("/").to_string());
        mounts.push((m["mountPath"].as_str().unwrap_or("/").trim_end_matches('/').to_string(), src));
    }
    if let Some(wd) = c["workingDir"].as_str().filter(|w| !w.is_empty()) {
        // Container runtimes create a missing working directory; do the same on the backing dir.
        let host = mounts
            .iter()
            .filter(|(mp, _)| Path::new(wd).starts_with(mp))
            .max_by_key(|(mp, _)| mp.len())
            .map(|(mp, src)| src.join(Path::new(wd).strip_prefix(mp).unwrap_or(Path::new(""))))
            .unwrap_or_else(|| PathBuf::from(wd));
        let _ = std::fs::create_dir_all(host);
        args.push("--chdir".into());
        args.push(wd.into());
    }
    Ok(args)
}

/// Starts the pod's first container. Err is a CreateContainerConfigError-style message.
pub fn start(app: Arc<App>, pod: &Value) -> Result<(), String> {
    let c = pod.pointer("/spec/containers/0").cloned().ok_or("pod has no containers")?;
    let env = resolve_env(&app, pod, &c)?;
    let mut argv: Vec<String> = vec![];
    for f in ["command", "args"] {
        for a in c[f].as_array().into_iter().flatten() {
            argv.push(a.as_str().unwrap_or("").to_string());
        }
    }
    if argv.is_empty() {
        return Err("container has no command: image entrypoints cannot be emulated, set command".into());
    }
    let mut args = sandbox_args(&app, pod, &c)?;
    args.push("--".into());
    args.extend(argv);
    let log = log_path(&app, pod);
    std::fs::create_dir_all(log.parent().expect("logs dir")).map_err(|e| e.to_string())?;
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = tokio::process::Command::new("bwrap");
    cmd.args(&args).env_clear().envs(env).stdin(std::process::Stdio::null()).stdout(out).stderr(err).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("starting bwrap: {e}"))?;
    let (tx, rx) = oneshot::channel();
    let uid = util::uid(pod).to_string();
    app.processes.lock().insert(uid.clone(), tx);
    let (ns, name) = (util::namespace(pod).to_string(), util::name(pod).to_string());
    let started = util::now_rfc3339();
    let cname = c["name"].as_str().unwrap_or("main").to_string();
    tracing::info!(pod = %format!("{ns}/{name}"), "process started");
    let on_failure = pod.pointer("/spec/restartPolicy").and_then(Value::as_str) == Some("OnFailure");
    tokio::spawn(async move {
        let (code, reason, killed) = tokio::select! {
            st = child.wait() => match st {
                Ok(s) => (s.code().unwrap_or(137), if s.success() { "Completed" } else { "Error" }, false),
                Err(_) => (128, "Error", false),
            },
            _ = rx => {
                let _ = child.kill().await;
                (137, "Error", true)
            }
        };
        app.processes.lock().remove(&uid);
        tracing::info!(pod = %format!("{ns}/{name}"), code, "process exited");
        let finished = util::now_rfc3339();
        let terminated = json!({"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished});
        if on_failure && code != 0 && !killed {
            restart_in_place(&app, &ns, &name, &uid, &cname, terminated).await;
            return;
        }
        let _ = super::modify(&app, "/pods", &ns, &name, Part::Status, |p| {
            if util::uid(p) != uid {
                return;
            }
            let restarts = p.pointer("/status/containerStatuses/0/restartCount").cloned().unwrap_or(json!(0));
            p["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
            p["status"]["containerStatuses"] = json!([{
                "name": cname, "ready": false, "restartCount": restarts, "started": false,
                "image": p.pointer("/spec/containers/0/image").cloned().unwrap_or(json!("")),
                "imageID": "", "containerID": format!("sim://{uid}"),
                "state": {"terminated": terminated},
            }]);
            util::set_condition(p, "Ready", "False", "PodCompleted", "");
            util::set_condition(p, "ContainersReady", "False", "PodCompleted", "");
        });
    });
    Ok(())
}

/// `restartPolicy: OnFailure`: the container restarts inside the same pod after a short back-off,
/// counting restarts, as the kubelet does (the Job controller counts them against backoffLimit).
async fn restart_in_place(app: &Arc<App>, ns: &str, name: &str, uid: &str, cname: &str, terminated: Value) {
    let _ = super::modify(app, "/pods", ns, name, Part::Status, |p| {
        if util::uid(p) != uid {
            return;
        }
        let restarts = p.pointer("/status/containerStatuses/0/restartCount").and_then(Value::as_i64).unwrap_or(0) + 1;
        p["status"]["containerStatuses"] = json!([{
            "name": cname, "ready": false, "restartCount": restarts, "started": false,
            "image": p.pointer("/spec/containers/0/image").cloned().unwrap_or(json!("")),
            "imageID": "", "containerID": format!("sim://{uid}"),
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}},
            "lastState": {"terminated": terminated},
        }]);
        util::set_condition(p, "Ready", "False", "ContainersNotReady", "");
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let Some(pod) = app.store.get("/pods", ns, name).filter(|p| util::uid(p) == uid && !util::is_deleting(p)) else { return };
    if util::str_at(&pod, "/status/phase") != Some("Running") {
        return;
    }
    if let Err(msg) = start(app.clone(), &pod) {
        tracing::warn!(pod = %format!("{ns}/{name}"), error = %msg, "restarting container");
        return;
    }
    let now = util::now_rfc3339();
    let _ = super::modify(app, "/pods", ns, name, Part::Status, |p| {
        if let Some(c) = p.pointer_mut("/status/containerStatuses/0") {
            c["state"] = json!({"running": {"startedAt": now}});
            c["ready"] = json!(true);
            c["started"] = json!(true);
        }
        util::set_condition(p, "Ready", "True", "", "");
    });
}

/// GET pods/{name}/log: the captured output; `follow` streams until the pod finishes.
pub async fn log_response(app: &Arc<App>, pod: &Value, q: &HashMap<String, String>) -> ApiResult<Response> {
    let path = log_path(app, pod);
    let content = std::fs::read(&path).unwrap_or_default();
    let mut start = 0usize;
    if let Some(n) = q.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        let mut seen = 0;
        start = content.len();
        for (i, b) in content.iter().enumerate().rev() {
            if *b == b'\n' && i + 1 != content.len() {
                seen += 1;
                if seen == n {
                    break;
                }
            }
            start = i;
        }
        if n == 0 {
            start = content.len();
        }
    }
    let follow = q.get("follow").is_some_and(|f| f == "true");
    if !follow {
        return Ok(([(header::CONTENT_TYPE, "text/plain")], content[start..].to_vec()).into_response());
    }
    if !Path::new(&path).exists() && pod.pointer("/spec/nodeName").is_none() {
        return Err(ApiError::bad_request(format!("container in pod \"{}\" is waiting to start", util::name(pod))));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    let (app, ns, name, uid) =
        (app.clone(), util::namespace(pod).to_string(), util::name(pod).to_string(), util::uid(pod).to_string());
    tokio::spawn(async move {
        let mut offset = start;
        loop {
            let data = std::fs::read(&path).unwrap_or_default();
            if data.len() > offset {
                if tx.send(Ok(Bytes::copy_from_slice(&data[offset..]))).await.is_err() {
                    return;
                }
                offset = data.len();
            }
            let pod = app.store.get("/pods", &ns, &name).filter(|p| util::uid(p) == uid);
            let done = pod.is_none_or(|p| matches!(util::str_at(&p, "/status/phase"), Some("Succeeded" | "Failed")));
            if done && !app.processes.is_running(&uid) {
                let data = std::fs::read(&path).unwrap_or_default();
                if data.len() > offset {
                    let _ = tx.send(Ok(Bytes::copy_from_slice(&data[offset..]))).await;
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Ok(Response::builder().header(header::CONTENT_TYPE, "text/plain").body(Body::from_stream(stream)).expect("response"))
}
