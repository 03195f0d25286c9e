//! What happens to one PVC: the Config's settings, overridden by the first selector that picks it
//! (and, for hooks, by the PVC's own annotations).

use super::{ConfigSpec, RestoreMode};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// On a PVC: the command run in a pod of its workload before its backup, as a Hook in JSON
/// (`{"command": ["sqlite3", ...], "timeoutSeconds": 60}`) or a plain shell line (run by `sh -c`).
pub const PRE_BACKUP_HOOK_ANNOTATION: &str = "backup.datarestor-operator.com/pre-backup-hook";
/// On a PVC: the command run in that pod once its backup has ended (same forms).
pub const POST_BACKUP_HOOK_ANNOTATION: &str = "backup.datarestor-operator.com/post-backup-hook";

/// Commands run in a running pod that mounts the PVC, around its backup: to make a live
/// application's files consistent (`sqlite3 app.db "VACUUM INTO 'dump.db'"`, `pg_dump`), or to pause
/// and resume it.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Runs before the backup (and before stopPods scales anything down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_backup: Option<Hook>,
    /// Runs once the backup has ended, whatever its outcome, if the Task got as far as its pre-backup
    /// hook or its restic Job and a pod of the workload still runs (with stopPods none does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_backup: Option<Hook>,
}

/// One command, run as `kubectl exec` runs it (through the API server's `pods/exec`).
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Hook {
    /// The program and its arguments; no shell is involved unless you name one
    /// (`["sh", "-c", "..."]`).
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<String>,
    /// The container to run it in; absent: the pod's first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub container: Option<String>,
    /// The command is given up on after this long and counts as failed (the process may still run
    /// in the container: a command that must not outlive it should carry its own `timeout`).
    #[serde(default = "default_hook_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: i64,
    /// A non-zero exit, a timeout or a pod that cannot be reached: `Fail` (the default) fails the
    /// Task and no backup is taken; `Continue` backs up anyway, with a Warning Event.
    #[serde(default)]
    pub on_error: HookOnError,
}

/// What a failed hook does to its backup.
#[derive(JsonSchema, Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HookOnError {
    /// No backup: the Task fails with reason `HookFailed`.
    #[default]
    Fail,
    /// Back up anyway, with a `HookFailed` Warning Event.
    Continue,
}

fn default_hook_timeout() -> i64 {
    60
}

/// The settings that apply to one PVC.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub stop_pods: bool,
    pub auto_restore: bool,
    pub manual_restore_mode: RestoreMode,
    pub hooks: Hooks,
    /// Restore drills of this PVC, if any.
    pub drill: Option<Drill>,
    /// Its selector's retention policy, which replaces each repository's; `None`: the repository's.
    pub forget_args: Option<Vec<String>>,
}

/// Restore drills: on a schedule, the PVC's newest snapshot is restored into a new scratch volume
/// beside it, checked (entries and bytes against the snapshot's own totals, then `command`), and
/// the scratch volume deleted. The PVC and its workload are not touched. How a team knows its
/// disaster recovery works.
#[derive(KubeSchema, Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Drill {
    /// When: a schedule like `backupSchedule` (`0 5 * * 0`: Sundays at 05:00 UTC).
    #[schemars(length(min = 1, max = 128))]
    pub schedule: String,
    /// A check run in the restored volume (working directory `/data`, in the restic image: a
    /// POSIX shell and busybox), e.g. `["sh", "-c", "test -s app.db"]`; a non-zero exit fails the
    /// drill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub command: Vec<String>,
    /// StorageClass of the scratch volume; absent: the PVC's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

impl ConfigSpec {
    /// The settings for a PVC in `namespace` with `labels`: the first selector (in order) that picks
    /// it decides each field it sets; the Config's own fields decide the rest.
    pub fn policy(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Policy {
        let own = self.selectors.iter().find(|s| s.matches(namespace, labels)).cloned().unwrap_or_default();
        Policy {
            stop_pods: own.stop_pods.unwrap_or(self.stop_pods),
            auto_restore: own.auto_restore.unwrap_or(self.auto_restore),
            manual_restore_mode: own.manual_restore_mode.unwrap_or(self.manual_restore_mode),
            hooks: own.hooks.or_else(|| self.hooks.clone()).unwrap_or_default(),
            drill: own.drill.or_else(|| self.drill.clone()),
            forget_args: own.forget_args,
        }
    }

    /// Whether some PVC of `namespace` may be restored automatically (the restore gate's question
    /// before it knows the PVC): the Config's setting or any selector's.
    pub fn may_auto_restore(&self) -> bool {
        self.auto_restore || self.selectors.iter().any(|s| s.auto_restore == Some(true))
    }
}

/// Which hook of a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPoint {
    PreBackup,
    PostBackup,
}

impl HookPoint {
    pub fn name(self) -> &'static str {
        match self {
            Self::PreBackup => "preBackup",
            Self::PostBackup => "postBackup",
        }
    }
    fn annotation(self) -> &'static str {
        match self {
            Self::PreBackup => PRE_BACKUP_HOOK_ANNOTATION,
            Self::PostBackup => POST_BACKUP_HOOK_ANNOTATION,
        }
    }
}

/// The hook of a PVC at `point`: its annotation when it has one (an error says what is wrong with
/// it), else the policy's.
pub fn hook_for(policy: &Policy, annotations: &BTreeMap<String, String>, point: HookPoint) -> Result<Option<Hook>, String> {
    if let Some(value) = annotations.get(point.annotation()) {
        return parse_hook_annotation(value).map(Some).map_err(|e| format!("annotation {}: {e}", point.annotation()));
    }
    Ok(match point {
        HookPoint::PreBackup => policy.hooks.pre_backup.clone(),
        HookPoint::PostBackup => policy.hooks.post_backup.clone(),
    })
}

/// Longest hook annotation accepted.
const MAX_HOOK_ANNOTATION: usize = 16 * 1024;

/// A hook annotation: a Hook in JSON, or a shell line. Checked as the API server checks a Hook
/// in a Config.
pub fn parse_hook_annotation(value: &str) -> Result<Hook, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty; give a shell line or a JSON hook such as {\"command\": [\"sh\", \"-c\", \"...\"]}".into());
    }
    if value.len() > MAX_HOOK_ANNOTATION {
        return Err(format!("{} characters long; at most {MAX_HOOK_ANNOTATION} are allowed", value.len()));
    }
    let hook = if value.starts_with('{') {
        serde_json::from_str::<Hook>(value).map_err(|e| format!("not a valid hook: {e}"))?
    } else {
        Hook {
            command: vec!["sh".into(), "-c".into(), value.into()],
            container: None,
            timeout_seconds: default_hook_timeout(),
            on_error: HookOnError::Fail,
        }
    };
    match hook.problem() {
        Some(problem) => Err(problem),
        None => Ok(hook),
    }
}

impl Hook {
    /// What is wrong with this hook, as the API server would say it of a Config (the argument
    /// lengths are checked here: a CEL rule over every selector's hooks costs more than the API
    /// server's budget allows).
    pub fn problem(&self) -> Option<String> {
        if self.command.is_empty() || self.command.len() > 64 {
            return Some(format!("command has {} arguments; 1 to 64 are allowed", self.command.len()));
        }
        if self.command[0].is_empty() {
            return Some("the program (the command's first argument) is empty".into());
        }
        if let Some(long) = self.command.iter().position(|a| a.len() > 4096) {
            return Some(format!("command argument {long} is over 4096 characters"));
        }
        if !(1..=3600).contains(&self.timeout_seconds) {
            return Some(format!("timeoutSeconds {} is out of range (1 to 3600)", self.timeout_seconds));
        }
        if self.container.as_deref().is_some_and(|c| c.is_empty() || c.len() > 63) {
            return Some("container must be 1 to 63 characters".into());
        }
        None
    }
}

impl Hooks {
    /// What is wrong with these hooks, each problem naming its hook.
    pub fn problems(&self, at: &str) -> Vec<String> {
        [("preBackup", &self.pre_backup), ("postBackup", &self.post_backup)]
            .into_iter()
            .filter_map(|(name, hook)| Some(format!("{at}hooks.{name}: {}", hook.as_ref()?.problem()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> ConfigSpec {
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_first_selector_that_picks_a_pvc_decides_what_it_sets() {
        let spec = spec(serde_json::json!({
            "repositories": [{"target": "/r", "priority": 1}],
            "stopPods": false,
            "hooks": {"preBackup": {"command": ["sync"]}},
            "selectors": [
                {"matchLabels": {"tier": "db"}, "stopPods": true, "autoRestore": false,
                 "hooks": {"preBackup": {"command": ["sqlite3", "/data/app.db", "VACUUM INTO '/data/dump.db'"], "onError": "Continue"}}},
                {"matchLabels": {"tier": "db", "extra": "x"}, "stopPods": false, "forgetArgs": ["--keep-last", "1"]},
                {"matchNamespaces": ["web"], "manualRestoreMode": "Merge", "hooks": {}},
                {"matchNamespaces": ["logs"], "forgetArgs": ["--keep-daily", "3"]},
            ],
        }));
        let db = spec.policy("shop", &labels(&[("tier", "db"), ("extra", "x")]));
        assert!(db.stop_pods && !db.auto_restore, "the first match wins, the second is never consulted");
        assert_eq!(db.forget_args, None, "the first match sets no retention: the repository's applies");
        let pre = db.hooks.pre_backup.unwrap();
        assert_eq!((pre.command[0].as_str(), pre.on_error, pre.timeout_seconds), ("sqlite3", HookOnError::Continue, 60));
        let web = spec.policy("web", &labels(&[]));
        assert_eq!((web.stop_pods, web.auto_restore, web.manual_restore_mode), (false, true, RestoreMode::Merge));
        assert_eq!(web.hooks, Hooks::default(), "an empty hooks replaces the Config's");
        let other = spec.policy("elsewhere", &labels(&[]));
        assert_eq!(other.hooks.pre_backup.unwrap().command, ["sync"], "no selector picks it: the Config's settings");
        assert_eq!(other.forget_args, None);
        assert_eq!(spec.policy("logs", &labels(&[])).forget_args.unwrap(), ["--keep-daily", "3"], "a selector's retention");
        assert!(spec.may_auto_restore());
    }

    #[test]
    fn hook_annotations_are_a_shell_line_or_a_json_hook_and_win_over_the_policy() {
        let policy = Policy {
            stop_pods: false,
            auto_restore: true,
            manual_restore_mode: RestoreMode::Clean,
            hooks: Hooks { pre_backup: Some(parse_hook_annotation("sync").unwrap()), post_backup: None },
            drill: None,
            forget_args: None,
        };
        let none = BTreeMap::new();
        assert_eq!(hook_for(&policy, &none, HookPoint::PreBackup).unwrap().unwrap().command, ["sh", "-c", "sync"]);
        assert_eq!(hook_for(&policy, &none, HookPoint::PostBackup).unwrap(), None);
        let annotated = labels(&[(
            POST_BACKUP_HOOK_ANNOTATION,
            r#"{"command": ["rm", "-f", "/data/dump.db"], "container": "app", "timeoutSeconds": 5, "onError": "Continue"}"#,
        )]);
        let post = hook_for(&policy, &annotated, HookPoint::PostBackup).unwrap().unwrap();
        assert_eq!((post.container.as_deref(), post.timeout_seconds, post.on_error), (Some("app"), 5, HookOnError::Continue));
        for (value, says) in [
            ("", "empty"),
            (r#"{"command": []}"#, "1 to 64"),
            (r#"{"command": ["x"], "timeoutSeconds": 0}"#, "out of range"),
            (r#"{"command": ["x"], "onError": "Ignore"}"#, "not a valid hook"),
            (r#"{"command": [""]}"#, "program"),
            (r#"{"cmd": ["x"]}"#, "not a valid hook"),
        ] {
            let error = parse_hook_annotation(value).unwrap_err();
            assert!(error.contains(says), "{value:?}: {error}");
        }
        let bad = labels(&[(PRE_BACKUP_HOOK_ANNOTATION, "{")]);
        assert!(hook_for(&policy, &bad, HookPoint::PreBackup)
            .unwrap_err()
            .starts_with("annotation backup.datarestor-operator.com/pre-backup-hook"));
    }
}
