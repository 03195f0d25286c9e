//! The restic Job for one Task: a pure function of the Task and the operator's settings.

use crate::api::{ResticOptions, RestoreMode, RunAs, Task, TaskType, CA_CERTIFICATE_VARIABLE, DATA_PATH, GROUP};
use crate::restic::{self, CACHE_DIR, RESTORE_STAGING_DIR};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, KeyToPath, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use std::collections::BTreeMap;

/// The one restic image every Job uses; pinned here and nowhere else.
pub const RESTIC_IMAGE: &str = "docker.io/restic/restic:0.18.1";

/// Label on every object the operator creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "datarestor-operator";
pub const TASK_LABEL: &str = "backup.datarestor-operator.com/task";
pub const PVC_LABEL: &str = "backup.datarestor-operator.com/pvc";
pub const TYPE_LABEL: &str = "backup.datarestor-operator.com/type";
/// Label naming the Config (on Tasks and retention Jobs).
pub const CONFIG_LABEL: &str = "backup.datarestor-operator.com/config";
/// How long a finished retention or check Job stays for inspection.
const RETENTION_JOB_TTL_SECONDS: i32 = 7 * 24 * 3600;

/// Operator-wide Job settings (from command-line flags).
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    pub image: String,
    pub image_pull_policy: String,
    /// Kill the Job after this long; restic 0.18 retries a missing bucket for minutes.
    pub active_deadline_seconds: i64,
    /// Pod retries inside one Job (network blips); lock and credential problems are handled by the
    /// operator, not by retrying blindly.
    pub backoff_limit: i32,
    pub cpu_request: String,
    pub memory_request: String,
    pub memory_limit: String,
    /// From a Config's `jobs`: replaces the requests and limits above whole.
    pub resources: Option<ResourceRequirements>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub priority_class_name: Option<String>,
}

impl JobSettings {
    /// These settings with a Config's `jobs` laid over them. Where a Job may be scheduled (node
    /// selector, tolerations, priority class) is only taken from an administrators' Config
    /// (`placement_allowed`): a team that may write Configs but not pods must not steer root Jobs
    /// onto tainted nodes or above other workloads.
    pub fn for_config(&self, overrides: Option<&crate::api::JobOverrides>, placement_allowed: bool) -> JobSettings {
        let mut settings = self.clone();
        let Some(o) = overrides else { return settings };
        settings.resources = o.resources.clone().or(settings.resources);
        if placement_allowed {
            settings.node_selector.extend(o.node_selector.clone());
            settings.tolerations.extend(o.tolerations.iter().cloned());
            settings.priority_class_name = o.priority_class_name.clone().or(settings.priority_class_name);
        }
        settings.image_pull_policy = o.image_pull_policy.clone().unwrap_or(settings.image_pull_policy);
        settings.backoff_limit = o.backoff_limit.unwrap_or(settings.backoff_limit);
        settings.active_deadline_seconds = o.active_deadline_seconds.unwrap_or(settings.active_deadline_seconds);
        settings
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            image: RESTIC_IMAGE.into(),
            image_pull_policy: "IfNotPresent".into(),
            active_deadline_seconds: 6 * 3600,
            backoff_limit: 2,
            cpu_request: "100m".into(),
            memory_request: "128Mi".into(),
            memory_limit: "2Gi".into(),
            resources: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            priority_class_name: None,
        }
    }
}

/// What the builder needs beyond the Task itself.
#[derive(Clone, Debug)]
pub struct JobInputs<'a> {
    /// The repository target, already resolved.
    pub repository: &'a str,
    /// Restore only: the snapshot id, already resolved.
    pub snapshot_id: Option<&'a str>,
    /// Secret in the Task's namespace holding the repository's restic environment.
    pub credentials_secret: &'a str,
    /// Its keys, one per variable; each is passed by name (never `envFrom`: a key someone else
    /// added to the Secret must not reach restic).
    pub credential_keys: &'a [String],
    /// Node the PVC is attached to (ReadWriteOnce in use): the Job must run there.
    pub node_name: Option<&'a str>,
    /// 0 for the first Job of a Task; retries (after clearing a stale lock) get their own name.
    pub attempt: u32,
    /// The Config's `runJobsAs`: an unprivileged identity instead of root.
    pub run_as: Option<RunAs>,
    pub settings: &'a JobSettings,
    /// The repository's restic settings (`ConfigSpec::restic_options`).
    pub options: &'a ResticOptions,
    /// Drills only: the check run in the restored volume (the PVC's `drill.command`).
    pub drill_command: &'a [String],
}

/// A drill's scratch PVC, named after its Task.
pub fn drill_claim(task_name: &str) -> String {
    crate::naming::bounded_name(&["drill", task_name])
}

/// A restore drill in the scratch volume at `/data`: the snapshot's own totals, the restore, what
/// the volume holds then (`lost+found` is not data), and the drill's command, run in `/data` with
/// an empty environment (it never sees the repository's credentials). Each result is one
/// `datarestor-drill-...` line for the operator to read. `$1` is the snapshot, the rest the command.
const DRILL_SCRIPT: &str = r#"set -eu
snapshot="$1"; shift
restic stats "$snapshot" --json --mode restore-size --cache-dir /cache ${RESTIC_CACERT:+--cacert "$RESTIC_CACERT"} >/tmp/stats.json
echo "datarestor-drill-expected: $(cat /tmp/stats.json)"
restic restore "$snapshot" --target / --cache-dir /cache ${RESTIC_CACERT:+--cacert "$RESTIC_CACERT"} >&2
entries=$(($(find /data -mindepth 1 ! -path /data/lost+found ! -path '/data/lost+found/*' | wc -l) + 1))
bytes=$(find /data -type f ! -path '/data/lost+found/*' -exec stat -c %s {} + | awk '{ total += $1 } END { printf "%.0f\n", total }')
echo "datarestor-drill-restored: entries=$entries bytes=$bytes"
if [ "$#" -gt 0 ]; then
  set +e
  (cd /data && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp "$@")
  code=$?
  echo "datarestor-drill-command: exit=$code"
fi
"#;

/// Runs restic and then puts the result in place according to the restore mode. `$1` is the mode,
/// the rest is restic's argument vector. Clean and IfEmpty count what restic wrote (files' bytes, in
/// a `datarestor-restored:` line for the operator to read); a Merge restore lands among the files
/// already there, and restic's own restore summary differs between versions.
const RESTORE_SCRIPT: &str = r#"set -eu
mode="$1"; shift
stage=/data/.datarestor-restore
# lost+found (a fresh ext4/xfs volume has one) and the staging directory are not data.
entries() { dir="$1"; shift; find "$dir" -mindepth 1 -maxdepth 1 ! -name .datarestor-restore ! -name lost+found "$@"; }
case "$mode" in
  Merge) exec restic "$@" ;;
  IfEmpty)
    if [ -n "$(entries /data | head -n 1)" ]; then echo "datarestor: /data holds data and the restore mode is IfEmpty; nothing was changed" >&2; exit 3; fi ;;
  Clean) ;;
  *) echo "datarestor: unknown restore mode $mode" >&2; exit 2 ;;
esac
# Clean and IfEmpty: restic fills the staging directory (a previous attempt's partial download is
# only ever there); the files are moved in once it has finished.
rm -rf "$stage"; mkdir -p "$stage"
restic "$@"
if [ -d "$stage/data" ]; then
  echo "datarestor-restored: bytes=$(find "$stage/data" -type f -exec stat -c %s {} + | awk '{ total += $1 } END { printf "%.0f\n", total }')"
fi
if [ "$mode" = Clean ]; then entries /data -exec rm -rf -- {} +; fi
if [ -d "$stage/data" ]; then entries "$stage/data" -exec mv -- {} /data/ \; ; fi
rm -rf "$stage"
"#;

/// Builds the Job for a Task. Returns `None` for a Task without a name, namespace or uid (not
/// yet stored), which cannot own a Job.
pub fn build(task: &Task, inputs: &JobInputs<'_>) -> Option<Job> {
    let name = job_name(task.metadata.name.as_deref()?, inputs.attempt);
    let namespace = task.metadata.namespace.clone()?;
    let owner = task.controller_owner_ref(&())?;
    let spec = &task.spec;
    let backup = spec.type_ == TaskType::Backup;
    // A drill writes into its scratch volume, never into the PVC.
    let claim = match spec.type_ {
        TaskType::Drill => drill_claim(task.metadata.name.as_deref()?),
        _ => spec.pvc_name.clone(),
    };

    let (command, args) = match spec.type_ {
        TaskType::Backup => {
            let mut args = restic::job_args(&restic::Command::Backup {
                host: &spec.host,
                name: spec.name.as_deref(),
                namespace: &namespace,
                pvc: &spec.pvc_name,
            });
            args.extend(inputs.options.backup_args());
            args.extend(inputs.options.global_args());
            (vec!["restic".to_owned()], args)
        }
        TaskType::Restore => {
            let mode = spec.restore_mode.unwrap_or_default();
            // Clean and IfEmpty stage the snapshot inside the volume and move it in only once restic
            // has finished, so an interrupted download never looks like a restored volume.
            let target = if mode == RestoreMode::Merge { "/" } else { RESTORE_STAGING_DIR };
            let snapshot_id = inputs.snapshot_id.unwrap_or("latest");
            let restic_args = restic::job_args(&restic::Command::Restore { snapshot_id, target });
            let mut args = vec!["datarestor-restore".to_owned(), format!("{mode:?}")];
            args.extend(restic_args);
            args.extend(inputs.options.restore_args());
            args.extend(inputs.options.global_args());
            (vec!["/bin/sh".to_owned(), "-c".to_owned(), RESTORE_SCRIPT.to_owned()], args)
        }
        TaskType::Drill => {
            let mut args = vec!["datarestor-drill".to_owned(), inputs.snapshot_id.unwrap_or("latest").to_owned()];
            args.extend(inputs.drill_command.iter().cloned());
            (vec!["/bin/sh".to_owned(), "-c".to_owned(), DRILL_SCRIPT.to_owned()], args)
        }
    };

    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (TASK_LABEL.to_owned(), task.metadata.name.clone()?),
        (PVC_LABEL.to_owned(), crate::naming::label_value(&spec.pvc_name)),
        (TYPE_LABEL.to_owned(), spec.type_.as_str().to_owned()),
    ]);

    let runtime = restic_runtime(inputs.credentials_secret, inputs.credential_keys, inputs.options);
    let mut args = args;
    // The drill's script passes the CA itself (its trailing arguments are the drill's command).
    if spec.type_ != TaskType::Drill {
        args.extend(runtime.args.iter().cloned());
    }
    let mut mounts =
        vec![VolumeMount { name: "data".into(), mount_path: DATA_PATH.into(), read_only: Some(backup), ..Default::default() }];
    mounts.extend(runtime.mounts);
    let container = Container {
        name: "restic".into(),
        image: Some(inputs.settings.image.clone()),
        image_pull_policy: Some(inputs.settings.image_pull_policy.clone()),
        command: Some(command),
        args: Some(args),
        env: Some(runtime.env),
        volume_mounts: Some(mounts),
        resources: Some(resources(inputs.settings)),
        security_context: Some(container_security(backup, inputs.run_as)),
        ..Default::default()
    };

    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        containers: vec![container],
        volumes: Some(
            std::iter::once(Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim, read_only: Some(backup) }),
                ..Default::default()
            })
            .chain(runtime.volumes)
            .collect(),
        ),
        affinity: inputs.node_name.map(pin_to_node),
        // A Job pinned beside the pod using its volume runs there whatever the selector says.
        node_selector: Some(inputs.settings.node_selector.clone()).filter(|s| !s.is_empty() && inputs.node_name.is_none()),
        tolerations: Some(inputs.settings.tolerations.clone()).filter(|t| !t.is_empty()),
        priority_class_name: inputs.settings.priority_class_name.clone(),
        security_context: Some(PodSecurityContext {
            run_as_non_root: inputs.run_as.map(|_| true),
            run_as_user: inputs.run_as.map(|r| r.user),
            run_as_group: inputs.run_as.map(|r| r.group),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };

    Some(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(format!("{GROUP}/repository"), inputs.repository.to_owned())])),
            owner_references: Some(vec![OwnerReference { block_owner_deletion: Some(true), ..owner }]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(inputs.settings.backoff_limit),
            active_deadline_seconds: Some(inputs.settings.active_deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    })
}

/// What a repository-maintenance Job does.
#[derive(Clone, Copy, Debug)]
pub enum Maintenance<'a> {
    /// Retention: forget by each group's policy among its hosts (the snapshot hosts of the PVCs
    /// the Config selects; nobody else's snapshots are touched), then prune with `tuning` (from the
    /// repository's `forgetArgs`).
    Forget { groups: &'a [restic::ForgetGroup], tuning: &'a [String] },
    /// Integrity: `restic check`, re-reading `read_data_subset` of the data when given.
    Check { read_data_subset: Option<&'a str> },
}

impl Maintenance<'_> {
    /// The Job's type label, and its script's `$0`.
    fn kind(&self) -> &'static str {
        match self {
            Self::Forget { .. } => "retention",
            Self::Check { .. } => "check",
        }
    }
}

/// What a repository-maintenance Job needs: where it runs, what owns it, and what it does.
#[derive(Clone, Debug)]
pub struct MaintenanceInputs<'a> {
    pub name: &'a str,
    /// The Config's namespace, where its credentials are.
    pub namespace: &'a str,
    /// The Config: the Job goes when it goes.
    pub owner: OwnerReference,
    pub config_name: &'a str,
    pub repository: &'a str,
    pub work: Maintenance<'a>,
    pub credentials_secret: &'a str,
    /// Its keys, passed by name as in `JobInputs`.
    pub credential_keys: &'a [String],
    pub settings: &'a JobSettings,
    /// The repository's restic settings (bandwidth limits, CA certificate, cache size).
    pub options: &'a ResticOptions,
}

/// Between two restic commands in a maintenance Job's arguments.
const COMMAND_SEPARATOR: &str = ";";

/// Clears stale locks (a killed restic leaves one, and forget would fail on it; `unlock` never
/// removes a live lock), then runs restic with each command's arguments (commands end at a lone
/// `;`), stopping at the first that fails, with its exit code. The arguments are only ever
/// referenced (`"${3}"`), never pasted into the script. A `prune` after several forgets runs only
/// if one of them removed a snapshot, as `forget --prune` does. The repository comes from
/// `RESTIC_REPOSITORY`, like every Job's.
const RETENTION_SCRIPT: &str = r#"set -u
restic unlock --cache-dir /cache ${RESTIC_CACERT:+--cacert "$RESTIC_CACERT"} >&2 || true
removed=0
while [ $# -gt 0 ]; do
  n=0
  for a in "$@"; do
    [ "$a" = ";" ] && break
    n=$((n + 1))
  done
  refs=""
  i=1
  while [ $i -le $n ]; do
    refs="$refs \"\${$i}\""
    i=$((i + 1))
  done
  case "$1" in
    forget)
      out=$(eval "restic $refs") || { code=$?; printf '%s\n' "$out"; exit $code; }
      printf '%s\n' "$out"
      case "$out" in *'"remove":[{'*) removed=1 ;; esac ;;
    prune)
      if [ "$removed" = 1 ]; then eval "restic $refs" || exit $?; else echo "datarestor: no snapshot was removed; prune not needed" >&2; fi ;;
    *) eval "restic $refs" || exit $? ;;
  esac
  shift $n
  if [ $# -gt 0 ]; then shift; fi
done
exit 0
"#;

/// The Job that maintains a repository: applies its retention policy and prunes (printing
/// `forget --json`'s answer for the operator to read), or checks its integrity. It reads no volume,
/// so it runs as an unprivileged user with nothing added (admissible under Pod Security
/// `restricted`).
pub fn build_maintenance(inputs: &MaintenanceInputs<'_>) -> Job {
    let kind = inputs.work.kind();
    let commands = match inputs.work {
        Maintenance::Forget { groups, tuning } => restic::retention_job_args(groups, tuning),
        Maintenance::Check { read_data_subset } => vec![restic::job_args(&restic::Command::Check { read_data_subset })],
    };
    let runtime = restic_runtime(inputs.credentials_secret, inputs.credential_keys, inputs.options);
    let mut args = vec![format!("datarestor-{kind}")];
    for (i, command) in commands.into_iter().enumerate() {
        if i > 0 {
            args.push(COMMAND_SEPARATOR.to_owned());
        }
        args.extend(command);
        args.extend(inputs.options.global_args());
        args.extend(runtime.args.iter().cloned());
    }
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (CONFIG_LABEL.to_owned(), crate::naming::label_value(inputs.config_name)),
        (TYPE_LABEL.to_owned(), kind.to_owned()),
    ]);
    let container = Container {
        name: "restic".into(),
        image: Some(inputs.settings.image.clone()),
        image_pull_policy: Some(inputs.settings.image_pull_policy.clone()),
        command: Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), RETENTION_SCRIPT.to_owned()]),
        args: Some(args),
        env: Some(runtime.env),
        volume_mounts: Some(runtime.mounts),
        resources: Some(resources(inputs.settings)),
        security_context: Some(container_security(true, Some(RunAs { user: UNPRIVILEGED_UID, group: UNPRIVILEGED_UID }))),
        ..Default::default()
    };
    let pod = PodSpec {
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        containers: vec![container],
        volumes: Some(runtime.volumes),
        node_selector: Some(inputs.settings.node_selector.clone()).filter(|s| !s.is_empty()),
        tolerations: Some(inputs.settings.tolerations.clone()).filter(|t| !t.is_empty()),
        priority_class_name: inputs.settings.priority_class_name.clone(),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(UNPRIVILEGED_UID),
            run_as_group: Some(UNPRIVILEGED_UID),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(inputs.name.to_owned()),
            namespace: Some(inputs.namespace.to_owned()),
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(format!("{GROUP}/repository"), inputs.repository.to_owned())])),
            owner_references: Some(vec![inputs.owner.clone()]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(inputs.settings.backoff_limit),
            active_deadline_seconds: Some(inputs.settings.active_deadline_seconds),
            ttl_seconds_after_finished: Some(RETENTION_JOB_TTL_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The restic commands a maintenance Job runs (each its arguments, without `restic`), in order.
pub fn maintenance_commands(job: &Job) -> Vec<Vec<String>> {
    let args = job.spec.iter().flat_map(|spec| spec.template.spec.iter()).flat_map(|pod| pod.containers.iter());
    // The first argument is the script's `$0`.
    let args: Vec<String> = args.flat_map(|c| c.args.iter().flatten().skip(1)).cloned().collect();
    args.split(|a| a == COMMAND_SEPARATOR).filter(|c| !c.is_empty()).map(<[String]>::to_vec).collect()
}

/// Where a Job finds the repository's CA certificate (`restic.caCertificate`).
const CA_DIR: &str = "/etc/datarestor/ca";
const CA_FILE: &str = "ca.crt";

/// What every restic container and its pod get besides the work itself: the credentials as
/// variables, the cache (size-limited when asked) and /tmp, and the CA certificate as a file.
struct ResticRuntime {
    /// Options for every restic command (`--cacert`: restic 0.14 reads no `RESTIC_CACERT`).
    args: Vec<String>,
    env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
    volumes: Vec<Volume>,
}

fn restic_runtime(secret: &str, keys: &[String], options: &ResticOptions) -> ResticRuntime {
    let (ca, variables): (Vec<&String>, Vec<&String>) = keys.iter().partition(|k| k.as_str() == CA_CERTIFICATE_VARIABLE);
    let mut env = credential_env(secret, variables);
    let cache = EmptyDirVolumeSource { size_limit: options.cache_size_limit.clone(), ..Default::default() };
    let mut mounts = vec![
        VolumeMount { name: "cache".into(), mount_path: CACHE_DIR.into(), ..Default::default() },
        VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() },
    ];
    let mut volumes = vec![
        Volume { name: "cache".into(), empty_dir: Some(cache), ..Default::default() },
        Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
    ];
    let mut args = Vec::new();
    if !ca.is_empty() {
        args.extend(["--cacert".to_owned(), format!("{CA_DIR}/{CA_FILE}")]);
        env.push(EnvVar { name: "RESTIC_CACERT".into(), value: Some(format!("{CA_DIR}/{CA_FILE}")), ..Default::default() });
        mounts.push(VolumeMount { name: "ca".into(), mount_path: CA_DIR.into(), read_only: Some(true), ..Default::default() });
        volumes.push(Volume {
            name: "ca".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.to_owned()),
                items: Some(vec![KeyToPath { key: CA_CERTIFICATE_VARIABLE.into(), path: CA_FILE.into(), mode: None }]),
                default_mode: Some(0o444),
                optional: Some(false),
            }),
            ..Default::default()
        });
    }
    ResticRuntime { args, env, mounts, volumes }
}

/// One variable per credential key, each read from the Secret by name.
fn credential_env(secret: &str, keys: Vec<&String>) -> Vec<EnvVar> {
    keys.into_iter()
        .map(|key| EnvVar {
            name: key.clone(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector { name: secret.to_owned(), key: key.clone(), optional: Some(false) }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// The unprivileged user Jobs that read no volume run as (distroless's `nonroot`).
const UNPRIVILEGED_UID: i64 = 65532;

fn resources(settings: &JobSettings) -> ResourceRequirements {
    if let Some(resources) = &settings.resources {
        return resources.clone();
    }
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(settings.cpu_request.clone())),
            ("memory".to_owned(), Quantity(settings.memory_request.clone())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_owned(), Quantity(settings.memory_limit.clone()))])),
        ..Default::default()
    }
}

/// The Job of a Task's `attempt`: the Task's own name first, then `<task>-retry-<n>`.
pub fn job_name(task_name: &str, attempt: u32) -> String {
    if attempt == 0 {
        task_name.to_owned()
    } else {
        crate::naming::bounded_name(&[task_name, "retry", &attempt.to_string()])
    }
}

/// restic reads every file (backup) and restores owners and modes (restore), so it runs as root,
/// but with only the capabilities that needs and nothing else. All of them are in Pod Security
/// `baseline`'s allowed set (DAC_OVERRIDE reads any file and searches any directory; the volume
/// is mounted read-only for backups), so the Jobs run in `baseline` namespaces. With `run_as`,
/// restic runs as that user with nothing added, as `restricted` requires.
fn container_security(backup: bool, run_as: Option<RunAs>) -> SecurityContext {
    if run_as.is_some() {
        return SecurityContext {
            run_as_non_root: Some(true),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
            ..Default::default()
        };
    }
    let mut add = vec!["DAC_OVERRIDE".to_owned()];
    if !backup {
        add.extend(["CHOWN", "FOWNER", "FSETID"].map(String::from));
    }
    SecurityContext {
        run_as_user: Some(0),
        run_as_non_root: Some(false),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: Some(add) }),
        ..Default::default()
    }
}

/// A ReadWriteOnce volume in use can only be mounted on the node that has it.
fn pin_to_node(node: &str) -> Affinity {
    Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: "kubernetes.io/hostname".into(),
                        operator: "In".into(),
                        values: Some(vec![node.to_owned()]),
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
