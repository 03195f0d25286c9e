# Helpers for DataRestor scenarios (sourced by scenario scripts after lib.sh).

RESTIC_PASSWORD_VALUE="e2e-restic-password-$RANDOM$RANDOM"
export REPO="s3:$S3_ENDPOINT/$S3_BUCKET"

# The apps' container: on kube-sim any image "runs"; on the real cluster the image built for the
# suite, with a process that stops at once on SIGTERM, as a well-behaved app does.
APP_CONTAINER="image: \"$APP_IMAGE\", imagePullPolicy: IfNotPresent, command: [sh, -c, 'trap \"exit 0\" TERM; sleep 1000000 & wait']"

# start_s3 NAME PORT: one more moto S3 server for this scenario, its pid in $SCENARIO_DIR/NAME.pid
# (run.sh stops it); in memory, so a restart starts empty.
start_s3() {
  moto_server -H "$S3_HOST" -p "$2" >>"$SCENARIO_DIR/$1.log" 2>&1 &
  echo $! >"$SCENARIO_DIR/$1.pid"
  wait_for 30 "S3 server $1" curl -fsS -o /dev/null "http://$S3_HOST:$2"
}

# install_datarestor: the CRDs, and the Secret the Config reads its credentials from.
install_datarestor() {
  k apply -f "$ROOT/config/crd/bases" >/dev/null
  k wait --for=condition=Established crd/configs.backup.datarestor-operator.com crd/tasks.backup.datarestor-operator.com crd/catalogs.backup.datarestor-operator.com --timeout=30s >/dev/null
  credentials_secret
}

# credentials_secret: namespace backup-system and the Secret `restic-credentials` (password, secret key).
credentials_secret() {
  k create namespace backup-system >/dev/null
  k create secret generic restic-credentials -n backup-system \
    --from-literal=password="$RESTIC_PASSWORD_VALUE" --from-literal=secret-key="$AWS_SECRET_ACCESS_KEY" >/dev/null
}

# write_config NAMESPACES SPEC_TAIL [REPOSITORY_EXTRA]: the Config `backup` in backup-system with
# one repository on the scenario's bucket; the password and secret key come from a Secret, the
# access key is a literal value (both must stay out of every object and log).
write_config() {
  local tail="$2" extra="${3:-}"
  kapply >/dev/null <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: backup, namespace: backup-system}
spec:
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic-credentials, key: password}}
  repositories:
    - target: "$REPO"
      priority: 1
      backupSchedule: "0 2 * * *"
      env:
        - {name: AWS_ACCESS_KEY_ID, value: "$AWS_ACCESS_KEY_ID"}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
$extra
$tail
YAML
}

# two_repository_config FIRST SECOND NAMESPACE: the Config `backup` in backup-system with
# repositories FIRST (priority 1) and SECOND (priority 2), selecting NAMESPACE; credentials as in
# write_config.
two_repository_config() {
  kapply >/dev/null <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: backup, namespace: backup-system}
spec:
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic-credentials, key: password}}
    - {name: AWS_ACCESS_KEY_ID, value: "$AWS_ACCESS_KEY_ID"}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
  repositories:
    - {target: "$1", priority: 1}
    - {target: "$2", priority: 2}
  selectors:
    - matchNamespaces: [$3]
YAML
}

# make_pvc NAMESPACE NAME [LABEL=VALUE]: a bound ReadWriteOnce claim.
make_pvc() {
  local ns="$1" name="$2" label="${3:-}"
  k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
  kapply >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $name
  namespace: $ns
  labels: {${label/=/: }}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML
  wait_for 20 "claim $ns/$name bound" jp_is Bound pvc "$name" .status.phase -n "$ns"
}

# fill_volume NAMESPACE PVC: writes a small tree (nested dirs, a hidden file, binary data) into the
# volume and keeps a copy in $SCENARIO_DIR/original-NAMESPACE-PVC for later comparison.
fill_volume() {
  local dir
  dir="$(pvc_host_path "$2" "$1")"
  mkdir -p "$dir/app/config" "$dir/db"
  echo "hello from $1/$2" >"$dir/app/config/settings.yaml"
  echo "secret-ish but not a credential" >"$dir/.hidden"
  head -c 200000 /dev/urandom >"$dir/db/table.bin"
  rm -rf "$SCENARIO_DIR/original-$1-$2"
  cp -a "$dir" "$SCENARIO_DIR/original-$1-$2"
}

# start_datarestor [ARGS...]: the operator with short intervals suited to tests
# (RESTIC_TIMEOUT and JOB_DEADLINE override the time limits).
start_datarestor() {
  if on_real_cluster; then
    start_operator --repository-check-seconds=5 --retry-seconds=2 --restic-timeout-seconds="${RESTIC_TIMEOUT:-60}" \
      --job-deadline-seconds="${JOB_DEADLINE:-120}" "$@"
    return
  fi
  [ -n "${WEBHOOK_PORT:-}" ] || WEBHOOK_PORT="$(free_port)"
  start_operator --webhook-listen "127.0.0.1:$WEBHOOK_PORT" --webhook-url "https://127.0.0.1:$WEBHOOK_PORT" --restic-cache "$SCENARIO_DIR/restic-cache" --repository-check-seconds 5 --retry-seconds 2 \
    --restic-timeout-seconds "${RESTIC_TIMEOUT:-60}" --job-deadline-seconds "${JOB_DEADLINE:-120}" "$@"
}

config_ready() { jp_is True config backup '.status.conditions[?(@.type=="Ready")].status' -n backup-system; }

wait_config_ready() { wait_for "${1:-60}" "Config Ready" config_ready; }

# tasks_of NAMESPACE PVC TYPE: "name phase" lines of the PVC's Tasks of that type.
tasks_of() {
  kubectl get tasks -n "$1" -l "backup.datarestor-operator.com/pvc=$2,backup.datarestor-operator.com/type=$3" \
    -o 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}'
}

# wait_task NAMESPACE PVC TYPE PHASE [SECONDS]: prints the name of a Task that reached PHASE.
wait_task() {
  local deadline=$((SECONDS + ${5:-120})) found
  while :; do
    found="$(tasks_of "$1" "$2" "$3" | awk -v p="$4" '$2 == p {print $1; exit}')"
    [ -n "$found" ] && { echo "$found"; return 0; }
    if tasks_of "$1" "$2" "$3" | grep -q ' Failed$' && [ "$4" != Failed ]; then
      kubectl get tasks -n "$1" -o yaml >&2
      fail "a $3 Task of $1/$2 failed"
    fi
    [ $SECONDS -lt $deadline ] || fail "no $3 Task of $1/$2 reached $4"
    sleep 0.5
  done
}

# event_exists NAMESPACE REASON: an Event with that reason exists in the namespace (either API).
event_exists() {
  kubectl get events.events.k8s.io -n "$1" -o 'jsonpath={.items[*].reason}' | tr ' ' '\n' | grep -qx "$2" ||
    kubectl get events -n "$1" -o 'jsonpath={.items[*].reason}' | tr ' ' '\n' | grep -qx "$2"
}

# restic_cli ARGS...: restic against the scenario's repository, as an administrator would run it.
restic_cli() {
  RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE" restic --repo "$REPO" --cache-dir "$SCENARIO_DIR/cli-cache" "$@"
}

# The credential values of this scenario, for the scan run.sh makes after every scenario that
# sources this file (and for assert_no_credentials, which scenarios call at chosen moments).
printf '%s\n' "$RESTIC_PASSWORD_VALUE" "$AWS_SECRET_ACCESS_KEY" "$AWS_ACCESS_KEY_ID" >"$SCENARIO_DIR/.secret-values"

# secret_value VALUE: one more value only restic may see (a token in a target URL, ...).
secret_value() { printf '%s\n' "$1" >>"$SCENARIO_DIR/.secret-values"; }

# assert_no_credentials: no credential value in any Task, Job, pod, Event, PVC, workload, Config
# status or the operator's log (Secrets hold them, by design; the Config spec holds what the user
# wrote).
assert_no_credentials() {
  if on_real_cluster; then save_operator_log; fi
  scan_for_credentials || fail "$(cat "$SCENARIO_DIR/credentials-scan.txt")"
}

# snapshot_id NAME: the full id of the snapshot tagged name=NAME.
snapshot_id() {
  restic_cli snapshots --json --tag "name=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'
}

# backup_named NAMESPACE PVC NAME: a manual backup, waited for.
backup_named() {
  k annotate pvc "$2" -n "$1" --overwrite "backup.datarestor-operator.com/manual-backup=$3" >/dev/null
  local name="${3##*|}"
  wait_for 90 "backup $3 of $1/$2" bash -c "kubectl get tasks -n $1 -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx '$name=Completed'"
}

# restore_request NAMESPACE PVC VALUE: a manual restore; prints the answer once there is one.
restore_request() {
  k annotate pvc "$2" -n "$1" backup.datarestor-operator.com/manual-restore-result- >/dev/null 2>&1 || true
  k annotate pvc "$2" -n "$1" --overwrite "backup.datarestor-operator.com/manual-restore=$3" >/dev/null
  local deadline=$((SECONDS + 90)) answer
  while :; do
    answer="$(kubectl get pvc "$2" -n "$1" -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-restore-result}')"
    case "$answer" in Completed:* | Failed:* | Rejected:*) echo "$answer"; return 0 ;; esac
    [ $SECONDS -lt $deadline ] || fail "no answer to manual-restore=$3 on $1/$2"
    sleep 0.5
  done
}

# same_tree DIR_A DIR_B MESSAGE: byte-identical trees, no extra or missing files.
same_tree() {
  diff -r "$1" "$2" >"$SCENARIO_DIR/diff.log" 2>&1 || fail "$3: trees differ ($(head -3 "$SCENARIO_DIR/diff.log" | tr '\n' ' '))"
}

# restore_state NAMESPACE PVC
restore_state() { kubectl get pvc "$2" -n "$1" -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-state}'; }

# released NAMESPACE PVC: its restore state is Released (for wait_for).
released() { [ "$(restore_state "$1" "$2")" = Released ]; }

# apply_app NAMESPACE NAME CLAIM [REPLICAS] [ACCESS_MODE] [CLAIM_LABELS]: a claim (labelled with
# CLAIM_LABELS, a YAML map such as `{tier: db}`), and a Deployment NAME (pods labelled app=NAME) that
# mounts it at /data. app_on_claim also waits until the Deployment is ready.
app_on_claim() {
  apply_app "$@"
  k wait --for=jsonpath='{.status.readyReplicas}'="${4:-1}" "deployment/$2" -n "$1" --timeout=90s >/dev/null
}
apply_app() {
  local ns="$1" name="$2" claim="$3" replicas="${4:-1}" access="${5:-ReadWriteOnce}" labels="${6:-{\}}"
  k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null
  kapply >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $claim, namespace: $ns, labels: $labels}
spec:
  accessModes: [$access]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name, namespace: $ns}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: $name}}
  template:
    metadata: {labels: {app: $name}}
    spec:
      containers: [{name: $name, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /data}]}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: $claim}}]
YAML
}

# quiesce_apps: a Deployment `web` (2 replicas, ReadWriteMany claim web-data) and a StatefulSet
# `db` (3 replicas, claims data-db-0..2) in namespace shop.
quiesce_apps() {
  app_on_claim shop web web-data 2 ReadWriteMany
  kapply >/dev/null <<YAML
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
YAML
  k wait --for=jsonpath='{.status.readyReplicas}'=3 statefulset/db -n shop --timeout=90s >/dev/null
}

# apps_back: both workloads at their original replicas, all ready, no quiesce marks left.
apps_back() {
  [ "$(jp deployment web .spec.replicas -n shop)" = 2 ] && [ "$(jp statefulset db .spec.replicas -n shop)" = 3 ] &&
    [ "$(jp deployment web .status.readyReplicas -n shop)" = 2 ] && [ "$(jp statefulset db .status.readyReplicas -n shop)" = 3 ] &&
    [ -z "$(jp deployment web '.metadata.annotations.backup\.datarestor-operator\.com/quiesced-by' -n shop)" ] &&
    [ -z "$(jp statefulset db '.metadata.annotations.backup\.datarestor-operator\.com/quiesced-by' -n shop)" ]
}

# all_tasks_finished NAMESPACE: every Task Completed or Failed.
all_tasks_finished() {
  ! kubectl get tasks -n "$1" -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' | grep -qvE '^(Completed|Failed)$'
}
