//! The restic Job builder against YAML fixtures. `UPDATE_FIXTURES=1 cargo test --test job_builder`
//! rewrites the fixtures after an intended change; review the diff before committing it.

use datarestor_operator::api::{ConfigRef, RestoreMode, Task, TaskSpec, TaskTrigger, TaskType};
use datarestor_operator::job::{self, JobInputs, JobSettings};
use datarestor_operator::restic;
use k8s_openapi::api::batch::v1::Job;
use std::path::PathBuf;

fn task(type_: TaskType, name: &str, pvc: &str, spec_name: Option<&str>, mode: Option<RestoreMode>) -> Task {
    let mut task = Task::new(
        name,
        TaskSpec {
            type_,
            trigger: TaskTrigger::Manual,
            pvc_name: pvc.into(),
            config_ref: ConfigRef { name: "my-backup-config".into(), namespace: "backup-system".into() },
            repository: Some("s3:http://minio:9000/backup-bucket".into()),
            host: format!("shop-{pvc}"),
            name: spec_name.map(str::to_owned),
            restore_mode: mode,
            scheduled_for: None,
            latest_as_of: None,
        },
    );
    task.metadata.namespace = Some("shop".into());
    task.metadata.uid = Some("8d3c2a10-0000-4000-8000-000000000001".into());
    task
}

fn check_fixture(name: &str, job: &Job) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jobs").join(format!("{name}.yaml"));
    let actual = serde_yaml::to_string(job).unwrap();
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pretty_assertions::assert_eq!(expected, actual, "fixture {name}");
}

#[test]
fn fixtures() {
    let settings = JobSettings::default();
    let keys = ["AWS_ACCESS_KEY_ID".to_owned(), "AWS_SECRET_ACCESS_KEY".to_owned(), "RESTIC_PASSWORD".to_owned()];
    let options = datarestor_operator::api::ResticOptions::default();
    let inputs = |snapshot_id, node_name| JobInputs {
        repository: "s3:http://minio:9000/backup-bucket",
        snapshot_id,
        credentials_secret: "datarestor-my-backup-config-2",
        credential_keys: &keys,
        node_name,
        attempt: 0,
        run_as: None,
        settings: &settings,
        options: &options,
        drill_command: &[],
    };
    let cases = [
        ("backup", task(TaskType::Backup, "backup-data-5d1c", "data", Some("pre-upgrade"), None), inputs(None, None)),
        ("backup-on-node", task(TaskType::Backup, "backup-cache-77aa", "cache", None, None), inputs(None, Some("node-2"))),
        (
            "restore-clean",
            task(TaskType::Restore, "restore-data-9f00", "data", Some("pre-upgrade"), Some(RestoreMode::Clean)),
            inputs(Some("4dc1094c3e1f"), None),
        ),
        (
            "restore-if-empty",
            task(TaskType::Restore, "restore-data-0001", "data", None, Some(RestoreMode::IfEmpty)),
            inputs(Some("4dc1094c3e1f"), None),
        ),
    ];
    for (fixture, task, inputs) in cases {
        let job = job::build(&task, &inputs).expect("a stored Task builds a Job");
        check_fixture(fixture, &job);
    }
}

#[test]
fn backups_mount_read_only_and_restores_read_write() {
    let settings = JobSettings::default();
    let inputs = JobInputs {
        repository: "/srv/restic",
        snapshot_id: Some("abc"),
        credentials_secret: "creds",
        credential_keys: &[],
        node_name: None,
        attempt: 0,
        run_as: None,
        settings: &settings,
        options: &Default::default(),
        drill_command: &[],
    };
    for (type_, read_only) in [(TaskType::Backup, true), (TaskType::Restore, false)] {
        let job = job::build(&task(type_, "t", "data", None, None), &inputs).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let claim = pod.volumes.unwrap().into_iter().find_map(|v| v.persistent_volume_claim).unwrap();
        assert_eq!(claim.read_only, Some(read_only));
        let mount = pod.containers[0].volume_mounts.clone().unwrap().into_iter().find(|m| m.mount_path == "/data").unwrap();
        assert_eq!(mount.read_only, Some(read_only));
    }
}

#[test]
fn credentials_only_travel_by_secret_reference_key_by_key() {
    let settings = JobSettings::default();
    let keys = ["AWS_SECRET_ACCESS_KEY".to_owned(), "RESTIC_PASSWORD".to_owned()];
    let inputs = JobInputs {
        repository: "s3:http://minio:9000/b",
        snapshot_id: None,
        credentials_secret: "creds",
        credential_keys: &keys,
        node_name: None,
        attempt: 0,
        run_as: None,
        settings: &settings,
        options: &Default::default(),
        drill_command: &[],
    };
    let job = job::build(&task(TaskType::Backup, "t", "data", None, None), &inputs).unwrap();
    let container = &job.spec.unwrap().template.spec.unwrap().containers[0];
    assert!(container.env_from.is_none(), "never the whole Secret: a key someone added must not reach restic");
    let env = container.env.as_ref().unwrap();
    assert_eq!(env.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["AWS_SECRET_ACCESS_KEY", "RESTIC_PASSWORD"]);
    for var in env {
        assert_eq!(var.value, None, "no literal values in a Job");
        let selector = var.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
        assert_eq!((selector.name.as_str(), selector.key.as_str()), ("creds", var.name.as_str()));
    }
}

#[test]
fn an_unsaved_task_cannot_own_a_job() {
    let settings = JobSettings::default();
    let inputs = JobInputs {
        repository: "/r",
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
    let mut unsaved = task(TaskType::Backup, "t", "data", None, None);
    unsaved.metadata.uid = None;
    assert!(job::build(&unsaved, &inputs).is_none());
}

#[test]
fn retention_job_fixture_and_restricted_security() {
    let settings = JobSettings::default();
    let keys = ["RESTIC_PASSWORD".to_owned()];
    let groups = [restic::ForgetGroup {
        policy: vec!["--keep-last".to_owned(), "10".to_owned()],
        hosts: vec!["shop-data".to_owned(), "shop-logs".to_owned()],
    }];
    let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "backup.datarestor-operator.com/v1alpha1".into(),
        kind: "Config".into(),
        name: "my-backup-config".into(),
        uid: "8d3c2a10-0000-4000-8000-000000000002".into(),
        controller: Some(true),
        ..Default::default()
    };
    let inputs = job::MaintenanceInputs {
        name: "forget-my-backup-config-20260310-0400-1a2b3c4d",
        namespace: "backup-system",
        owner,
        config_name: "my-backup-config",
        repository: "s3:http://minio:9000/backup-bucket",
        work: job::Maintenance::Forget { groups: &groups, tuning: &[] },
        credentials_secret: "datarestor-my-backup-config-2",
        credential_keys: &keys,
        settings: &settings,
        options: &Default::default(),
    };
    let job = job::build_maintenance(&inputs);
    check_fixture("retention", &job);
    let commands = job::maintenance_commands(&job);
    assert_eq!((commands.len(), &commands[0][..3]), (1, &["forget".to_owned(), "--json".to_owned(), "--prune".to_owned()][..]));
    // What Pod Security `restricted` asks of every pod and container.
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let pod_security = pod.security_context.as_ref().unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
    let container = pod.containers[0].security_context.as_ref().unwrap();
    assert_eq!(container.allow_privilege_escalation, Some(false));
    let capabilities = container.capabilities.as_ref().unwrap();
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert_eq!(capabilities.add, None);
    assert!(pod.volumes.as_ref().unwrap().iter().all(|v| v.persistent_volume_claim.is_none()), "it reads no volume");
    let args = pod.containers[0].args.clone().unwrap();
    assert!(args.windows(2).any(|w| w == ["--host", "shop-logs"]) && args.contains(&"--json".to_owned()), "{args:?}");

    // Two retention policies (a selector's forgetArgs): a forget each, then one prune, in one Job.
    let two = [
        groups[0].clone(),
        restic::ForgetGroup { policy: vec!["--keep-last".to_owned(), "1".to_owned()], hosts: vec!["shop-cache".to_owned()] },
    ];
    let tuning = ["--max-unused".to_owned(), "5%".to_owned()];
    let grouped = job::build_maintenance(&job::MaintenanceInputs {
        work: job::Maintenance::Forget { groups: &two, tuning: &tuning },
        ..inputs.clone()
    });
    let commands = job::maintenance_commands(&grouped);
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert_eq!(commands[0][..3], ["forget", "--json", "--path"]);
    assert!(
        commands[1].windows(2).any(|w| w == ["--host", "shop-cache"])
            && commands[1].windows(2).any(|w| w == ["--keep-last", "1"])
    );
    assert_eq!(commands[2][..3], ["prune", "--max-unused", "5%"]);
    assert!(commands.iter().all(|c| c.windows(2).any(|w| w == ["--cache-dir", "/cache"])), "every command gets the Job's cache");

    // The integrity check is the same Job with restic check instead, labelled as such.
    let check = job::build_maintenance(&job::MaintenanceInputs {
        name: "check-my-backup-config-20260310-0400-1a2b3c4d",
        work: job::Maintenance::Check { read_data_subset: Some("1/7") },
        ..inputs
    });
    let labels = check.metadata.labels.clone().unwrap();
    assert_eq!(labels["backup.datarestor-operator.com/type"], "check");
    let pod = check.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let args = pod.containers[0].args.clone().unwrap();
    assert_eq!(args, ["datarestor-check", "check", "--read-data-subset", "1/7", "--cache-dir", "/cache"]);
    assert_eq!(pod.security_context, job.spec.as_ref().unwrap().template.spec.as_ref().unwrap().security_context);
}

#[test]
fn run_jobs_as_an_unprivileged_user_adds_nothing() {
    let settings = JobSettings::default();
    let run_as = datarestor_operator::api::RunAs { user: 1000, group: 2000 };
    for type_ in [TaskType::Backup, TaskType::Restore] {
        let inputs = JobInputs {
            repository: "s3:http://minio:9000/backup-bucket",
            snapshot_id: Some("4dc1094c3e1f"),
            credentials_secret: "c",
            credential_keys: &[],
            node_name: None,
            attempt: 0,
            run_as: Some(run_as),
            settings: &settings,
            options: &Default::default(),
            drill_command: &[],
        };
        let job = job::build(&task(type_, "t", "data", None, Some(RestoreMode::Clean)), &inputs).unwrap();
        let pod = job.spec.unwrap().template.spec.unwrap();
        let pod_security = pod.security_context.unwrap();
        assert_eq!(
            (pod_security.run_as_user, pod_security.run_as_group, pod_security.run_as_non_root),
            (Some(1000), Some(2000), Some(true))
        );
        let container = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(container.run_as_user, None, "{type_:?}: the pod's user applies");
        assert_eq!(container.capabilities.unwrap().add, None, "{type_:?}: restricted allows no added capability");
        assert_eq!(container.allow_privilege_escalation, Some(false));
    }
}

#[test]
fn every_label_value_fits_for_the_longest_pvc_name() {
    let settings = JobSettings::default();
    let long = format!("data-{}", "x".repeat(248));
    let inputs = JobInputs {
        repository: "s3:http://minio:9000/backup-bucket",
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
    let job = job::build(&task(TaskType::Backup, "backup-data-xxxx-3a0c6f94", &long, None, None), &inputs).unwrap();
    let template_labels = job.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap();
    for (key, value) in job.metadata.labels.clone().unwrap().iter().chain(template_labels.iter()) {
        assert!(value.len() <= 63, "label {key}={value} is longer than a label value may be");
    }
    assert_eq!(
        job.spec.unwrap().template.spec.unwrap().volumes.unwrap()[0].persistent_volume_claim.as_ref().unwrap().claim_name,
        long
    );
}

#[test]
fn a_configs_jobs_settings_override_the_operators() {
    let overrides: datarestor_operator::api::JobOverrides = serde_json::from_value(serde_json::json!({
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "8Gi"}},
        "nodeSelector": {"storage": "fast"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "backup", "effect": "NoSchedule"}],
        "priorityClassName": "backup-low",
        "imagePullPolicy": "Always",
        "backoffLimit": 0,
        "activeDeadlineSeconds": 600,
    }))
    .unwrap();
    let operator = JobSettings { backoff_limit: 5, ..JobSettings::default() };
    let settings = operator.for_config(Some(&overrides), true);
    let keys = ["RESTIC_PASSWORD".to_owned()];
    let options = datarestor_operator::api::ResticOptions::default();
    let inputs = |node_name| JobInputs {
        repository: "/srv/restic",
        snapshot_id: None,
        credentials_secret: "creds",
        credential_keys: &keys,
        node_name,
        attempt: 0,
        run_as: None,
        settings: &settings,
        options: &options,
        drill_command: &[],
    };
    let backup = task(TaskType::Backup, "backup-data-1", "data", None, None);
    let job = job::build(&backup, &inputs(None)).unwrap();
    let spec = job.spec.as_ref().unwrap();
    let pod = spec.template.spec.as_ref().unwrap();
    let container = &pod.containers[0];
    assert_eq!((spec.backoff_limit, spec.active_deadline_seconds), (Some(0), Some(600)));
    assert_eq!(container.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(container.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0, "8Gi");
    assert_eq!(pod.node_selector.as_ref().unwrap()["storage"], "fast");
    assert_eq!(pod.tolerations.as_ref().unwrap()[0].key.as_deref(), Some("dedicated"));
    assert_eq!(pod.priority_class_name.as_deref(), Some("backup-low"));

    // Pinned beside the pod using its volume: the selector is not applied (it could only strand it).
    let pinned = job::build(&backup, &inputs(Some("node-2"))).unwrap();
    let pod = pinned.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.node_selector, None);
    assert!(pod.affinity.is_some());

    // A team's own Config: resources and retries apply, placement does not.
    let team = operator.for_config(Some(&overrides), false);
    assert!(team.node_selector.is_empty() && team.tolerations.is_empty() && team.priority_class_name.is_none());
    assert_eq!((team.backoff_limit, team.resources.is_some()), (0, true));

    // Nothing set: the operator's settings as they were.
    let unchanged = operator.for_config(None, true);
    assert_eq!((unchanged.backoff_limit, unchanged.resources.is_none()), (5, true));
    let empty = operator.for_config(Some(&Default::default()), true);
    assert_eq!((empty.backoff_limit, empty.active_deadline_seconds), (5, operator.active_deadline_seconds));
}
