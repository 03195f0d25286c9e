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
    let wide = ClusterWide(vec!["backup-system".into()]);
    let mut config = seed_config();
    assert!(config.selects("production", &labels, &wide), "the seed layout: backup-system reaches every namespace");
    config.metadata.namespace = Some("team-a".into());
    assert!(!config.selects("production", &labels, &wide), "a team's Config stays in its namespace");
    assert!(config.selects("team-a", &labels, &wide));
    assert_eq!(config.unreachable_namespaces(&wide), ["default", "production"]);
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
