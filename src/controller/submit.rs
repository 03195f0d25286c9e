//! New Tasks: built here as pure functions of a Config, a PVC and what was asked, and created here
//! once. Every controller that turns a trigger (a schedule slot, an annotation, a new PVC) into
//! work comes through this module; none builds a Task of its own.
//!
//! A Task's name is its trigger's identity, so creating one that exists means the trigger was
//! already served and is not an error.

use crate::api::{snapshot_host, Config, ConfigRef, Repository, RestoreMode, Task, TaskSpec, TaskTrigger, TaskType};
use crate::context::Context;
use crate::job::{CONFIG_LABEL, MANAGED_BY, MANAGED_BY_LABEL, PVC_LABEL, TYPE_LABEL};
use crate::naming;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Resource, ResourceExt};
use std::collections::BTreeMap;

/// Labels every Task carries, so a PVC's history can be listed. A PVC name may be longer than a
/// label value can be; `naming::label_value` keeps it a valid (and still distinct) value.
pub fn task_labels(pvc: &str, type_: TaskType, config: &Config) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (PVC_LABEL.to_owned(), naming::label_value(pvc)),
        (TYPE_LABEL.to_owned(), type_.as_str().to_owned()),
        (CONFIG_LABEL.to_owned(), naming::label_value(&config.name_any())),
    ])
}

/// The label selector for one PVC's Tasks.
pub fn pvc_selector(pvc: &str) -> String {
    format!("{PVC_LABEL}={}", naming::label_value(pvc))
}

/// A Task beside its PVC: same namespace, labels naming it, and the PVC as (non-controller) owner
/// so its Tasks go when it goes.
fn beside(name: &str, spec: TaskSpec, pvc: &PersistentVolumeClaim, config: &Config) -> Task {
    let mut task = Task::new(name, spec);
    task.metadata.namespace = pvc.namespace();
    task.metadata.labels = Some(task_labels(&pvc.name_any(), task.spec.type_, config));
    if let Some(mut owner) = pvc.controller_owner_ref(&()) {
        owner.controller = None;
        owner.block_owner_deletion = None;
        task.metadata.owner_references = Some(vec![owner]);
    }
    task
}

fn config_ref(config: &Config) -> ConfigRef {
    ConfigRef { name: config.name_any(), namespace: config.namespace().unwrap_or_default() }
}

/// A backup of `pvc` to `repository`, always under the PVC's own host.
pub fn backup(
    config: &Config,
    pvc: &PersistentVolumeClaim,
    name: &str,
    repository: &Repository,
    trigger: TaskTrigger,
    backup_name: Option<String>,
    slot: Option<Timestamp>,
) -> Task {
    let spec = TaskSpec {
        type_: TaskType::Backup,
        trigger,
        pvc_name: pvc.name_any(),
        config_ref: config_ref(config),
        repository: Some(repository.shown()),
        host: snapshot_host(&pvc.namespace().unwrap_or_default(), &pvc.name_any()),
        name: backup_name,
        restore_mode: None,
        scheduled_for: slot.map(Time),
        latest_as_of: None,
    };
    beside(name, spec, pvc, config)
}

/// What a restore is asked to bring back, and how.
pub struct RestoreRequest {
    pub trigger: TaskTrigger,
    /// A repository target, or `None` for "each repository in priority order".
    pub repository: Option<String>,
    pub host: String,
    /// A backup name, snapshot id or id prefix; `None` for the newest.
    pub name: Option<String>,
    pub mode: RestoreMode,
    /// When the request was accepted: "the newest" means the newest at that moment.
    pub accepted_at: Timestamp,
}

/// A restore into `pvc`.
pub fn restore(config: &Config, pvc: &PersistentVolumeClaim, name: &str, request: RestoreRequest) -> Task {
    let latest_as_of = request.name.is_none().then_some(Time(request.accepted_at));
    let spec = TaskSpec {
        type_: TaskType::Restore,
        trigger: request.trigger,
        pvc_name: pvc.name_any(),
        config_ref: config_ref(config),
        repository: request.repository,
        host: request.host,
        name: request.name,
        restore_mode: Some(request.mode),
        scheduled_for: None,
        latest_as_of,
    };
    beside(name, spec, pvc, config)
}

/// A restore drill of `pvc` for a schedule slot: its newest snapshot (as of the slot) restored
/// into a scratch volume and checked; the PVC itself is not touched.
pub fn drill(config: &Config, pvc: &PersistentVolumeClaim, name: &str, slot: Timestamp) -> Task {
    let spec = TaskSpec {
        type_: TaskType::Drill,
        trigger: TaskTrigger::Scheduled,
        pvc_name: pvc.name_any(),
        config_ref: config_ref(config),
        repository: None,
        host: snapshot_host(&pvc.namespace().unwrap_or_default(), &pvc.name_any()),
        name: None,
        restore_mode: None,
        scheduled_for: Some(Time(slot)),
        latest_as_of: Some(Time(slot)),
    };
    beside(name, spec, pvc, config)
}

/// A PVC that can be backed up now: bound and not being deleted.
pub fn is_backupable(pvc: &PersistentVolumeClaim) -> bool {
    pvc.metadata.deletion_timestamp.is_none() && pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

/// Creates a Task unless one of that name exists (then the trigger was already served). Returns
/// whether it was created now.
pub async fn create(ctx: &Context, task: &Task) -> Result<bool, kube::Error> {
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), task.metadata.namespace.as_deref().unwrap_or_default());
    match api.create(&Default::default(), task).await {
        Ok(_) => Ok(true),
        Err(e) if is_already_exists(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.reason == "AlreadyExists" || status.code == 409)
}

/// An error the API server will give again for the same object (it is invalid or forbidden), as
/// opposed to one worth retrying (a timeout, a conflict, the server restarting).
pub fn is_refused(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if matches!(status.code, 400 | 403 | 422))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ConfigSpec;

    fn config() -> Config {
        let mut config = Config::new(
            "backup",
            serde_json::from_value::<ConfigSpec>(serde_json::json!({
                "repositories": [{"target": "s3:http://s3/a", "priority": 0, "backupSchedule": "@daily"}],
                "selectors": [{"matchLabels": {"app": "x"}}],
            }))
            .expect("spec"),
        );
        config.metadata.namespace = Some("backup-system".into());
        config
    }

    fn pvc(name: &str) -> PersistentVolumeClaim {
        let mut pvc = PersistentVolumeClaim::default();
        pvc.metadata.name = Some(name.into());
        pvc.metadata.namespace = Some("shop".into());
        pvc
    }

    #[test]
    fn a_pvc_name_too_long_for_a_label_still_labels_its_tasks() {
        let config = config();
        let long = format!("data-{}", "x".repeat(80));
        let task = backup(&config, &pvc(&long), "backup-1", &config.spec.repositories[0], TaskTrigger::Manual, None, None);
        let labels = task.metadata.labels.clone().unwrap_or_default();
        let value = &labels[PVC_LABEL];
        assert!(value.len() <= 63 && value.starts_with("data-x"), "{value}");
        assert_eq!(pvc_selector(&long), format!("{PVC_LABEL}={value}"));
        assert_eq!(task.spec.pvc_name, long, "the Task still names the PVC itself");
        assert_eq!(task.spec.host, format!("shop-{long}"));
        let short = backup(&config, &pvc("data"), "backup-2", &config.spec.repositories[0], TaskTrigger::Manual, None, None);
        assert_eq!(short.metadata.labels.unwrap_or_default()[PVC_LABEL], "data");
    }

    #[test]
    fn latest_is_pinned_to_when_the_request_was_accepted() {
        let config = config();
        let accepted_at: Timestamp = "2026-03-10T02:00:00Z".parse().unwrap();
        let request = |name: Option<&str>| RestoreRequest {
            trigger: TaskTrigger::Manual,
            repository: None,
            host: "shop-data".into(),
            name: name.map(str::to_owned),
            mode: RestoreMode::Clean,
            accepted_at,
        };
        let latest = restore(&config, &pvc("data"), "restore-1", request(None));
        assert_eq!(latest.spec.latest_as_of, Some(Time(accepted_at)));
        let named = restore(&config, &pvc("data"), "restore-2", request(Some("nightly")));
        assert_eq!(named.spec.latest_as_of, None, "a named snapshot needs no time");
    }
}
