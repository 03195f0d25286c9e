//! Task reconcile: one backup (or restore) of one PVC through one restic Job.
//!
//! Pending → (ScalingDown) → Running → (ScalingUp) → Completed | Failed. The scaling phases pass
//! straight through until workloads are quiesced. A Task waits in Pending while its PVC has another
//! active Task (requests queue, they are not lost) or its repository is at its Job limit.

use super::{jobs, retry_soon, Error};
use crate::annotation::SnapshotRef;
use crate::api::{
    hook_for, set_condition, ConditionStatus, Config, Hook, HookOnError, HookPoint, HookRecord, HookResult, Policy, Task,
    TaskPhase, TaskStatus, TaskTrigger, TaskType,
};
use crate::context::Context;
use crate::credentials;
use crate::job::{self, JobInputs};
use crate::restic::{self, Failure};
use crate::restore::Found;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// Field manager for everything the operator applies.
pub const FIELD_MANAGER: &str = "datarestor-operator";
/// Annotation on a PVC that answers its last `manual-backup` request.
pub const BACKUP_RESULT_ANNOTATION: &str = "backup.datarestor-operator.com/manual-backup-result";
fn phase_of(task: &Task) -> TaskPhase {
    task.status.as_ref().and_then(|s| s.phase).unwrap_or_default()
}

fn is_active(phase: TaskPhase) -> bool {
    matches!(phase, TaskPhase::ScalingDown | TaskPhase::Running | TaskPhase::ScalingUp)
}

pub async fn reconcile(guard: Arc<DeserializeGuard<Task>>, ctx: Arc<Context>) -> Result<Action, Error> {
    let task = match &guard.0 {
        Ok(task) => task,
        Err(invalid) => {
            tracing::warn!(name = ?invalid.metadata.name, error = %invalid.error, "Task cannot be read");
            return Ok(Action::await_change());
        }
    };
    match phase_of(task) {
        TaskPhase::Completed | TaskPhase::Failed => Ok(Action::await_change()),
        TaskPhase::Pending => start(task, &ctx).await,
        TaskPhase::ScalingDown | TaskPhase::Running | TaskPhase::ScalingUp => follow(task, &ctx).await,
    }
}

/// Everything a Task needs from elsewhere, or why it cannot run.
struct Resolved {
    /// The Config as this Task's snapshots see it (`Config::for_pvc`).
    config: Config,
    /// The Config as written (its per-namespace repositories still templates).
    written: Config,
    pvc: PersistentVolumeClaim,
    /// The settings for this PVC: the Config's, or those of the first selector picking it.
    policy: Policy,
}

async fn resolve(task: &Task, ctx: &Context) -> Result<Result<Resolved, String>, Error> {
    let namespace = task.namespace().ok_or(Error::MissingField("namespace"))?;
    let configs: Api<Config> = Api::namespaced(ctx.client.clone(), &task.spec.config_ref.namespace);
    let Some(config) = configs.get_opt(&task.spec.config_ref.name).await? else {
        return Ok(Err(format!("Config {}/{} does not exist", task.spec.config_ref.namespace, task.spec.config_ref.name)));
    };
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(pvc) = pvcs.get_opt(&task.spec.pvc_name).await? else {
        return Ok(Err(format!("PVC {namespace}/{} does not exist", task.spec.pvc_name)));
    };
    // The repositories this Task's snapshots live in: its PVC's own, or for a restore those of
    // the PVC whose host it reads (same namespace; anything else is refused in `not_allowed`).
    let source = match task.spec.type_ {
        TaskType::Backup | TaskType::Drill => task.spec.pvc_name.as_str(),
        TaskType::Restore => super::restore::source_pvc(&namespace, &task.spec.host, &task.spec.pvc_name),
    };
    let policy = config.spec.policy(&namespace, pvc.labels());
    Ok(Ok(Resolved { config: config.for_pvc(&namespace, source), written: config, pvc, policy }))
}

/// Why a Task must not run, whoever wrote it: a Task is a request like an annotation, and gets
/// the same checks. Its Config must select its PVC; a backup is stored under the PVC's own host; a
/// restore reads another namespace's host only where the Config allows cross-namespace restores.
async fn not_allowed(task: &Task, resolved: &Resolved, ctx: &Context) -> Result<Option<String>, Error> {
    let namespace = task.namespace().unwrap_or_default();
    let config = &resolved.config;
    let config_name = format!("{}/{}", config.namespace().unwrap_or_default(), config.name_any());
    if !config.selects(&namespace, resolved.pvc.labels(), &ctx.settings.cluster_wide) {
        return Ok(Some(format!("Config {config_name} does not select PVC {namespace}/{}", task.spec.pvc_name)));
    }
    let own_host = crate::api::snapshot_host(&namespace, &task.spec.pvc_name);
    match task.spec.type_ {
        TaskType::Backup if task.spec.host != own_host => {
            Ok(Some(format!("a backup of {namespace}/{} is stored under its own host {own_host}", task.spec.pvc_name)))
        }
        TaskType::Drill if task.spec.host != own_host => {
            Ok(Some(format!("a drill of {namespace}/{} reads its own host {own_host}", task.spec.pvc_name)))
        }
        TaskType::Drill if resolved.policy.drill.is_none() => Ok(Some(format!(
            "no drill is configured for PVC {namespace}/{} (drill on its Config or selector)",
            task.spec.pvc_name
        ))),
        TaskType::Restore => {
            let crosses = super::restore::crosses_namespace(ctx, &namespace, &task.spec.host).await?;
            Ok(super::restore::cross_namespace_refusal(&resolved.written, &task.spec.host, crosses))
        }
        _ => Ok(None),
    }
}

async fn start(task: &Task, ctx: &Context) -> Result<Action, Error> {
    let namespace = task.namespace().ok_or(Error::MissingField("namespace"))?;
    let key = (namespace.clone(), task.name_any());
    let resolved = match resolve(task, ctx).await? {
        Ok(resolved) => resolved,
        Err(message) => return fail(task, ctx, "NotFound", &message).await,
    };
    if let Some(message) = not_allowed(task, &resolved, ctx).await? {
        return fail(task, ctx, "NotAllowed", &message).await;
    }
    let mut status = task.status.clone().unwrap_or_default();
    let target = match task.spec.type_ {
        TaskType::Backup => {
            if super::restore::blocks_backup(&resolved.pvc) {
                return wait(
                    task,
                    ctx,
                    "waiting: the PVC's restore has not finished, and an unrestored volume is never backed up",
                )
                .await;
            }
            let Some(target) = task.spec.repository.clone() else {
                return fail(task, ctx, "NoRepository", "the Task names no repository").await;
            };
            match repository_readiness(&resolved.config, &target) {
                Readiness::Ready => {}
                Readiness::Wait(message) => return wait(task, ctx, &message).await,
                Readiness::Refused(reason, message) => return fail(task, ctx, &reason, &message).await,
            }
            let users = super::quiesce::pods_using(ctx, &resolved.pvc).await?;
            if let Some(message) = single_pod_conflict(&resolved.pvc, &users, resolved.policy.stop_pods) {
                return fail(task, ctx, "VolumeInUse", &message).await;
            }
            target
        }
        TaskType::Restore => {
            let users = super::quiesce::pods_using(ctx, &resolved.pvc).await?;
            // A pod still terminating there (one the restore gate had to send away) may still write.
            if users.is_empty() && !resolved.policy.stop_pods {
                let leaving = super::quiesce::pods_mounting(ctx, &namespace, &task.spec.pvc_name).await?;
                if !leaving.is_empty() {
                    let names: Vec<String> = leaving.iter().map(|p| p.name_any()).collect();
                    return wait(task, ctx, &format!("waiting for pod {} to stop using the volume", names.join(", "))).await;
                }
            }
            if !users.is_empty() && !resolved.policy.stop_pods {
                let message =
                    format!("the PVC is in use by pod {}; a restore never writes under a running app", users.join(", "));
                if task.spec.trigger == TaskTrigger::Manual {
                    return fail(task, ctx, "VolumeInUse", &message).await;
                }
                return wait(task, ctx, &message).await;
            }
            match resolved_snapshot(task, ctx, &resolved.config, &mut status).await? {
                Ok(target) => target,
                Err(action) => return Ok(action),
            }
        }
        // A drill reads the repository and writes only its scratch volume: whoever uses the PVC
        // goes on undisturbed.
        TaskType::Drill => match resolved_snapshot(task, ctx, &resolved.config, &mut status).await? {
            Ok(target) => target,
            Err(action) => return Ok(action),
        },
    };
    let Some(repository) = resolved.config.spec.repository(&target).cloned() else {
        return fail(task, ctx, "NoRepository", &format!("Config has no repository {target}")).await;
    };

    // One active Task per PVC, and at most maxConcurrentJobs per repository. The lock makes the
    // check and the claim one step for this process.
    let mut starting = ctx.starting.lock().await;
    let tasks: Vec<Arc<DeserializeGuard<Task>>> = ctx.tasks.state();
    let others = tasks
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|t| t.name_any() != task.name_any() || t.namespace() != task.namespace());
    let mut busy_pvc = None;
    let mut running_here = 0;
    for other in others {
        let other_key = (other.namespace().unwrap_or_default(), other.name_any());
        let active = is_active(phase_of(other)) || (starting.contains(&other_key) && !phase_of(other).is_finished());
        if !active {
            continue;
        }
        // A drill never touches its PVC: it neither waits for the PVC's other Tasks nor holds them up.
        let drill = task.spec.type_ == TaskType::Drill || other.spec.type_ == TaskType::Drill;
        if other.namespace() == task.namespace() && other.spec.pvc_name == task.spec.pvc_name && !drill {
            busy_pvc = Some(other.name_any());
        }
        if other.status.as_ref().and_then(|s| s.repository.as_deref()).or(other.spec.repository.as_deref())
            == Some(target.as_str())
        {
            running_here += 1;
        }
    }
    let waiting = if let Some(other) = busy_pvc {
        Some(format!("queued behind Task {other} on the same PVC"))
    } else if running_here >= repository.max_concurrent_jobs as usize {
        Some(format!(
            "queued: {running_here} Jobs already run against {target} (maxConcurrentJobs {})",
            repository.max_concurrent_jobs
        ))
    } else {
        None
    };
    if let Some(message) = waiting {
        drop(starting);
        return wait(task, ctx, &message).await;
    }

    if task.spec.type_ == TaskType::Backup && !status.hooks.iter().any(|h| h.point == HookPoint::PreBackup.name()) {
        let hook = match hook_for(&resolved.policy, resolved.pvc.annotations(), HookPoint::PreBackup) {
            Ok(hook) => hook,
            Err(message) => {
                drop(starting);
                return fail(task, ctx, "InvalidHook", &message).await;
            }
        };
        if let Some(hook) = hook {
            starting.insert(key.clone());
            drop(starting);
            status.message = Some(format!("running the pre-backup hook {:?} (timeout {}s)", hook.command, hook.timeout_seconds));
            status.start_time.get_or_insert(Time(Timestamp::now()));
            patch_status(task, ctx, &status).await?;
            if let Some(message) = pre_backup_hook(task, ctx, &resolved, &hook, &mut status).await? {
                return fail_with(task, ctx, status, "HookFailed", &message).await;
            }
            patch_status(task, ctx, &status).await?;
            starting = ctx.starting.lock().await;
        }
    }

    if resolved.policy.stop_pods && task.spec.type_ != TaskType::Drill {
        let owners = super::quiesce::owners(ctx, &namespace, &task.spec.pvc_name).await?;
        if !owners.unmanaged.is_empty() {
            let message =
                format!("pods {} are not run by a Deployment or StatefulSet and cannot be stopped", owners.unmanaged.join(", "));
            if task.spec.type_ == TaskType::Restore {
                drop(starting);
                return fail(task, ctx, "VolumeInUse", &format!("{message}; a restore never writes under a running app")).await;
            }
            if resolved.config.spec.unmanaged_pods == crate::api::UnmanagedPods::Refuse {
                drop(starting);
                return fail(task, ctx, "VolumeInUse", &format!("{message}; unmanagedPods is Refuse")).await;
            }
            ctx.event(
                &task.object_ref(&()),
                EventType::Warning,
                "NotQuiesced",
                "ScaleDown",
                format!("{message}; backing up while they run"),
            )
            .await;
        }
        if !owners.workloads.is_empty() {
            // Record what this Task holds down before touching anything, so a crash cannot lose it.
            status.phase = Some(TaskPhase::ScalingDown);
            status.repository = Some(target.clone());
            status.quiesced_workloads = owners.workloads.iter().map(ToString::to_string).collect();
            status.start_time.get_or_insert(Time(Timestamp::now()));
            status.message = Some(format!("scaling down {} to free the volume", status.quiesced_workloads.join(", ")));
            patch_status(task, ctx, &status).await?;
            starting.insert(key);
            drop(starting);
            for workload in &owners.workloads {
                super::quiesce::scale_down(ctx, &namespace, workload, &super::quiesce::holder(task)).await?;
            }
            ctx.event(
                &task.object_ref(&()),
                EventType::Normal,
                "ScaledDown",
                "ScaleDown",
                status.message.clone().unwrap_or_default(),
            )
            .await;
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
    }
    starting.insert(key);
    drop(starting);
    launch(task, ctx, &resolved, &repository, status).await
}

/// Creates the restic Job (the volume is free, or nobody needs stopping) and marks the Task Running.
async fn launch(
    task: &Task,
    ctx: &Context,
    resolved: &Resolved,
    repository: &crate::api::Repository,
    mut status: TaskStatus,
) -> Result<Action, Error> {
    let namespace = task.namespace().ok_or(Error::MissingField("namespace"))?;
    // What the Job, the Task and its messages show; restic gets the real target from the Secret.
    let target = repository.shown();
    // Credentials Secret in the PVC's namespace, applied fresh each time (rotations propagate).
    let sources = match ctx
        .fetch_env_sources(&resolved.config.namespace().unwrap_or_default(), &resolved.config.spec.effective_env(repository))
        .await
    {
        Ok(sources) => sources,
        Err(e) => return not_launched(task, ctx, &status, "the repository's credentials", e).await,
    };
    let env = match credentials::resolve(
        &resolved.config.spec,
        repository,
        &ctx.settings.restic_options(&resolved.config.spec, repository),
        &sources,
    ) {
        Ok(env) => env,
        Err(e) => return fail(task, ctx, "CredentialsMissing", &e.to_string()).await,
    };
    // The Task's own credentials Secret, gone with the Task (and deleted when it finishes): the
    // credentials are in the PVC's namespace only while a backup or restore runs there.
    let secret_name = jobs::task_credentials_name(&task.name_any());
    let owner = task.controller_owner_ref(&());
    let applied = jobs::apply_credentials(ctx, (&resolved.config, repository), &namespace, &secret_name, owner, &env).await;
    let credential_keys = match applied {
        Ok(keys) => keys,
        Err(e) => return not_launched(task, ctx, &status, "the credentials Secret", e).await,
    };
    // Earlier releases kept one long-lived credentials Secret per namespace and repository.
    let legacy = credentials::secret_name(&resolved.config, repository);
    jobs::delete_if_present(&Api::<Secret>::namespaced(ctx.client.clone(), &namespace), &legacy, &DeleteParams::default())
        .await?;

    let drill = resolved.policy.drill.clone().filter(|_| task.spec.type_ == TaskType::Drill);
    let node = match &drill {
        // Its scratch volume is new; the PVC's node does not matter.
        Some(drill) => {
            if let Err(message) = scratch_claim(task, ctx, &resolved.pvc, drill, &mut status).await? {
                return fail_with(task, ctx, status, "DrillNotStarted", &message).await;
            }
            None
        }
        None => node_using(ctx, &namespace, &resolved.pvc).await?,
    };
    let now = Timestamp::now();
    let attempt = status.attempts.unwrap_or(0).max(0) as u32;
    let administrators = ctx.settings.cluster_wide.contains(resolved.config.metadata.namespace.as_deref().unwrap_or_default());
    let settings = ctx.settings.job.for_config(resolved.config.spec.jobs.as_ref(), administrators);
    let inputs = JobInputs {
        repository: &target,
        snapshot_id: status.snapshot_id.as_deref(),
        credentials_secret: &secret_name,
        credential_keys: &credential_keys,
        node_name: node.as_deref(),
        attempt,
        run_as: resolved.config.spec.run_jobs_as,
        settings: &settings,
        options: &ctx.settings.restic_options(&resolved.config.spec, repository),
        drill_command: drill.as_ref().map_or(&[], |d| d.command.as_slice()),
    };
    let job = job::build(task, &inputs).ok_or(Error::MissingField("uid"))?;
    let job_name = job.metadata.name.clone().ok_or(Error::MissingField("job name"))?;
    match Api::<Job>::namespaced(ctx.client.clone(), &namespace).create(&PostParams::default(), &job).await {
        Ok(_) => {}
        Err(e) if super::submit::is_already_exists(&e) => {}
        Err(e) => return not_launched(task, ctx, &status, &format!("restic Job {job_name}"), e).await,
    }

    status.phase = Some(TaskPhase::Running);
    status.job_name = Some(job_name.clone());
    status.repository = Some(target.clone());
    status.attempts = Some(attempt as i32 + 1);
    status.start_time.get_or_insert(Time(now));
    status.message = Some(match &node {
        Some(node) => format!("restic Job {job_name} running on node {node}, where the volume is in use"),
        None => format!("restic Job {job_name} running"),
    });
    set_condition(
        &mut status.conditions,
        "JobCreated",
        ConditionStatus::True,
        "JobCreated",
        &job_name,
        task.metadata.generation,
        now,
    );
    patch_status(task, ctx, &status).await?;
    ctx.event(&task.object_ref(&()), EventType::Normal, "JobCreated", "Start", format!("restic Job {job_name} created")).await;
    // The Job's completion wakes this Task (the controller watches owned Jobs); this is a backstop.
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// `what` (the credentials, their Secret or the Job) could not be read or created. The cluster
/// refusing it (invalid, forbidden, over a quota, denied by a webhook) fails the Task at once; any
/// other error is retried, but never with the workloads held down for longer than
/// `job_start_timeout`: then the Task fails and its workloads come back.
async fn not_launched(task: &Task, ctx: &Context, status: &TaskStatus, what: &str, error: kube::Error) -> Result<Action, Error> {
    if super::submit::is_refused(&error) {
        return fail(task, ctx, "JobNotCreated", &format!("the cluster refused {what}: {error}")).await;
    }
    let waited = status.start_time.as_ref().map_or(0, |t| Timestamp::now().as_second() - t.0.as_second());
    if !status.quiesced_workloads.is_empty() && waited > ctx.settings.job_start_timeout.as_secs() as i64 {
        let held = status.quiesced_workloads.join(", ");
        let message = format!("{what} could not be created for {waited}s while {held} stayed scaled down: {error}");
        return fail(task, ctx, "JobNotCreated", &message).await;
    }
    Err(error.into())
}

/// Whether a Task for `target` can run now, by the Config's last look at the repository.
#[derive(Debug, PartialEq)]
enum Readiness {
    Ready,
    /// Not known to work yet: not checked (the operator is starting, the Config was just applied)
    /// or unreachable for now. The Task waits, saying why; a request is never failed for this.
    Wait(String),
    /// Checked and refused for a reason that waiting does not cure (wrong password, credentials
    /// refused or missing): the Task fails at once, having run nothing.
    Refused(String, String),
}

fn repository_readiness(config: &Config, target: &str) -> Readiness {
    let shown = crate::restic::redact_target(target);
    let health = config.status.as_ref().and_then(|s| s.repositories.iter().find(|r| r.target == shown));
    let target = shown.as_str();
    match health {
        None => Readiness::Wait(format!("waiting for repository {target}: the Config has not checked it yet")),
        // A locked repository is usable: the Job that meets a stale lock has it removed and runs again.
        Some(status) if status.ready || status.reason == "RepositoryLocked" => Readiness::Ready,
        Some(status) if ["WrongPassword", "AccessDenied", "CredentialsMissing"].contains(&status.reason.as_str()) => {
            Readiness::Refused(
                status.reason.clone(),
                format!("repository {target} is not usable ({}): {}", status.reason, status.message),
            )
        }
        Some(status) => Readiness::Wait(format!(
            "waiting for repository {target}, which is not ready ({}: {})",
            status.reason, status.message
        )),
    }
}

/// A ReadWriteOncePod volume mounts in one pod at a time: while `users` run, a backup Job could
/// never start (it would wait unscheduled until its deadline).
fn single_pod_conflict(pvc: &PersistentVolumeClaim, users: &[String], stop_pods: bool) -> Option<String> {
    let modes = pvc.spec.as_ref().and_then(|s| s.access_modes.as_deref()).unwrap_or_default();
    if users.is_empty() || !modes.iter().any(|m| m == "ReadWriteOncePod") {
        return None;
    }
    let pods = users.join(", ");
    Some(if stop_pods {
        format!("the ReadWriteOncePod volume is used by pod {pods}, which DataRestor cannot stop; no other pod can mount it")
    } else {
        format!("the ReadWriteOncePod volume is used by pod {pods} and no other pod can mount it; set stopPods to back it up")
    })
}

/// Why a restore's snapshot is not known yet.
enum Unresolved {
    /// Try again later (repositories unreachable, for an automatic restore: fail closed).
    Wait(String),
    /// Give up with this reason and message; nothing was touched.
    Fail(&'static str, String),
}

/// Finds the snapshot a restore Task names, in its repository or in priority order.
async fn resolve_snapshot(task: &Task, ctx: &Context, config: &Config) -> Result<Result<(String, String), Unresolved>, Error> {
    let repositories: Vec<&crate::api::Repository> = match &task.spec.repository {
        Some(target) => config.spec.repository(target).into_iter().collect(),
        None => config.spec.repositories_by_priority(),
    };
    let wanted = task.spec.name.clone().map_or(SnapshotRef::Latest, SnapshotRef::Named);
    let what = task.spec.name.clone().unwrap_or_else(|| "latest".into());
    let unchecked = super::restore::unchecked(config, &repositories);
    if !unchecked.is_empty() {
        let message = format!("waiting for repository {}: the Config has not checked it yet", unchecked.join(", "));
        return Ok(Err(Unresolved::Wait(message)));
    }
    // An automatic restore names the snapshot its decision found in the shared listing: taken
    // from there, a DR's thousands of Tasks do not each list the repository again.
    let listed = match (&task.spec.name, repositories.as_slice()) {
        (Some(id), [repository]) if task.spec.latest_as_of.is_none() => {
            super::restore::listed_snapshot(ctx, config, repository, &task.spec.host, id)
                .map(|snapshot| Found::Snapshot { repository: repository.shown(), snapshot })
        }
        _ => None,
    };
    let found = match listed {
        Some(found) => found,
        None => {
            let mut listings = super::restore::listings(ctx, config, &repositories, &task.spec.host, None).await?;
            if let Some(at) = &task.spec.latest_as_of {
                listings = crate::restore::as_of(listings, at.0);
            }
            crate::restore::find(listings, &task.spec.host, &wanted)
        }
    };
    Ok(match found {
        Found::Snapshot { snapshot, .. }
            if !config.spec.allow_cross_namespace_restore
                && snapshot.tag(restic::NAMESPACE_TAG).is_some_and(|ns| Some(ns) != task.metadata.namespace.as_deref()) =>
        {
            Err(Unresolved::Fail(
                "NotAllowed",
                format!(
                    "snapshot {} was taken of a PVC in namespace {}; cross-namespace restores are off; nothing was changed",
                    snapshot.short_id,
                    snapshot.tag(restic::NAMESPACE_TAG).unwrap_or_default()
                ),
            ))
        }
        Found::Snapshot { repository, snapshot } => Ok((repository, snapshot.id)),
        Found::Nowhere { searched } => Err(Unresolved::Fail(
            "SnapshotNotFound",
            format!("no snapshot {what:?} of host {} in {}; nothing was changed", task.spec.host, searched.join(", ")),
        )),
        Found::Ambiguous { repository, ids } => Err(Unresolved::Fail(
            "SnapshotAmbiguous",
            format!("{what:?} matches several snapshots in {repository} ({}); give more of the id", ids.join(", ")),
        )),
        Found::Unknown { unreachable } => {
            let detail: Vec<String> = unreachable.iter().map(|(r, e)| format!("{r}: {e}")).collect();
            let message = format!("cannot search every repository for {what:?}: {}", detail.join("; "));
            if task.spec.trigger == TaskTrigger::Auto {
                Err(Unresolved::Wait(message))
            } else {
                Err(Unresolved::Fail("RepositoryUnavailable", format!("{message}; nothing was changed")))
            }
        }
    })
}

/// Keeps a Task Pending with a message saying why, and looks again soon.
async fn wait(task: &Task, ctx: &Context, message: &str) -> Result<Action, Error> {
    let mut status = task.status.clone().unwrap_or_default();
    if status.message.as_deref() != Some(message) || status.phase.is_none() {
        status.phase = Some(TaskPhase::Pending);
        status.message = Some(message.to_owned());
        patch_status(task, ctx, &status).await?;
    }
    Ok(Action::requeue(ctx.settings.retry_interval))
}

/// The node a ReadWriteOnce volume is attached to, when a running pod uses it.
async fn node_using(ctx: &Context, namespace: &str, pvc: &PersistentVolumeClaim) -> Result<Option<String>, Error> {
    let modes = pvc.spec.as_ref().and_then(|s| s.access_modes.clone()).unwrap_or_default();
    let single_node = !modes.is_empty() && modes.iter().all(|m| m == "ReadWriteOnce" || m == "ReadWriteOncePod");
    if !single_node {
        return Ok(None);
    }
    let pods = super::quiesce::pods_mounting(ctx, namespace, &pvc.name_any()).await?;
    Ok(pods.into_iter().filter(|pod| pod.metadata.deletion_timestamp.is_none()).find_map(|pod| pod.spec?.node_name))
}

/// How long a scale-down may take before the Task gives up (and scales back up).
const SCALE_DOWN_TIMEOUT_SECONDS: i64 = 300;

async fn follow(task: &Task, ctx: &Context) -> Result<Action, Error> {
    let namespace = task.namespace().ok_or(Error::MissingField("namespace"))?;
    let status = task.status.clone().unwrap_or_default();
    if status.phase == Some(TaskPhase::ScalingDown) && status.job_name.is_none() {
        // The volume is free only when no pod mounts it any more, not when readyReplicas is 0.
        let left = super::quiesce::pods_mounting(ctx, &namespace, &task.spec.pvc_name).await?;
        if left.is_empty() {
            let resolved = match resolve(task, ctx).await? {
                Ok(resolved) => resolved,
                Err(message) => return fail(task, ctx, "NotFound", &message).await,
            };
            let target = status.repository.clone().or(task.spec.repository.clone()).unwrap_or_default();
            let Some(repository) = resolved.config.spec.repository(&target).cloned() else {
                return fail(task, ctx, "NoRepository", &format!("Config has no repository {target}")).await;
            };
            return launch(task, ctx, &resolved, &repository, status).await;
        }
        // Finish a scale-down a crash or a failed update interrupted; and notice something else (an
        // HPA, a GitOps tool re-applying replicas) scaling the workload back up, which would keep
        // the volume busy forever: say so and give the workload back.
        let holder = super::quiesce::holder(task);
        for workload in status.quiesced_workloads.iter().filter_map(|w| w.parse::<super::quiesce::Workload>().ok()) {
            match super::quiesce::hold(ctx, &namespace, &workload, &holder).await? {
                super::quiesce::Hold::NotHeld => super::quiesce::scale_down(ctx, &namespace, &workload, &holder).await?,
                super::quiesce::Hold::Held { replicas } if replicas > 0 => {
                    let message = format!(
                        "{workload} was scaled to {replicas} by someone else while DataRestor held it at 0 (an HPA or a GitOps tool managing replicas?); nothing was backed up or restored"
                    );
                    ctx.event(&task.object_ref(&()), EventType::Warning, "ScaleDownFought", "ScaleDown", &message).await;
                    return fail(task, ctx, "ScaleDownFought", &message).await;
                }
                _ => {}
            }
        }
        let waited = status.start_time.as_ref().map_or(0, |t| Timestamp::now().as_second() - t.0.as_second());
        if waited > SCALE_DOWN_TIMEOUT_SECONDS {
            let names: Vec<String> = left.iter().map(|p| p.name_any()).collect();
            return fail(
                task,
                ctx,
                "ScaleDownTimeout",
                &format!("pods {} still mount the volume after {waited}s", names.join(", ")),
            )
            .await;
        }
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let Some(job_name) = status.job_name.clone() else {
        // Claimed but the Job was never recorded (operator stopped in between): start again.
        return start(task, ctx).await;
    };
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(job) = jobs.get_opt(&job_name).await? else {
        return fail(task, ctx, "JobMissing", &format!("restic Job {job_name} was deleted before it finished")).await;
    };
    let conditions = job.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let holds = |type_: &str| conditions.iter().find(|c| c.type_ == type_ && c.status == "True");
    if holds("Complete").is_some() {
        let output = jobs::job_output(ctx, &namespace, &job_name).await?;
        return complete(task, ctx, &output).await;
    }
    if let Some(failed) = holds("Failed") {
        let output = jobs::job_output(ctx, &namespace, &job_name).await?;
        let exit_code = jobs::last_exit_code(ctx, &namespace, &job_name).await?.unwrap_or(1);
        if task.spec.type_ == TaskType::Restore && exit_code == super::restore::EXIT_VOLUME_NOT_EMPTY {
            return fail(
                task,
                ctx,
                "VolumeNotEmpty",
                "the volume already holds data and the restore mode is IfEmpty; nothing was changed",
            )
            .await;
        }
        let failure = Failure::classify(exit_code, &output);
        if failure == Failure::Locked && status.attempts.unwrap_or(1) < 2 {
            return retry_after_unlock(task, ctx, &job_name).await;
        }
        let reason = failed.reason.clone().unwrap_or_default();
        let detail = restic::last_lines(&output, 3);
        let message = match reason.as_str() {
            "DeadlineExceeded" if failure == Failure::Other => format!("restic Job {job_name} exceeded its deadline: {detail}"),
            // Its pod failed for a known reason, and the Job's retries ran into the deadline.
            "DeadlineExceeded" => {
                format!("restic Job {job_name} exceeded its deadline after failing ({}): {detail}", failure.reason())
            }
            _ => format!("restic Job {job_name} failed ({}): {detail}", failure.reason()),
        };
        return fail(task, ctx, failure.reason(), &message).await;
    }
    let has_pods =
        job.status.as_ref().is_some_and(|s| s.active.unwrap_or(0) + s.succeeded.unwrap_or(0) + s.failed.unwrap_or(0) > 0);
    if !has_pods {
        // A Job whose pods the cluster refuses (Pod Security, a quota, an admission webhook) only
        // says so in an Event and retries until its deadline, with the workloads scaled down the
        // whole time. Answer at once; the Job goes, so it cannot run later, unasked.
        if let Some(refusal) = jobs::pod_creation_refused(ctx, &namespace, &job).await? {
            jobs::delete_if_present(&jobs, &job_name, &DeleteParams::background()).await?;
            let message = format!("the cluster refused to create the pods of restic Job {job_name}: {refusal}");
            return fail(task, ctx, "JobPodsRejected", &message).await;
        }
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// A stale lock (from a killed restic) made the Job fail: remove stale locks and run a new Job.
async fn retry_after_unlock(task: &Task, ctx: &Context, job_name: &str) -> Result<Action, Error> {
    let resolved = match resolve(task, ctx).await? {
        Ok(resolved) => resolved,
        Err(message) => return fail(task, ctx, "NotFound", &message).await,
    };
    // The repository the Job used: a restore without a repository part resolved it at start.
    let target = task.status.as_ref().and_then(|s| s.repository.clone()).or(task.spec.repository.clone()).unwrap_or_default();
    let Some(repository) = resolved.config.spec.repository(&target) else {
        let message = format!("restic Job {job_name} found repository {target:?} locked, and the Config no longer has it");
        return fail(task, ctx, "RepositoryLocked", &message).await;
    };
    let sources = ctx
        .fetch_env_sources(&resolved.config.namespace().unwrap_or_default(), &resolved.config.spec.effective_env(repository))
        .await?;
    let env = match credentials::resolve(
        &resolved.config.spec,
        repository,
        &ctx.settings.restic_options(&resolved.config.spec, repository),
        &sources,
    ) {
        Ok(env) => env,
        Err(e) => return fail(task, ctx, "CredentialsMissing", &e.to_string()).await,
    };
    if let Err(e) = ctx.settings.restic.run(&repository.target, &env, &restic::Command::Unlock).await {
        return fail(task, ctx, "RepositoryLocked", &format!("repository is locked and unlock failed: {e}")).await;
    }
    ctx.event(
        &task.object_ref(&()),
        EventType::Normal,
        "StaleLockRemoved",
        "Unlock",
        format!("{target}: stale lock removed; retrying"),
    )
    .await;
    let mut status = task.status.clone().unwrap_or_default();
    status.phase = Some(TaskPhase::Pending);
    status.job_name = None;
    status.message = Some(format!("Job {job_name} met a stale lock; stale locks removed, retrying"));
    patch_status(task, ctx, &status).await?;
    Ok(Action::requeue(Duration::from_millis(100)))
}

async fn complete(task: &Task, ctx: &Context, output: &str) -> Result<Action, Error> {
    let now = Timestamp::now();
    let mut status = task.status.clone().unwrap_or_default();
    if task.spec.type_ == TaskType::Backup {
        let Some(summary) = restic::backup_summary(output) else {
            return fail(
                task,
                ctx,
                "NoSummary",
                &format!("restic finished without a summary: {}", restic::last_lines(output, 3)),
            )
            .await;
        };
        status.short_snapshot_id = Some(restic::short_id(&summary.snapshot_id));
        status.snapshot_id = Some(summary.snapshot_id);
        status.files_new = Some(summary.files_new as i64);
        status.files_changed = Some(summary.files_changed as i64);
        status.files_unmodified = Some(summary.files_unmodified as i64);
        status.bytes_added = Some(summary.data_added as i64);
        status.bytes_processed = Some(summary.total_bytes_processed as i64);
        status.duration_seconds = Some(summary.total_duration);
        status.size = Some(human_bytes(summary.total_bytes_processed));
    }
    if task.spec.type_ == TaskType::Restore {
        if let Some(bytes) = restic::restored_bytes(output) {
            status.bytes_processed = Some(bytes as i64);
            status.size = Some(human_bytes(bytes));
        }
    }
    if task.spec.type_ == TaskType::Drill {
        let mut report = status.drill.clone().unwrap_or_default();
        crate::drill::read(output, &mut report);
        let snapshot = status.short_snapshot_id.clone().unwrap_or_default();
        let verdict = crate::drill::verdict(&report, &snapshot);
        status.drill = Some(report);
        status.bytes_processed = status.drill.as_ref().and_then(|d| d.restored_bytes);
        status.size = status.bytes_processed.map(|b| human_bytes(b.max(0) as u64));
        match verdict {
            Ok(summary) => status.message = Some(summary),
            Err((reason, message)) => return fail_with(task, ctx, status, reason, &message).await,
        }
    }
    finish(task, ctx, status, TaskPhase::Completed, "Completed", now).await
}

async fn fail(task: &Task, ctx: &Context, reason: &str, message: &str) -> Result<Action, Error> {
    fail_with(task, ctx, task.status.clone().unwrap_or_default(), reason, message).await
}

/// The repository and snapshot a restore or drill reads, resolved once and kept in `status`; the
/// Err is what the Task does meanwhile (it waits, or it failed).
async fn resolved_snapshot(
    task: &Task,
    ctx: &Context,
    config: &Config,
    status: &mut TaskStatus,
) -> Result<Result<String, Action>, Error> {
    if let (Some(target), Some(_)) = (&status.repository, &status.snapshot_id) {
        return Ok(Ok(target.clone()));
    }
    match resolve_snapshot(task, ctx, config).await? {
        Ok((target, snapshot_id)) => {
            status.short_snapshot_id = Some(restic::short_id(&snapshot_id));
            status.snapshot_id = Some(snapshot_id);
            status.repository = Some(target.clone());
            Ok(Ok(target))
        }
        Err(Unresolved::Wait(message)) => wait(task, ctx, &message).await.map(Err),
        Err(Unresolved::Fail(reason, message)) => fail(task, ctx, reason, &message).await.map(Err),
    }
}

/// Makes a drill's scratch PVC (owned by the Task, so it goes with it at the latest): the PVC's
/// size, access modes and volume mode, the drill's StorageClass or the PVC's. The inner error is
/// why it cannot be made, in words.
async fn scratch_claim(
    task: &Task,
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    drill: &crate::api::Drill,
    status: &mut TaskStatus,
) -> Result<Result<(), String>, Error> {
    let namespace = task.namespace().unwrap_or_default();
    let name = job::drill_claim(&task.name_any());
    let source = pvc.spec.clone().unwrap_or_default();
    let owner = task.controller_owner_ref(&()).ok_or(Error::MissingField("uid"))?;
    let claim = PersistentVolumeClaim {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(std::collections::BTreeMap::from([
                (job::MANAGED_BY_LABEL.to_owned(), job::MANAGED_BY.to_owned()),
                (job::TASK_LABEL.to_owned(), task.name_any()),
            ])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: source.resources.clone(),
            storage_class_name: drill.storage_class_name.clone().or(source.storage_class_name.clone()),
            volume_mode: source.volume_mode.clone(),
            ..Default::default()
        }),
        status: None,
    };
    if source.volume_mode.as_deref() == Some("Block") {
        return Ok(Err("the PVC is a raw block volume; a drill restores files into a filesystem volume".into()));
    }
    status.drill = Some(crate::api::DrillReport { claim: name.clone(), ..Default::default() });
    match Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &namespace).create(&PostParams::default(), &claim).await {
        Ok(_) => Ok(Ok(())),
        Err(e) if super::submit::is_already_exists(&e) => Ok(Ok(())),
        Err(e) if super::submit::is_refused(&e) => Ok(Err(format!("the cluster refused the scratch volume {name}: {e}"))),
        Err(e) => Err(e.into()),
    }
}

/// `fail` from a status this reconcile has changed but not yet written.
async fn fail_with(task: &Task, ctx: &Context, mut status: TaskStatus, reason: &str, message: &str) -> Result<Action, Error> {
    status.message = Some(message.to_owned());
    finish(task, ctx, status, TaskPhase::Failed, reason, Timestamp::now()).await
}

/// Runs the pre-backup hook and records it; Some(message) when the backup must not go on.
async fn pre_backup_hook(
    task: &Task,
    ctx: &Context,
    resolved: &Resolved,
    hook: &Hook,
    status: &mut TaskStatus,
) -> Result<Option<String>, Error> {
    let namespace = task.namespace().unwrap_or_default();
    if !ctx.settings.hooks_enabled {
        let message =
            "the PVC has a pre-backup hook, and hooks are disabled in this operator (--hooks=false); no backup was taken";
        return Ok(Some(message.to_owned()));
    }
    let Some(record) = super::hooks::run(ctx, &namespace, &resolved.pvc.name_any(), HookPoint::PreBackup, hook).await? else {
        let note = "no running pod mounts the volume, so nothing writes to it: the pre-backup hook was not needed";
        ctx.event(&task.object_ref(&()), EventType::Normal, "HookNotRun", "Hook", note).await;
        return Ok(None);
    };
    let failed = record.result != HookResult::Succeeded;
    let summary = hook_summary(&record);
    status.hooks.push(record);
    if !failed {
        ctx.event(&task.object_ref(&()), EventType::Normal, "HookSucceeded", "Hook", summary).await;
        return Ok(None);
    }
    ctx.event(&task.object_ref(&()), EventType::Warning, "HookFailed", "Hook", &summary).await;
    Ok(match hook.on_error {
        HookOnError::Fail => Some(format!("{summary}; no backup was taken (onError: Fail)")),
        HookOnError::Continue => None,
    })
}

/// Once a backup has ended: its post-backup hook, when the Task got as far as its pre-backup hook
/// or its Job. Its failure is reported and recorded; the backup's outcome stands.
async fn post_backup_hook(task: &Task, ctx: &Context, status: &mut TaskStatus) -> Result<(), Error> {
    let reached = status.job_name.is_some() || status.hooks.iter().any(|h| h.point == HookPoint::PreBackup.name());
    if task.spec.type_ != TaskType::Backup || !reached || status.hooks.iter().any(|h| h.point == HookPoint::PostBackup.name()) {
        return Ok(());
    }
    let Ok(Resolved { policy, pvc, .. }) = resolve(task, ctx).await? else { return Ok(()) };
    let hook = match hook_for(&policy, pvc.annotations(), HookPoint::PostBackup) {
        Ok(Some(hook)) if ctx.settings.hooks_enabled => hook,
        Ok(_) => return Ok(()),
        Err(message) => {
            ctx.event(&task.object_ref(&()), EventType::Warning, "InvalidHook", "Hook", message).await;
            return Ok(());
        }
    };
    let namespace = task.namespace().unwrap_or_default();
    let Some(record) = super::hooks::run(ctx, &namespace, &pvc.name_any(), HookPoint::PostBackup, &hook).await? else {
        return Ok(());
    };
    let (type_, reason) = if record.result == HookResult::Succeeded {
        (EventType::Normal, "HookSucceeded")
    } else {
        (EventType::Warning, "HookFailed")
    };
    ctx.event(&task.object_ref(&()), type_, reason, "Hook", hook_summary(&record)).await;
    status.hooks.push(record);
    Ok(())
}

/// `preBackup hook sqlite3 in pod app-0 (container app): exit code 1: Error: ...`.
fn hook_summary(record: &HookRecord) -> String {
    let outcome = match (record.result, record.exit_code) {
        (HookResult::Succeeded, _) => format!("succeeded in {:.1}s", record.duration_seconds),
        (HookResult::TimedOut, _) => "timed out".to_owned(),
        (HookResult::Failed, _) => "failed".to_owned(),
    };
    let mut summary =
        format!("{} hook {} in pod {} (container {}) {outcome}", record.point, record.command, record.pod, record.container);
    if record.result != HookResult::Succeeded && !record.message.is_empty() {
        summary.push_str(": ");
        summary.push_str(&record.message);
    }
    summary
}

/// Records the outcome (status, Events, the PVC's answer), then trims the PVC's history.
async fn finish(
    task: &Task,
    ctx: &Context,
    mut status: TaskStatus,
    phase: TaskPhase,
    reason: &str,
    now: Timestamp,
) -> Result<Action, Error> {
    let namespace = task.namespace().ok_or(Error::MissingField("namespace"))?;
    // Before any scale-up: the hook pairs with its pre-backup one, in the pod that ran it.
    post_backup_hook(task, ctx, &mut status).await?;
    // Workloads come back on every outcome; the phase says so while it happens.
    let mut scaled_up = Vec::new();
    if !status.quiesced_workloads.is_empty() {
        status.phase = Some(TaskPhase::ScalingUp);
        patch_status(task, ctx, &status).await?;
        for workload in status.quiesced_workloads.iter().filter_map(|w| w.parse::<super::quiesce::Workload>().ok()) {
            if let Some(outcome) = super::quiesce::scale_up(ctx, &namespace, &workload, &super::quiesce::holder(task)).await? {
                scaled_up.push(outcome);
            }
        }
    }
    status.phase = Some(phase);
    status.completion_time = Some(Time(now));
    if let Some(start) = &status.start_time {
        status.duration = Some(human_duration(now.as_second() - start.0.as_second()));
    }
    let kind = match task.spec.type_ {
        TaskType::Backup => "Backup",
        TaskType::Restore => "Restore",
        TaskType::Drill => "Drill",
    };
    let (event_type, event_reason, summary) = if phase == TaskPhase::Completed {
        let snapshot = status.short_snapshot_id.clone().unwrap_or_default();
        let mut message = format!("{kind} completed: snapshot {snapshot} in {}", status.repository.clone().unwrap_or_default());
        if task.spec.type_ == TaskType::Drill {
            // What the drill checked says more than where the snapshot came from.
            message = format!("Drill passed: {}", status.message.clone().unwrap_or_default());
        }
        status.message = Some(message.clone());
        (EventType::Normal, format!("{kind}Completed"), message)
    } else {
        (EventType::Warning, format!("{kind}Failed"), status.message.clone().unwrap_or_default())
    };
    set_condition(
        &mut status.conditions,
        "Succeeded",
        (phase == TaskPhase::Completed).into(),
        reason,
        &summary,
        task.metadata.generation,
        now,
    );
    super::catalog::record_finished(ctx, task, &status, phase, reason, now).await;
    patch_status(task, ctx, &status).await?;
    ctx.metrics.task_finished(&task.spec, phase, status.start_time.as_ref().map(|t| t.0), now);
    match (phase, task.spec.type_, status.bytes_processed, status.bytes_added) {
        (TaskPhase::Completed, TaskType::Backup, Some(processed), Some(added)) => {
            ctx.metrics.backup_stored(processed.max(0) as u64, added.max(0) as u64)
        }
        (TaskPhase::Completed, TaskType::Restore, Some(written), _) => ctx.metrics.restore_written(written.max(0) as u64),
        _ => {}
    }
    ctx.starting.lock().await.remove(&(namespace.clone(), task.name_any()));

    ctx.event(&task.object_ref(&()), event_type, &event_reason, kind, &summary).await;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Some(pvc) = pvcs.get_opt(&task.spec.pvc_name).await? {
        ctx.event(&pvc.object_ref(&()), event_type, &event_reason, kind, format!("Task {}: {summary}", task.name_any())).await;
        if task.spec.trigger == TaskTrigger::Manual {
            let key =
                if task.spec.type_ == TaskType::Backup { BACKUP_RESULT_ANNOTATION } else { super::restore::RESULT_ANNOTATION };
            let answer = format!("{phase:?}: Task {}: {summary}", task.name_any());
            let patch = serde_json::json!({"metadata": {"annotations": {key: answer}}});
            pvcs.patch(&task.spec.pvc_name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    remove_job_pods(ctx, &namespace, task).await?;
    if task.spec.type_ == TaskType::Drill {
        // The scratch volume's work is done; its space goes back now, not when the Task goes.
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &namespace);
        jobs::delete_if_present(&claims, &job::drill_claim(&task.name_any()), &DeleteParams::background()).await?;
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    jobs::delete_if_present(&secrets, &jobs::task_credentials_name(&task.name_any()), &DeleteParams::default()).await?;
    prune_history(task, ctx, &namespace).await?;
    Ok(Action::await_change())
}

/// Finished pods still count as using their PVC (the PVC protection controller looks at every
/// scheduled pod), so a finished Task's restic pods would keep `kubectl delete pvc` waiting for
/// ever. Their outcome is in the Task by now; the Jobs stay for inspection.
async fn remove_job_pods(ctx: &Context, namespace: &str, task: &Task) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!("{}={}", job::TASK_LABEL, task.name_any());
    for pod in pods.list(&ListParams::default().labels(&selector)).await?.items {
        jobs::delete_if_present(&pods, &pod.name_any(), &DeleteParams::default()).await?;
    }
    Ok(())
}

async fn prune_history(task: &Task, ctx: &Context, namespace: &str) -> Result<(), Error> {
    let configs: Api<Config> = Api::namespaced(ctx.client.clone(), &task.spec.config_ref.namespace);
    let (succeeded, failed) = match configs.get_opt(&task.spec.config_ref.name).await? {
        Some(config) => (config.spec.succeeded_tasks_history_limit, config.spec.failed_tasks_history_limit),
        None => return Ok(()),
    };
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = super::submit::pvc_selector(&task.spec.pvc_name);
    let tasks = api.list(&ListParams::default().labels(&selector)).await?.items;
    for name in crate::history::to_prune(&tasks, succeeded.max(0) as usize, failed.max(0) as usize) {
        jobs::delete_if_present(&api, &name, &DeleteParams::background()).await?;
    }
    Ok(())
}

async fn patch_status(task: &Task, ctx: &Context, status: &TaskStatus) -> Result<(), Error> {
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    let patch = serde_json::json!({"status": status});
    match api.patch_status(&task.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing left to update.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `192` → `3m12s`.
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match (seconds / 3600, seconds % 3600 / 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

pub fn error_policy(_: Arc<DeserializeGuard<Task>>, error: &Error, ctx: Arc<Context>) -> Action {
    retry_soon(&ctx, "task", error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(repositories: serde_json::Value) -> Config {
        let mut config = Config::new(
            "backup",
            serde_json::from_value(serde_json::json!({
                "repositories": [{"target": "s3:http://s3/a", "priority": 0}],
                "selectors": [{"matchLabels": {"app": "x"}}],
            }))
            .unwrap(),
        );
        config.status = Some(serde_json::from_value(serde_json::json!({ "repositories": repositories })).unwrap());
        config
    }

    #[test]
    fn tasks_wait_for_an_unchecked_or_unreachable_repository_and_fail_on_a_refusing_one() {
        let target = "s3:http://s3/a";
        let unchecked = config_with(serde_json::json!([]));
        assert!(matches!(repository_readiness(&unchecked, target), Readiness::Wait(m) if m.contains("has not checked it yet")));
        let down = config_with(
            serde_json::json!([{"target": target, "priority": 0, "ready": false, "reason": "Unreachable", "message": "connection refused"}]),
        );
        assert!(
            matches!(repository_readiness(&down, target), Readiness::Wait(m) if m.contains("Unreachable: connection refused"))
        );
        let refused = config_with(
            serde_json::json!([{"target": target, "priority": 0, "ready": false, "reason": "WrongPassword", "message": "no key found"}]),
        );
        assert!(matches!(repository_readiness(&refused, target), Readiness::Refused(r, _) if r == "WrongPassword"));
        let ready = config_with(
            serde_json::json!([{"target": target, "priority": 0, "ready": true, "reason": "Connected", "message": ""}]),
        );
        assert_eq!(repository_readiness(&ready, target), Readiness::Ready);
    }

    #[test]
    fn a_readwriteoncepod_volume_in_use_is_answered() {
        let mut pvc = PersistentVolumeClaim {
            spec: Some(k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOncePod".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let users = vec!["app-0".to_owned()];
        assert!(single_pod_conflict(&pvc, &users, false).is_some_and(|m| m.contains("set stopPods")));
        assert!(single_pod_conflict(&pvc, &users, true).is_some_and(|m| m.contains("cannot stop")));
        assert_eq!(single_pod_conflict(&pvc, &[], false), None, "a free volume can be mounted");
        pvc.spec.as_mut().unwrap().access_modes = Some(vec!["ReadWriteOnce".into()]);
        assert_eq!(single_pod_conflict(&pvc, &users, false), None, "ReadWriteOnce is shared on the node");
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(human_duration(41), "41s");
        assert_eq!(human_duration(192), "3m12s");
        assert_eq!(human_duration(7300), "2h1m");
    }
}
