//! The `run` command: connect to the cluster, make sure the CRDs are served, then run the Config,
//! Task and PVC controllers until told to stop.

use crate::api::{Catalog, Config, Task};
use crate::context::{Context, Settings};
use crate::controller;
use crate::job::{MANAGED_BY, MANAGED_BY_LABEL, TYPE_LABEL};
use crate::leader::LeaseSettings;
use crate::webhook::Webhook;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self as runtime_controller, Controller};
use kube::runtime::reflector::{self, reflector, ObjectRef};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Errors that stop the operator from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot build a Kubernetes client (KUBECONFIG or in-cluster config): {0}")]
    Client(#[source] kube::Error),
    #[error("restore-gate webhook: {0}")]
    Webhook(#[source] crate::webhook::WebhookError),
    #[error("cannot serve metrics and health on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the {resource} CRD is not installed or not served: {source}; apply config/crd/bases or the Helm chart first")]
    MissingCrd {
        resource: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// Waits until every CRD is served, so the controllers' watches do not fail in a loop (and an
/// upgrade whose new CRDs were not applied stops here, naming the missing one).
async fn wait_for_crds(client: &Client, timeout: Duration) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let one = ListParams::default().limit(1);
        let failure = match (
            Api::<Config>::all(client.clone()).list_metadata(&one).await,
            Api::<Task>::all(client.clone()).list_metadata(&one).await,
            Api::<Catalog>::all(client.clone()).list_metadata(&one).await,
        ) {
            (Ok(_), Ok(_), Ok(_)) => return Ok(()),
            (Err(source), _, _) => ("configs.backup.datarestor-operator.com", source),
            (_, Err(source), _) => ("tasks.backup.datarestor-operator.com", source),
            (_, _, Err(source)) => ("catalogs.backup.datarestor-operator.com", source),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(StartError::MissingCrd { resource: failure.0, source: failure.1 });
        }
        tracing::info!(crd = failure.0, "waiting for CRD to be served");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Whether this version of a Config differs, for its PVCs, from the last one seen: anything but its
/// `status.statistics`.
fn concerns_pvcs(config: &Config, seen: &mut std::collections::HashMap<String, u64>) -> bool {
    use std::hash::{Hash, Hasher};
    let mut status = config.status.clone().unwrap_or_default();
    status.statistics = None;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(&(&config.metadata.generation, &config.metadata.labels, &config.spec, &status))
        .unwrap_or_default()
        .hash(&mut hasher);
    let print = hasher.finish();
    seen.insert(config.uid().unwrap_or_default(), print) != Some(print)
}

/// What the process serves besides the controllers, and how it shares the work with other replicas.
#[derive(Debug, Default)]
pub struct Serving {
    /// The restore gate.
    pub webhook: Option<Webhook>,
    /// `/metrics`, `/healthz` and `/readyz`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Run the controllers only while holding this Lease.
    pub leader_election: Option<LeaseSettings>,
}

/// Runs the operator until SIGTERM or Ctrl-C; running reconciles finish first.
pub async fn run(settings: Settings, crd_timeout: Duration, serving: Serving) -> Result<(), StartError> {
    let client = Client::try_default().await.map_err(StartError::Client)?;
    wait_for_crds(&client, crd_timeout).await?;
    let shutdown = shutdown_signal().shared();

    // The Configs as every replica sees them, leading or not: the restore gate answers from them.
    let (config_cache, config_writer) = reflector::store::<DeserializeGuard<Config>>();
    let config_watch = reflector(config_writer, watcher::watcher(Api::all(client.clone()), watcher::Config::default()))
        .default_backoff()
        .for_each(|_| futures::future::ready(()));

    let owned_jobs = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let tasks = Controller::new(Api::<DeserializeGuard<Task>>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Job>::all(client.clone()), owned_jobs)
        .graceful_shutdown_on(shutdown.clone());
    // A retention Job finishing wakes its Config, which reads the result.
    let retention_jobs = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY},{TYPE_LABEL}=retention"));
    let configs = Controller::new(Api::<DeserializeGuard<Config>>::all(client.clone()), watcher::Config::default())
        .owns(Api::<Job>::all(client.clone()), retention_jobs)
        .with_config(runtime_controller::Config::default().debounce(Duration::from_secs(1)));
    let config_store = configs.store();
    let pvcs = Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default());
    let ctx = Arc::new(Context::new(client.clone(), settings, tasks.store(), config_cache, pvcs.store()));
    tokio::spawn(config_watch);
    // A PVC appearing, changing labels or going away changes what Configs select.
    let configs = configs
        .watches(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default(), move |_pvc| {
            config_store.state().iter().map(|c| ObjectRef::from_obj(c.as_ref())).collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown.clone());

    // A restore Task finishing moves its PVC's restore state on; a Config appearing or changing
    // re-examines the PVCs it selects.
    let cluster_wide = ctx.settings.cluster_wide.clone();
    let pvc_cache = ctx.pvcs.clone();
    let seen_configs = std::sync::Mutex::new(std::collections::HashMap::<String, u64>::new());
    let pvcs = pvcs
        .watches(Api::<DeserializeGuard<Config>>::all(client.clone()), watcher::Config::default(), move |guard| {
            let selected: Vec<ObjectRef<PersistentVolumeClaim>> = match &guard.0 {
                // A change of the statistics alone (each finished Task) concerns only PVCs still
                // waiting for a restore (a deleted Config looks unchanged, and must release them).
                Ok(config) if !concerns_pvcs(config, &mut seen_configs.lock().unwrap_or_else(|e| e.into_inner())) => pvc_cache
                    .state()
                    .iter()
                    .filter(|pvc| controller::restore::state(pvc) == Some(controller::restore::State::Pending))
                    .map(|pvc| ObjectRef::from_obj(pvc.as_ref()))
                    .collect(),
                // PVCs still waiting for a restore too: the Config may have stopped selecting them
                // (deleted, selector changed, autoRestore off), and their pods must not wait on.
                Ok(config) => pvc_cache
                    .state()
                    .iter()
                    .filter(|pvc| {
                        config.selects(pvc.metadata.namespace.as_deref().unwrap_or_default(), pvc.labels(), &cluster_wide)
                            || controller::restore::state(pvc) == Some(controller::restore::State::Pending)
                    })
                    .map(|pvc| ObjectRef::from_obj(pvc.as_ref()))
                    .collect(),
                Err(_) => Vec::new(),
            };
            selected
        })
        .watches(Api::<DeserializeGuard<Task>>::all(client.clone()), watcher::Config::default(), |guard| {
            let task = guard.0.as_ref().ok()?;
            Some(ObjectRef::<PersistentVolumeClaim>::new(&task.spec.pvc_name).within(task.metadata.namespace.as_deref()?))
        })
        .graceful_shutdown_on(shutdown.clone());

    if let Some(addr) = serving.metrics_listen {
        crate::health::serve(ctx.clone(), addr).await.map_err(|source| StartError::Metrics { addr, source })?;
    }
    if let Some(webhook) = &serving.webhook {
        crate::webhook::start(ctx.clone(), webhook).await.map_err(StartError::Webhook)?;
    }
    ctx.readiness.gate_published();
    let synced = ctx.clone();
    tokio::spawn(async move {
        crate::context::filled(&synced.configs).await;
        synced.readiness.caches_synced();
        tracing::info!("Config cache filled: the restore gate answers; ready");
    });

    let leadership = match serving.leader_election {
        Some(lease) => tokio::select! {
            leadership = crate::leader::acquire(client.clone(), lease) => Some(leadership),
            _ = shutdown.clone() => {
                tracing::info!("datarestor-operator stopped while standing by");
                return Ok(());
            }
        },
        None => None,
    };
    ctx.metrics.set_leader(true);
    // Other replicas may act once this one cannot renew: it stops at once, before they start.
    let keeper = leadership.clone().map(|leadership| {
        let held = ctx.clone();
        tokio::spawn(async move {
            let why = leadership.keep().await;
            held.metrics.set_leader(false);
            tracing::error!(%why, "lost the leader Lease; stopping so another replica leads");
            std::process::exit(1);
        })
    });

    // Workloads left scaled down by a crash, a deleted Task or anything else come back.
    let janitor = ctx.clone();
    let orphans = tokio::spawn(async move {
        loop {
            if let Err(error) = controller::quiesce::recover_orphans(&janitor).await {
                tracing::warn!(%error, "could not check for workloads left scaled down");
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
    tracing::info!("datarestor-operator started");
    tokio::join!(
        tasks
            .run(controller::task::reconcile, controller::task::error_policy, ctx.clone())
            .for_each(|r| log_result(&ctx, "task", r)),
        configs
            .run(controller::config::reconcile, controller::config::error_policy, ctx.clone())
            .for_each(|r| log_result(&ctx, "config", r)),
        pvcs.run(controller::pvc::reconcile, controller::pvc::error_policy, ctx.clone()).for_each(|r| log_result(&ctx, "pvc", r)),
    );
    // Nothing of this replica acts (or renews) once the Lease is given up.
    orphans.abort();
    if let Some(keeper) = keeper {
        keeper.abort();
    }
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    tracing::info!("datarestor-operator stopped");
    Ok(())
}

/// Counts each reconcile; errors are already logged and counted by the error policies.
async fn log_result<T, E: std::fmt::Display>(ctx: &Context, controller: &'static str, result: Result<T, E>) {
    ctx.metrics.reconciled(controller);
    if let Err(error) = result {
        tracing::debug!(controller, %error, "reconcile error");
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
