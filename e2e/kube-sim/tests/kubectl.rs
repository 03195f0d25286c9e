//! kubectl 1.32 against kube-sim with default settings: apply (client- and server-side), get -w,
//! annotate, label, patch (merge, json, strategic), delete, wait, logs, describe.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{require_tool, wait_for, Sim};
use serde_json::json;

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
        env:
        - {name: A, value: "1"}
      - name: sidecar
        image: busybox
"#;

#[test]
fn apply_reapply_annotate_label_patch_wait_delete() {
    require_tool("kubectl");
    let sim = Sim::start();
    assert!(sim.apply(DEPLOY).contains("deployment.apps/web created"));
    sim.k(&["wait", "--for=condition=Available", "deployment/web", "--timeout=20s"]);
    let d = sim.get(&["deployment", "web"]).unwrap();
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert!(d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string());

    // Re-apply with a changed env and a container removed: a strategic merge patch with directives.
    let changed = DEPLOY.replace("value: \"1\"", "value: \"2\"").replace("      - name: sidecar\n        image: busybox\n", "");
    assert!(sim.apply(&changed).contains("configured"));
    let d = sim.get(&["deployment", "web"]).unwrap();
    let cs = d["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "2"}]));
    assert!(!d.to_string().contains("$setElementOrder"));
    assert!(sim.apply(&changed).contains("unchanged"));

    sim.k(&["annotate", "deployment", "web", "note=hello"]);
    sim.k(&["label", "deployment", "web", "tier=front"]);
    let out = sim.k(&["get", "deployments", "-l", "tier in (front,back)", "-o", "name"]);
    assert_eq!(out.trim(), "deployment.apps/web");
    let out = sim.k(&["get", "deploy", "-l", "tier!=front", "-o", "name"]);
    assert_eq!(out.trim(), "");

    sim.k(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"metadata":{"annotations":{"m":"1"}}}"#]);
    sim.k(&["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"add","path":"/metadata/annotations/j","value":"2"}]"#]);
    sim.k(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}"#,
    ]);
    let d = sim.get(&["deployment", "web"]).unwrap();
    let a = &d["metadata"]["annotations"];
    assert_eq!((a["note"].as_str(), a["m"].as_str(), a["j"].as_str()), (Some("hello"), Some("1"), Some("2")));
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "2", "strategic patch keeps other fields");
    let out =
        sim.kubectl(&["patch", "deployment", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":9}]"#]);
    assert!(!out.status.success(), "a failing json-patch test is rejected");

    sim.k(&["scale", "deployment", "web", "--replicas=1"]);
    sim.k(&["wait", "--for=jsonpath={.status.replicas}=1", "deployment/web", "--timeout=20s"]);
    sim.k(&["delete", "deployment", "web", "--wait=true", "--timeout=20s"]);
    assert!(sim.get(&["deployment", "web"]).is_none());
    wait_for(20, "pods of the deleted deployment to go", || {
        sim.k(&["get", "pods", "-o", "name"]).trim().is_empty().then_some(())
    });
}

#[test]
fn server_side_apply_and_wait_for_delete() {
    require_tool("kubectl");
    let sim = Sim::start();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
    let out = sim.kubectl_stdin(&["apply", "--server-side", "-f", "-"], Some(cm));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = sim.kubectl_stdin(&["apply", "--server-side", "--force-conflicts", "-f", "-"], Some(&cm.replace("\"1\"", "\"2\"")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sim.get(&["cm", "ssa"]).unwrap()["data"]["a"], "2");

    // kubectl create sends protobuf bodies.
    sim.k(&["create", "secret", "generic", "pw", "--from-literal=password=s3cr3t"]);
    assert_eq!(sim.get(&["secret", "pw"]).unwrap()["data"]["password"], "czNjcjN0");
    sim.k(&["create", "serviceaccount", "robot"]);
    assert_eq!(sim.k(&["auth", "can-i", "delete", "pvc", "--as", "system:serviceaccount:default:robot"]).trim(), "yes");
    sim.k(&["create", "deployment", "made", "--image=nginx", "--replicas=2", "--port=80"]);
    sim.k(&["wait", "--for=condition=Available", "deployment/made", "--timeout=20s"]);
    assert_eq!(sim.get(&["deploy", "made"]).unwrap()["status"]["readyReplicas"], 2);
    sim.k(&["create", "namespace", "tmp"]);
    sim.k(&["create", "configmap", "x", "-n", "tmp", "--from-literal=k=v"]);
    sim.k(&["delete", "namespace", "tmp", "--wait=false"]);
    sim.k(&["wait", "--for=delete", "namespace/tmp", "--timeout=20s"]);
    let out = sim.kubectl(&["get", "cm", "x", "-n", "tmp"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}

#[test]
fn get_watch_streams_changes() {
    require_tool("kubectl");
    let sim = Sim::start();
    // A sentinel seen in the output shows the watch is established; output goes to a file so it
    // can be polled while kubectl runs.
    sim.k(&["create", "configmap", "sentinel"]);
    let out_path = sim.dir.path().join("watch.out");
    let mut child = Command::new("kubectl")
        .args([
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name",
            "--request-timeout=0",
        ])
        .env("KUBECONFIG", &sim.kubeconfig)
        .env("KUBECACHEDIR", sim.dir.path().join("kube-cache"))
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = || -> Vec<String> {
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect()
    };
    wait_for(20, "the watch to start", || lines().iter().any(|l| l == "ADDED sentinel").then_some(()));
    sim.k(&["create", "configmap", "watched", "--from-literal=a=b"]);
    sim.k(&["label", "configmap", "watched", "x=y"]);
    sim.k(&["delete", "configmap", "watched"]);
    wait_for(20, "the DELETED event", || lines().iter().any(|l| l == "DELETED watched").then_some(()));
    child.kill().unwrap();
    let _ = child.wait();
    let lines = lines();
    for want in ["ADDED watched", "MODIFIED watched", "DELETED watched"] {
        assert!(lines.iter().any(|l| l == want), "missing {want:?} in {lines:?}");
    }
}

#[test]
fn describe_logs_and_crd_printing() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start();
    sim.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: hello}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: [sh, -c]
        args: ["echo line1; echo line2 >&2"]
"#,
    );
    sim.k(&["wait", "--for=condition=Complete", "job/hello", "--timeout=30s"]);
    let logs = sim.k(&["logs", "job/hello"]);
    assert_eq!(logs, "line1\nline2\n");
    let tail = sim.k(&["logs", "job/hello", "--tail=1"]);
    assert_eq!(tail, "line2\n");
    // logs -f streams a running process's output and returns when it exits.
    sim.apply("apiVersion: batch/v1\nkind: Job\nmetadata: {name: slow}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: x, command: [sh, -c, 'for i in 1 2 3; do echo tick $i; sleep 0.4; done']}]\n");
    wait_for(10, "slow job running", || {
        let pods = sim.get(&["pods", "-l", "job-name=slow"]).unwrap();
        (pods["items"][0]["status"]["phase"] == "Running").then_some(())
    });
    let t0 = std::time::Instant::now();
    let followed = sim.k(&["logs", "-f", "job/slow"]);
    assert_eq!(followed, "tick 1\ntick 2\ntick 3\n");
    assert!(t0.elapsed() < Duration::from_secs(10));
    let desc = sim.k(&["describe", "job", "hello"]);
    assert!(desc.contains("Succeeded"), "{desc}");
    let pods = sim.k(&["get", "pods", "-l", "job-name=hello", "-o", "jsonpath={.items[0].status.phase}"]);
    assert_eq!(pods, "Succeeded");
}

#[test]
fn get_prints_server_side_tables() {
    require_tool("kubectl");
    let sim = Sim::start();
    sim.apply(
        r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status:
            type: object
            properties:
              conditions: {type: array, items: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
    );
    sim.k(&["wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=10s"]);
    let out = sim.kubectl_stdin(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: bad}\nspec: {size: 1, colour: red}\n"),
    );
    assert!(!out.status.success(), "kubectl's default fieldValidation=Strict rejects unknown fields");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"spec.colour\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sim.kubectl_stdin(
        &["apply", "--validate=false", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: lax}\nspec: {size: 1, colour: red}\n"),
    );
    assert!(out.status.success(), "without strict validation unknown fields are pruned");
    assert!(sim.get(&["gadget", "lax"]).unwrap()["spec"].get("colour").is_none());
    sim.apply("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 7}\n");
    sim.k(&[
        "patch",
        "gadget",
        "g1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ]);
    let out = sim.k(&["get", "gadgets"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "SIZE", "READY", "AGE"], "{out}");
    assert_eq!(&lines[1][..3], ["g1", "7", "True"], "{out}");

    sim.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: x}]\n");
    sim.k(&["wait", "--for=condition=Ready", "pod/p", "--timeout=10s"]);
    let out = sim.k(&["get", "pods", "-o", "wide"]);
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"], "{out}");
    assert_eq!(&lines[1][..4], ["p", "1/1", "Running", "0"], "{out}");
    assert!(lines[1][6].starts_with("sim-node-"));
}
