# dr-full: two apps (a Deployment with one PVC, a StatefulSet with two) write data and are backed
# up; the namespace is deleted and every volume's data is gone; the same YAML is applied again,
# the Config first and then the apps, and once the apps first and then the Config. The apps end
# Running with their original replicas on byte-identical data, their pods never ran on a volume
# that was about to be restored, and no backup ran on an empty volume.
# e2e-timeout: 420

source "$E2E_DIR/datarestor.sh"
# block-volume-dr runs this scenario with STORAGE_CLASS=ext4.
CLASS_LINE=""
[ -z "${STORAGE_CLASS:-}" ] || CLASS_LINE="storageClassName: $STORAGE_CLASS"
install_datarestor
config_yaml() {
  write_config shop "$(cat <<'YAML'
  stopPods: true
  autoRestore: true
  selectors:
    - matchNamespaces: [shop]
YAML
)"
}
apps_yaml() {
  k get namespace shop >/dev/null 2>&1 || k create namespace shop >/dev/null
  kapply >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data, namespace: shop}
spec:
  $CLASS_LINE
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /usr/share/nginx/html}]}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: web-data}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      $CLASS_LINE
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
YAML
}
PVCS="web-data data-db-0 data-db-1"
apps_ready() {
  k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n shop --timeout="${1:-120}s" >/dev/null
  k wait --for=jsonpath='{.status.readyReplicas}'=2 statefulset/db -n shop --timeout="${1:-120}s" >/dev/null
}

config_yaml
start_datarestor
wait_config_ready
apps_yaml
apps_ready
for pvc in $PVCS; do
  wait_for 30 "$pvc released as new" released shop "$pvc"
  fill_volume shop "$pvc"
done
k annotate config backup -n backup-system backup.datarestor-operator.com/manual-backup=before-disaster >/dev/null
for pvc in $PVCS; do wait_task shop "$pvc" backup Completed 120 >/dev/null; done
log "backed up: $(restic_cli snapshots --json --tag name=before-disaster | python3 -c 'import json,sys; print(sorted(s["hostname"] for s in json.load(sys.stdin)))')"

disaster() {
  local dirs=""
  for pvc in $PVCS; do dirs="$dirs $(pvc_host_path "$pvc" shop)"; done
  k delete config backup -n backup-system --wait=true >/dev/null
  k delete namespace shop --wait=true --timeout=120s >/dev/null
  for dir in $dirs; do wait_for 30 "volume data gone ($dir)" test ! -e "$dir"; done
}

# verify: every PVC restored byte for byte, apps back at their replicas, pods scheduled only after
# their PVC's restore finished, and no backup Task since the disaster.
verify() {
  for pvc in $PVCS; do
    wait_for 180 "$1: $pvc restored and released" released shop "$pvc"
  done
  apps_ready 180
  for pvc in $PVCS; do
    assert_eq Released "$(restore_state shop "$pvc")" "$pvc released"
    same_tree "$SCENARIO_DIR/original-shop-$pvc" "$(pvc_host_path "$pvc" shop)" "$1: $pvc restored"
  done
  assert_eq 1 "$(jp deployment web .spec.replicas -n shop)" "$1: web replicas"
  assert_eq 2 "$(jp statefulset db .spec.replicas -n shop)" "$1: db replicas"
  assert_eq "" "$(kubectl get tasks -n shop -l backup.datarestor-operator.com/type=backup -o name)" "$1: no backup ran on a fresh volume"
  kubectl get pods,tasks -n shop -o json >"$SCENARIO_DIR/$1.json"
  python3 - "$SCENARIO_DIR/$1.json" <<'PY' || fail "$1: a pod ran before its volume was restored"
import json, sys
items = json.load(open(sys.argv[1]))["items"]
restored = {}
for t in items:
    if t["kind"] == "Task" and t["spec"]["type"] == "restore" and t["status"].get("phase") == "Completed":
        restored[t["spec"]["pvcName"]] = t["status"]["completionTime"]
for p in items:
    if p["kind"] != "Pod" or p["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == "datarestor-operator":
        continue
    claims = [v["persistentVolumeClaim"]["claimName"] for v in p["spec"].get("volumes", []) if "persistentVolumeClaim" in v]
    scheduled = [c["lastTransitionTime"] for c in p["status"].get("conditions", []) if c["type"] == "PodScheduled" and c["status"] == "True"]
    for claim in claims:
        assert claim in restored, f"{claim} has no completed restore Task"
        assert scheduled and scheduled[0] >= restored[claim], (p["metadata"]["name"], scheduled, claim, restored[claim])
print("pods scheduled after their restores:", restored)
PY
}

log "round 1: the Config first, then the apps"
disaster
config_yaml
wait_config_ready
apps_yaml
verify config-first

log "round 2: the apps first, then the Config"
disaster
apps_yaml
sleep 3
config_yaml
verify apps-first
