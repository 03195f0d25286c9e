#!/usr/bin/env bash
# The DataRestor story on a local simulated cluster: kube-sim (a Kubernetes API server emulator),
# a moto S3 server, real restic and the operator, all on loopback. It backs an app's volume up,
# destroys the namespace, re-applies the same YAML and shows the data coming back before the app
# starts. Then it leaves everything running for you to explore, until Ctrl-C.
#
#   bash e2e/demo.sh            # narrate, then keep running
#   bash e2e/demo.sh --exit     # narrate and stop (used by the e2e suite)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KEEP_RUNNING=1
[ "${1:-}" = --exit ] && KEEP_RUNNING=0

# What a fresh machine lacks is installed first (restic, bubblewrap, moto's S3 server), as .ci/run does.
for tool in restic bwrap moto_server curl; do
  command -v "$tool" >/dev/null || { bash "$ROOT/e2e/install-tools.sh" restic bubblewrap curl && break; }
done
for tool in kubectl restic bwrap moto_server python3 curl cargo; do
  command -v "$tool" >/dev/null || { echo "demo: '$tool' is required and could not be installed (see .ci/run)" >&2; exit 2; }
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[36m$ %s\033[0m\n' "$*"; eval "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_until() { # SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "demo: timed out waiting for $what" >&2; exit 1; }
    sleep 0.5
  done
}

say "Building kube-sim and the operator"
(cd "$ROOT" && cargo build --quiet -p kube-sim --bin kube-sim -p datarestor-operator --bin datarestor-operator)
TARGET="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug"
WORK="$(mktemp -d -t datarestor-demo.XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S3_PORT="$(free_port)"; API_PORT="$(free_port)"; WEBHOOK_PORT="$(free_port)"
moto_server -H 127.0.0.1 -p "$S3_PORT" >"$WORK/s3.log" 2>&1 & PIDS+=($!)
"$TARGET/kube-sim" --listen "127.0.0.1:$API_PORT" --state-dir "$WORK/cluster" --kubeconfig "$WORK/kubeconfig" --nodes 2 \
  --pod-grace-seconds 1 >"$WORK/kube-sim.log" 2>&1 & PIDS+=($!)
export KUBECONFIG="$WORK/kubeconfig"
wait_until 30 "the S3 server" curl -fsS -o /dev/null "http://127.0.0.1:$S3_PORT"
wait_until 30 "kube-sim" kubectl get namespaces
export AWS_ACCESS_KEY_ID=demo-access-key AWS_SECRET_ACCESS_KEY=demo-secret-key
S3="http://127.0.0.1:$S3_PORT"

say "Installing DataRestor: the CRDs, then the operator (with its restore-gate webhook)"
run kubectl apply -f "$ROOT/config/crd/bases"
"$TARGET/datarestor-operator" run --webhook-listen "127.0.0.1:$WEBHOOK_PORT" --webhook-url "https://127.0.0.1:$WEBHOOK_PORT" \
  --restic-cache "$WORK/restic-cache" >"$WORK/operator.log" 2>&1 & PIDS+=($!)

say "Applying the original README's example Config (its two targets pointed at the local S3 server, a restic password added from a Secret)"
run kubectl create namespace backup-system
run kubectl create secret generic restic -n backup-system --from-literal=password=demo-restic-password
sed -e "s|s3:s3.amazonaws.com/my-bucket/backups|s3:$S3/my-bucket/backups|" -e "s|s3:http://minio:9000/backup-bucket|s3:$S3/backup-bucket|" \
  -e 's|your-access-key-here|demo-access-key|; s|your-secret-key-here|demo-secret-key|; s|minio-access-key|demo-access-key|; s|minio-secret-key|demo-secret-key|' \
  "$ROOT/examples/config.yaml" >"$WORK/config.yaml"
cat >>"$WORK/config.yaml" <<'YAML'
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic, key: password}}
YAML
run kubectl apply -f "$WORK/config.yaml"
wait_until 90 "the Config to be Ready" bash -c "[ \"\$(kubectl get config my-backup-config -n backup-system -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status}')\" = True ]"
run kubectl get configs -n backup-system

cat >"$WORK/app.yaml" <<'YAML'
apiVersion: v1
kind: Namespace
metadata: {name: production}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: notes, namespace: production, labels: {app: my-app}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: notes, namespace: production}
spec:
  replicas: 1
  selector: {matchLabels: {app: my-app}}
  template:
    metadata: {labels: {app: my-app}}
    spec:
      containers: [{name: notes, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: notes}}]
YAML
say "Deploying an app with a volume (there is no snapshot of it yet, so it starts at once, empty)"
run kubectl apply -f "$WORK/app.yaml"
run kubectl wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/notes -n production --timeout=60s
volume() { kubectl get pv "$(kubectl get pvc notes -n production -o 'jsonpath={.spec.volumeName}')" -o 'jsonpath={.spec.hostPath.path}'; }
say "Writing data into the volume (kube-sim keeps each volume in a directory: $(volume))"
echo "meeting notes, $(date -u)" >"$(volume)/notes.txt"
run cat "$(volume)/notes.txt"

say "Backing it up by hand before the 'upgrade'"
run kubectl annotate pvc notes -n production backup.datarestor-operator.com/manual-backup=pre-upgrade
wait_until 90 "the backup" bash -c "kubectl get tasks -n production -o 'jsonpath={.items[*].status.phase}' | grep -q Completed"
run kubectl get tasks -n production
run kubectl get pvc notes -n production -o "jsonpath='{.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result}{\"\\n\"}'"

say "Disaster: the namespace is deleted, and the volume's data with it"
run kubectl delete namespace production --wait=true
say "Recovery: re-apply the very same YAML"
run kubectl apply -f "$WORK/app.yaml"
wait_until 30 "the new PVC" kubectl get pvc notes -n production
run kubectl get pods -n production -o "custom-columns=POD:.metadata.name,GATES:.spec.schedulingGates[*].name,NODE:.spec.nodeName"
echo "(the app's pod is held by the restore gate while its volume is restored)"
wait_until 120 "the restore" bash -c "kubectl get pvc notes -n production -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-state}' | grep -q Released"
run kubectl get tasks -n production
run kubectl get pvc notes -n production -o "jsonpath='{.metadata.annotations.backup\.datarestor-operator\.com/restore-message}{\"\\n\"}'"
run kubectl wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/notes -n production --timeout=60s
say "The data came back before the app started"
run cat "$(volume)/notes.txt"

if [ "$KEEP_RUNNING" = 1 ]; then
  say "Everything keeps running. In another shell:"
  echo "  export KUBECONFIG=$KUBECONFIG"
  echo "  kubectl get configs,tasks -A; kubectl describe pvc notes -n production"
  echo "Press Ctrl-C to stop."
  while :; do sleep 3600; done
fi
echo "demo finished"
