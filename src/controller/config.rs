//! Config reconcile: validate the spec, count the PVCs it selects, check (and initialise) every
//! repository, turn due schedule slots into backup Tasks, run retention, answer `manual-backup`
//! on the Config, and publish all of it in status.

use super::{jobs, request, restore, retry_soon, submit, Error};
use crate::annotation;
use crate::api::{
    set_condition, snapshot_host, ConditionStatus, Config, ConfigStatus, DrillSchedule, IntegrityCheck, IntegrityCheckResult,
    Repository, RepositoryStatus, TaskPhase, TaskTrigger, TaskType, MANUAL_BACKUP_ANNOTATION, MANUAL_RESTORE_ANNOTATION,
};
use crate::context::Context;
use crate::credentials::{self, ResolvedEnv};
use crate::job;
use crate::naming;
use crate::restic::{ForgetGroup, Snapshot};
use crate::schedule::Schedule;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use std::sync::Arc;
use std::time::Duration;

/// A repository with its parsed schedules.
struct Planned<'a> {
    /// Its place in `spec.repositories` (and so in every `Config::for_pvc` view).
    index: usize,
    repository: &'a Repository,
    backup: Schedule,
    retention: Schedule,
    /// `checkSchedule`, when the repository has one.
    check: Option<Schedule>,
}

/// Parses every schedule; the error lists every problem, each naming its repository.
fn plan(config: &Config) -> Result<Vec<Planned<'_>>, Vec<String>> {
    let mut problems = Vec::new();
    let mut planned = Vec::new();
    for (index, repository) in config.spec.repositories.iter().enumerate() {
        let backup = repository.backup_schedule.parse::<Schedule>();
        let retention = repository.retention_schedule().parse::<Schedule>();
        if let Err(e) = &backup {
            problems.push(format!("repository {} (priority {}): backupSchedule: {e}", repository.shown(), repository.priority));
        }
        if let Err(e) = &retention {
            problems.push(format!("repository {} (priority {}): forgotSchedule: {e}", repository.shown(), repository.priority));
        }
        let check = repository.check_schedule.as_deref().map(str::parse::<Schedule>).transpose();
        if let Err(e) = &check {
            problems.push(format!("repository {} (priority {}): checkSchedule: {e}", repository.shown(), repository.priority));
        }
        if repository.check_read_data_subset.is_some() && repository.check_schedule.is_none() {
            problems.push(format!(
                "repository {} (priority {}): checkReadDataSubset has no effect without checkSchedule",
                repository.shown(),
                repository.priority
            ));
        }
        if let (Ok(backup), Ok(retention), Ok(check)) = (backup, retention, check) {
            planned.push(Planned { index, repository, backup, retention, check });
        }
    }
    problems.extend(credentials::refused_env(&config.spec.all_env()));
    problems.extend(config.spec.restic.iter().flat_map(|o| o.problems()));
    problems.extend(config.spec.hooks.iter().flat_map(|h| h.problems("")));
    let drills = config.spec.drill.iter().map(|d| ("drill".to_owned(), d));
    let selector_drills =
        config.spec.selectors.iter().enumerate().filter_map(|(i, s)| Some((format!("selectors[{i}].drill"), s.drill.as_ref()?)));
    for (at, drill) in drills.chain(selector_drills) {
        if let Err(e) = drill.schedule.parse::<Schedule>() {
            problems.push(format!("{at}.schedule: {e}"));
        }
        if drill.command.first().is_some_and(|c| c.is_empty()) {
            problems.push(format!("{at}.command: the program (its first argument) is empty"));
        }
    }
    for (index, selector) in config.spec.selectors.iter().enumerate() {
        problems.extend(selector.hooks.iter().flat_map(|h| h.problems(&format!("selectors[{index}]."))));
        if let Some(Err(e)) = selector.forget_args.as_deref().map(crate::restic::check_selector_forget_args) {
            problems.push(format!("selectors[{index}].{e}"));
        }
    }
    for repository in &config.spec.repositories {
        for problem in repository.restic.iter().flat_map(|o| o.problems()) {
            problems.push(format!("repository {} (priority {}): {problem}", repository.shown(), repository.priority));
        }
    }
    problems.extend(placeholder_problems(&config.spec));
    if config.spec.run_jobs_as.is_some_and(|r| r.user == 0) {
        problems.push("runJobsAs.user is 0 (root): leave runJobsAs out to run Jobs as root".into());
    }
    for repository in &config.spec.repositories {
        if let Err(e) = crate::restic::check_forget_args(&repository.forget_args) {
            problems.push(format!("repository {} (priority {}): {e}", repository.shown(), repository.priority));
        }
    }
    for (i, a) in config.spec.repositories.iter().enumerate() {
        for b in &config.spec.repositories[i + 1..] {
            if a.priority == b.priority {
                problems.push(format!("repositories {} and {} share priority {}", a.shown(), b.shown(), a.priority));
            }
            if a.target == b.target {
                problems.push(format!("repository {} is listed twice", a.shown()));
            }
        }
    }
    if problems.is_empty() {
        Ok(planned)
    } else {
        Err(problems)
    }
}

/// Placeholders DataRestor cannot fill in; a per-PVC target that would mix namespaces; and
/// credentials per namespace (or PVC) for a repository they would share (it has one password, so
/// they would lock all but one out).
fn placeholder_problems(spec: &crate::api::ConfigSpec) -> Vec<String> {
    let mut problems = Vec::new();
    for repository in &spec.repositories {
        let mut env_names = crate::api::referenced_names(&repository.env);
        env_names.extend(crate::api::referenced_names(&spec.env));
        let texts = std::iter::once(repository.target.as_str()).chain(env_names.iter().copied());
        for unknown in texts.flat_map(crate::api::unknown_placeholders) {
            problems.push(format!(
                "repository {} (priority {}): unknown placeholder {unknown:?} (only {{namespace}} and {{pvc}} are filled in)",
                repository.shown(),
                repository.priority
            ));
        }
        let (namespace, pvc) = (crate::api::NAMESPACE_PLACEHOLDER, crate::api::PVC_PLACEHOLDER);
        if repository.target.contains(pvc) && !repository.target.contains(namespace) {
            problems.push(format!(
                "repository {} (priority {}): a per-PVC target needs {namespace} too (such as .../{namespace}/{pvc}): same-named PVCs of different namespaces would share one repository",
                repository.shown(),
                repository.priority
            ));
        }
        for placeholder in [namespace, pvc] {
            if env_names.iter().any(|n| n.contains(placeholder)) && !repository.target.contains(placeholder) {
                problems.push(format!(
                    "repository {} (priority {}): env names Secrets or ConfigMaps per {placeholder}, but its target has no {placeholder}: every {} sharing the repository would need the same password",
                    repository.shown(),
                    repository.priority,
                    placeholder.trim_matches(|c| c == '{' || c == '}')
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// Everything wrong with a Config's spec that its schema cannot say, each problem in words
/// (empty when it is valid): what the Config's `Valid` condition reports.
pub fn problems(config: &Config) -> Vec<String> {
    plan(config).err().unwrap_or_default()
}

/// PVCs the Config selects, in every namespace, from the PVC cache (a reconcile per PVC change
/// must not list every PVC of the cluster from the API server).
pub async fn selected_pvcs(ctx: &Context, config: &Config) -> Vec<PersistentVolumeClaim> {
    crate::context::filled(&ctx.pvcs).await;
    ctx.pvcs
        .state()
        .into_iter()
        .filter(|pvc| config.selects(pvc.namespace().as_deref().unwrap_or_default(), pvc.labels(), &ctx.settings.cluster_wide))
        .map(|pvc| PersistentVolumeClaim::clone(&pvc))
        .collect()
}

/// A repository's key in Task names: distinguishes Configs and repositories that back up the
/// same PVC in the same slot.
fn repository_key(config: &Config, repository: &Repository) -> String {
    let identity = format!("{}/{}/{}", config.namespace().unwrap_or_default(), config.name_any(), repository.target);
    format!("{:08x}", naming::fnv1a(identity.as_bytes()) as u32)
}

pub async fn reconcile(guard: Arc<DeserializeGuard<Config>>, ctx: Arc<Context>) -> Result<Action, Error> {
    let config = match &guard.0 {
        Ok(config) => config,
        Err(invalid) => {
            tracing::warn!(name = ?invalid.metadata.name, error = %invalid.error, "Config cannot be read");
            return Ok(Action::await_change());
        }
    };
    let now = Timestamp::now();
    let api: Api<Config> = Api::namespaced(ctx.client.clone(), &config.namespace().ok_or(Error::MissingField("namespace"))?);
    let object_ref = config.object_ref(&());
    let generation = config.metadata.generation;
    let previous = config.status.clone().unwrap_or_default();
    let mut status =
        ConfigStatus { observed_generation: generation, conditions: previous.conditions.clone(), ..Default::default() };

    let planned = match plan(config) {
        Ok(planned) => planned,
        Err(problems) => {
            let message = problems.join("; ");
            if previous.observed_generation != generation {
                ctx.event(&object_ref, EventType::Warning, "InvalidSpec", "Validate", &message).await;
            }
            set_condition(&mut status.conditions, "Valid", ConditionStatus::False, "InvalidSpec", &message, generation, now);
            set_condition(&mut status.conditions, "Ready", ConditionStatus::False, "InvalidSpec", message, generation, now);
            patch_status(&api, config, &status).await?;
            return Ok(Action::await_change());
        }
    };
    set_condition(&mut status.conditions, "Valid", ConditionStatus::True, "Valid", "spec is valid", generation, now);
    let cluster_wide = &ctx.settings.cluster_wide;
    let own = config.namespace().unwrap_or_default();
    let (unwatched, out_of_reach): (Vec<String>, Vec<String>) =
        config.unreachable_namespaces(cluster_wide).into_iter().partition(|n| !cluster_wide.watches(n));
    let mut problems = Vec::new();
    if !out_of_reach.is_empty() {
        problems.push(("OutsideOwnNamespace", format!(
            "selectors name namespaces {}, but a Config in namespace {own} protects only PVCs of {own} (Configs that may reach other namespaces live in: {})",
            out_of_reach.join(", "),
            cluster_wide.0.join(", ")
        )));
    }
    if !cluster_wide.watches(&own) && !cluster_wide.contains(&own) {
        problems.push((
            "NamespaceNotWatched",
            format!(
                "namespace {own} is not one this operator protects (--watch-namespaces: {}): this Config protects nothing",
                cluster_wide.1 .0.join(", ")
            ),
        ));
    } else if !unwatched.is_empty() {
        problems.push((
            "NamespaceNotWatched",
            format!(
                "selectors name namespaces {} that this operator does not protect (--watch-namespaces: {})",
                unwatched.join(", "),
                cluster_wide.1 .0.join(", ")
            ),
        ));
    }
    if problems.is_empty() {
        status.conditions.retain(|c| c.type_ != "SelectorsInReach");
    } else {
        let reason = problems[0].0;
        let message = problems.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; ");
        if previous.observed_generation != generation {
            ctx.event(&object_ref, EventType::Warning, "SelectorsOutOfReach", "Validate", &message).await;
        }
        set_condition(&mut status.conditions, "SelectorsInReach", ConditionStatus::False, reason, message, generation, now);
    }

    let pvcs = selected_pvcs(&ctx, config).await;
    status.matched_pvcs = Some(pvcs.len() as i32);
    let backupable: Vec<&PersistentVolumeClaim> = pvcs.iter().filter(|p| submit::is_backupable(p)).collect();

    // Requests first: their Tasks wait for their repository themselves, so nothing here waits
    // for a repository check.
    answer_manual_backup(&ctx, config, &backupable).await?;
    answer_manual_restore(&ctx, config, &pvcs).await?;

    let instances = instances(config, &planned, &pvcs);
    let all_env: Vec<_> = instances.iter().flat_map(|i| i.view.spec.effective_env(i.repository())).collect();
    let env_sources = ctx.fetch_env_sources(&config.namespace().unwrap_or_default(), &all_env).await?;
    let generation_changed = previous.observed_generation != generation;
    // Repositories are independent: each is checked and then served on its own, so one that
    // hangs or fails delays none of the others' slots.
    let served = instances.iter().map(|instance| {
        let before = previous.repositories.iter().find(|r| r.target == instance.repository().shown()).cloned();
        let work = Work {
            ctx: &ctx,
            config: &instance.view,
            env_sources: &env_sources,
            backupable: &instance.backupable,
            members: &instance.members,
            retention: &instance.retention,
            now,
        };
        async move { work.serve(instance.planned, instance.repository(), before, generation_changed).await }
    });
    let mut wake_at: Option<Timestamp> = None;
    for result in futures::future::join_all(served).await {
        let (repo_status, wake) = result?;
        wake_at = Some(wake_at.map_or(wake, |w: Timestamp| w.min(wake)));
        status.repositories.push(repo_status);
    }
    for p in planned.iter().filter(|p| p.repository.is_template()) {
        if !instances.iter().any(|i| std::ptr::eq(i.planned, p)) {
            status.repositories.push(RepositoryStatus {
                target: p.repository.shown(),
                instance_of: Some(p.repository.shown()),
                priority: p.repository.priority,
                ready: true,
                reason: "NoInstances".into(),
                message: "one repository per namespace or PVC, created when the first PVC is selected: none selected yet".into(),
                ..Default::default()
            });
        }
    }
    status.repositories.sort_by(|a, b| (a.priority, &a.target).cmp(&(b.priority, &b.target)));

    let ready = status.repositories.iter().filter(|r| r.ready).count();
    status.repository_summary = Some(format!("{ready}/{}", status.repositories.len()));
    let unready: Vec<String> =
        status.repositories.iter().filter(|r| !r.ready).map(|r| format!("{}: {}", r.target, r.message)).collect();
    let (all_ready, reason, message) = if unready.is_empty() {
        (true, "RepositoriesReady", format!("{ready} repositories ready, {} PVCs selected", pvcs.len()))
    } else {
        (false, "RepositoryUnavailable", unready.join("; "))
    };
    set_condition(&mut status.conditions, "RepositoriesReady", all_ready.into(), reason, &message, generation, now);
    set_condition(&mut status.conditions, "Ready", all_ready.into(), reason, message, generation, now);
    if let Some(at) = schedule_drills(&ctx, config, &backupable, &previous, &mut status, now).await {
        wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
    }
    patch_status(&api, config, &status).await?;

    let wait = wake_at.map_or(ctx.settings.repository_check_interval, |at| {
        Duration::from_secs_f64((at.as_millisecond() - Timestamp::now().as_millisecond()).max(1000) as f64 / 1000.0)
    });
    Ok(Action::requeue(wait))
}

/// Turns each due slot of each drill schedule (the Config's and its selectors') into one drill Task
/// per PVC whose policy has that schedule, named after the slot so a retry finds it. Returns when
/// the next slot is due. A PVC whose Task cannot be made is told so and never stops the others.
async fn schedule_drills(
    ctx: &Context,
    config: &Config,
    pvcs: &[&PersistentVolumeClaim],
    previous: &ConfigStatus,
    status: &mut ConfigStatus,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut groups: std::collections::BTreeMap<String, Vec<&PersistentVolumeClaim>> = Default::default();
    for pvc in pvcs {
        if let Some(drill) = config.spec.policy(&pvc.namespace().unwrap_or_default(), pvc.labels()).drill {
            groups.entry(drill.schedule).or_default().push(pvc);
        }
    }
    let mut wake: Option<Timestamp> = None;
    for (text, members) in groups {
        let Ok(schedule) = text.parse::<Schedule>() else { continue }; // said by `plan`
        let before = previous.drills.iter().find(|d| d.schedule == text);
        // A new schedule starts counting now: applying it does not drill everything at once.
        let last = before.and_then(|d| d.last_slot.clone()).map_or(now, |t| t.0);
        let mut state = DrillSchedule { schedule: text.clone(), last_slot: Some(Time(last)), next_drill: None };
        if let Some(slot) = schedule.latest_due(last, now) {
            let mut passing = false;
            for pvc in members.iter().filter(|pvc| has_snapshot(ctx, pvc)) {
                let slot_text = jiff::fmt::strtime::format("%Y%m%d-%H%M", slot).unwrap_or_default();
                let name = naming::bounded_name(&["drill", &pvc.name_any(), &slot_text]);
                match submit::create(ctx, &submit::drill(config, pvc, &name, slot)).await {
                    Ok(_) => {}
                    Err(e) if submit::is_refused(&e) => {
                        let message = format!("restore drill not created: {e}");
                        ctx.event(&pvc.object_ref(&()), EventType::Warning, "DrillNotScheduled", "Drill", message).await;
                    }
                    Err(e) => {
                        tracing::warn!(pvc = %pvc.name_any(), error = %e, "drill Task not created; the slot is tried again");
                        passing = true;
                    }
                }
            }
            if !passing {
                state.last_slot = Some(Time(slot));
            }
        }
        let next = schedule.next_after(state.last_slot.clone().map_or(now, |t| t.0).max(now));
        state.next_drill = next.map(Time);
        if let Some(next) = next {
            wake = Some(wake.map_or(next, |w| w.min(next)));
        }
        status.drills.push(state);
    }
    wake
}

/// Whether a PVC has a snapshot to drill: a backup or restore of it completed with one. A PVC not
/// yet backed up is left out of a drill slot rather than failing a drill it could not pass.
fn has_snapshot(ctx: &Context, pvc: &PersistentVolumeClaim) -> bool {
    let namespace = pvc.namespace();
    let name = pvc.name_any();
    ctx.tasks.state().iter().filter_map(|guard| guard.0.as_ref().ok()).any(|task| {
        task.namespace() == namespace
            && task.spec.pvc_name == name
            && matches!(task.spec.type_, TaskType::Backup | TaskType::Restore)
            && task.status.as_ref().is_some_and(|s| s.phase == Some(TaskPhase::Completed) && s.snapshot_id.is_some())
    })
}

/// One repository a Config's PVCs use: a repository without placeholders (every PVC), or one
/// instance of a per-namespace or per-PVC repository (the PVCs whose instance it is).
struct Instance<'a> {
    planned: &'a Planned<'a>,
    /// The Config as these PVCs see it (`Config::for_pvc`).
    view: Config,
    backupable: Vec<&'a PersistentVolumeClaim>,
    /// Every selected PVC whose snapshots it holds.
    members: Vec<&'a PersistentVolumeClaim>,
    /// Snapshot hosts of these PVCs by retention policy (retention is limited to them).
    retention: Vec<ForgetGroup>,
}

impl Instance<'_> {
    fn repository(&self) -> &Repository {
        &self.view.spec.repositories[self.planned.index]
    }
}

/// Every repository the Config's PVCs use, in the Config's order; a per-namespace repository has
/// one instance per namespace with selected PVCs (per-PVC: one per PVC).
fn instances<'a>(config: &Config, planned: &'a [Planned<'a>], pvcs: &'a [PersistentVolumeClaim]) -> Vec<Instance<'a>> {
    let mut all = Vec::new();
    for p in planned {
        if !p.repository.is_template() {
            all.push(Instance {
                planned: p,
                view: config.clone(),
                backupable: pvcs.iter().filter(|pvc| submit::is_backupable(pvc)).collect(),
                members: pvcs.iter().collect(),
                retention: Vec::new(),
            });
            continue;
        }
        let mut groups: std::collections::BTreeMap<String, Instance<'a>> = Default::default();
        for pvc in pvcs {
            let (namespace, name) = (pvc.namespace().unwrap_or_default(), pvc.name_any());
            let instance = groups.entry(p.repository.instance(&namespace, &name).target).or_insert_with(|| Instance {
                planned: p,
                view: config.for_pvc(&namespace, &name),
                backupable: Vec::new(),
                members: Vec::new(),
                retention: Vec::new(),
            });
            if submit::is_backupable(pvc) {
                instance.backupable.push(pvc);
            }
            instance.members.push(pvc);
        }
        all.extend(groups.into_values());
    }
    for instance in &mut all {
        instance.retention = retention_groups(&config.spec, &instance.repository().forget_args, &instance.members);
    }
    all
}

/// The snapshot hosts of `members` grouped by the retention policy each gets: its selector's
/// `forgetArgs`, or else the repository's policy (`forget_args` without prune's tuning). The
/// repository's own policy comes first, then the others in the order their PVCs come. An empty
/// policy forgets nothing, so its hosts get no group. A host two PVCs share (`a-b`/`c` and
/// `a`/`b-c`) stays in the first group it met: one forget decides for it, never two.
fn retention_groups(
    spec: &crate::api::ConfigSpec,
    forget_args: &[String],
    members: &[&PersistentVolumeClaim],
) -> Vec<ForgetGroup> {
    let repository_policy = crate::restic::split_forget_args(forget_args).0;
    let mut groups = vec![ForgetGroup { policy: repository_policy.clone(), hosts: Vec::new() }];
    let mut placed = std::collections::HashSet::new();
    for pvc in members {
        let namespace = pvc.namespace().unwrap_or_default();
        let labels = pvc.metadata.labels.clone().unwrap_or_default();
        let policy = spec.policy(&namespace, &labels).forget_args.unwrap_or_else(|| repository_policy.clone());
        let host = snapshot_host(&namespace, &pvc.name_any());
        if policy.is_empty() || !placed.insert(host.clone()) {
            continue;
        }
        match groups.iter_mut().find(|g| g.policy == policy) {
            Some(group) => group.hosts.push(host),
            None => groups.push(ForgetGroup { policy, hosts: vec![host] }),
        }
    }
    groups.retain(|g| !g.hosts.is_empty());
    groups
}

/// What serving one repository needs from its Config's reconcile.
#[derive(Clone, Copy)]
struct Work<'a> {
    ctx: &'a Context,
    config: &'a Config,
    env_sources: &'a crate::context::FetchedValues,
    backupable: &'a [&'a PersistentVolumeClaim],
    /// The selected PVCs whose snapshots the repository holds.
    members: &'a [&'a PersistentVolumeClaim],
    /// Their snapshot hosts by retention policy (retention is limited to them).
    retention: &'a [ForgetGroup],
    now: Timestamp,
}

impl Work<'_> {
    /// Checks one repository when due, then turns its due backup slot into Tasks and runs its due
    /// retention. Returns its status and when it next needs a look.
    async fn serve(
        self,
        p: &Planned<'_>,
        repository: &Repository,
        before: Option<RepositoryStatus>,
        generation_changed: bool,
    ) -> Result<(RepositoryStatus, Timestamp), Error> {
        let (ctx, config, now) = (self.ctx, self.config, self.now);
        let object_ref = config.object_ref(&());
        let (mut repo_status, env) =
            check_repository(ctx, config, repository, self.env_sources, before, generation_changed, now).await;
        repo_status.instance_of = p.repository.is_template().then(|| p.repository.shown());
        let mut wake_at = now + ctx.settings.repository_check_interval;
        let mut wake = |at: Timestamp| wake_at = wake_at.min(at);
        // A fresh Config starts counting slots now: applying it does not back everything up at once.
        let last_backup = repo_status.last_backup_slot.clone().map_or(now, |t| t.0);
        let last_forget = repo_status.last_forget_slot.clone().map_or(now, |t| t.0);
        repo_status.last_backup_slot.get_or_insert(Time(last_backup));
        repo_status.last_forget_slot.get_or_insert(Time(last_forget));

        if let Some(job) = repo_status.retention_job.clone() {
            match self.retention_outcome(&job).await? {
                None => wake(now + ctx.settings.retry_interval),
                Some(outcome) => {
                    let (type_, reason, summary) = match outcome {
                        Ok(RetentionResult { summary, kept, hosts, started }) => {
                            if let Some(kept) = kept {
                                let run = super::catalog::RetentionRun {
                                    repository: &repository.target,
                                    hosts: &hosts,
                                    kept: &kept,
                                    started,
                                };
                                super::catalog::record_retention(ctx, config, self.members, &run).await;
                            }
                            (EventType::Normal, "RetentionCompleted", summary)
                        }
                        Err(message) => (EventType::Warning, "RetentionFailed", format!("failed: {message}")),
                    };
                    let note = format!("{}: {summary} (Job {job})", repository.shown());
                    ctx.event(&object_ref, type_, reason, "Forget", note).await;
                    repo_status.last_retention = Some(summary);
                    repo_status.retention_job = None;
                }
            }
        }
        if repo_status.ready {
            if let Some(slot) = p.backup.latest_due(last_backup, now) {
                match self.schedule_slot(repository, slot).await {
                    Ok(()) => repo_status.last_backup_slot = Some(Time(slot)),
                    // Some PVCs' Tasks could not be created for a passing reason: the slot is
                    // tried again (the created ones are found by name).
                    Err(message) => {
                        repo_status.message = message;
                        wake(now + ctx.settings.retry_interval);
                    }
                }
            }
            if let (None, Some(slot), Some(env)) =
                (&repo_status.retention_job, p.retention.latest_due(last_forget, now), env.as_ref())
            {
                match self.start_retention(repository, env, slot).await? {
                    Ok(Some(job)) => {
                        repo_status.retention_job = Some(job);
                        repo_status.last_forget_slot = Some(Time(slot));
                        wake(now + ctx.settings.retry_interval);
                    }
                    Ok(None) => {
                        repo_status.last_forget_slot = Some(Time(slot));
                        repo_status.last_retention = Some(if self.members.is_empty() {
                            "no selected PVCs; nothing to forget".into()
                        } else {
                            "no retention policy (forgetArgs is empty) for any selected PVC; nothing forgotten".into()
                        });
                    }
                    Err(message) => {
                        repo_status.message = format!("retention not started: {message}");
                        ctx.event(
                            &object_ref,
                            EventType::Warning,
                            "RetentionFailed",
                            "Forget",
                            format!("{}: {message}", repository.shown()),
                        )
                        .await;
                        wake(now + ctx.settings.retry_interval);
                    }
                }
            }
        } else {
            wake(now + ctx.settings.retry_interval);
        }
        if let Some(at) = self.integrity_check(p, repository, env.as_ref(), &mut repo_status).await? {
            wake(at);
        }

        let next_backup = p.backup.next_after(repo_status.last_backup_slot.clone().map_or(now, |t| t.0).max(now));
        let next_forget = p.retention.next_after(repo_status.last_forget_slot.clone().map_or(now, |t| t.0).max(now));
        repo_status.next_backup = next_backup.map(Time);
        repo_status.next_forget = next_forget.map(Time);
        next_backup.into_iter().chain(next_forget).for_each(&mut wake);
        if let Some(checked) = &repo_status.last_check_time {
            wake(checked.0 + ctx.settings.repository_check_interval);
        }
        Ok((repo_status, wake_at))
    }

    /// Creates the retention Job of `slot`. `Ok(None)`: no selected PVC has a retention policy, so
    /// there is nothing of this Config's to forget. The inner error is a Job the cluster refuses, said in words.
    async fn start_retention(
        self,
        repository: &Repository,
        env: &ResolvedEnv,
        slot: Timestamp,
    ) -> Result<Result<Option<String>, String>, Error> {
        if self.retention.is_empty() {
            return Ok(Ok(None));
        }
        let tuning = crate::restic::split_forget_args(&repository.forget_args).1;
        let work = job::Maintenance::Forget { groups: self.retention, tuning: &tuning };
        self.start_maintenance(repository, env, slot, work).await.map(|created| created.map(Some))
    }

    /// Creates the maintenance Job (retention or check) of `slot`, and the credentials Secret beside
    /// it; returns its name. The inner error is a Job the cluster refuses, said in words.
    async fn start_maintenance(
        self,
        repository: &Repository,
        env: &ResolvedEnv,
        slot: Timestamp,
        work: job::Maintenance<'_>,
    ) -> Result<Result<String, String>, Error> {
        let (ctx, config) = (self.ctx, self.config);
        let namespace = config.namespace().unwrap_or_default();
        // In the Config's own namespace, where its credentials are anyway; gone with the Config.
        let secret_name = credentials::secret_name(config, repository);
        let owner = config.controller_owner_ref(&());
        let applied = jobs::apply_credentials(ctx, (config, repository), &namespace, &secret_name, owner, env).await;
        let credential_keys = match applied {
            Ok(keys) => keys,
            Err(e) if submit::is_refused(&e) => return Ok(Err(format!("credentials Secret: {e}"))),
            Err(e) => return Err(e.into()),
        };
        let slot_text = jiff::fmt::strtime::format("%Y%m%d-%H%M", slot).unwrap_or_else(|_| slot.as_second().to_string());
        let prefix = match work {
            job::Maintenance::Forget { .. } => "forget",
            job::Maintenance::Check { .. } => "check",
        };
        let name = naming::bounded_name(&[prefix, &config.name_any(), &slot_text, &repository_key(config, repository)]);
        let owner = config.controller_owner_ref(&()).ok_or(Error::MissingField("Config uid"))?;
        let job = job::build_maintenance(&job::MaintenanceInputs {
            name: &name,
            namespace: &namespace,
            owner,
            config_name: &config.name_any(),
            repository: &repository.shown(),
            work,
            credentials_secret: &secret_name,
            credential_keys: &credential_keys,
            settings: &ctx.settings.job.for_config(
                config.spec.jobs.as_ref(),
                ctx.settings.cluster_wide.contains(config.metadata.namespace.as_deref().unwrap_or_default()),
            ),
            options: &ctx.settings.restic_options(&config.spec, repository),
        });
        match Api::<Job>::namespaced(ctx.client.clone(), &namespace).create(&PostParams::default(), &job).await {
            Ok(_) => Ok(Ok(name)),
            Err(e) if submit::is_already_exists(&e) => Ok(Ok(name)),
            Err(e) if submit::is_refused(&e) => Ok(Err(format!("the cluster refused {prefix} Job {name}: {e}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// How the maintenance Job `name` ended; `None` while it runs. Ok: it completed, with its
    /// output. Err: it failed, or never ran, in words (`what` names it), and whether restic found
    /// the repository damaged (a check's exit 1 with restic's own "contains errors").
    async fn maintenance_outcome(self, what: &str, name: &str) -> Result<Option<Result<(Job, String), (String, bool)>>, Error> {
        let ctx = self.ctx;
        let namespace = self.config.namespace().unwrap_or_default();
        let api: Api<Job> = Api::namespaced(ctx.client.clone(), &namespace);
        let Some(job) = api.get_opt(name).await? else {
            return Ok(Some(Err((format!("{what} Job {name} was deleted before it finished"), false))));
        };
        let conditions = job.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        let holds = |type_: &str| conditions.iter().any(|c| c.type_ == type_ && c.status == "True");
        if holds("Complete") {
            let output = jobs::job_output(ctx, &namespace, name).await?;
            return Ok(Some(Ok((job, output))));
        }
        if holds("Failed") {
            let output = jobs::job_output(ctx, &namespace, name).await?;
            let code = jobs::last_exit_code(ctx, &namespace, name).await?.unwrap_or(1);
            let failure = crate::restic::Failure::classify(code, &output);
            let detail = crate::restic::last_lines(&output, 3);
            let damaged = code == 1 && output.contains("contains errors");
            return Ok(Some(Err((format!("{what} Job {name} failed ({}): {detail}", failure.reason()), damaged))));
        }
        let started = job.status.as_ref().is_some_and(|s| s.active.unwrap_or(0) + s.failed.unwrap_or(0) > 0);
        if !started {
            if let Some(refusal) = jobs::pod_creation_refused(ctx, &namespace, &job).await? {
                jobs::delete_if_present(&api, name, &DeleteParams::background()).await?;
                return Ok(Some(Err((format!("the cluster refused the pods of {what} Job {name}: {refusal}"), false))));
            }
        }
        Ok(None)
    }

    /// How the retention Job `name` ended, read from `forget --json`; `None` while it runs.
    async fn retention_outcome(self, name: &str) -> Result<Option<Result<RetentionResult, String>>, Error> {
        match self.maintenance_outcome("retention", name).await? {
            None => Ok(None),
            Some(Err((message, _))) => Ok(Some(Err(message))),
            Some(Ok((job, output))) => {
                // The hosts it was run for, and when: PVCs selected since, and backups finished while
                // it ran, are not what it listed.
                let commands = job::maintenance_commands(&job);
                let hosts =
                    commands.iter().flat_map(|c| c.windows(2)).filter(|w| w[0] == "--host").map(|w| w[1].clone()).collect();
                let started = job.metadata.creation_timestamp.as_ref().map_or(self.now, |t| t.0);
                let forgets = commands.iter().filter(|c| c.first().is_some_and(|program| program == "forget")).count();
                let groups = forget_groups(&output, forgets);
                Ok(Some(Ok(RetentionResult {
                    summary: forget_summary(groups.as_deref()),
                    kept: groups.as_deref().and_then(kept_snapshots),
                    hosts,
                    started,
                })))
            }
        }
    }

    /// Follows the repository's integrity check: records how a running one ended (status, Event),
    /// starts the one of a due slot. Returns when it next needs a look, if sooner than usual.
    async fn integrity_check(
        self,
        p: &Planned<'_>,
        repository: &Repository,
        env: Option<&ResolvedEnv>,
        repo_status: &mut RepositoryStatus,
    ) -> Result<Option<Timestamp>, Error> {
        let (ctx, config, now) = (self.ctx, self.config, self.now);
        let Some(schedule) = &p.check else {
            repo_status.next_integrity_check = None;
            return Ok(None);
        };
        let subset = repository.check_read_data_subset.clone();
        if let Some(job) = repo_status.integrity_check_job.clone() {
            let Some(outcome) = self.maintenance_outcome("check", &job).await? else {
                return Ok(Some(now + ctx.settings.retry_interval));
            };
            let (result, message) = match outcome {
                Ok((_, output)) => (IntegrityCheckResult::Passed, crate::restic::last_lines(&output, 1)),
                Err((message, true)) => (IntegrityCheckResult::Failed, message),
                Err((message, false)) => (IntegrityCheckResult::NotRun, message),
            };
            let (type_, reason) = match result {
                IntegrityCheckResult::Passed => (EventType::Normal, "IntegrityCheckPassed"),
                IntegrityCheckResult::Failed => (EventType::Warning, "IntegrityCheckFailed"),
                IntegrityCheckResult::NotRun => (EventType::Warning, "IntegrityCheckNotRun"),
            };
            let note = format!("{}: {message} (Job {job})", repository.shown());
            ctx.event(&config.object_ref(&()), type_, reason, "Check", note).await;
            repo_status.last_integrity_check =
                Some(IntegrityCheck { time: Time(now), result, message, read_data_subset: subset.clone(), job });
            repo_status.integrity_check_job = None;
        }
        let last = repo_status.last_integrity_check_slot.clone().map_or(now, |t| t.0);
        repo_status.last_integrity_check_slot.get_or_insert(Time(last));
        let mut wake = None;
        if let (true, None, Some(slot), Some(env)) =
            (repo_status.ready, &repo_status.integrity_check_job, schedule.latest_due(last, now), env)
        {
            let work = job::Maintenance::Check { read_data_subset: subset.as_deref() };
            match self.start_maintenance(repository, env, slot, work).await? {
                Ok(job) => {
                    repo_status.integrity_check_job = Some(job);
                    wake = Some(now + ctx.settings.retry_interval);
                }
                Err(message) => {
                    ctx.event(
                        &config.object_ref(&()),
                        EventType::Warning,
                        "IntegrityCheckNotRun",
                        "Check",
                        format!("{}: {message}", repository.shown()),
                    )
                    .await;
                    let job = String::new();
                    repo_status.last_integrity_check = Some(IntegrityCheck {
                        time: Time(now),
                        result: IntegrityCheckResult::NotRun,
                        message,
                        read_data_subset: subset.clone(),
                        job,
                    });
                }
            }
            repo_status.last_integrity_check_slot = Some(Time(slot));
        }
        let next = schedule.next_after(repo_status.last_integrity_check_slot.clone().map_or(now, |t| t.0).max(now));
        repo_status.next_integrity_check = next.map(Time);
        Ok(match (wake, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// One backup Task per backupable PVC for `slot`. A PVC whose Task the API server refuses is
    /// told so by an Event and skipped; it never stops the others. Any other failure is returned
    /// after every PVC has been tried, so the slot is tried again.
    async fn schedule_slot(self, repository: &Repository, slot: Timestamp) -> Result<(), String> {
        let (ctx, config) = (self.ctx, self.config);
        let mut created = 0;
        let mut passing = None;
        for pvc in self.backupable {
            let name = naming::scheduled_task_name(&pvc.name_any(), &repository_key(config, repository), slot);
            let task = submit::backup(config, pvc, &name, repository, TaskTrigger::Scheduled, Some(name.clone()), Some(slot));
            match submit::create(ctx, &task).await {
                Ok(new) => created += usize::from(new),
                Err(e) if submit::is_refused(&e) => {
                    let message = format!("scheduled backup to {} not created: {e}", repository.shown());
                    ctx.event(&pvc.object_ref(&()), EventType::Warning, "BackupNotScheduled", "Schedule", message).await;
                }
                Err(e) => passing = Some(format!("creating backup Task {name}: {e}")),
            }
        }
        tracing::info!(config = %config.name_any(), repository = %repository.shown(), %slot, created, "backup slot");
        passing.map_or(Ok(()), Err)
    }
}

/// Checks a repository when due (spec changed, not ready, or the interval passed), creating it
/// when it does not exist. Returns its status and, when usable, its resolved environment.
async fn check_repository(
    ctx: &Context,
    config: &Config,
    repository: &Repository,
    sources: &crate::context::FetchedValues,
    before: Option<RepositoryStatus>,
    generation_changed: bool,
    now: Timestamp,
) -> (RepositoryStatus, Option<ResolvedEnv>) {
    let mut status = before.unwrap_or_else(|| RepositoryStatus {
        target: repository.shown(),
        priority: repository.priority,
        ..Default::default()
    });
    status.priority = repository.priority;
    let env =
        match credentials::resolve(&config.spec, repository, &ctx.settings.restic_options(&config.spec, repository), sources) {
            Ok(env) => env,
            Err(e) => {
                status.ready = false;
                status.reason = "CredentialsMissing".into();
                status.message = e.to_string();
                status.last_check_time = Some(Time(now));
                return (status, None);
            }
        };
    // Ready repositories are checked every check interval, unready ones every retry interval;
    // a status update alone (which triggers a reconcile) does not cause another check.
    let interval = if status.ready { ctx.settings.repository_check_interval } else { ctx.settings.retry_interval };
    let due = generation_changed || status.last_check_time.as_ref().is_none_or(|t| t.0 + interval <= now);
    if !due {
        return (status, Some(env));
    }
    let object_ref = config.object_ref(&());
    let was_ready = status.ready;
    status.last_check_time = Some(Time(now));
    match ctx.settings.restic.open_or_init(&repository.target, &env).await {
        Ok(created) => {
            status.ready = true;
            status.reason = if created { "Initialized" } else { "Connected" }.into();
            status.message = if created { "repository created" } else { "repository reachable" }.into();
            if created {
                ctx.event(&object_ref, EventType::Normal, "RepositoryInitialized", "Init", repository.shown()).await;
            } else if !was_ready {
                ctx.event(&object_ref, EventType::Normal, "RepositoryReady", "Check", repository.shown()).await;
            }
        }
        Err(e) => {
            status.ready = false;
            status.reason = e.failure.reason().into();
            status.message = e.message.clone();
            if was_ready || generation_changed || status.last_backup_slot.is_none() {
                ctx.event(
                    &object_ref,
                    EventType::Warning,
                    "RepositoryUnavailable",
                    "Check",
                    format!("{}: {}", repository.shown(), e.message),
                )
                .await;
            }
        }
    }
    (status, Some(env))
}

/// The groups that the `forgets` runs of `forget --json` in a completed retention Job printed, a
/// JSON line each (prune's text, progress lines such as `[0:01] 100.00%` among it, follows).
/// restic prints no line for a run whose hosts have no snapshot, and in a completed Job every run
/// succeeded, so of several runs, those without a line kept nothing. A single run without a line,
/// or more lines than runs, is `None`: nothing is known of what was kept.
fn forget_groups(output: &str, forgets: usize) -> Option<Vec<serde_json::Value>> {
    let lists: Vec<Vec<serde_json::Value>> =
        output.lines().filter(|l| l.trim_start().starts_with('[')).filter_map(|l| serde_json::from_str(l).ok()).collect();
    let known = if forgets == 1 { lists.len() == 1 } else { lists.len() <= forgets };
    known.then(|| lists.into_iter().flatten().collect())
}

/// "kept N, removed M snapshots" from `forget --json`'s groups.
fn forget_summary(groups: Option<&[serde_json::Value]>) -> String {
    let Some(groups) = groups else {
        return "forgot by policy and pruned (restic printed no list of what it kept)".into();
    };
    let count = |key: &str| groups.iter().map(|g| g[key].as_array().map_or(0, Vec::len)).sum::<usize>();
    format!("kept {} and removed {} snapshots, then pruned", count("keep"), count("remove"))
}

/// A finished retention run.
struct RetentionResult {
    summary: String,
    /// What `forget` kept, from every group; `None` when it printed no list.
    kept: Option<Vec<Snapshot>>,
    /// The hosts it was run for.
    hosts: Vec<String>,
    /// When its Job was made.
    started: Timestamp,
}

/// The snapshots `forget --json` kept, from every group (a group that keeps nothing says `null`);
/// `None` when a group cannot be read.
fn kept_snapshots(groups: &[serde_json::Value]) -> Option<Vec<Snapshot>> {
    let mut kept = Vec::new();
    for group in groups {
        match group.get("keep") {
            None | Some(serde_json::Value::Null) => {}
            Some(list) => kept.extend(serde_json::from_value::<Vec<Snapshot>>(list.clone()).ok()?),
        }
    }
    Some(kept)
}

/// `manual-backup` on a Config: claimed, then one Task per selected PVC, then the claim is dropped.
async fn answer_manual_backup(ctx: &Context, config: &Config, pvcs: &[&PersistentVolumeClaim]) -> Result<(), Error> {
    let api: Api<Config> = Api::namespaced(ctx.client.clone(), &config.namespace().unwrap_or_default());
    let Some((version, value)) = request::claimed(config, MANUAL_BACKUP_ANNOTATION) else {
        if let Some(value) = config.annotations().get(MANUAL_BACKUP_ANNOTATION) {
            request::claim(&api, config, MANUAL_BACKUP_ANNOTATION, value).await?;
        }
        return Ok(());
    };
    let object_ref = config.object_ref(&());
    let outcome = async {
        let request = annotation::parse(&value).map_err(|e| e.to_string())?;
        if request.host.is_some() {
            return Err("a host cannot be given for a backup of a whole Config".to_owned());
        }
        let repository = match request.resolve_repository(&config.spec.repositories).map_err(|e| e.to_string())? {
            Some(repository) => repository,
            None => config.spec.repositories_by_priority()[0],
        };
        Ok((request, repository))
    }
    .await;
    match outcome {
        Err(message) => {
            ctx.event(
                &object_ref,
                EventType::Warning,
                "InvalidRequest",
                "ManualBackup",
                format!("manual-backup={value:?}: {message}"),
            )
            .await;
        }
        Ok((request, repository)) => {
            let mut created = 0;
            for pvc in pvcs {
                let identity = format!("{}/{}", config.uid().unwrap_or_default(), pvc.uid().unwrap_or_default());
                let name = naming::request_task_name("backup", &pvc.name_any(), &identity, &version, &value);
                let backup_name = request.name().map_or_else(|| name.clone(), str::to_owned);
                let instance = repository.instance(&pvc.namespace().unwrap_or_default(), &pvc.name_any());
                let task = submit::backup(config, pvc, &name, &instance, TaskTrigger::Manual, Some(backup_name), None);
                created += usize::from(submit::create(ctx, &task).await?);
            }
            ctx.event(
                &object_ref,
                EventType::Normal,
                "BackupRequested",
                "ManualBackup",
                format!(
                    "manual-backup={value:?}: {created} backup Tasks created for {} PVCs to {}",
                    pvcs.len(),
                    repository.shown()
                ),
            )
            .await;
        }
    }
    request::release(&api, config, MANUAL_BACKUP_ANNOTATION).await
}

/// `manual-restore` on a Config: claimed, then served on each selected PVC exactly as on the PVC
/// itself (each gets its Task, or its `Rejected:` answer), then the claim is dropped.
async fn answer_manual_restore(ctx: &Context, config: &Config, pvcs: &[PersistentVolumeClaim]) -> Result<(), Error> {
    let api: Api<Config> = Api::namespaced(ctx.client.clone(), &config.namespace().unwrap_or_default());
    let Some((version, value)) = request::claimed(config, MANUAL_RESTORE_ANNOTATION) else {
        if let Some(value) = config.annotations().get(MANUAL_RESTORE_ANNOTATION) {
            request::claim(&api, config, MANUAL_RESTORE_ANNOTATION, value).await?;
        }
        return Ok(());
    };
    let object_ref = config.object_ref(&());
    let whole_config = match annotation::parse(&value) {
        Err(e) => Err(e.to_string()),
        Ok(request) if request.host.is_some() => {
            Err("a host cannot be given for a restore of a whole Config: each PVC restores its own".to_owned())
        }
        Ok(_) => Ok(()),
    };
    if let Err(message) = whole_config {
        let message = format!("manual-restore={value:?} rejected: {message}");
        ctx.event(&object_ref, EventType::Warning, "InvalidRequest", "ManualRestore", message).await;
        return request::release(&api, config, MANUAL_RESTORE_ANNOTATION).await;
    }
    let (mut requested, mut rejected) = (0, 0);
    for pvc in pvcs.iter().filter(|pvc| pvc.metadata.deletion_timestamp.is_none()) {
        let identity = format!("{}/{}", config.uid().unwrap_or_default(), pvc.uid().unwrap_or_default());
        let outcome = restore::serve_manual_restore(pvc, Some(config), ctx, &identity, &version, &value).await?;
        if outcome.is_ok() {
            requested += 1;
        } else {
            rejected += 1;
        }
        let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
        request::answer(ctx, pvc, &pvc_api, "manual-restore", restore::RESULT_ANNOTATION, &value, outcome).await?;
    }
    let (type_, message) = if rejected == 0 {
        (EventType::Normal, format!("manual-restore={value:?}: {requested} restore Tasks requested"))
    } else {
        (
            EventType::Warning,
            format!(
                "manual-restore={value:?}: {requested} restore Tasks requested, {rejected} PVCs rejected it (see their Events)"
            ),
        )
    };
    ctx.event(&object_ref, type_, "RestoreRequested", "ManualRestore", message).await;
    request::release(&api, config, MANUAL_RESTORE_ANNOTATION).await
}

async fn patch_status(api: &Api<Config>, config: &Config, status: &ConfigStatus) -> Result<(), Error> {
    let patch = serde_json::json!({"status": status});
    api.patch_status(&config.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await?;
    Ok(())
}

pub fn error_policy(_: Arc<DeserializeGuard<Config>>, error: &Error, ctx: Arc<Context>) -> Action {
    retry_soon(&ctx, "config", error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_hidden_in_env_or_forget_args_are_refused() {
        let config = Config::new(
            "backup",
            serde_json::from_value(serde_json::json!({
                "env": [{"name": "RESTIC_PASSWORD_COMMAND", "value": "cat /var/run/secrets/kubernetes.io/serviceaccount/token"}],
                "repositories": [{"target": "s3:http://s3/a", "priority": 1, "forgetArgs": ["--keep-last", "3", "--password-command", "id"],
                                  "env": [{"name": "AWS_ACCESS_KEY_ID", "value": "k"}, {"name": "RESTIC_PASSWORD_FILE", "value": "/etc/shadow"}]}],
                "selectors": [{"matchLabels": {"app": "x"}}],
            }))
            .unwrap(),
        );
        let problems = plan(&config).err().expect("refused");
        let all = problems.join("\n");
        assert!(all.contains("env RESTIC_PASSWORD_COMMAND is not a variable"), "{all}");
        assert!(all.contains("env RESTIC_PASSWORD_FILE is not a variable"), "{all}");
        assert!(all.contains("\"--password-command\" is not a retention policy option"), "{all}");
        assert!(!all.contains("AWS_ACCESS_KEY_ID"), "storage credentials are allowed: {all}");
    }

    fn pvc(namespace: &str, name: &str, bound: bool) -> PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace},
            "status": {"phase": if bound { "Bound" } else { "Pending" }}
        }))
        .unwrap()
    }

    #[test]
    fn a_per_namespace_repository_has_one_instance_per_namespace_with_its_pvcs() {
        let mut config = Config::new(
            "backup",
            serde_json::from_value(serde_json::json!({
                "repositories": [{"target": "s3:http://s3/b/{namespace}", "priority": 1},
                                 {"target": "s3:http://s3/shared", "priority": 2},
                                 {"target": "s3:http://s3/p/{namespace}-{pvc}", "priority": 3}],
                "selectors": [{"matchLabels": {"app": "x"}}],
            }))
            .unwrap(),
        );
        config.metadata.namespace = Some("backup-system".into());
        let planned = plan(&config).unwrap();
        let pvcs = [pvc("shop", "db", true), pvc("shop", "new", false), pvc("blog", "db", true)];
        let all = instances(&config, &planned, &pvcs);
        let seen: Vec<(String, Vec<String>, usize)> =
            all.iter().map(|i| (i.repository().target.clone(), hosts(&i.retention), i.backupable.len())).collect();
        let expected = [
            ("s3:http://s3/b/blog", vec!["blog-db"], 1),
            ("s3:http://s3/b/shop", vec!["shop-db", "shop-new"], 1),
            ("s3:http://s3/shared", vec!["shop-db", "shop-new", "blog-db"], 2),
            ("s3:http://s3/p/blog-db", vec!["blog-db"], 1),
            ("s3:http://s3/p/shop-db", vec!["shop-db"], 1),
            ("s3:http://s3/p/shop-new", vec!["shop-new"], 0),
        ];
        let expected: Vec<(String, Vec<String>, usize)> =
            expected.into_iter().map(|(t, h, n)| (t.to_owned(), h.into_iter().map(str::to_owned).collect(), n)).collect();
        assert_eq!(seen, expected);
        assert!(instances(&config, &planned, &[]).iter().all(|i| !i.planned.repository.is_template()));
    }

    fn hosts(groups: &[ForgetGroup]) -> Vec<String> {
        groups.iter().flat_map(|g| g.hosts.clone()).collect()
    }

    #[test]
    fn selectors_with_their_own_forget_args_get_retention_groups_of_their_own() {
        let spec: crate::api::ConfigSpec = serde_json::from_value(serde_json::json!({
            "repositories": [{"target": "s3:http://s3/a", "priority": 1, "forgetArgs": ["--keep-last", "5", "--max-unused", "5%"]}],
            "selectors": [{"matchLabels": {"tier": "logs"}, "forgetArgs": ["--keep-last", "1"]},
                          {"matchNamespaces": ["audit"], "forgetArgs": ["--keep-yearly", "7"]},
                          {"matchLabels": {"tier": "same"}, "forgetArgs": ["--keep-last", "5"]},
                          {"matchLabels": {"tier": "forever"}, "forgetArgs": []},
                          {"matchLabels": {"app": "x"}}],
        }))
        .unwrap();
        let labelled = |namespace: &str, name: &str, labels: serde_json::Value| -> PersistentVolumeClaim {
            serde_json::from_value(serde_json::json!({"metadata": {"name": name, "namespace": namespace, "labels": labels}}))
                .unwrap()
        };
        let pvcs = [
            labelled("shop", "logs", serde_json::json!({"tier": "logs"})),
            labelled("shop", "db", serde_json::json!({"app": "x"})),
            labelled("audit", "trail", serde_json::json!({"app": "x"})),
            labelled("blog", "logs", serde_json::json!({"tier": "logs"})),
            labelled("blog", "db", serde_json::json!({"app": "x"})),
            labelled("shop", "same", serde_json::json!({"tier": "same"})),
            labelled("shop", "kept", serde_json::json!({"tier": "forever"})),
            // Both have the host a-b-c: the first group it met decides for it.
            labelled("a-b", "c", serde_json::json!({"tier": "logs"})),
            labelled("a", "b-c", serde_json::json!({"app": "x"})),
        ];
        let members: Vec<&PersistentVolumeClaim> = pvcs.iter().collect();
        let groups = retention_groups(&spec, &spec.repositories[0].forget_args, &members);
        let seen: Vec<(String, Vec<String>)> = groups.iter().map(|g| (g.policy.join(" "), g.hosts.clone())).collect();
        let expected = [
            ("--keep-last 5", vec!["shop-db", "blog-db", "shop-same"]),
            ("--keep-last 1", vec!["shop-logs", "blog-logs", "a-b-c"]),
            ("--keep-yearly 7", vec!["audit-trail"]),
        ];
        let expected: Vec<(String, Vec<String>)> =
            expected.into_iter().map(|(p, h)| (p.to_owned(), h.into_iter().map(str::to_owned).collect())).collect();
        assert_eq!(seen, expected, "prune's tuning kept out; a selector's policy equal to the repository's shares its group; an empty policy forgets nothing");
        assert!(retention_groups(&spec, &spec.repositories[0].forget_args, &[]).is_empty());
    }

    #[test]
    fn a_selectors_forget_args_are_checked_like_a_repositorys() {
        let mut config = Config::new(
            "backup",
            serde_json::from_value(serde_json::json!({
                "repositories": [{"target": "s3:http://s3/a", "priority": 1}],
                "selectors": [{"matchLabels": {"a": "b"}, "forgetArgs": ["--keep-last", "3"]},
                              {"matchLabels": {"c": "d"}, "forgetArgs": ["--keep-last", "3", "--password-command", "id"]},
                              {"matchLabels": {"e": "f"}, "forgetArgs": ["--max-unused", "1%"]}],
            }))
            .unwrap(),
        );
        config.metadata.namespace = Some("backup-system".into());
        let problems = plan(&config).err().expect("refused");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("selectors[1].forgetArgs: \"--password-command\""), "{problems:?}");
        assert!(problems[1].starts_with("selectors[2].forgetArgs: --max-unused tunes prune"), "{problems:?}");
    }

    #[test]
    fn retention_summary_from_forget_json_then_prune_text() {
        // restic 0.14 `forget --json --prune`: the JSON groups on one line, then prune's progress.
        let output = r#"[{"tags":null,"host":"shop-data","paths":["/data"],"keep":[{"id":"9a46","short_id":"9a46"}],"remove":[{"id":"737f","short_id":"737f"},{"id":"8e1a","short_id":"8e1a"}],"reasons":[]},{"host":"shop-logs","keep":[{"id":"1111"}],"remove":null}]
loading indexes...
to delete:             2 blobs / 498 B
"#;
        assert_eq!(forget_summary(forget_groups(output, 1).as_deref()), "kept 2 and removed 2 snapshots, then pruned");
        assert_eq!(
            forget_summary(forget_groups("Fatal: unable to open config file", 1).as_deref()),
            "forgot by policy and pruned (restic printed no list of what it kept)"
        );
        // Two policies: a forget each (its JSON line), then prune's text.
        let two = "[{\"host\":\"shop-data\",\"keep\":[{\"id\":\"9a46\",\"time\":\"t\"}],\"remove\":[{\"id\":\"737f\"}]}]\n\
                   [{\"host\":\"shop-cache\",\"keep\":[{\"id\":\"2222\",\"time\":\"t\"},{\"id\":\"3333\",\"time\":\"t\"}],\"remove\":null}]\n\
                   loading indexes...\n";
        let groups = forget_groups(two, 2).unwrap();
        assert_eq!(forget_summary(Some(&groups)), "kept 3 and removed 1 snapshots, then pruned");
        assert_eq!(kept_snapshots(&groups).unwrap().len(), 3, "what every forget kept");
        let silent = forget_groups(two, 3).expect("a third run whose hosts had no snapshot printed nothing");
        assert_eq!(kept_snapshots(&silent).unwrap().len(), 3);
        assert_eq!(forget_groups(two, 1), None, "more lists than runs");
        assert_eq!(forget_groups("", 1), None, "one run, no list: nothing is known");
        let progress = format!("{two}[0:00] 100.00%  5 / 5 packs processed\n");
        assert_eq!(forget_groups(&progress, 2).map(|g| g.len()), Some(2), "prune's progress lines are not lists");
    }
}
