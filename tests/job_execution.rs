//! Runs the containers the Job builder produces, with real restic against a real (local)
//! repository and the volume bind-mounted at `/data` by bubblewrap, as a pod would see it.
//! Needs `restic` and `bwrap` (installed by `.ci/run`); fails loudly without them.

use datarestor_operator::api::{ConfigRef, RestoreMode, Task, TaskSpec, TaskTrigger, TaskType};
use datarestor_operator::job::{self, JobInputs, JobSettings};
use datarestor_operator::restic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PASSWORD: &str = "correct horse battery staple";

struct Sandbox {
    root: PathBuf,
    repository: String,
}

impl Sandbox {
    fn new(name: &str) -> Self {
        for tool in ["restic", "bwrap"] {
            let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
            assert!(found, "{tool} is required for this test (apt-get install restic bubblewrap)");
        }
        let root = std::env::temp_dir().join(format!("datarestor-job-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("cache")).unwrap();
        let repository = root.join("repo").to_string_lossy().into_owned();
        let init =
            Command::new("restic").args(["init", "--repo", &repository]).env("RESTIC_PASSWORD", PASSWORD).output().unwrap();
        assert!(init.status.success(), "restic init: {}", String::from_utf8_lossy(&init.stderr));
        Sandbox { root, repository }
    }

    fn volume(&self, name: &str) -> PathBuf {
        let path = self.root.join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }

    /// Runs the Job's container with `volume` at /data, as the kubelet would.
    fn run(&self, job: &k8s_openapi::api::batch::v1::Job, volume: &Path) -> Output {
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let container = &pod.containers[0];
        let read_only =
            container.volume_mounts.as_ref().unwrap().iter().any(|m| m.mount_path == "/data" && m.read_only == Some(true));
        let mut command = Command::new("bwrap");
        command.args(["--dev-bind", "/", "/"]);
        command.arg(if read_only { "--ro-bind" } else { "--bind" }).arg(volume).arg("/data");
        command.arg("--bind").arg(self.root.join("cache")).arg("/cache");
        command.arg("--");
        command.args(container.command.as_ref().unwrap());
        command.args(container.args.as_ref().unwrap());
        // The credentials Secret's content, as the Job's secretKeyRef variables carry it.
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_REPOSITORY", &self.repository);
        command.output().unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn task(type_: TaskType, name: Option<&str>, mode: Option<RestoreMode>) -> Task {
    let mut task = Task::new(
        "t",
        TaskSpec {
            type_,
            trigger: TaskTrigger::Manual,
            pvc_name: "data".into(),
            config_ref: ConfigRef { name: "c".into(), namespace: "ns".into() },
            repository: None,
            host: "shop-data".into(),
            name: name.map(str::to_owned),
            restore_mode: mode,
            scheduled_for: None,
            latest_as_of: None,
        },
    );
    task.metadata.namespace = Some("shop".into());
    task.metadata.uid = Some("uid".into());
    task
}

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// Every file under `root` with its content; directories as empty markers.
fn read_tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let key = path.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                out.insert(format!("{key}/"), String::new());
                walk(base, &path, out);
            } else {
                out.insert(key, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Backs up `files` and returns the snapshot id from restic's JSON summary.
fn backup(sandbox: &Sandbox, files: &[(&str, &str)]) -> String {
    let source = sandbox.volume("source");
    write_tree(&source, files);
    let settings = JobSettings::default();
    let inputs = JobInputs {
        repository: &sandbox.repository,
        snapshot_id: None,
        credentials_secret: "c",
        credential_keys: &[],
        node_name: None,
        attempt: 0,
        run_as: None,
        settings: &settings,
        options: &Default::default(),
        drill_command: &[],
    };
    let job = job::build(&task(TaskType::Backup, Some("pre-upgrade"), None), &inputs).unwrap();
    let output = sandbox.run(&job, &source);
    assert!(output.status.success(), "backup failed: {}", stderr(&output));
    let summary = restic::backup_summary(&String::from_utf8_lossy(&output.stdout)).expect("a JSON summary");
    assert_eq!(summary.files_new, files.len() as u64);
    summary.snapshot_id
}

fn restore(sandbox: &Sandbox, snapshot_id: &str, mode: RestoreMode, volume: &Path) -> Output {
    let settings = JobSettings::default();
    let inputs = JobInputs {
        repository: &sandbox.repository,
        snapshot_id: Some(snapshot_id),
        credentials_secret: "c",
        credential_keys: &[],
        node_name: None,
        attempt: 0,
        run_as: None,
        settings: &settings,
        options: &Default::default(),
        drill_command: &[],
    };
    let job = job::build(&task(TaskType::Restore, None, Some(mode)), &inputs).unwrap();
    sandbox.run(&job, volume)
}

const FILES: &[(&str, &str)] =
    &[("a.txt", "alpha"), ("dir/b.txt", "bravo"), ("dir/deeper/c.bin", "charlie"), (".hidden", "delta")];

#[test]
fn backup_writes_the_original_snapshot_layout() {
    let sandbox = Sandbox::new("layout");
    let id = backup(&sandbox, FILES);
    let listing = Command::new("restic")
        .args(["snapshots", "--json", "--repo", &sandbox.repository])
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let snapshots = restic::parse_snapshots(&String::from_utf8_lossy(&listing.stdout)).unwrap();
    assert_eq!(snapshots.len(), 1);
    // restic 0.14 reports the short id in its summary, 0.17+ the full one.
    assert!(snapshots[0].id.starts_with(&id), "{} vs {id}", snapshots[0].id);
    assert_eq!(snapshots[0].hostname, "shop-data");
    assert_eq!(snapshots[0].paths, ["/data"]);
    assert_eq!(snapshots[0].name(), Some("pre-upgrade"));
}

#[test]
fn clean_restore_leaves_exactly_the_snapshot() {
    let sandbox = Sandbox::new("clean");
    let id = backup(&sandbox, FILES);
    let target = sandbox.volume("target");
    write_tree(&target, &[("a.txt", "changed after the backup"), ("leftover/x", "stale"), (".stale", "stale")]);
    let output = restore(&sandbox, &id, RestoreMode::Clean, &target);
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    assert_eq!(read_tree(&target), read_tree(&sandbox.volume("source")));
}

#[test]
fn failed_clean_restore_keeps_existing_data() {
    let sandbox = Sandbox::new("clean-fail");
    backup(&sandbox, FILES);
    let target = sandbox.volume("target");
    write_tree(&target, &[("precious.txt", "keep me")]);
    let output = restore(&sandbox, "deadbeef", RestoreMode::Clean, &target);
    assert!(!output.status.success(), "restoring an unknown snapshot must fail");
    let tree = read_tree(&target);
    assert_eq!(tree.get("precious.txt").map(String::as_str), Some("keep me"));
}

#[test]
fn merge_restore_keeps_extra_files() {
    let sandbox = Sandbox::new("merge");
    let id = backup(&sandbox, FILES);
    let target = sandbox.volume("target");
    write_tree(&target, &[("a.txt", "changed"), ("extra.txt", "mine")]);
    let output = restore(&sandbox, &id, RestoreMode::Merge, &target);
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    let tree = read_tree(&target);
    assert_eq!(tree["a.txt"], "alpha");
    assert_eq!(tree["dir/deeper/c.bin"], "charlie");
    assert_eq!(tree["extra.txt"], "mine");
}

#[test]
fn if_empty_restore_refuses_a_volume_with_data() {
    let sandbox = Sandbox::new("if-empty");
    let id = backup(&sandbox, FILES);
    let busy = sandbox.volume("busy");
    write_tree(&busy, &[("live.db", "live")]);
    let output = restore(&sandbox, &id, RestoreMode::IfEmpty, &busy);
    assert_eq!(output.status.code(), Some(3));
    assert!(stderr(&output).contains("restore mode is IfEmpty; nothing was changed"));
    assert_eq!(read_tree(&busy).len(), 1);

    let empty = sandbox.volume("empty");
    let output = restore(&sandbox, &id, RestoreMode::IfEmpty, &empty);
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    assert_eq!(read_tree(&empty), read_tree(&sandbox.volume("source")));
}

/// A fresh ext4/xfs volume holds `lost+found`: it is filesystem metadata, not data. It is not backed
/// up, an IfEmpty restore treats such a volume as empty, and no restore mode removes it.
#[test]
fn lost_and_found_is_not_data() {
    let sandbox = Sandbox::new("lost-found");
    write_tree(&sandbox.volume("source"), &[("lost+found/#1234", "fsck leftovers")]);
    let id = backup(&sandbox, FILES);
    let listing = Command::new("restic")
        .args(["ls", "--json", &id, "--repo", &sandbox.repository])
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    // The first line describes the snapshot (its excludes name lost+found); the rest are its files.
    let nodes: Vec<String> = String::from_utf8_lossy(&listing.stdout).lines().skip(1).map(str::to_owned).collect();
    assert!(nodes.len() > FILES.len(), "restic ls listed nothing: {nodes:?}");
    assert!(!nodes.iter().any(|n| n.contains("lost+found")), "lost+found was backed up: {nodes:?}");

    for mode in [RestoreMode::IfEmpty, RestoreMode::Clean, RestoreMode::Merge] {
        let fresh = sandbox.volume(&format!("fresh-{mode:?}"));
        std::fs::create_dir(fresh.join("lost+found")).unwrap();
        let output = restore(&sandbox, &id, mode, &fresh);
        assert!(output.status.success(), "{mode:?} restore onto a fresh filesystem failed: {}", stderr(&output));
        let tree = read_tree(&fresh);
        for (path, content) in FILES {
            assert_eq!(tree.get(*path).map(String::as_str), Some(*content), "{mode:?}: {path}");
        }
        assert!(fresh.join("lost+found").is_dir(), "{mode:?} removed lost+found");
    }
}

/// An automatic restore (IfEmpty) that died mid-download left only its staging directory; the
/// retry still sees an empty volume, and ends with exactly the snapshot, never half of it.
#[test]
fn if_empty_retry_after_an_interrupted_download_restores_everything() {
    let sandbox = Sandbox::new("if-empty-retry");
    let id = backup(&sandbox, FILES);
    let volume = sandbox.volume("interrupted");
    write_tree(&volume, &[(".datarestor-restore/data/a.txt", "half-writ"), (".datarestor-restore/data/stray", "partial")]);
    let output = restore(&sandbox, &id, RestoreMode::IfEmpty, &volume);
    assert!(output.status.success(), "restore failed: {}", stderr(&output));
    assert_eq!(read_tree(&volume), read_tree(&sandbox.volume("source")));
    assert!(!volume.join(".datarestor-restore").exists(), "the staging directory is left behind");
}
