//! restic command lines, and what restic prints back: JSON summaries and failures.
//!
//! Every call names the repository with `--repo` (a target is not a secret); credentials and the
//! password reach restic only through its environment.

use crate::api::DATA_PATH;
use serde::Deserialize;

/// Where restic keeps its cache inside a Job (an emptyDir, so a read-only root still works).
pub const CACHE_DIR: &str = "/cache";

/// Where a Clean restore stages the snapshot before swapping it in: inside the volume, so the
/// swap is a rename and a failed download never costs the existing data.
pub const RESTORE_STAGING_DIR: &str = "/data/.datarestor-restore";

/// What a fresh ext4/xfs filesystem holds before anyone writes: metadata, not data. Never backed
/// up, never counted when asking whether a volume is empty, never removed by a restore.
pub const FILESYSTEM_METADATA: &str = "lost+found";

/// One restic operation against one repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Create the repository (and, for S3, its bucket).
    Init,
    /// Cheapest call that proves the repository exists and the password opens it.
    CatConfig,
    /// List snapshots, optionally of one host and carrying all of `tags`.
    Snapshots { host: Option<&'a str>, tags: Vec<String> },
    /// The newest snapshot of every host (and path set): one call answers for every PVC.
    LatestSnapshots,
    /// Back up the volume mounted at `/data`, of PVC `pvc` in `namespace`.
    Backup { host: &'a str, name: Option<&'a str>, namespace: &'a str, pvc: &'a str },
    /// Restore a resolved snapshot; its `/data` lands at `<target>/data`.
    Restore { snapshot_id: &'a str, target: &'a str },
    /// Apply a retention policy to this operator's snapshots (path `/data`) of `hosts`, and prune
    /// when it removed any if `prune`.
    Forget { hosts: &'a [String], policy: &'a [String], prune: bool },
    /// Remove the data no snapshot uses any more, with prune's `tuning` from `forgetArgs`.
    Prune { tuning: &'a [String] },
    /// Remove stale locks only (never `--remove-all`: live locks belong to running operations).
    Unlock,
    /// Verify the repository's structure, and re-read a part of its data when asked
    /// (`--read-data-subset`).
    Check { read_data_subset: Option<&'a str> },
}

/// `target` as it may be shown: the user-info of a URL (`s3:https://KEY:SECRET@host/bucket`,
/// `rest:https://user:password@host/`) replaced by `***`. Shown targets are what Tasks, Jobs,
/// status, Events, answers and logs carry; only restic itself sees the real one.
pub fn redact_target(target: &str) -> String {
    let Some(scheme_end) = target.find("://") else { return target.to_owned() };
    let authority_start = scheme_end + 3;
    let authority_end = target[authority_start..].find('/').map_or(target.len(), |i| authority_start + i);
    match target[authority_start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &target[..authority_start], &target[authority_start + at..]),
        None => target.to_owned(),
    }
}

/// The argument vector (without the `restic` program itself).
pub fn args(repository: &str, command: &Command<'_>) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
    match command {
        Command::Init => push(&["init"]),
        // The operator's read-only metadata calls take no lock: a stale exclusive lock (a killed
        // prune) must not make a repository look unusable or its snapshots unknowable; the Job that
        // meets that lock clears it.
        Command::CatConfig => push(&["cat", "config", "--no-lock"]),
        Command::Snapshots { host, tags } => {
            push(&["snapshots", "--json", "--no-lock"]);
            if let Some(host) = host {
                push(&["--host", host]);
            }
            for tag in tags {
                push(&["--tag", tag]);
            }
        }
        // Grouped explicitly: what `--latest` groups by when not told has changed between restic
        // versions, and "newest of the whole repository" would read as "no snapshot" for all the
        // other hosts.
        Command::LatestSnapshots => push(&["snapshots", "--json", "--no-lock", "--group-by", "host,paths", "--latest", "1"]),
        Command::Backup { host, name, namespace, pvc } => {
            // A failed Clean restore may leave its staging directory behind; it is not data, and
            // neither is the filesystem's own lost+found.
            let metadata = format!("{DATA_PATH}/{FILESYSTEM_METADATA}");
            push(&["backup", DATA_PATH, "--json", "--host", host, "--exclude", RESTORE_STAGING_DIR, "--exclude", &metadata]);
            if let Some(name) = name {
                push(&["--tag", &name_tag(name)]);
            }
            // The host `{namespace}-{pvc}` cannot be split back when both contain `-`: the tags say
            // whose data it is.
            push(&["--tag", &format!("{NAMESPACE_TAG}={namespace}"), "--tag", &format!("{PVC_TAG}={pvc}")]);
        }
        Command::Restore { snapshot_id, target } => push(&["restore", snapshot_id, "--target", target]),
        Command::Forget { hosts, policy, prune } => {
            // --json: what was kept and removed is read back from forget's own answer.
            push(&["forget", "--json"]);
            if *prune {
                push(&["--prune"]);
            }
            push(&["--path", DATA_PATH]);
            for host in hosts.iter() {
                push(&["--host", host]);
            }
            push(&policy.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Command::Prune { tuning } => {
            push(&["prune"]);
            push(&tuning.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Command::Unlock => push(&["unlock"]),
        Command::Check { read_data_subset } => {
            push(&["check"]);
            if let Some(subset) = read_data_subset {
                push(&["--read-data-subset", subset]);
            }
        }
    }
    args.extend(["--repo".to_owned(), repository.to_owned()]);
    args
}

/// What a Job runs: `args` without `--repo` (a Job reads the repository from `RESTIC_REPOSITORY`
/// in its credentials Secret, since a target may carry credentials), plus the cache location.
pub fn job_args(command: &Command<'_>) -> Vec<String> {
    let mut args = args("", command);
    args.truncate(args.len() - 2);
    args.extend(["--cache-dir".to_owned(), CACHE_DIR.to_owned()]);
    args
}

/// Options `forgetArgs` may hold: restic's retention policy and prune's tuning. Anything else
/// (`--password-command`, `-o`, `--repo`, `--dry-run`, ...) is refused.
const FORGET_POLICY_FLAGS: &[&str] = &[
    "--keep-last",
    "--keep-hourly",
    "--keep-daily",
    "--keep-weekly",
    "--keep-monthly",
    "--keep-yearly",
    "--keep-within",
    "--keep-within-hourly",
    "--keep-within-daily",
    "--keep-within-weekly",
    "--keep-within-monthly",
    "--keep-within-yearly",
    "--keep-tag",
    "--group-by",
    "--max-unused",
    "--max-repack-size",
];
/// Flags among them that take no value.
const FORGET_SWITCHES: &[&str] = &["--repack-cacheable-only", "--repack-small", "--repack-uncompressed"];

/// Of them, prune's tuning: it applies to the repository, not to one PVC's snapshots.
const PRUNE_TUNING_FLAGS: &[&str] = &["--max-unused", "--max-repack-size"];

/// Snapshot hosts that share one retention policy (a selector may set its own `forgetArgs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForgetGroup {
    /// The retention policy alone (`--keep-...`, `--group-by`), without prune's tuning.
    pub policy: Vec<String>,
    pub hosts: Vec<String>,
}

/// `forgetArgs` split into the retention policy and prune's tuning (arguments `plan` checked;
/// unchecked ones give nothing).
pub fn split_forget_args(args: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut policy, mut tuning) = (Vec::new(), Vec::new());
    for (flag, words) in forget_options(args).unwrap_or_default() {
        let to = if PRUNE_TUNING_FLAGS.contains(&flag) || FORGET_SWITCHES.contains(&flag) { &mut tuning } else { &mut policy };
        to.extend_from_slice(words);
    }
    (policy, tuning)
}

/// Checks a selector's `forgetArgs`: a retention policy only (prune's tuning is the repository's).
pub fn check_selector_forget_args(args: &[String]) -> Result<(), String> {
    check_forget_args(args)?;
    match split_forget_args(args).1.first() {
        Some(flag) => Err(format!(
            "forgetArgs: {flag} tunes prune, which runs for the whole repository: set it in the repository's forgetArgs"
        )),
        None => Ok(()),
    }
}

/// The Job arguments of one retention run's restic commands, run one after the other: a single
/// policy is one `forget --prune` (as it always was); several run one `forget` each, then one
/// `prune` with the repository's `tuning`.
pub fn retention_job_args(groups: &[ForgetGroup], tuning: &[String]) -> Vec<Vec<String>> {
    if let [group] = groups {
        let policy: Vec<String> = group.policy.iter().chain(tuning).cloned().collect();
        return vec![job_args(&Command::Forget { hosts: &group.hosts, policy: &policy, prune: true })];
    }
    let forgets = groups.iter().map(|g| job_args(&Command::Forget { hosts: &g.hosts, policy: &g.policy, prune: false }));
    forgets.chain([job_args(&Command::Prune { tuning })]).collect()
}

/// Checks `forgetArgs`: only policy flags, each with its value (`--keep-last 10` or
/// `--keep-last=10`).
pub fn check_forget_args(args: &[String]) -> Result<(), String> {
    // A maintenance Job's commands end at a lone `;`.
    if args.iter().any(|a| a == ";") {
        return Err("forgetArgs: \";\" is not a value any retention option takes".into());
    }
    forget_options(args).map(drop)
}

/// Each option of `forgetArgs`: its flag and its words (the flag, with its value when that is
/// an argument of its own); an error for anything but a policy option with its value.
fn forget_options(args: &[String]) -> Result<Vec<(&str, &[String])>, String> {
    let mut options = Vec::new();
    let mut at = 0;
    while let Some(arg) = args.get(at) {
        let flag = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag);
        let mut words = 1;
        if !FORGET_SWITCHES.contains(&arg.as_str()) {
            if !FORGET_POLICY_FLAGS.contains(&flag) {
                return Err(format!(
                    "forgetArgs: {arg:?} is not a retention policy option (such as --keep-last 10 or --keep-daily 7)"
                ));
            }
            if !arg.contains('=') {
                match args.get(at + 1) {
                    Some(value) if !value.starts_with('-') || value.parse::<i64>().is_ok() => words = 2,
                    _ => return Err(format!("forgetArgs: {arg} needs a value")),
                }
            }
        }
        options.push((flag, &args[at..at + words]));
        at += words;
    }
    Ok(options)
}

/// The bytes of the files a Clean or IfEmpty restore Job wrote, from its `datarestor-restored:`
/// line.
pub fn restored_bytes(output: &str) -> Option<u64> {
    output.lines().find_map(|l| l.strip_prefix("datarestor-restored: bytes=")?.trim().parse().ok())
}

/// Tags recording the namespace and PVC a snapshot was taken of.
pub const NAMESPACE_TAG: &str = "namespace";
pub const PVC_TAG: &str = "pvc";

/// The tag that carries a backup's name, as the original operator wrote it.
pub fn name_tag(name: &str) -> String {
    format!("name={name}")
}

/// The `summary` line of `restic backup --json`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct BackupSummary {
    #[serde(default)]
    pub files_new: u64,
    #[serde(default)]
    pub files_changed: u64,
    #[serde(default)]
    pub files_unmodified: u64,
    #[serde(default)]
    pub data_added: u64,
    #[serde(default)]
    pub total_files_processed: u64,
    #[serde(default)]
    pub total_bytes_processed: u64,
    #[serde(default)]
    pub total_duration: f64,
    pub snapshot_id: String,
}

/// Finds the backup summary in a Job's output (status lines and plain text may surround it).
pub fn backup_summary(output: &str) -> Option<BackupSummary> {
    output.lines().rev().find_map(|line| {
        let value: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        if value.get("message_type")?.as_str()? != "summary" {
            return None;
        }
        serde_json::from_value(value).ok()
    })
}

/// A snapshot id as restic prints it short: its first eight characters.
pub fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

/// One entry of `restic snapshots --json`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Snapshot {
    pub id: String,
    #[serde(default)]
    pub short_id: String,
    pub time: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Snapshot {
    /// The backup name recorded in the `name=` tag.
    pub fn name(&self) -> Option<&str> {
        self.tag("name")
    }

    /// The value of tag `key=value`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find_map(|t| t.strip_prefix(key)?.strip_prefix('='))
    }

    /// When it was taken; restic prints RFC 3339 with a local offset.
    pub fn taken_at(&self) -> Option<jiff::Timestamp> {
        self.time.parse().ok()
    }
}

/// Parses `restic snapshots --json`.
pub fn parse_snapshots(output: &str) -> Result<Vec<Snapshot>, serde_json::Error> {
    let json = output.lines().find(|l| l.trim_start().starts_with('[')).unwrap_or("[]");
    serde_json::from_str(json)
}

/// Parses `restic snapshots --json --group-by ...`: groups, each with its snapshots (a flat
/// list, as restic prints without grouping, is read too). Every snapshot of every group.
pub fn parse_grouped_snapshots(output: &str) -> Result<Vec<Snapshot>, serde_json::Error> {
    let json = output.lines().find(|l| l.trim_start().starts_with('[')).unwrap_or("[]");
    let items: Vec<serde_json::Value> = serde_json::from_str(json)?;
    let mut snapshots = Vec::new();
    for mut item in items {
        match item.get_mut("snapshots").map(serde_json::Value::take) {
            Some(group) => snapshots.extend(serde_json::from_value::<Vec<Snapshot>>(group)?),
            None => snapshots.push(serde_json::from_value(item)?),
        }
    }
    Ok(snapshots)
}

/// The last `n` meaningful lines of restic's output (progress lines dropped), joined for a
/// one-line message.
pub fn last_lines(output: &str, n: usize) -> String {
    let lines: Vec<&str> =
        output.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("{\"message_type\":\"status\"")).collect();
    let joined = lines[lines.len().saturating_sub(n)..].join(" | ");
    if joined.is_empty() {
        "restic printed nothing".into()
    } else {
        redact_urls(&joined)
    }
}

/// `text` with the user-info of every URL in it replaced by `***` (restic may print the URL it
/// failed to reach, credentials and all).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail.find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'').unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Why a restic call failed, from its exit code (restic 0.16+) or its message (older releases
/// exit 1 for everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No repository at the target: restic 0.16+ exits 10, older ones print the storage's "no such
    /// object". Only this may be read as "no snapshot here".
    NoRepository,
    /// Another operation holds a lock, or a crashed one left it (exit 11).
    Locked,
    /// The password opens no key (exit 12).
    WrongPassword,
    /// The storage could not be reached, or answered with an error that says nothing about whether
    /// a repository is there (timeouts, refusals, 403, 5xx).
    Unreachable,
    /// The storage refused the credentials (403, a bad access key or signature).
    Denied,
    /// The snapshot, name or path asked for does not exist.
    NotFound,
    /// Anything else.
    Other,
}

impl Failure {
    /// Classifies a failed call.
    pub fn classify(exit_code: i32, output: &str) -> Self {
        match exit_code {
            10 => return Self::NoRepository,
            11 => return Self::Locked,
            12 => return Self::WrongPassword,
            _ => {}
        }
        let text = output.to_ascii_lowercase();
        let has = |needle: &str| text.contains(needle);
        // restic words every failure to read the config file alike ("unable to open config file
        // ... Is there a repository at the following location?"), a timeout or a 403 as much as a
        // missing repository. Only the storage saying "no such object" means there is none;
        // anything else is an outage, and an outage must never read as "no snapshot".
        let cannot_open = has("is there a repository at the following location")
            || has("unable to open config file")
            || has("config file does not exist")
            || has("repository does not exist");
        let definitely_absent = has("the specified key does not exist")
            || has("nosuchkey")
            || has("the specified bucket does not exist")
            || has("nosuchbucket")
            || has("no such file or directory")
            || has("config file does not exist")
            || has("repository does not exist");
        if has("repository is already locked") || has("unable to create lock") {
            Self::Locked
        } else if has("wrong password") || has("no key found") {
            Self::WrongPassword
        } else if cannot_open && definitely_absent {
            Self::NoRepository
        } else if has("access denied")
            || has("accessdenied")
            || has("invalidaccesskeyid")
            || has("signaturedoesnotmatch")
            || has("403 forbidden")
        {
            Self::Denied
        } else if cannot_open
            || has("connection refused")
            || has("no such host")
            || has("i/o timeout")
            || has("network is unreachable")
            || has("context deadline exceeded")
            || has("connection reset")
        {
            Self::Unreachable
        } else if has("no matching id found") || has("no snapshot found") || has("invalid id") {
            Self::NotFound
        } else {
            Self::Other
        }
    }

    /// A stable, low-cardinality reason for conditions, Events and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoRepository => "RepositoryMissing",
            Self::Locked => "RepositoryLocked",
            Self::WrongPassword => "WrongPassword",
            Self::Unreachable => "Unreachable",
            Self::Denied => "AccessDenied",
            Self::NotFound => "SnapshotNotFound",
            Self::Other => "ResticFailed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "s3:http://minio:9000/backup-bucket";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn argument_vectors() {
        let tail = ["--repo", REPO];
        let with_tail = |head: &[&str]| strings(&[head, &tail].concat());
        let policy = strings(&["--keep-last", "10", "--keep-daily", "7"]);
        let hosts = strings(&["prod-db", "prod-cache"]);
        let cases = [
            (Command::Init, with_tail(&["init"])),
            (Command::CatConfig, with_tail(&["cat", "config", "--no-lock"])),
            (
                Command::Snapshots { host: Some("prod-db"), tags: vec![name_tag("pre-upgrade")] },
                with_tail(&["snapshots", "--json", "--no-lock", "--host", "prod-db", "--tag", "name=pre-upgrade"]),
            ),
            (Command::Snapshots { host: None, tags: vec![] }, with_tail(&["snapshots", "--json", "--no-lock"])),
            (
                Command::LatestSnapshots,
                with_tail(&["snapshots", "--json", "--no-lock", "--group-by", "host,paths", "--latest", "1"]),
            ),
            (
                Command::Backup { host: "prod-db", name: Some("pre-upgrade"), namespace: "prod", pvc: "db" },
                with_tail(&[
                    "backup",
                    "/data",
                    "--json",
                    "--host",
                    "prod-db",
                    "--exclude",
                    "/data/.datarestor-restore",
                    "--exclude",
                    "/data/lost+found",
                    "--tag",
                    "name=pre-upgrade",
                    "--tag",
                    "namespace=prod",
                    "--tag",
                    "pvc=db",
                ]),
            ),
            (
                Command::Backup { host: "prod-db", name: None, namespace: "prod", pvc: "db" },
                with_tail(&[
                    "backup",
                    "/data",
                    "--json",
                    "--host",
                    "prod-db",
                    "--exclude",
                    "/data/.datarestor-restore",
                    "--exclude",
                    "/data/lost+found",
                    "--tag",
                    "namespace=prod",
                    "--tag",
                    "pvc=db",
                ]),
            ),
            (Command::Restore { snapshot_id: "4dc1094c", target: "/" }, with_tail(&["restore", "4dc1094c", "--target", "/"])),
            (
                Command::Forget { hosts: &hosts, policy: &policy, prune: true },
                with_tail(&[
                    "forget",
                    "--json",
                    "--prune",
                    "--path",
                    "/data",
                    "--host",
                    "prod-db",
                    "--host",
                    "prod-cache",
                    "--keep-last",
                    "10",
                    "--keep-daily",
                    "7",
                ]),
            ),
            (Command::Unlock, with_tail(&["unlock"])),
            (Command::Check { read_data_subset: None }, with_tail(&["check"])),
            (Command::Check { read_data_subset: Some("1/5") }, with_tail(&["check", "--read-data-subset", "1/5"])),
        ];
        for (command, expected) in cases {
            assert_eq!(args(REPO, &command), expected, "{command:?}");
        }
        assert_eq!(job_args(&Command::Unlock), strings(&["unlock", "--cache-dir", "/cache"]));
    }

    #[test]
    fn targets_are_shown_without_credentials() {
        assert_eq!(
            redact_target("s3:https://AKIA:s3cr3t@minio.example:9000/bucket/x"),
            "s3:https://***@minio.example:9000/bucket/x"
        );
        assert_eq!(redact_target("rest:https://user:pa@ss@host:8000/repo"), "rest:https://***@host:8000/repo");
        assert_eq!(redact_target("s3:http://minio:9000/bucket"), "s3:http://minio:9000/bucket");
        assert_eq!(
            redact_target("s3:http://minio:9000/bucket/a@b"),
            "s3:http://minio:9000/bucket/a@b",
            "an @ in the path is not user-info"
        );
        assert_eq!(redact_target("/srv/restic"), "/srv/restic");
        assert_eq!(redact_target("sftp:backup@host:/srv/restic"), "sftp:backup@host:/srv/restic", "a login name is not a secret");
    }

    #[test]
    fn urls_in_restic_messages_lose_their_credentials() {
        let message =
            "Fatal: unable to open config file: Stat: Get \"https://AKIA:s3cr3t@minio:9000/b/config\": dial tcp: refused";
        assert_eq!(
            redact_urls(message),
            "Fatal: unable to open config file: Stat: Get \"https://***@minio:9000/b/config\": dial tcp: refused"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(redact_urls("a http://x/@y and rest:https://u:p@h/ end"), "a http://x/@y and rest:https://***@h/ end");
        assert!(!last_lines("first\nrest:https://u:topsecret@h/ failed", 2).contains("topsecret"));
    }

    #[test]
    fn forget_args_are_policy_only() {
        let ok = |args: &[&str]| check_forget_args(&strings(args));
        assert_eq!(ok(&["--keep-last", "10", "--keep-daily=7", "--keep-tag", "keep", "--repack-small"]), Ok(()));
        assert_eq!(ok(&["--keep-within", "1y5m7d2h"]), Ok(()));
        assert!(ok(&["--password-command", "sh -c id"]).unwrap_err().contains("--password-command"));
        assert!(ok(&["--keep-last", "10", "-o", "s3.region=x"]).is_err());
        assert!(ok(&["--option=sftp.command=sh"]).is_err());
        assert!(ok(&["--keep-last"]).unwrap_err().contains("needs a value"));
        assert!(ok(&["--keep-last", "--dry-run"]).is_err());
        assert!(ok(&["--keep-tag", ";"]).is_err(), "the Job's command separator");
    }

    #[test]
    fn restored_bytes_from_the_restore_jobs_line() {
        assert_eq!(
            restored_bytes("restoring <Snapshot 4dc1094c> to /data/.datarestor-restore\ndatarestor-restored: bytes=200048\n"),
            Some(200048)
        );
        assert_eq!(restored_bytes("restoring <Snapshot 4dc1094c> to /\n"), None, "a Merge restore says nothing");
    }

    #[test]
    fn a_selectors_forget_args_are_a_policy_and_prune_tuning_stays_the_repositorys() {
        let (policy, tuning) =
            split_forget_args(&strings(&["--keep-last", "3", "--max-unused=5%", "--repack-small", "--keep-tag", "x"]));
        assert_eq!(
            (policy, tuning),
            (strings(&["--keep-last", "3", "--keep-tag", "x"]), strings(&["--max-unused=5%", "--repack-small"]))
        );
        let selector = |args: &[&str]| check_selector_forget_args(&strings(args));
        assert_eq!(selector(&["--keep-daily", "30"]), Ok(()));
        assert!(selector(&["--keep-daily", "30", "--max-repack-size", "1G"])
            .unwrap_err()
            .contains("--max-repack-size tunes prune"));
        assert!(selector(&["--dry-run"]).unwrap_err().contains("not a retention policy option"));
    }

    #[test]
    fn one_retention_policy_is_one_forget_prune_and_several_forget_each_then_prune_once() {
        let group = |policy: &[&str], hosts: &[&str]| ForgetGroup { policy: strings(policy), hosts: strings(hosts) };
        let tuning = strings(&["--max-unused", "5%"]);
        let one = retention_job_args(&[group(&["--keep-last", "2"], &["a", "b"])], &tuning);
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0][..11],
            strings(&["forget", "--json", "--prune", "--path", "/data", "--host", "a", "--host", "b", "--keep-last", "2"])[..]
        );
        assert_eq!(one[0][11..13], tuning[..], "prune's tuning goes with the one forget --prune");
        let two = retention_job_args(&[group(&["--keep-last", "2"], &["a"]), group(&["--keep-daily", "9"], &["c"])], &tuning);
        let heads: Vec<String> = two.iter().map(|args| args[..args.len() - 2].join(" ")).collect();
        assert_eq!(
            heads,
            [
                "forget --json --path /data --host a --keep-last 2",
                "forget --json --path /data --host c --keep-daily 9",
                "prune --max-unused 5%"
            ]
        );
        assert!(two.iter().all(|args| args[args.len() - 2..] == strings(&["--cache-dir", "/cache"])));
    }

    #[test]
    fn backup_summary_from_restic_0_14_and_0_18_output() {
        let v014 = r#"{"message_type":"status","percent_done":0,"total_files":2,"total_bytes":12}
{"message_type":"summary","files_new":2,"files_changed":0,"files_unmodified":0,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":0,"data_blobs":2,"tree_blobs":1,"data_added":1131,"total_files_processed":2,"total_bytes_processed":12,"total_duration":0.301,"snapshot_id":"9f2d4c1a7e0b5d3c8a6f4e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"}"#;
        let summary = backup_summary(v014).expect("summary");
        assert_eq!(summary.snapshot_id, "9f2d4c1a7e0b5d3c8a6f4e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b");
        assert_eq!((summary.files_new, summary.files_changed, summary.files_unmodified), (2, 0, 0));
        assert_eq!((summary.data_added, summary.total_bytes_processed), (1131, 12));

        let v018 = "using parent snapshot 1a2b3c4d\n{\"message_type\":\"summary\",\"files_new\":0,\"files_changed\":1,\"files_unmodified\":4,\"data_added\":10,\"data_added_packed\":8,\"total_files_processed\":5,\"total_bytes_processed\":50,\"total_duration\":1.5,\"backup_start\":\"2026-01-01T00:00:00Z\",\"backup_end\":\"2026-01-01T00:00:01Z\",\"snapshot_id\":\"abcd\"}\n";
        let summary = backup_summary(v018).expect("summary");
        assert_eq!((summary.files_changed, summary.files_unmodified, summary.snapshot_id.as_str()), (1, 4, "abcd"));
        assert_eq!(backup_summary("Fatal: unable to open config file"), None);
    }

    #[test]
    fn snapshots_json() {
        let output = r#"[{"time":"2026-03-10T02:00:01.5+01:00","tree":"t","paths":["/data"],"hostname":"prod-db","username":"root","tags":["name=nightly"],"id":"4dc1094c3e1f","short_id":"4dc1094c"}]"#;
        let snapshots = parse_snapshots(output).unwrap();
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].name(), Some("nightly"));
        assert_eq!(snapshots[0].hostname, "prod-db");
        assert_eq!(snapshots[0].taken_at().unwrap().to_string(), "2026-03-10T01:00:01.5Z");
        assert!(parse_snapshots("").unwrap().is_empty());
    }

    #[test]
    fn failures_by_exit_code_and_by_message() {
        assert_eq!(Failure::classify(10, ""), Failure::NoRepository);
        assert_eq!(Failure::classify(11, ""), Failure::Locked);
        assert_eq!(Failure::classify(12, ""), Failure::WrongPassword);
        let cases = [
            ("Fatal: unable to open config file: Stat: The specified key does not exist.\nIs there a repository at the following location?", Failure::NoRepository),
            ("unable to create lock in backend: repository is already locked exclusively by PID 42 on host", Failure::Locked),
            ("Fatal: wrong password or no key found", Failure::WrongPassword),
            ("dial tcp 127.0.0.1:9: connect: connection refused", Failure::Unreachable),
            // restic 0.14 wraps outages in the same words as a missing repository.
            ("Fatal: unable to open config file: Stat: Get \"http://10.0.0.1:9000/b/?location=\": dial tcp 10.0.0.1:9000: connect: connection refused\nIs there a repository at the following location?", Failure::Unreachable),
            ("Fatal: unable to open config file: Stat: Access Denied.\nIs there a repository at the following location?", Failure::Denied),
            ("Fatal: unable to open config file: Stat: We encountered an internal error, please try again.\nIs there a repository at the following location?", Failure::Unreachable),
            ("Fatal: unable to open config file: Stat: The specified bucket does not exist.\nIs there a repository at the following location?", Failure::NoRepository),
            ("Fatal: unable to open config file: stat /srv/restic/config: no such file or directory\nIs there a repository at the following location?", Failure::NoRepository),
            ("Fatal: invalid id \"zzz\": no matching ID found for prefix \"zzz\"", Failure::NotFound),
            ("something unexpected", Failure::Other),
        ];
        for (message, expected) in cases {
            assert_eq!(Failure::classify(1, message), expected, "{message}");
        }
        assert_eq!(Failure::Locked.reason(), "RepositoryLocked");
    }

    #[test]
    fn grouped_and_flat_listings_give_every_snapshot() {
        // restic 0.14 `snapshots --json --group-by host,paths --latest 1`, then a flat list.
        let grouped = r#"[{"group_key":{"hostname":"h2","paths":["/data"],"tags":null},"snapshots":[{"time":"2026-11-29T04:26:08Z","paths":["/data"],"hostname":"h2","id":"b545","short_id":"b545"}]},{"group_key":{"hostname":"h1","paths":["/data"],"tags":null},"snapshots":[{"time":"2026-11-29T04:26:07Z","paths":["/data"],"hostname":"h1","id":"a111","short_id":"a111"}]}]"#;
        let hosts: Vec<String> = parse_grouped_snapshots(grouped).unwrap().into_iter().map(|s| s.hostname).collect();
        assert_eq!(hosts, ["h2", "h1"]);
        let flat = r#"[{"time":"2026-11-29T04:26:08Z","paths":["/data"],"hostname":"h2","id":"b545"}]"#;
        assert_eq!(parse_grouped_snapshots(flat).unwrap()[0].id, "b545");
        assert!(parse_grouped_snapshots("Fatal: nope").unwrap().is_empty());
    }
}
