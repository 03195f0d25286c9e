//! kube-sim: a Kubernetes API server emulator plus the few controllers DataRestor relies on, for
//! tests and demos on machines without a cluster. See the crate README section in `e2e/README.md`.

pub mod admission;
pub mod controllers;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod events;
pub mod exec;
pub mod faults;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod server;
pub mod store;
pub mod table;
pub mod util;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::resources::ResourceType;
use crate::store::Store;

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "kube-sim", about = "Kubernetes API server emulator and simulated cluster")]
pub struct Config {
    /// Address to serve plain HTTP on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Directory for the state snapshot, volume directories and pod logs.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// Where to write a kubeconfig pointing at this server.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Number of simulated nodes (sim-node-1 ... sim-node-N).
    #[arg(long, default_value_t = 2)]
    pub nodes: usize,
    /// Default pod termination grace period in seconds (the pod spec's own value is ignored so
    /// tests stay fast; a delete request's gracePeriodSeconds still wins).
    #[arg(long, default_value_t = 1)]
    pub pod_grace_seconds: i64,
}

/// Everything the HTTP server and the controllers share.
pub struct App {
    pub store: Arc<Store>,
    pub faults: faults::Faults,
    /// Bumped to end every open watch (fault injection and simulated restarts).
    pub close_watches: tokio::sync::watch::Sender<u64>,
    pub config: Config,
    pub processes: controllers::runner::Processes,
    /// While true the API answers 503 (a simulated restart in progress).
    pub down: AtomicBool,
}

impl App {
    pub fn new(mut config: Config) -> anyhow::Result<Arc<App>> {
        std::fs::create_dir_all(&config.state_dir)?;
        // Volume paths handed to bubblewrap and stored in PVs must be absolute.
        config.state_dir = std::fs::canonicalize(&config.state_dir)?;
        let store = Store::new(&config.state_dir, config.pod_grace_seconds)?;
        let (close_watches, _) = tokio::sync::watch::channel(0);
        Ok(Arc::new(App {
            store,
            faults: Default::default(),
            close_watches,
            processes: Default::default(),
            down: AtomicBool::new(false),
            config,
        }))
    }

    pub fn server_url(&self) -> String {
        format!("http://{}", self.config.listen)
    }

    /// Creates an object the way a client would, including mutating admission for pods.
    pub async fn create(&self, rt: &ResourceType, ns: &str, obj: Value) -> ApiResult<Value> {
        let obj = if rt.key() == "/pods" { admission::mutate_pod(self, ns, obj).await? } else { obj };
        self.store.create(rt, ns, obj)
    }

    pub fn builtin(&self, key: &str) -> ResourceType {
        self.store.type_for_key(key).unwrap_or_else(|| panic!("built-in type {key}"))
    }

    /// Namespaces, nodes and the default storage class every cluster starts with.
    pub fn bootstrap(&self) -> anyhow::Result<()> {
        let ns = self.builtin("/namespaces");
        for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.store.get("/namespaces", "", n).is_none() {
                self.store.create(&ns, "", json!({"metadata": {"name": n}}))?;
            }
        }
        let nodes = self.builtin("/nodes");
        for i in 1..=self.config.nodes {
            let name = format!("sim-node-{i}");
            if self.store.get("/nodes", "", &name).is_none() {
                self.store.create(
                    &nodes,
                    "",
                    json!({"metadata": {"name": name, "labels": {
                        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                    }}, "spec": {}}),
                )?;
                let mut n = (*self.store.get("/nodes", "", &name).expect("node")).clone();
                n["status"] = json!({
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status", "lastHeartbeatTime": util::now_rfc3339(),
                        "lastTransitionTime": util::now_rfc3339()}],
                    "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                    "nodeInfo": {"kubeletVersion": "v1.33.0-kube-sim", "operatingSystem": "linux", "architecture": "amd64"},
                });
                self.store.update(&nodes, "", &name, n, store::Part::Status)?;
            }
        }
        let sc = self.builtin("storage.k8s.io/storageclasses");
        if self.store.get(&sc.key(), "", "standard").is_none() {
            self.store.create(
                &sc,
                "",
                json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                    "provisioner": "kube-sim/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
            )?;
        }
        Ok(())
    }

    pub fn write_kubeconfig(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let cfg = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user:\n    token: kube-sim\n",
            self.server_url()
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, cfg)?;
        Ok(())
    }
}

/// Runs the simulator until SIGINT/SIGTERM, then writes a final snapshot.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = App::new(config)?;
    app.bootstrap()?;
    let listener = tokio::net::TcpListener::bind(app.config.listen).await?;
    if let Some(k) = &app.config.kubeconfig {
        app.write_kubeconfig(k)?;
    }
    controllers::spawn_all(app.clone());
    tracing::info!(url = %app.server_url(), "kube-sim serving");
    let router = server::router(app.clone());
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    let closer = app.close_watches.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Open watches would otherwise hold the graceful shutdown forever.
            closer.send_modify(|v| *v += 1);
        })
        .await?;
    app.processes.kill_all();
    app.store.save()?;
    Ok(())
}
