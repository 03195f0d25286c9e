//! The reconcilers: Configs (validation, repositories, schedules, retention), Tasks (one restic
//! Job each) and PVCs (annotation requests).

pub mod catalog;
pub mod config;
pub mod gate;
pub mod hooks;
pub mod jobs;
pub mod pvc;
pub mod quiesce;
pub mod request;
pub mod restore;
pub mod submit;
pub mod task;

use kube::runtime::controller::Action;
use std::time::Duration;

/// Why a reconcile failed; the category is a stable label for logs and Events.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no {0}")]
    MissingField(&'static str),
    #[error("cannot serialize: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Error {
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(_) => "KubernetesApi",
            Self::MissingField(_) => "MalformedObject",
            Self::Serialize(_) => "Serialize",
        }
    }
}

/// Transient failures are retried soon; nothing here is permanent (invalid specs are answered in
/// status and wait for a change instead of erroring).
pub fn retry_soon(ctx: &crate::context::Context, controller: &'static str, error: &Error) -> Action {
    tracing::warn!(controller, category = error.category(), %error, "reconcile failed; retrying");
    ctx.metrics.reconcile_failed(controller, error.category());
    Action::requeue(Duration::from_secs(5))
}
