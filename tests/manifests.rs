//! The install manifests: kustomize renders them offline, and the Helm chart grants exactly the
//! RBAC rules the kustomize install does.

use serde::Deserialize;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn kustomize_default_renders_the_whole_install() {
    let output = Command::new("kubectl")
        .args(["kustomize", "config/default"])
        .current_dir(root())
        .output()
        .expect("kubectl is required (it renders config/default)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rendered = String::from_utf8(output.stdout).unwrap();
    let mut kinds: Vec<String> = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&rendered) {
        let value = serde_yaml::Value::deserialize(document).unwrap();
        let kind = value["kind"].as_str().unwrap().to_owned();
        let name = value["metadata"]["name"].as_str().unwrap().to_owned();
        kinds.push(format!("{kind}/{name}"));
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole/datarestor-operator",
            "ClusterRoleBinding/datarestor-operator",
            "CustomResourceDefinition/configs.backup.datarestor-operator.com",
            "CustomResourceDefinition/tasks.backup.datarestor-operator.com",
            "Deployment/datarestor-operator",
            "MutatingWebhookConfiguration/datarestor-restore-gate",
            "Namespace/datarestor-operator-system",
            "Service/datarestor-operator",
            "ServiceAccount/datarestor-operator",
        ]
    );
}

#[test]
fn helm_chart_rbac_matches_kustomize_rbac() {
    let rules = |path: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        // Template expressions only appear in metadata; drop those lines to read the rules.
        let plain: String = text.lines().filter(|l| !l.contains("{{")).map(|l| format!("{l}\n")).collect();
        let value: serde_yaml::Value = serde_yaml::from_str(&plain).unwrap();
        value["rules"].clone()
    };
    let kustomize = rules("config/rbac/role.yaml");
    assert!(kustomize.as_sequence().is_some_and(|r| r.len() > 5));
    assert_eq!(rules("charts/datarestor-operator/templates/clusterrole.yaml"), kustomize);
}
