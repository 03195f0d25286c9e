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
            "CustomResourceDefinition/catalogs.backup.datarestor-operator.com",
            "CustomResourceDefinition/configs.backup.datarestor-operator.com",
            "CustomResourceDefinition/tasks.backup.datarestor-operator.com",
            "Deployment/datarestor-operator",
            "Lease/datarestor-operator",
            "MutatingWebhookConfiguration/datarestor-restore-gate",
            "Namespace/datarestor-operator-system",
            "Role/datarestor-operator-leader-election",
            "RoleBinding/datarestor-operator-leader-election",
            "Secret/datarestor-operator-webhook-tls",
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
    // The leader-election Role (the chart's file also holds its binding, after `---`).
    let chart_role = std::fs::read_to_string(root().join("charts/datarestor-operator/templates/role.yaml")).unwrap();
    let chart_role: String =
        chart_role.split("\n---").next().unwrap().lines().filter(|l| !l.contains("{{")).map(|l| format!("{l}\n")).collect();
    let chart_role: serde_yaml::Value = serde_yaml::from_str(&chart_role).unwrap();
    assert_eq!(chart_role["rules"], rules("config/rbac/leader_election_role.yaml"));
}

/// The real helm (`e2e/cluster/install-helm.sh` fetches it once and prints its path).
fn helm() -> String {
    let output = Command::new("bash").arg("e2e/cluster/install-helm.sh").current_dir(root()).output().expect("bash");
    assert!(output.status.success(), "helm is required: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn helm_template(values: &[&str]) -> Vec<serde_yaml::Value> {
    let mut args = vec!["template", "datarestor", "charts/datarestor-operator", "--namespace", "backup-ops"];
    for value in values {
        args.extend(["--set", value]);
    }
    let output = Command::new(helm()).args(&args).current_dir(root()).output().unwrap();
    assert!(output.status.success(), "helm template {values:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_yaml::Deserializer::from_str(&String::from_utf8(output.stdout).unwrap())
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn helm_chart_alerts_use_only_metrics_the_operator_serves() {
    let objects = helm_template(&["metrics.prometheusRule.enabled=true", "metrics.serviceMonitor.enabled=true"]);
    let rule = objects.iter().find(|o| o["kind"] == "PrometheusRule").expect("a PrometheusRule");
    let monitor = objects.iter().find(|o| o["kind"] == "ServiceMonitor").expect("a ServiceMonitor");
    let service = objects.iter().find(|o| o["kind"] == "Service").unwrap();
    let port = monitor["spec"]["endpoints"][0]["port"].as_str().unwrap();
    assert!(
        service["spec"]["ports"].as_sequence().unwrap().iter().any(|p| p["name"] == port),
        "the ServiceMonitor scrapes port {port}, which the Service does not name"
    );

    // Every family the operator serves (a family shows once it has a sample), as `# TYPE` names it.
    let rendered = futures::executor::block_on(serving_every_family().render(|_| {}));
    let families: Vec<&str> = rendered.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    assert!(families.len() > 10, "{rendered}");
    let served = |name: &str| {
        families.iter().any(|f| {
            name == *f || ["_total", "_bucket", "_count", "_sum"].iter().any(|suffix| name.strip_suffix(suffix) == Some(f))
        })
    };
    let word = regex::Regex::new(r"datarestor_[a-z_]+").unwrap();
    let rules = rule["spec"]["groups"][0]["rules"].as_sequence().unwrap();
    assert!(rules.len() >= 5);
    for alert in rules {
        let expr = alert["expr"].as_str().unwrap();
        for name in word.find_iter(expr).map(|m| m.as_str()) {
            assert!(served(name), "alert {:?} uses {name}, which the operator does not serve", alert["alert"]);
        }
    }

    // The Grafana dashboard, shipped in a ConfigMap when enabled.
    let objects = helm_template(&["grafanaDashboard.enabled=true"]);
    let map = objects.iter().find(|o| o["kind"] == "ConfigMap").expect("the dashboard's ConfigMap");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: serde_json::Value = serde_json::from_str(map["data"]["datarestor.json"].as_str().unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 10);
    for panel in panels {
        for target in panel["targets"].as_array().unwrap() {
            for name in word.find_iter(target["expr"].as_str().unwrap()).map(|m| m.as_str()) {
                assert!(served(name), "panel {:?} uses {name}, which the operator does not serve", panel["title"]);
            }
        }
    }
}

#[test]
fn helm_chart_sets_every_option() {
    let objects = helm_template(&[]);
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/datarestor/datarestor-operator:0.1.0");
    let output = Command::new(helm())
        .args([
            "template",
            "datarestor",
            "charts/datarestor-operator",
            "-f",
            "charts/datarestor-operator/ci/all-options-values.yaml",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let objects: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&String::from_utf8(output.stdout).unwrap())
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    let of = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"));
    let pod = &of("Deployment")["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    assert!(container["image"]
        .as_str()
        .unwrap()
        .ends_with("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_eq!(pod["spec"]["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["spec"]["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(pod["metadata"]["labels"]["team"], "storage");
    assert_eq!(pod["metadata"]["annotations"]["example.com/team"], "storage");
    assert_eq!(
        of("ServiceAccount")["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/datarestor"
    );
    assert_eq!(of("MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"], "Fail");
    let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
    for expected in [
        "--webhook-failure-policy=Fail",
        "--webhook-listen=0.0.0.0:10443",
        "--metrics-listen=0.0.0.0:9090",
        "--leader-election-lease-seconds=20",
        "--job-deadline-seconds=7200",
        "--job-memory-limit=4Gi",
        "--job-image-pull-policy=Always",
        "--restic-image=registry.example/restic:0.18.1",
        "--max-restic-processes=8",
        "--hooks=false",
        "--restic-compression=Max",
        "--restic-pack-size-mib=32",
        "--restic-limit-upload-kib=10240",
        "--job-cache-size-limit=2Gi",
        "--retry-seconds=5",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    let exec_granted = |objects: &[serde_yaml::Value]| {
        let role = objects.iter().find(|o| o["kind"] == "ClusterRole").expect("a ClusterRole");
        role["rules"].as_sequence().unwrap().iter().any(|r| r["resources"][0] == "pods/exec")
    };
    assert!(!exec_granted(&objects), "hooks disabled: no pods/exec");
    assert!(exec_granted(&helm_template(&[])), "hooks enabled by default: pods/exec granted");
    let env = container["env"].as_sequence().unwrap();
    assert!(env.iter().any(|e| e["name"] == "RUST_LOG" && e["value"] == "info,datarestor_operator=debug"));
    assert!(env.iter().any(|e| e["name"] == "HTTPS_PROXY"));
    assert_eq!(of("ServiceMonitor")["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(of("PodDisruptionBudget")["spec"]["minAvailable"], 1);

    // The chart's arguments parse, also with an `extraArgs` flag the chart already sets (the last
    // one wins): the process gets as far as connecting to the cluster.
    let mut run_args: Vec<&str> = args.clone();
    run_args.extend(["--job-deadline-seconds=60", "--crd-timeout-seconds=1"]);
    let started = Command::new(env!("CARGO_BIN_EXE_datarestor-operator"))
        .args(&run_args)
        .arg("--log-format=text")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("POD_NAMESPACE", "backup-ops")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&started.stdout), String::from_utf8_lossy(&started.stderr));
    assert!(!said.contains("Usage:") && said.contains("cannot start"), "{said}");

    // Every flag the chart passes is one the operator accepts.
    let binary = env!("CARGO_BIN_EXE_datarestor-operator");
    let help = Command::new(binary).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        let flag = arg.split('=').next().unwrap();
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "the chart passes {flag}, which `run` does not know"
        );
    }
}

#[test]
fn helm_chart_probes_and_scrapes_the_metrics_port() {
    let objects = helm_template(&["metrics.port=9090"]);
    assert!(!objects.iter().any(|o| o["kind"] == "PrometheusRule" || o["kind"] == "ServiceMonitor"), "off by default");
    let deployment = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert!(args.contains(&"--metrics-listen=0.0.0.0:9090"), "{args:?}");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let ports = container["ports"].as_sequence().unwrap();
    assert!(ports.iter().any(|p| p["name"] == "http-metrics" && p["containerPort"] == 9090));

    assert!(args.contains(&"--leader-election-lease=datarestor-operator"), "{args:?}");
    assert!(!objects.iter().any(|o| o["kind"] == "PodDisruptionBudget"), "no PDB for a single replica (it would block drains)");
    let standbys = helm_template(&["replicas=2"]);
    let pdb = standbys.iter().find(|o| o["kind"] == "PodDisruptionBudget").expect("a PDB with standbys");
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    // Two replicas without leader election would both act: refused.
    let output = Command::new(helm())
        .args(["template", "x", "charts/datarestor-operator", "--set", "replicas=2", "--set", "leaderElection.enabled=false"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("needs leaderElection.enabled"));

    // A duration the alerts cannot use is refused at install time, not turned into a wrong alert.
    let output = Command::new(helm())
        .args(["template", "x", "charts/datarestor-operator", "--set", "metrics.prometheusRule.enabled=true"])
        .args(["--set", "metrics.prometheusRule.backupGrace=soon"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("backupGrace"), "{}", String::from_utf8_lossy(&output.stderr));

    // values.schema.json: a misspelled value is refused, not silently ignored.
    let output = Command::new(helm())
        .args(["template", "x", "charts/datarestor-operator", "--set", "replica=2"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("'replica' not allowed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Metrics with a sample in every family: after a backup, a failed reconcile, a running Task that
/// holds a workload down and a PVC waiting for its restore.
fn serving_every_family() -> datarestor_operator::metrics::Metrics {
    use datarestor_operator::api::{ClusterWide, Config, Task, TaskPhase};
    use datarestor_operator::metrics::{ClusterView, Metrics};
    let metrics = Metrics::new();
    let config: Config = serde_json::from_value(serde_json::json!({
        "apiVersion": "backup.datarestor-operator.com/v1alpha1", "kind": "Config",
        "metadata": {"name": "backup", "namespace": "backup-system"},
        "spec": {"repositories": [{"target": "s3:http://s3/a", "priority": 1}], "selectors": [{"matchNamespaces": ["shop"]}]},
        "status": {"repositories": [{"target": "s3:http://s3/a", "priority": 1, "ready": true,
            "lastIntegrityCheck": {"time": "2026-03-01T05:00:00Z", "result": "Passed", "job": "check-x"}}]},
    }))
    .unwrap();
    let pvc = |name: &str, annotations: serde_json::Value| -> k8s_openapi::api::core::v1::PersistentVolumeClaim {
        serde_json::from_value(serde_json::json!({"metadata": {
            "name": name, "namespace": "shop", "creationTimestamp": "2026-11-01T00:00:00Z", "annotations": annotations,
        }}))
        .unwrap()
    };
    let pvcs = [
        pvc("data", serde_json::json!({})),
        pvc("new", serde_json::json!({"backup.datarestor-operator.com/restore-state": "Pending"})),
    ];
    let task = |phase: &str, extra: serde_json::Value| -> Task {
        let mut status = serde_json::json!({"phase": phase, "repository": "s3:http://s3/a", "startTime": "2026-11-20T02:00:00Z"});
        status.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(serde_json::json!({
            "apiVersion": "backup.datarestor-operator.com/v1alpha1", "kind": "Task",
            "metadata": {"name": format!("data-{phase}"), "namespace": "shop"},
            "spec": {"type": "backup", "trigger": "scheduled", "pvcName": "data", "host": "h",
                     "configRef": {"name": "backup", "namespace": "backup-system"}},
            "status": status,
        }))
        .unwrap()
    };
    let done =
        task("Completed", serde_json::json!({"completionTime": "2026-11-20T02:01:00Z", "bytesProcessed": 10, "bytesAdded": 5}));
    let running = task("Running", serde_json::json!({"quiescedWorkloads": ["Deployment/web"]}));
    metrics.reconciled("task");
    metrics.reconcile_failed("task", "KubernetesApi");
    metrics.task_finished(
        &done.spec,
        TaskPhase::Completed,
        Some("2026-11-20T02:00:00Z".parse().unwrap()),
        jiff::Timestamp::now(),
    );
    metrics.backup_stored(10, 5);
    metrics.set_leader(true);
    metrics.snapshot_listing().observe(0.2);
    let cluster_wide = ClusterWide::new(vec!["backup-system".into()]);
    let view = ClusterView {
        configs: &[&config],
        pvcs: &[&pvcs[0], &pvcs[1]],
        tasks: &[&done, &running],
        cluster_wide: &cluster_wide,
        now: jiff::Timestamp::now(),
    };
    futures::executor::block_on(metrics.render(|m| m.observe(&view)));
    metrics
}

#[test]
fn helm_lint_strict_passes_with_default_and_all_options_values() {
    for values in [None, Some("charts/datarestor-operator/ci/all-options-values.yaml")] {
        let mut lint = Command::new(helm());
        lint.args(["lint", "--strict", "charts/datarestor-operator"]).current_dir(root());
        if let Some(values) = values {
            lint.args(["-f", values]);
        }
        let output = lint.output().unwrap();
        assert!(
            output.status.success(),
            "helm lint --strict ({values:?}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
