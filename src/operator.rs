//! The `run` command: connect to the cluster, make sure the CRDs are there, and serve until told
//! to stop. Controllers attach here as they land.

use crate::api::{Config, Task};
use kube::api::{Api, ListParams};
use kube::Client;
use std::time::Duration;

/// Errors that stop the operator from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot build a Kubernetes client (KUBECONFIG or in-cluster config): {0}")]
    Client(#[source] kube::Error),
    #[error("the {resource} CRD is not installed or not served: {source}; apply config/crd/bases or the Helm chart first")]
    MissingCrd {
        resource: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// Waits until both CRDs are served, so the controllers' watches do not fail in a loop.
async fn wait_for_crds(client: &Client, timeout: Duration) -> Result<(), StartError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let configs = Api::<Config>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
        let tasks = Api::<Task>::all(client.clone()).list_metadata(&ListParams::default().limit(1)).await;
        let failure = match (configs, tasks) {
            (Ok(_), Ok(_)) => return Ok(()),
            (Err(source), _) => ("configs.backup.datarestor-operator.com", source),
            (_, Err(source)) => ("tasks.backup.datarestor-operator.com", source),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(StartError::MissingCrd { resource: failure.0, source: failure.1 });
        }
        tracing::info!(crd = failure.0, "waiting for CRD to be served");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(crd_timeout: Duration) -> Result<(), StartError> {
    let client = Client::try_default().await.map_err(StartError::Client)?;
    wait_for_crds(&client, crd_timeout).await?;
    tracing::info!("datarestor-operator started");
    shutdown_signal().await;
    tracing::info!("datarestor-operator stopping");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
