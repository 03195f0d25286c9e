//! Restores: automatic restore of new PVCs, `manual-restore` requests, and the restore state that
//! holds pods back until a PVC's data is in place.
//!
//! A PVC's restore state lives in its annotations, so every operator instance (and the admission
//! webhook) reads the same truth:
//! - none: the operator has not decided yet; if an autoRestore Config selects it, it is new.
//! - `Pending`: new and held; the newest snapshot of its host is being looked for.
//! - `Restoring`: a restore Task (`restore-task`) is filling it.
//! - `Released`: pods may use it (restored, nothing to restore, or it held data already).
//!
//! "New" means: selected by an autoRestore Config and never seen by the operator, and not already
//! mounted by a running pod. A volume that turns out to hold data is never overwritten by an
//! automatic restore (the Job runs in IfEmpty mode), so a PVC that predates the operator or the
//! Config keeps its data, while a PVC re-created during DR is restored whichever was applied first.

use super::submit::{self, RestoreRequest};
use super::Error;
use crate::annotation::{self, SnapshotRef};
use crate::api::{snapshot_host, Config, OnMissingSnapshot, Repository, Task, TaskPhase, TaskTrigger};
use crate::context::Context;
use crate::credentials;
use crate::naming;
use crate::restic::Snapshot;
use crate::restore::{self, Found, Listings};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::time::Duration;

pub const STATE_ANNOTATION: &str = "backup.datarestor-operator.com/restore-state";
pub const MESSAGE_ANNOTATION: &str = "backup.datarestor-operator.com/restore-message";
pub const TASK_ANNOTATION: &str = "backup.datarestor-operator.com/restore-task";
pub const RESULT_ANNOTATION: &str = "backup.datarestor-operator.com/manual-restore-result";
/// Failed automatic restore attempts so far, when the last one failed, and the repositories they
/// failed in (a JSON list): the next attempt waits, and tries another copy first.
pub const ATTEMPTS_ANNOTATION: &str = "backup.datarestor-operator.com/restore-attempts";
pub const RETRY_AT_ANNOTATION: &str = "backup.datarestor-operator.com/restore-retry-at";
pub const FAILED_IN_ANNOTATION: &str = "backup.datarestor-operator.com/restore-failed-in";
/// Longest wait between automatic restore attempts.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(15 * 60);
/// Scheduling gate the admission webhook puts on pods that mount a held PVC.
pub const GATE: &str = "backup.datarestor-operator.com/restore";
/// A PVC this young that is already in use when a stopPods Config first selects it is treated as
/// new (its workloads are stopped and it is restored if still empty); older ones are left alone.
pub const NEW_VOLUME_WINDOW_SECONDS: i64 = 15 * 60;
/// Exit code of a restore Job that found data in an IfEmpty volume (see the Job's script).
pub const EXIT_VOLUME_NOT_EMPTY: i32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Restoring,
    Released,
}

pub fn state(pvc: &PersistentVolumeClaim) -> Option<State> {
    match pvc.annotations().get(STATE_ANNOTATION).map(String::as_str) {
        Some("Pending") => Some(State::Pending),
        Some("Restoring") => Some(State::Restoring),
        Some("Released") => Some(State::Released),
        _ => None,
    }
}

/// Whether pods must wait for this PVC: an autoRestore Config selects it and it is not released.
pub fn holds_pods(pvc: &PersistentVolumeClaim, config: Option<&Config>) -> bool {
    match state(pvc) {
        Some(State::Released) => false,
        Some(State::Pending | State::Restoring) => true,
        None => config.is_some_and(|c| policy_of(c, pvc).auto_restore),
    }
}

/// The settings for this PVC under `config` (its first selector that picks the PVC may change them).
fn policy_of(config: &Config, pvc: &PersistentVolumeClaim) -> crate::api::Policy {
    config.spec.policy(&pvc.namespace().unwrap_or_default(), pvc.labels())
}

/// Whether a pod lacks the restore gate (it was made before anything asked for it).
fn is_ungated(pod: &Pod) -> bool {
    !pod.spec.iter().flat_map(|s| s.scheduling_gates.iter().flatten()).any(|g| g.name == GATE)
}

/// Deletes pods that wait, ungated, to be scheduled onto a PVC that now holds its pods: each is
/// run by a controller (ReplicaSet, StatefulSet, ...), which makes it again, and the webhook gates
/// the new one. They never ran, so nothing is lost.
async fn regate(ctx: &Context, pvc: &PersistentVolumeClaim, pods: &[&Pod]) -> Result<(), Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    for pod in pods {
        super::jobs::delete_if_present(&api, &pod.name_any(), &kube::api::DeleteParams::default()).await?;
        let note = format!(
            "pod {} was made before a Config selected this PVC and would have started on it during its restore; deleted, its controller makes it again behind the restore gate",
            pod.name_any()
        );
        ctx.event(&pvc.object_ref(&()), EventType::Normal, "PodRegated", "AutoRestore", note).await;
    }
    Ok(())
}

/// Whether a backup must wait: the PVC's data is not in place yet.
pub fn blocks_backup(pvc: &PersistentVolumeClaim) -> bool {
    matches!(state(pvc), Some(State::Pending | State::Restoring))
}

async fn patch_annotations(ctx: &Context, pvc: &PersistentVolumeClaim, annotations: serde_json::Value) -> Result<(), Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    api.patch(&pvc.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

async fn set_state(
    ctx: &Context,
    pvc: &PersistentVolumeClaim,
    state: State,
    message: &str,
    task: Option<&str>,
) -> Result<(), Error> {
    let mut annotations = serde_json::json!({
        STATE_ANNOTATION: format!("{state:?}"),
        MESSAGE_ANNOTATION: message,
        TASK_ANNOTATION: task,
    });
    if state == State::Released {
        // The attempt count stays as a record; what only steers the next attempt goes.
        annotations[RETRY_AT_ANNOTATION] = serde_json::Value::Null;
        annotations[FAILED_IN_ANNOTATION] = serde_json::Value::Null;
    }
    patch_annotations(ctx, pvc, annotations).await
}

/// Failed automatic restore attempts so far.
fn attempts(pvc: &PersistentVolumeClaim) -> u32 {
    pvc.annotations().get(ATTEMPTS_ANNOTATION).and_then(|a| a.parse().ok()).unwrap_or(0)
}

/// Repositories the failed attempts used.
fn failed_in(pvc: &PersistentVolumeClaim) -> Vec<String> {
    pvc.annotations().get(FAILED_IN_ANNOTATION).and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default()
}

/// Each repository's listing of `host` (or why it could not be listed), in priority order.
/// `newest_since`: only the newest snapshot matters, from a listing that started at or after that
/// instant; one shared listing of every host's newest snapshots answers (see `ListingCache`).
/// `None`: every snapshot of `host`, listed now.
pub async fn listings(
    ctx: &Context,
    config: &Config,
    repositories: &[&Repository],
    host: &str,
    newest_since: Option<Timestamp>,
) -> Result<Listings, Error> {
    let sources = ctx.fetch_env_sources(&config.namespace().unwrap_or_default(), &config.spec.all_env()).await?;
    // A repository the Config's last check found unusable is not asked again here: restic would
    // retry it for minutes. Until the Config has checked (and created) it, it counts as unknown.
    let health = config.status.as_ref().map(|s| s.repositories.clone()).unwrap_or_default();
    let lookups = repositories.iter().map(|repository| {
        let sources = &sources;
        let checked = health.iter().find(|r| r.target == repository.shown()).cloned();
        async move {
            let listing = match (
                checked,
                credentials::resolve(&config.spec, repository, &ctx.settings.restic_options(&config.spec, repository), sources),
            ) {
                (None, _) => Err("not checked yet".to_owned()),
                (Some(status), _) if !status.ready => Err(format!("{}: {}", status.reason, status.message)),
                (_, Err(e)) => Err(e.to_string()),
                (_, Ok(env)) => match list(ctx, config, repository, &env, host, newest_since).await {
                    Ok(snapshots) => Ok(snapshots),
                    // Only repositories the last check found (or made) are asked, so "no repository
                    // here" now means it vanished, or the endpoint answers for something else (a
                    // proxy's plain 404 reads exactly like a missing bucket): unknown, until the
                    // next check tells which. An outage is unknown too.
                    Err(e) => Err(e.to_string()),
                },
            };
            (repository.shown(), listing)
        }
    });
    Ok(futures::future::join_all(lookups).await)
}

async fn list(
    ctx: &Context,
    config: &Config,
    repository: &Repository,
    env: &crate::credentials::ResolvedEnv,
    host: &str,
    newest_since: Option<Timestamp>,
) -> Result<Vec<crate::restic::Snapshot>, crate::repository::ResticError> {
    let Some(since) = newest_since else {
        return ctx.settings.restic.snapshots(&repository.target, env, Some(host)).await;
    };
    ctx.listings
        .latest(&ctx.settings.restic, &listing_key(config, repository), &repository.target, env, since)
        .await
        .of_host(host)
}

/// A Config's repository in the `ListingCache` (the credentials are the Config's).
fn listing_key(config: &Config, repository: &Repository) -> String {
    format!("{}/{}/{}", config.namespace().unwrap_or_default(), config.name_any(), repository.target)
}

/// Snapshot `id` of `host`, if the last shared listing of `repository` has it: an automatic
/// restore Task names the snapshot its decision found there, so it need not be listed again.
pub fn listed_snapshot(ctx: &Context, config: &Config, repository: &Repository, host: &str, id: &str) -> Option<Snapshot> {
    let listing = ctx.listings.last(&listing_key(config, repository))?;
    listing.of_host(host).ok()?.into_iter().find(|s| s.id == id)
}

/// Repositories among `repositories` the Config has not checked yet (the operator is starting, or
/// the Config was just applied): nothing can be said about them, and nothing should be failed.
pub fn unchecked(config: &Config, repositories: &[&Repository]) -> Vec<String> {
    let health = config.status.as_ref().map(|s| s.repositories.as_slice()).unwrap_or_default();
    repositories.iter().map(|r| r.shown()).filter(|shown| !health.iter().any(|h| &h.target == shown)).collect()
}

async fn get_task(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Task>, Error> {
    Ok(Api::<Task>::namespaced(ctx.client.clone(), namespace).get_opt(name).await?)
}

/// The automatic restore Task of attempt `attempt` (1 for the first).
fn auto_task_name(pvc: &PersistentVolumeClaim, short_id: &str, attempt: u32) -> String {
    let uid = pvc.uid().unwrap_or_default();
    let uid = &uid[..8.min(uid.len())];
    let pvc_name = pvc.name_any();
    if attempt <= 1 {
        naming::bounded_name(&["restore", &pvc_name, short_id, uid])
    } else {
        naming::bounded_name(&["restore", &pvc_name, short_id, uid, &format!("a{attempt}")])
    }
}

/// Drives a PVC's restore state (see the module documentation). `config` is the Config that
/// selects it now, if any.
pub async fn reconcile_auto(pvc: &PersistentVolumeClaim, config: Option<&Config>, ctx: &Context) -> Result<Action, Error> {
    let namespace = pvc.namespace().unwrap_or_default();
    let object_ref = pvc.object_ref(&());
    let retry = Action::requeue(ctx.settings.retry_interval);
    let auto = config.filter(|c| policy_of(c, pvc).auto_restore);
    match (state(pvc), auto) {
        (Some(State::Released), _) | (None, None) => Ok(Action::await_change()),
        (None, Some(config)) => {
            let naming = super::quiesce::pods_naming(ctx, &namespace, &pvc.name_any()).await?;
            let scheduled = |p: &&Pod| p.spec.as_ref().is_some_and(|s| s.node_name.is_some());
            let users: Vec<String> = naming
                .iter()
                .filter(scheduled)
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| p.name_any())
                .collect();
            // Pods made before any Config selected the PVC (apps applied before their Config in a
            // DR) were not gated: they would start on the volume while it is restored.
            let ungated: Vec<&Pod> = naming.iter().filter(|p| !scheduled(p) && is_ungated(p)).collect();
            let (controlled, bare): (Vec<&Pod>, Vec<&Pod>) = ungated
                .into_iter()
                .partition(|p| p.metadata.owner_references.iter().flatten().any(|o| o.controller == Some(true)));
            // Pods that got to a brand-new volume before the Config did (apps applied first during
            // DR): with stopPods their workloads are stopped for the restore, which still only
            // fills an empty volume.
            let age = pvc
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(i64::MAX, |t| jiff::Timestamp::now().as_second() - t.0.as_second());
            if !users.is_empty() && policy_of(config, pvc).stop_pods && age <= NEW_VOLUME_WINDOW_SECONDS {
                set_state(ctx, pvc, State::Pending, "new volume already in use: its workloads are stopped for the restore", None)
                    .await?;
                return Ok(Action::requeue(Duration::from_millis(10)));
            }
            if !users.is_empty() || !bare.is_empty() {
                let mut names = users.clone();
                names.extend(bare.iter().map(|p| p.name_any()));
                let message = format!("in use by pod {} before DataRestor saw it; nothing restored", names.join(", "));
                set_state(ctx, pvc, State::Released, &message, None).await?;
                return Ok(Action::await_change());
            }
            set_state(ctx, pvc, State::Pending, "new volume: looking for its newest snapshot", None).await?;
            // Now that the PVC holds pods, their controllers make them again behind the gate.
            regate(ctx, pvc, &controlled).await?;
            Ok(Action::requeue(Duration::from_millis(10)))
        }
        (Some(State::Pending), None) => {
            // The Config was deleted, stopped selecting the PVC or turned autoRestore off: nothing
            // will restore it, so nothing may keep its pods waiting.
            let message = "no Config with autoRestore selects this PVC any more; released without a restore";
            set_state(ctx, pvc, State::Released, message, None).await?;
            ctx.event(&object_ref, EventType::Warning, "RestoreCancelled", "AutoRestore", message).await;
            Ok(Action::await_change())
        }
        (Some(State::Pending), Some(config)) => {
            if let Some(wait) = retry_wait(pvc) {
                return Ok(Action::requeue(wait));
            }
            let host = snapshot_host(&namespace, &pvc.name_any());
            let repositories = config.spec.repositories_by_priority();
            // Its newest snapshot, as known after the PVC appeared: a DR's thousands of new PVCs
            // share a few listings per repository instead of each starting its own.
            // A retry lists afresh: what the failed attempt chose may be gone since.
            let created = pvc.metadata.creation_timestamp.as_ref().map_or_else(Timestamp::now, |t| t.0);
            // With onMissingSnapshot: Wait, each look takes a listing newer than the last look,
            // shared with every other waiting PVC (about one listing per repository per interval),
            // and the look that ends the wait takes one made after the wait ended.
            let poll = ctx.settings.repository_check_interval;
            let waits = config.spec.on_missing_snapshot == OnMissingSnapshot::Wait;
            let deadline = created + Duration::from_secs(config.spec.missing_snapshot_wait_seconds.max(0) as u64);
            let now = Timestamp::now();
            let since = if attempts(pvc) > 0 {
                now
            } else if waits && now >= deadline {
                created.max(deadline)
            } else if waits {
                created.max(now - poll)
            } else {
                created
            };
            let listings = listings(ctx, config, &repositories, &host, Some(since)).await?;
            match restore::find_avoiding(listings, &host, &SnapshotRef::Latest, &failed_in(pvc)) {
                Found::Snapshot { repository, snapshot } => {
                    let attempt = attempts(pvc) + 1;
                    let name = auto_task_name(pvc, &snapshot.short_id, attempt);
                    let request = RestoreRequest {
                        trigger: TaskTrigger::Auto,
                        repository: Some(repository.clone()),
                        host,
                        name: Some(snapshot.id.clone()),
                        mode: crate::api::RestoreMode::IfEmpty,
                        accepted_at: Timestamp::now(),
                    };
                    submit::create(ctx, &submit::restore(config, pvc, &name, request)).await?;
                    let mut message = format!("restoring snapshot {} from {repository}", snapshot.short_id);
                    if attempt > 1 {
                        message.push_str(&format!(" (attempt {attempt})"));
                    }
                    set_state(ctx, pvc, State::Restoring, &message, Some(&name)).await?;
                    ctx.event(&object_ref, EventType::Normal, "RestoreStarted", "AutoRestore", message).await;
                    Ok(Action::await_change())
                }
                Found::Nowhere { searched } => {
                    let searched = searched.join(", ");
                    if waits && now < deadline {
                        let message = format!(
                            "{WAITING_PREFIX} {host} yet in {searched}; looking again until {} (onMissingSnapshot: Wait)",
                            deadline.round(jiff::Unit::Second).unwrap_or(deadline)
                        );
                        if pvc.annotations().get(MESSAGE_ANNOTATION) != Some(&message) {
                            set_state(ctx, pvc, State::Pending, &message, None).await?;
                            ctx.event(&object_ref, EventType::Normal, "WaitingForSnapshot", "AutoRestore", message).await;
                        }
                        let left = Duration::from_millis((deadline.as_millisecond() - now.as_millisecond()).max(0) as u64);
                        return Ok(Action::requeue(poll.min(left) + Duration::from_millis(10)));
                    }
                    let (type_, message) = if waits {
                        let waited = config.spec.missing_snapshot_wait_seconds;
                        (
                            EventType::Warning,
                            format!("no snapshot of {host} appeared in {searched} within {waited}s; released empty"),
                        )
                    } else {
                        (EventType::Normal, format!("new volume: no snapshot of {host} in {searched}"))
                    };
                    set_state(ctx, pvc, State::Released, &message, None).await?;
                    ctx.event(&object_ref, type_, "NothingToRestore", "AutoRestore", message).await;
                    Ok(Action::await_change())
                }
                Found::Unknown { unreachable } => {
                    let detail: Vec<String> = unreachable.iter().map(|(r, e)| format!("{r}: {e}")).collect();
                    let message =
                        format!("held: cannot tell whether a snapshot exists, repositories unreachable ({})", detail.join("; "));
                    if pvc.annotations().get(MESSAGE_ANNOTATION) != Some(&message) {
                        set_state(ctx, pvc, State::Pending, &message, None).await?;
                        ctx.event(&object_ref, EventType::Warning, "RestoreBlocked", "AutoRestore", message).await;
                    }
                    Ok(retry)
                }
                Found::Ambiguous { .. } => Ok(retry),
            }
        }
        (Some(State::Restoring), _) => follow_restore(pvc, auto, ctx).await,
    }
}

/// How a held PVC's message begins while it waits for a snapshot to appear (onMissingSnapshot: Wait).
const WAITING_PREFIX: &str = "held: no snapshot of";

/// How long until the next automatic attempt may start, when a failed one asked to wait.
fn retry_wait(pvc: &PersistentVolumeClaim) -> Option<Duration> {
    let at: Timestamp = pvc.annotations().get(RETRY_AT_ANNOTATION)?.parse().ok()?;
    let left = at.as_millisecond() - Timestamp::now().as_millisecond();
    (left > 0).then(|| Duration::from_millis(left as u64))
}

/// A PVC in `Restoring`: moves on when its restore Task has finished.
async fn follow_restore(pvc: &PersistentVolumeClaim, auto: Option<&Config>, ctx: &Context) -> Result<Action, Error> {
    let namespace = pvc.namespace().unwrap_or_default();
    let object_ref = pvc.object_ref(&());
    let retry = Action::requeue(ctx.settings.retry_interval);
    let Some(task_name) = pvc.annotations().get(TASK_ANNOTATION).filter(|t| !t.is_empty()) else {
        set_state(ctx, pvc, State::Pending, "restore Task unknown; looking again", None).await?;
        return Ok(retry);
    };
    let Some(task) = get_task(ctx, &namespace, task_name).await? else {
        set_state(ctx, pvc, State::Pending, &format!("restore Task {task_name} disappeared; looking again"), None).await?;
        return Ok(retry);
    };
    let status = task.status.clone().unwrap_or_default();
    match status.phase.unwrap_or_default() {
        TaskPhase::Completed => {
            let message = format!("restored snapshot {} by Task {task_name}", status.short_snapshot_id.unwrap_or_default());
            set_state(ctx, pvc, State::Released, &message, Some(task_name)).await?;
            Ok(Action::await_change())
        }
        TaskPhase::Failed if status.conditions.iter().any(|c| c.type_ == "Succeeded" && c.reason == "VolumeNotEmpty") => {
            let message = format!("the volume already holds data; nothing restored (Task {task_name})");
            set_state(ctx, pvc, State::Released, &message, Some(task_name)).await?;
            ctx.event(&object_ref, EventType::Normal, "RestoreSkipped", "AutoRestore", message).await;
            Ok(Action::await_change())
        }
        TaskPhase::Failed if auto.is_none() => {
            // Held only for this (manual) restore; nothing else will fill it.
            let message = format!(
                "restore Task {task_name} failed and no Config with autoRestore selects this PVC; released: {}",
                status.message.unwrap_or_default()
            );
            set_state(ctx, pvc, State::Released, &message, Some(task_name)).await?;
            ctx.event(&object_ref, EventType::Warning, "RestoreCancelled", "AutoRestore", message).await;
            Ok(Action::await_change())
        }
        TaskPhase::Failed => {
            // Try again later, a new Task each time, the next copy first; the pods stay held.
            let failed = attempts(pvc) + 1;
            let wait = restore::backoff(failed, ctx.settings.retry_interval, MAX_RETRY_WAIT);
            let retry_at = Timestamp::now() + wait;
            let mut avoid = failed_in(pvc);
            if let Some(repository) = status.repository.clone().filter(|r| !avoid.contains(r)) {
                avoid.push(repository);
            }
            let message = format!(
                "restore attempt {failed} (Task {task_name}) failed: {}; attempt {} in {}s",
                status.message.unwrap_or_default(),
                failed + 1,
                wait.as_secs()
            );
            patch_annotations(
                ctx,
                pvc,
                serde_json::json!({
                    STATE_ANNOTATION: "Pending",
                    MESSAGE_ANNOTATION: &message,
                    TASK_ANNOTATION: null,
                    ATTEMPTS_ANNOTATION: failed.to_string(),
                    RETRY_AT_ANNOTATION: retry_at.to_string(),
                    FAILED_IN_ANNOTATION: serde_json::to_string(&avoid)?,
                }),
            )
            .await?;
            ctx.event(&object_ref, EventType::Warning, "RestoreRetryScheduled", "AutoRestore", message).await;
            Ok(Action::requeue(wait))
        }
        _ => Ok(Action::await_change()),
    }
}

/// Whether snapshot host `host` may belong to a namespace other than `namespace`. A host is
/// `{namespace}-{pvc}` and both parts may contain `-`: asked for in `shop`, `shop-prod-db` is PVC
/// `prod-db` of `shop`, or PVC `db` of namespace `shop-prod` if that namespace exists. Any other
/// namespace it could belong to makes it cross-namespace.
pub async fn crosses_namespace(ctx: &Context, namespace: &str, host: &str) -> Result<bool, Error> {
    if !host.starts_with(&format!("{namespace}-")) {
        return Ok(true);
    }
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    for candidate in longer_namespaces(namespace, host) {
        if namespaces.get_opt(&candidate).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The namespaces other than `namespace` whose PVCs could have snapshot host `host`: every prefix
/// of the host that extends `namespace`, ends before a `-`, and is a valid namespace name.
pub fn longer_namespaces(namespace: &str, host: &str) -> Vec<String> {
    host.match_indices('-')
        .map(|(i, _)| &host[..i])
        .filter(|prefix| prefix.len() > namespace.len() && prefix.starts_with(&format!("{namespace}-")))
        .filter(|prefix| prefix.len() <= 63 && !prefix.ends_with('-'))
        .map(str::to_owned)
        .collect()
}

/// Why a restore of `host` into a PVC of another namespace is refused, if it is (`crosses`: the
/// host may belong to another namespace). A per-namespace repository keeps namespaces apart, so
/// nothing crosses out of one.
pub fn cross_namespace_refusal(config: &Config, host: &str, crosses: bool) -> Option<String> {
    let name = format!("{}/{}", config.namespace().unwrap_or_default(), config.name_any());
    if !crosses {
        None
    } else if !config.spec.allow_cross_namespace_restore {
        Some(format!(
            "host {host} belongs to another namespace; cross-namespace restores are off (allowCrossNamespaceRestore in Config {name})"
        ))
    } else if config.spec.has_templates() {
        Some(format!(
            "host {host} belongs to another namespace, and Config {name} gives each namespace its own repository: its snapshots are restored only within it"
        ))
    } else {
        None
    }
}

/// The PVC whose snapshots `host` names, when it is in `namespace` (its repository instance is
/// the one a restore reads); `own` otherwise (a cross-namespace host, refused with templates).
pub fn source_pvc<'a>(namespace: &str, host: &'a str, own: &'a str) -> &'a str {
    host.strip_prefix(namespace).and_then(|rest| rest.strip_prefix('-')).filter(|pvc| !pvc.is_empty()).unwrap_or(own)
}

/// "The newest snapshot", resolved when a request is accepted: a backup still running then (its
/// Task queued ahead of the restore) has written no snapshot yet, so it is not what is restored.
/// When the repositories cannot all be listed now, the request stays "latest" and the Task
/// resolves it when it starts, among snapshots taken before the request (`latestAsOf`).
async fn newest_now(
    ctx: &Context,
    config: &Config,
    repository: Option<String>,
    host: &str,
) -> Result<(Option<String>, Option<String>), Error> {
    let repositories: Vec<&Repository> = match &repository {
        Some(target) => config.spec.repository(target).into_iter().collect(),
        None => config.spec.repositories_by_priority(),
    };
    if !unchecked(config, &repositories).is_empty() {
        return Ok((repository, None));
    }
    Ok(match restore::find(listings(ctx, config, &repositories, host, None).await?, host, &SnapshotRef::Latest) {
        Found::Snapshot { repository, snapshot } => (Some(repository), Some(snapshot.id)),
        _ => (repository, None),
    })
}

/// Serves `manual-restore` on a PVC (or, for each PVC it selects, on a Config): records a restore
/// Task, or says why not. `identity` with `version` and `value` names the request.
pub async fn serve_manual_restore(
    pvc: &PersistentVolumeClaim,
    config: Option<&Config>,
    ctx: &Context,
    identity: &str,
    version: &str,
    value: &str,
) -> Result<Result<String, String>, Error> {
    let namespace = pvc.namespace().unwrap_or_default();
    let Some(config) = config else { return Ok(Err("no Config selects this PVC".into())) };
    let request = match annotation::parse(value) {
        Ok(request) => request,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let own_host = snapshot_host(&namespace, &pvc.name_any());
    let host = request.host.clone().unwrap_or(own_host);
    let crosses = crosses_namespace(ctx, &namespace, &host).await?;
    if let Some(refusal) = cross_namespace_refusal(config, &host, crosses) {
        return Ok(Err(refusal));
    }
    let config = &config.for_pvc(&namespace, source_pvc(&namespace, &host, &pvc.name_any()));
    let repository = match request.resolve_repository(&config.spec.repositories) {
        Ok(repository) => repository.map(|r| r.shown()),
        Err(e) => return Ok(Err(e.to_string())),
    };
    let policy = policy_of(config, pvc);
    let users = super::quiesce::pods_using(ctx, pvc).await?;
    if !users.is_empty() && !policy.stop_pods {
        return Ok(Err(format!(
            "the PVC is in use by pod {}; scale its workload down first (or set stopPods)",
            users.join(", ")
        )));
    }
    let name = naming::request_task_name("restore", &pvc.name_any(), identity, version, value);
    let accepted_at = Timestamp::now();
    let (repository, snapshot) = match request.name() {
        Some(named) => (repository, Some(named.to_owned())),
        None => newest_now(ctx, config, repository, &host).await?,
    };
    let spec = RestoreRequest {
        trigger: TaskTrigger::Manual,
        repository,
        host: host.clone(),
        name: snapshot,
        mode: policy.manual_restore_mode,
        accepted_at,
    };
    submit::create(ctx, &submit::restore(config, pvc, &name, spec)).await?;
    // A new PVC restored by hand is not restored again automatically afterwards.
    if state(pvc) != Some(State::Released) {
        set_state(ctx, pvc, State::Restoring, &format!("manual restore by Task {name}"), Some(&name)).await?;
    }
    Ok(Ok(format!("restore of {host} ({}) requested as Task {name}", request.name().unwrap_or("latest"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_namespace_repositories_are_read_only_within_their_namespace() {
        assert_eq!(source_pvc("shop", "shop-db", "web"), "db");
        assert_eq!(source_pvc("shop", "shop-prod-db", "web"), "prod-db", "refused as crossing when shop-prod exists");
        assert_eq!(source_pvc("shop", "other-db", "web"), "web");
        assert_eq!(source_pvc("shop", "shop-", "web"), "web");
        let config = |target: &str, allow: bool| -> Config {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "backup.datarestor-operator.com/v1alpha1", "kind": "Config",
                "metadata": {"name": "c", "namespace": "backup-system"},
                "spec": {"repositories": [{"target": target, "priority": 1}], "allowCrossNamespaceRestore": allow}
            }))
            .unwrap()
        };
        let shared = config("s3:http://s3/all", true);
        let per_namespace = config("s3:http://s3/{namespace}", true);
        assert_eq!(cross_namespace_refusal(&shared, "other-db", false), None);
        assert_eq!(cross_namespace_refusal(&shared, "other-db", true), None, "allowed, shared repository");
        let refused = cross_namespace_refusal(&per_namespace, "other-db", true).unwrap();
        assert!(refused.contains("its own repository"), "{refused}");
        let off = cross_namespace_refusal(&config("s3:http://s3/all", false), "other-db", true).unwrap();
        assert!(off.contains("cross-namespace restores are off"), "{off}");
    }

    #[test]
    fn a_host_may_belong_to_a_longer_namespace() {
        assert_eq!(longer_namespaces("shop", "shop-prod-db"), ["shop-prod"]);
        assert_eq!(longer_namespaces("shop", "shop-a-b-c"), ["shop-a", "shop-a-b"]);
        assert!(longer_namespaces("shop", "shop-data").is_empty(), "one part after the namespace: only shop's");
        assert!(longer_namespaces("shop", "shop--x").is_empty());
    }
}
