//! The simulated cluster: volume binding, workloads, scheduling, RWO enforcement, graceful pod
//! deletion, garbage collection and the Job runner (real processes under bubblewrap).

mod common;

use std::path::PathBuf;

use common::{require_tool, wait_for, Sim};
use serde_json::Value;

fn pv_dir(sim: &Sim, claim: &str) -> PathBuf {
    let pvc = sim.get(&["pvc", claim]).unwrap();
    let pv = sim.get(&["pv", pvc["spec"]["volumeName"].as_str().unwrap()]).unwrap();
    PathBuf::from(pv["spec"]["hostPath"]["path"].as_str().unwrap())
}

fn wait_bound(sim: &Sim, claim: &str) {
    sim.k(&["wait", "--for=jsonpath={.status.phase}=Bound", &format!("pvc/{claim}"), "--timeout=20s"]);
}

const PVC: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: NAME}\nspec:\n  accessModes: [MODE]\n  resources: {requests: {storage: 2Gi}}\n";

fn pvc(name: &str, mode: &str) -> String {
    PVC.replace("NAME", name).replace("MODE", mode)
}

#[test]
fn pvc_binding_provisions_a_host_directory_and_reclaims_it() {
    require_tool("kubectl");
    let sim = Sim::start();
    sim.apply(&pvc("data", "ReadWriteOnce"));
    wait_bound(&sim, "data");
    let c = sim.get(&["pvc", "data"]).unwrap();
    assert_eq!(c["status"]["accessModes"], serde_json::json!(["ReadWriteOnce"]));
    assert_eq!(c["status"]["capacity"]["storage"], "2Gi");
    let pv = sim.get(&["pv", c["spec"]["volumeName"].as_str().unwrap()]).unwrap();
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["name"], "data");
    assert_eq!(pv["spec"]["accessModes"], serde_json::json!(["ReadWriteOnce"]));
    let dir = pv_dir(&sim, "data");
    assert!(dir.is_dir() && dir.starts_with(sim.state_dir()));
    std::fs::write(dir.join("file"), "x").unwrap();
    sim.k(&["delete", "pvc", "data", "--timeout=20s"]);
    wait_for(10, "PV and its directory to be reclaimed", || {
        (!dir.exists() && sim.k(&["get", "pv", "-o", "name"]).trim().is_empty()).then_some(())
    });
}

#[test]
fn deployments_statefulsets_scale_and_graceful_pod_deletion() {
    require_tool("kubectl");
    let sim = Sim::start_with(&["--pod-grace-seconds", "4"]);
    sim.apply(
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
"#,
    );
    sim.k(&["wait", "--for=jsonpath={.status.readyReplicas}=2", "sts/db", "--timeout=30s"]);
    sim.k(&["wait", "--for=jsonpath={.status.readyReplicas}=3", "deploy/web", "--timeout=30s"]);
    for i in 0..2 {
        let p = sim.get(&["pod", &format!("db-{i}")]).unwrap();
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert!(p["spec"]["nodeName"].as_str().is_some_and(|n| n.starts_with("sim-node-")));
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], format!("data-db-{i}"));
        wait_bound(&sim, &format!("data-db-{i}"));
    }
    let rs = sim.get(&["rs", "-l", "app=web"]).unwrap();
    assert_eq!(rs["items"].as_array().unwrap().len(), 1);
    let pods = sim.get(&["pods", "-l", "app=web"]).unwrap();
    assert!(pods["items"].as_array().unwrap().iter().all(|p| p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"));

    // Scale to zero: OrderedReady removes db-1 completely before touching db-0; a deleted pod is
    // unready at once but lingers for its grace period.
    sim.k(&["scale", "sts/db", "--replicas=0"]);
    sim.k(&["wait", "--for=jsonpath={.status.readyReplicas}=1", "sts/db", "--timeout=10s"]);
    let p = sim.get(&["pod", "db-1"]).expect("db-1 still terminating");
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    assert!(sim.get(&["pod", "db-0"]).unwrap()["metadata"].get("deletionTimestamp").is_none(), "db-0 waits for db-1");
    sim.k(&["wait", "--for=jsonpath={.status.readyReplicas}=0", "sts/db", "--timeout=20s"]);
    let p = sim.get(&["pod", "db-0"]).expect("db-0 still terminating");
    assert!(p["metadata"]["deletionTimestamp"].is_string());
    wait_for(20, "statefulset pods gone", || sim.get(&["pod", "db-0"]).is_none().then_some(()));
    assert_eq!(sim.get(&["sts", "db"]).unwrap()["status"]["replicas"], 0);
    assert!(sim.get(&["pvc", "data-db-0"]).is_some(), "claims are retained");
    sim.k(&["scale", "deploy/web", "--replicas=1"]);
    sim.k(&["wait", "--for=jsonpath={.status.replicas}=1", "deploy/web", "--timeout=20s"]);
}

#[test]
fn scheduling_gates_keep_pods_unscheduled() {
    require_tool("kubectl");
    let sim = Sim::start();
    sim.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: gated}\nspec:\n  schedulingGates: [{name: example.com/wait}]\n  containers: [{name: c, image: x}]\n");
    let cond = wait_for(10, "PodScheduled=False/SchedulingGated", || {
        let p = sim.get(&["pod", "gated"]).unwrap();
        p["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "PodScheduled").cloned()
    });
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str()), (Some("False"), Some("SchedulingGated")));
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let p = sim.get(&["pod", "gated"]).unwrap();
    assert!(p["spec"].get("nodeName").is_none());
    assert_eq!(p["status"]["phase"], "Pending");
    sim.k(&["patch", "pod", "gated", "--type=json", "-p", r#"[{"op":"remove","path":"/spec/schedulingGates"}]"#]);
    sim.k(&["wait", "--for=condition=Ready", "pod/gated", "--timeout=10s"]);
}

#[test]
fn rwo_claim_blocks_a_pod_on_another_node_until_free() {
    require_tool("kubectl");
    let sim = Sim::start_with(&["--pod-grace-seconds", "1"]);
    sim.apply(&pvc("shared", "ReadWriteOnce"));
    wait_bound(&sim, "shared");
    let pod = |name: &str, node: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeSelector: {{kubernetes.io/hostname: {node}}}\n  containers: [{{name: c, image: x}}]\n  volumes: [{{name: v, persistentVolumeClaim: {{claimName: shared}}}}]\n")
    };
    sim.apply(&pod("first", "sim-node-1"));
    sim.k(&["wait", "--for=condition=Ready", "pod/first", "--timeout=10s"]);
    sim.apply(&pod("same-node", "sim-node-1"));
    sim.k(&["wait", "--for=condition=Ready", "pod/same-node", "--timeout=10s"]);
    sim.apply(&pod("second", "sim-node-2"));
    wait_for(10, "Multi-Attach event", || {
        let evs = sim.get(&["events", "--field-selector", "involvedObject.name=second"]).unwrap();
        evs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| {
                e["reason"] == "FailedAttachVolume"
                    && e["type"] == "Warning"
                    && e["message"].as_str().unwrap().contains("Multi-Attach")
            })
            .then_some(())
    });
    let p = sim.get(&["pod", "second"]).unwrap();
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
    // A required pod affinity on the hostname co-locates a pod with the claim's user.
    sim.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: buddy, labels: {role: buddy}}\nspec:\n  nodeSelector: {kubernetes.io/hostname: sim-node-1}\n  containers: [{name: c, image: x}]\n");
    sim.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: follower}\nspec:\n  affinity:\n    podAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {role: buddy}}}\n  containers: [{name: c, image: x}]\n");
    sim.k(&["wait", "--for=condition=Ready", "pod/follower", "--timeout=10s"]);
    assert_eq!(sim.get(&["pod", "follower"]).unwrap()["spec"]["nodeName"], "sim-node-1");
    sim.k(&["delete", "pod", "first", "same-node", "--timeout=20s"]);
    sim.k(&["wait", "--for=condition=Ready", "pod/second", "--timeout=20s"]);
}

#[test]
fn garbage_collection_background_foreground_orphan() {
    require_tool("kubectl");
    let sim = Sim::start();
    let owner = |name: &str| sim.apply(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n"));
    let dependent = |name: &str, owner: &str| {
        let uid = sim.get(&["cm", owner]).unwrap()["metadata"]["uid"].as_str().unwrap().to_string();
        sim.apply(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences: [{{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {uid}, blockOwnerDeletion: true}}]\n"
        ));
    };
    for mode in ["background", "foreground", "orphan"] {
        owner(&format!("{mode}-owner"));
        dependent(&format!("{mode}-dep"), &format!("{mode}-owner"));
        sim.k(&["delete", "cm", &format!("{mode}-owner"), &format!("--cascade={mode}"), "--wait=false"]);
    }
    wait_for(10, "background dependent collected", || sim.get(&["cm", "background-dep"]).is_none().then_some(()));
    wait_for(10, "foreground owner and dependent gone", || {
        (sim.get(&["cm", "foreground-dep"]).is_none() && sim.get(&["cm", "foreground-owner"]).is_none()).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let orphan = sim.get(&["cm", "orphan-dep"]).expect("orphaned dependent stays");
    assert!(orphan["metadata"].get("ownerReferences").is_none());

    // Foreground: while a dependent is held by a finalizer, the owner waits with foregroundDeletion.
    owner("fg2");
    dependent("fg2-dep", "fg2");
    sim.k(&["patch", "cm", "fg2-dep", "--type=merge", "-p", r#"{"metadata":{"finalizers":["test/hold"]}}"#]);
    sim.k(&["delete", "cm", "fg2", "--cascade=foreground", "--wait=false"]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let o = sim.get(&["cm", "fg2"]).expect("owner waits for dependents");
    assert!(o["metadata"]["finalizers"].as_array().unwrap().iter().any(|f| f == "foregroundDeletion"));
    sim.k(&["patch", "cm", "fg2-dep", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    wait_for(10, "foreground owner gone", || sim.get(&["cm", "fg2"]).is_none().then_some(()));
}

#[test]
fn job_runs_the_container_command_with_env_volumes_and_logs() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start();
    sim.apply(&pvc("work", "ReadWriteOnce"));
    sim.k(&["create", "secret", "generic", "creds", "--from-literal=password=hunter2", "--from-literal=USER=alice"]);
    sim.k(&["create", "configmap", "settings", "--from-literal=mode=fast", "--from-literal=greeting=hello"]);
    sim.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: runner}
spec:
  backoffLimit: 0
  template:
    metadata: {labels: {extra: label}}
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: ignored
        workingDir: /data/sub
        command: [sh, -c]
        args:
        - |
          set -e
          echo "pw=$PASSWORD user=$USER mode=$MODE cfg_greeting=$CFG_greeting pod=$POD ns=$NS plain=$PLAIN"
          echo "cwd=$(pwd)"
          cat /etc/creds/password; echo
          echo written > /data/out.txt
          echo to-stderr >&2
        env:
        - {name: PLAIN, value: "p"}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: creds, key: password}}
        - name: MODE
          valueFrom: {configMapKeyRef: {name: settings, key: mode}}
        - name: POD
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - name: NS
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
        envFrom:
        - secretRef: {name: creds}
        - configMapRef: {name: settings}
          prefix: CFG_
        volumeMounts:
        - {name: data, mountPath: /data}
        - {name: secret, mountPath: /etc/creds, readOnly: true}
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: work}
      - name: secret
        secret: {secretName: creds}
"#,
    );
    wait_bound(&sim, "work");
    sim.k(&["wait", "--for=condition=Complete", "job/runner", "--timeout=30s"]);
    let logs = sim.k(&["logs", "job/runner"]);
    let pod = sim.get(&["pods", "-l", "job-name=runner"]).unwrap()["items"][0].clone();
    let pod_name = pod["metadata"]["name"].as_str().unwrap();
    assert!(
        logs.contains(&format!("pw=hunter2 user=alice mode=fast cfg_greeting=hello pod={pod_name} ns=default plain=p")),
        "{logs}"
    );
    assert!(logs.contains("cwd=/data/sub"), "{logs}");
    assert!(logs.contains("hunter2\n"), "{logs}");
    assert!(logs.contains("to-stderr"), "{logs}");
    assert_eq!(std::fs::read_to_string(pv_dir(&sim, "work").join("out.txt")).unwrap(), "written\n");
    assert_eq!(pod["metadata"]["labels"]["extra"], "label");
    assert!(pod["metadata"]["labels"]["controller-uid"].is_string());
    assert_eq!(pod["status"]["phase"], "Succeeded");
    assert_eq!(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
    assert_eq!(pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
    let job = sim.get(&["job", "runner"]).unwrap();
    assert_eq!((job["status"]["succeeded"].as_i64(), job["status"]["active"].as_i64()), (Some(1), Some(0)));
    assert!(job["status"]["completionTime"].is_string() && job["status"]["startTime"].is_string());
}

fn job(name: &str, extra_spec: &str, script: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n{extra_spec}  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: x\n        command: [sh, -c, {script:?}]\n"
    )
}

fn condition(job: &Value, ty: &str) -> Option<(String, String)> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty && c["status"] == "True")
        .map(|c| (c["reason"].as_str().unwrap_or("").to_string(), c["message"].as_str().unwrap_or("").to_string()))
}

#[test]
fn job_backoff_limit_deadline_and_ttl() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start_with(&["--pod-grace-seconds", "1"]);
    sim.apply(&job("fails", "  backoffLimit: 2\n", "echo failing; exit 3"));
    sim.apply(&job("slow", "  activeDeadlineSeconds: 2\n", "sleep 60"));
    sim.apply(&job("short", "  ttlSecondsAfterFinished: 1\n", "true"));
    // kubectl create job sends a protobuf body.
    sim.k(&["create", "job", "created", "--image=busybox", "--", "sh", "-c", "echo made by kubectl create"]);
    sim.k(&["wait", "--for=condition=Complete", "job/created", "--timeout=30s"]);
    assert_eq!(sim.k(&["logs", "job/created"]), "made by kubectl create\n");
    sim.k(&["wait", "--for=condition=Failed", "job/fails", "--timeout=30s"]);
    let j = sim.get(&["job", "fails"]).unwrap();
    assert_eq!(condition(&j, "Failed").unwrap().0, "BackoffLimitExceeded");
    assert_eq!(j["status"]["failed"], 3, "one try plus backoffLimit retries");
    let pods = sim.get(&["pods", "-l", "job-name=fails"]).unwrap();
    let p = &pods["items"][0];
    assert_eq!(p["status"]["phase"], "Failed");
    assert_eq!(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);

    sim.k(&["wait", "--for=condition=Failed", "job/slow", "--timeout=30s"]);
    assert_eq!(condition(&sim.get(&["job", "slow"]).unwrap(), "Failed").unwrap().0, "DeadlineExceeded");
    wait_for(15, "deadline-exceeded pod killed and removed", || {
        sim.get(&["pods", "-l", "job-name=slow"]).unwrap()["items"].as_array().unwrap().is_empty().then_some(())
    });
    wait_for(15, "ttl job deleted", || sim.get(&["job", "short"]).is_none().then_some(()));
}

#[test]
fn deleting_a_job_kills_its_process() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start_with(&["--pod-grace-seconds", "1"]);
    // A distinctive sleep so the process can be found on this machine.
    let script = "echo started; sleep 47.31; echo survived";
    sim.apply(&job("long", "", script));
    wait_for(15, "process started", || sim.k(&["logs", "job/long"]).contains("started").then_some(()));
    let running = || std::process::Command::new("pgrep").args(["-f", "sleep 47.31"]).output().unwrap().status.success();
    assert!(running(), "the job's process runs on this machine");
    sim.k(&["delete", "job", "long", "--cascade=background", "--timeout=20s"]);
    wait_for(15, "job pods gone", || {
        sim.get(&["pods", "-l", "job-name=long"]).unwrap()["items"].as_array().unwrap().is_empty().then_some(())
    });
    wait_for(5, "the process to be killed", || (!running()).then_some(()));
}

#[test]
fn read_only_claims_and_empty_dirs_in_job_pods() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start();
    sim.apply(&pvc("ro", "ReadWriteOnce"));
    wait_bound(&sim, "ro");
    std::fs::write(pv_dir(&sim, "ro").join("existing"), "data\n").unwrap();
    sim.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: reader}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: x
        command: [sh, -c, 'cat /data/existing; echo scratch > /tmp/s && cat /tmp/s; if (echo x > /data/new) 2>/dev/null; then echo WRITABLE; else echo read-only; fi']
        volumeMounts: [{name: data, mountPath: /data}, {name: tmp, mountPath: /tmp}]
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: ro, readOnly: true}}
      - {name: tmp, emptyDir: {}}
"#,
    );
    sim.k(&["wait", "--for=condition=Complete", "job/reader", "--timeout=30s"]);
    assert_eq!(sim.k(&["logs", "job/reader"]), "data\nscratch\nread-only\n");
    assert!(!pv_dir(&sim, "ro").join("new").exists());
}

#[test]
fn drain_cordon_and_node_loss() {
    require_tool("kubectl");
    let sim = Sim::start_with(&["--pod-grace-seconds", "1"]);
    sim.apply(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  replicas: 4\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      containers: [{name: c, image: x}]\n",
    );
    sim.k(&["wait", "--for=jsonpath={.status.readyReplicas}=4", "deploy/app", "--timeout=20s"]);
    let nodes = || -> Vec<String> {
        let pods = sim.get(&["pods", "-l", "app=a"]).unwrap();
        pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(nodes().contains(&"sim-node-1".to_string()), "pods spread over both nodes");
    // drain = cordon + evictions; the replacements land on the other node.
    sim.k(&["drain", "sim-node-1", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=30s"]);
    assert_eq!(sim.get(&["node", "sim-node-1"]).unwrap()["spec"]["unschedulable"], true);
    wait_for(20, "all replicas on sim-node-2", || {
        let n = nodes();
        (n.len() == 4 && n.iter().all(|x| x == "sim-node-2")).then_some(())
    });
    sim.k(&["uncordon", "sim-node-1"]);
    // Losing a node removes its pods; the Deployment replaces them elsewhere.
    sim.k(&["delete", "node", "sim-node-2"]);
    wait_for(20, "all replicas on sim-node-1", || {
        let n = nodes();
        (n.len() == 4 && n.iter().all(|x| x == "sim-node-1")).then_some(())
    });
}

#[test]
fn force_deleting_a_pod_kills_its_process() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start();
    sim.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: forced}\nspec:\n  restartPolicy: Never\n  containers: [{name: c, image: x, command: [sh, -c, 'echo up; sleep 53.17']}]\n");
    wait_for(15, "process started", || sim.k(&["logs", "forced"]).contains("up").then_some(()));
    let running = || std::process::Command::new("pgrep").args(["-f", "sleep 53.17"]).output().unwrap().status.success();
    assert!(running());
    sim.k(&["delete", "pod", "forced", "--grace-period=0", "--force"]);
    assert!(sim.get(&["pod", "forced"]).is_none(), "force deletion removes the pod at once");
    wait_for(5, "the process to be killed", || (!running()).then_some(()));
}

#[test]
fn on_failure_jobs_restart_containers_in_place() {
    require_tool("kubectl");
    require_tool("bwrap");
    let sim = Sim::start();
    let job = |name: &str, backoff: u32, script: &str| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  backoffLimit: {backoff}\n  template:\n    spec:\n      restartPolicy: OnFailure\n      containers:\n      - {{name: c, image: x, command: [sh, -c, {script:?}], volumeMounts: [{{name: scratch, mountPath: /scratch}}]}}\n      volumes: [{{name: scratch, emptyDir: {{}}}}]\n"
        )
    };
    // Fails twice (the emptyDir keeps the count across restarts), then succeeds.
    sim.apply(&job(
        "flaky",
        3,
        "n=$(cat /scratch/n 2>/dev/null || echo 0); echo $((n+1)) > /scratch/n; echo try $n; [ $n -ge 2 ]",
    ));
    sim.apply(&job("hopeless", 1, "echo nope; exit 1"));
    sim.k(&["wait", "--for=condition=Complete", "job/flaky", "--timeout=30s"]);
    let pods = sim.get(&["pods", "-l", "job-name=flaky"]).unwrap();
    let items = pods["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "restarts happen inside one pod");
    assert_eq!(items[0]["status"]["containerStatuses"][0]["restartCount"], 2);
    assert_eq!(sim.k(&["logs", "job/flaky"]), "try 0\ntry 1\ntry 2\n");
    sim.k(&["wait", "--for=condition=Failed", "job/hopeless", "--timeout=30s"]);
    let j = sim.get(&["job", "hopeless"]).unwrap();
    assert_eq!(condition(&j, "Failed").unwrap().0, "BackoffLimitExceeded");
}
