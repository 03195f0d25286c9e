//! The plain-HTTP endpoint for Prometheus and the kubelet: `/metrics`, `/healthz` (the process
//! serves) and `/readyz` (the caches are filled, the restore gate is published, and this replica
//! leads or stands by ready to take over).

use crate::api::{Config, Task};
use crate::context::Context;
use crate::metrics::ClusterView;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What `/readyz` waits for.
#[derive(Debug, Default)]
pub struct Readiness {
    caches_synced: AtomicBool,
    gate_published: AtomicBool,
}

impl Readiness {
    pub fn caches_synced(&self) {
        self.caches_synced.store(true, Ordering::Relaxed);
    }

    pub fn gate_published(&self) {
        self.gate_published.store(true, Ordering::Relaxed);
    }

    /// `None` when ready, else what is still missing.
    pub fn missing(&self) -> Option<&'static str> {
        if !self.caches_synced.load(Ordering::Relaxed) {
            Some("the Config, Task and PVC caches are not filled yet")
        } else if !self.gate_published.load(Ordering::Relaxed) {
            Some("the restore gate is not published yet")
        } else {
            None
        }
    }
}

/// Starts serving on `listen`; returns once the port is bound.
pub async fn serve(ctx: Arc<Context>, listen: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(%listen, "metrics and health endpoint listening");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of file descriptors and the like: wait instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| handle(ctx.clone(), request));
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await {
                    tracing::debug!(%error, "metrics connection ended");
                }
            });
        }
    });
    Ok(())
}

async fn handle(ctx: Arc<Context>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("response"))
    };
    match request.uri().path() {
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match ctx.readiness.missing() {
            None => reply(StatusCode::OK, "text/plain", "ok\n".into()),
            Some(missing) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{missing}\n")),
        },
        "/metrics" => {
            let text = ctx.metrics.render(|metrics| observe(metrics, &ctx)).await;
            reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", text)
        }
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found: /metrics, /healthz and /readyz are served\n".into()),
    }
}

fn observe(metrics: &crate::metrics::Metrics, ctx: &Context) {
    metrics.restic(ctx.settings.restic.running_processes(), ctx.settings.restic.waiting_calls());
    let now = jiff::Timestamp::now();
    if !metrics.leading() {
        // A standby's caches hold only Configs: the cluster gauges come from the leader alone, so
        // sums over replicas count each PVC and repository once.
        let cluster_wide = &ctx.settings.cluster_wide;
        metrics.observe(&ClusterView { configs: &[], pvcs: &[], tasks: &[], cluster_wide, now });
        return;
    }
    let configs = ctx.configs.state();
    let configs: Vec<&Config> = configs.iter().filter_map(|guard| guard.0.as_ref().ok()).collect();
    let tasks = ctx.tasks.state();
    let tasks: Vec<&Task> = tasks.iter().filter_map(|guard| guard.0.as_ref().ok()).collect();
    let pvcs = ctx.pvcs.state();
    let pvcs: Vec<&PersistentVolumeClaim> = pvcs.iter().map(AsRef::as_ref).collect();
    metrics.observe(&ClusterView {
        configs: &configs,
        pvcs: &pvcs,
        tasks: &tasks,
        cluster_wide: &ctx.settings.cluster_wide,
        now,
    });
}
