//! The CRDs: generated from the types, committed, and accepting what users write.

use datarestor_operator::api::{Config, RestoreMode};
use datarestor_operator::crdgen;
use kube::CustomResourceExt;
use std::path::Path;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn committed_crds_match_the_types() {
    for crd in crdgen::crds() {
        let expected = crdgen::to_yaml(&crd);
        for dir in ["config/crd/bases", "charts/datarestor-operator/crds"] {
            let path = format!("{dir}/{}", crdgen::file_name(&crd));
            assert!(
                repo_file(&path) == expected,
                "{path} is out of date with the Rust types; run `make generate` (datarestor-operator crd) and commit"
            );
        }
    }
}

fn seed_config() -> Config {
    serde_yaml::from_str(&repo_file("examples/config.yaml")).expect("the seed README's Config parses")
}

#[test]
fn seed_example_is_accepted_unchanged() {
    let config = seed_config();
    assert_eq!(config.metadata.name.as_deref(), Some("my-backup-config"));
    let repos = config.spec.repositories_by_priority();
    assert_eq!(repos.len(), 2);
    assert_eq!(repos[0].target, "s3:s3.amazonaws.com/my-bucket/backups");
    assert_eq!(repos[1].retention_schedule(), "0 5 * * 0");
    assert_eq!(repos[1].forget_args, ["--keep-last", "5", "--keep-daily", "3"]);
    assert_eq!(config.spec.selectors.len(), 3);
    assert!(config.spec.stop_pods && config.spec.auto_restore);
    kube::core::cel::validate_cel(&config).expect("the CRD's CEL rules accept the seed example");
    for repo in &config.spec.repositories {
        repo.backup_schedule.parse::<datarestor_operator::schedule::Schedule>().unwrap();
        repo.retention_schedule().parse::<datarestor_operator::schedule::Schedule>().unwrap();
    }
}

#[test]
fn per_namespace_example_is_valid_and_expands_per_namespace() {
    let config: Config = serde_yaml::from_str(&repo_file("examples/per-namespace.yaml")).expect("parses");
    kube::core::cel::validate_cel(&config).expect("its CEL rules hold");
    assert!(datarestor_operator::controller::config::problems(&config).is_empty());
    let team_a = config.for_pvc("team-a", "data");
    assert_eq!(team_a.spec.repositories[0].target, "s3:s3.amazonaws.com/my-bucket/backups/team-a");
    let password = team_a.spec.env[0].value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap();
    assert_eq!(password.name, "restic-team-a");
}

#[test]
fn duplicate_priorities_and_targets_are_rejected_by_the_schema() {
    let mut config = seed_config();
    config.spec.repositories[1].priority = 1;
    let error = kube::core::cel::validate_cel(&config).expect_err("duplicate priorities").to_string();
    assert!(error.contains("repository priorities must be unique"), "{error}");

    let mut config = seed_config();
    config.spec.repositories[1].target = config.spec.repositories[0].target.clone();
    let error = kube::core::cel::validate_cel(&config).expect_err("duplicate targets").to_string();
    assert!(error.contains("repository targets must be unique"), "{error}");
}

#[test]
fn an_empty_selector_is_rejected_by_the_schema() {
    for empty in [serde_json::json!({}), serde_json::json!({"matchLabels": {}, "matchNamespaces": []})] {
        let mut config = seed_config();
        config.spec.selectors.push(serde_json::from_value(empty).unwrap());
        let error = kube::core::cel::validate_cel(&config).expect_err("an empty selector").to_string();
        assert!(error.contains("an empty one would select every PVC in the cluster"), "{error}");
    }
}

#[test]
fn a_config_reaches_other_namespaces_only_from_a_cluster_wide_namespace() {
    use datarestor_operator::api::ClusterWide;
    let labels = [("app".to_owned(), "my-app".to_owned())].into();
    let wide = ClusterWide::new(vec!["backup-system".into()]);
    let mut config = seed_config();
    assert!(config.selects("production", &labels, &wide), "the seed layout: backup-system reaches every namespace");
    config.metadata.namespace = Some("team-a".into());
    assert!(!config.selects("production", &labels, &wide), "a team's Config stays in its namespace");
    assert!(config.selects("team-a", &labels, &wide));
    assert_eq!(config.unreachable_namespaces(&wide), ["default", "production"]);

    // With watched namespaces, nothing outside them is protected, even by administrators.
    let watched = ClusterWide(vec!["backup-system".into()], datarestor_operator::api::Watched(vec!["production".into()]));
    let mut admin = seed_config();
    admin.metadata.namespace = Some("backup-system".into());
    assert!(admin.selects("production", &labels, &watched));
    assert!(!admin.selects("default", &labels, &watched), "an unwatched namespace");
    assert!(!config.selects("team-a", &labels, &watched), "a team Config in an unwatched namespace protects nothing");
}

#[test]
fn schema_requires_at_least_one_repository_and_bounds_the_list() {
    let crd = serde_json::to_value(Config::crd()).unwrap();
    let repositories =
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["repositories"];
    assert_eq!(repositories["minItems"], 1);
    // CEL cost estimation needs a bound on lists the uniqueness rules walk.
    assert_eq!(repositories["maxItems"], 32);
    let required = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"];
    assert_eq!(required, &serde_json::json!(["repositories"]));
}

#[test]
fn defaults_come_from_the_schema_and_false_survives() {
    let minimal = r#"
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: c, namespace: ns}
spec:
  repositories: [{target: "/srv/restic", priority: 1}]
  autoRestore: false
"#;
    let config: Config = serde_yaml::from_str(minimal).unwrap();
    assert!(!config.spec.auto_restore);
    let repo = &config.spec.repositories[0];
    assert_eq!((repo.backup_schedule.as_str(), repo.retention_schedule()), ("0 2 * * *", "0 4 * * 0"));
    assert_eq!(repo.forget_args, ["--keep-last", "10"]);
    assert_eq!(config.spec.manual_restore_mode, RestoreMode::Clean);

    let round_trip = serde_yaml::to_string(&config).unwrap();
    assert!(round_trip.contains("autoRestore: false"), "{round_trip}");
    let again: Config = serde_yaml::from_str(&round_trip).unwrap();
    assert_eq!(again, config);

    let crd = serde_json::to_value(Config::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec["autoRestore"]["default"], true);
    assert_eq!(spec["stopPods"]["default"], false);
    let repo = &spec["repositories"]["items"]["properties"];
    assert_eq!(repo["backupSchedule"]["default"], "0 2 * * *");
    assert_eq!(repo["forgotSchedule"]["default"], "0 4 * * 0");
    assert_eq!(repo["forgetArgs"]["default"], serde_json::json!(["--keep-last", "10"]));
}

#[test]
fn forget_schedule_spelling_wins_over_the_original() {
    let config: Config = serde_yaml::from_str(
        r#"
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: c}
spec:
  repositories: [{target: "/srv/restic", priority: 1, forgotSchedule: "0 4 * * 0", forgetSchedule: "@daily"}]
"#,
    )
    .unwrap();
    assert_eq!(config.spec.repositories[0].retention_schedule(), "@daily");
}

/// Where an invalid Config is refused: by its types (the API server's schema), by its CEL rules
/// (the API server), or by the operator (the `Valid` condition).
#[derive(Debug)]
enum RefusedBy {
    Types,
    Cel,
    Operator,
}

#[test]
fn thirty_invalid_configs_each_get_a_clear_answer() {
    use RefusedBy::*;
    let cases: Vec<(RefusedBy, &str, serde_json::Value, &str)> = vec![
        (Types, "/spec/repositories/0/priority", "one".into(), "invalid type"),
        (Types, "/spec/repositories/0/target", serde_json::Value::Null, "invalid type"),
        (Types, "/spec/stopPods", "yes".into(), "invalid type"),
        (Types, "/spec/selectors", "all".into(), "invalid type"),
        (Types, "/spec/manualRestoreMode", "Sometimes".into(), "unknown variant `Sometimes`"),
        (Types, "/spec/unmanagedPods", "Maybe".into(), "unknown variant `Maybe`"),
        (Types, "/spec/repositories/0/forgetArgs", "--keep-last 3".into(), "invalid type"),
        (Operator, "/spec/env", serde_json::json!([{"value": "x"}]), "an env entry has no name"),
        (Types, "/spec/runJobsAs", serde_json::json!({"user": "root", "group": 0}), "invalid type"),
        (Types, "/spec/repositories/0/maxConcurrentJobs", 1.5.into(), "invalid type"),
        (Cel, "/spec/repositories/1/priority", 1.into(), "repository priorities must be unique"),
        (Cel, "/spec/repositories/1/target", "s3:s3.amazonaws.com/my-bucket/backups".into(), "repository targets must be unique"),
        (Cel, "/spec/selectors/0", serde_json::json!({}), "an empty one would select every PVC"),
        (Cel, "/spec/selectors/0", serde_json::json!({"matchLabels": {}}), "an empty one would select every PVC"),
        (Operator, "/spec/repositories/0/backupSchedule", "61 * * * *".into(), "61 is out of range 0-59"),
        (Operator, "/spec/repositories/0/backupSchedule", "* * *".into(), "backupSchedule"),
        (Operator, "/spec/repositories/0/forgotSchedule", "0 0 30 2 *".into(), "never fires"),
        (Operator, "/spec/repositories/0/backupSchedule", "CRON_TZ=Mars/Olympus 0 2 * * *".into(), "Mars/Olympus"),
        (Operator, "/spec/repositories/0/backupSchedule", "@fortnightly".into(), "@fortnightly"),
        (Operator, "/spec/repositories/0/backupSchedule", "0 25 * * *".into(), "25 is out of range 0-23"),
        (Operator, "/spec/repositories/0/backupSchedule", "*/0 * * * *".into(), "backupSchedule"),
        (Operator, "/spec/repositories/0/backupSchedule", "0 2 * FOO *".into(), "FOO"),
        (
            Operator,
            "/spec/env",
            serde_json::json!([{"name": "RESTIC_PASSWORD_COMMAND", "value": "id"}]),
            "env RESTIC_PASSWORD_COMMAND is not a variable",
        ),
        (
            Operator,
            "/spec/env",
            serde_json::json!([{"name": "RESTIC_PASSWORD_FILE", "value": "/etc/shadow"}]),
            "env RESTIC_PASSWORD_FILE",
        ),
        (Operator, "/spec/env", serde_json::json!([{"name": "LD_PRELOAD", "value": "/tmp/x.so"}]), "env LD_PRELOAD"),
        (
            Operator,
            "/spec/repositories/0/env",
            serde_json::json!([{"name": "RESTIC_REPOSITORY", "value": "/elsewhere"}]),
            "env RESTIC_REPOSITORY",
        ),
        (
            Operator,
            "/spec/repositories/0/forgetArgs",
            serde_json::json!(["--password-command", "id"]),
            "\"--password-command\" is not a retention policy option",
        ),
        (
            Operator,
            "/spec/repositories/0/forgetArgs",
            serde_json::json!(["-o", "s3.x=y"]),
            "\"-o\" is not a retention policy option",
        ),
        (Operator, "/spec/repositories/0/forgetArgs", serde_json::json!(["--keep-last"]), "--keep-last needs a value"),
        (
            Operator,
            "/spec/repositories/0/forgetArgs",
            serde_json::json!(["--dry-run"]),
            "\"--dry-run\" is not a retention policy option",
        ),
        (Operator, "/spec/runJobsAs", serde_json::json!({"user": 0, "group": 0}), "runJobsAs.user is 0"),
        (
            Operator,
            "/spec/repositories/0/target",
            "s3:http://minio:9000/backups/{namespaces}".into(),
            "unknown placeholder \"{namespaces}\"",
        ),
        (Operator, "/spec/repositories/0/target", "s3:http://minio:9000/{pvc".into(), "unknown placeholder \"{pvc\""),
        (
            Operator,
            "/spec/env",
            serde_json::json!([{"name": "RESTIC_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "restic-{namespace}", "key": "p"}}}]),
            "its target has no {namespace}",
        ),
        (Operator, "/spec/repositories/0/target", "s3:http://minio:9000/{pvc}".into(), "a per-PVC target needs {namespace} too"),
    ];
    assert!(cases.len() >= 30);
    let tried = cases.len();
    for (refused_by, pointer, value, expected) in cases {
        let mut json = serde_json::to_value(seed_config()).unwrap();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let parent = json.pointer_mut(parent).unwrap_or_else(|| panic!("{pointer}"));
        match parent {
            serde_json::Value::Array(items) => items[key.parse::<usize>().unwrap()] = value.clone(),
            object => object[key] = value.clone(),
        }
        let answer = match serde_json::from_value::<Config>(json) {
            Err(e) => (RefusedBy::Types, e.to_string()),
            Ok(config) => match kube::core::cel::validate_cel(&config) {
                Err(e) => (RefusedBy::Cel, e.to_string()),
                Ok(()) => (RefusedBy::Operator, datarestor_operator::controller::config::problems(&config).join("; ")),
            },
        };
        assert!(
            std::mem::discriminant(&answer.0) == std::mem::discriminant(&refused_by) && answer.1.contains(expected),
            "{pointer} = {value}: expected {refused_by:?} saying {expected:?}, got {answer:?}"
        );
    }
    println!("security table: {tried} invalid Configs, each refused (types, CEL or the Valid condition) with its reason");
}
