# sqlite-live: three apps write to SQLite databases without pause (a real sqlite3 committing a row
# every few milliseconds, in WAL mode), under one Config whose selectors give each its own policy:
#   notes  - a pre-backup hook takes a consistent copy (`VACUUM INTO`), a post-backup hook
#            removes it from the live volume again;
#   ledger - stopPods: the writer is stopped for the backup and comes back (the Config's own
#            pre-backup hook, which its selector does not replace, runs first);
#   raw    - neither (`hooks: {}` replaces the Config's): the live files are copied as they are.
# Each backup is restored into a new PVC (a clone). For notes and ledger the restored database
# passes `PRAGMA integrity_check` and holds every row committed before the backup's Task existed;
# for raw, what a user gets is reported as a figure (a torn copy may or may not be readable: it is
# luck, not a guarantee). A hook that fails with onError Fail takes no backup; with Continue it backs
# up and warns; the outcome of each hook is in the Task's status and Events.
# e2e-timeout: 420

source "$E2E_DIR/datarestor.sh"
command -v sqlite3 >/dev/null || fail "sqlite3 is required (Debian package sqlite3; .ci/run installs it)"
install_datarestor
write_config db "$(cat <<'YAML'
  autoRestore: false
  hooks:
    preBackup: {command: ["sh", "-c", "exit 0"]}
  selectors:
    - matchLabels: {app: notes}
      hooks:
        preBackup:
          command: ["sh", "-c", "mkdir -p /data/backup && rm -f /data/backup/app.db && sqlite3 /data/app.db \"VACUUM INTO '/data/backup/app.db'\" && echo copied"]
          timeoutSeconds: 60
        postBackup:
          command: ["rm", "-f", "/data/backup/app.db"]
    - matchLabels: {app: ledger}
      stopPods: true
    - matchLabels: {app: raw}
      hooks: {}
YAML
)"
start_datarestor
wait_config_ready

# writer NAME: a Deployment NAME on claim NAME-data (labelled app=NAME) whose one container writes
# rows (id, time in ms, 512 bytes; a commit every few milliseconds) into /data/app.db for as
# long as it runs; kube-sim runs its command as a real process (the run-process annotation).
writer() {
  local name="$1"
  k get namespace db >/dev/null 2>&1 || k create namespace db >/dev/null
  kapply >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $name-data, namespace: db, labels: {app: $name}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: $name, namespace: db}
spec:
  replicas: 1
  selector: {matchLabels: {app: $name}}
  template:
    metadata:
      labels: {app: $name}
      annotations: {kube-sim.datarestor.test/run-process: "true"}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: writer
          image: "$APP_IMAGE"
          imagePullPolicy: IfNotPresent
          command:
            - sh
            - -c
            - |
              sqlite3 /data/app.db "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, ms INTEGER NOT NULL, payload BLOB NOT NULL);" >/dev/null
              trap 'exit 0' TERM
              while :; do
                echo "INSERT INTO t(ms, payload) VALUES (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), randomblob(512));"
                sleep 0.005
              done | sqlite3 /data/app.db &
              wait
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: $name-data}}]
YAML
}

# rows_before DB MS: rows of DB committed before MS (milliseconds since the epoch).
# (A restored WAL database may need recovery, which needs write access: the copies are opened
# read-write, as the app would open them.)
rows_before() { sqlite3 "$1" "SELECT count(*) FROM t WHERE ms < $2;" 2>&1; }
integrity() { sqlite3 "$1" "PRAGMA integrity_check;" 2>&1 | head -3 | tr '\n' ' ' | sed 's/ $//'; }
# task_ms NAMESPACE TASK: the Task's creation, in ms (the backup cannot have started before it).
task_ms() { echo $(($(date -d "$(jp task "$2" .metadata.creationTimestamp -n "$1")" +%s) * 1000)); }

for app in notes ledger raw; do writer "$app"; done
for app in notes ledger raw; do
  k wait --for=jsonpath='{.status.readyReplicas}'=1 "deployment/$app" -n db --timeout=90s >/dev/null
done
# Rows keep coming in every database.
grows() {
  local dir before
  dir="$(pvc_host_path "$1-data" db)"
  before="$(sqlite3 "$dir/app.db" 'SELECT count(*) FROM t;' 2>/dev/null)" || return 1
  sleep 1
  [ "$(sqlite3 "$dir/app.db" 'SELECT count(*) FROM t;' 2>/dev/null)" -gt "${before:-0}" ]
}
for app in notes ledger raw; do wait_for 60 "$app's writer to commit rows" grows "$app"; done
sleep 3

# check_clone APP TASK: restores APP's backup (Task TASK) into a new PVC APP-check, then prints its
# directory.
check_clone() {
  local app="$1" task="$2" snapshot answer
  snapshot="$(jp task "$task" .status.snapshotId -n db)"
  make_pvc db "$app-check" "app=$app"
  answer="$(restore_request db "$app-check" "db-$app-data|$snapshot")"
  assert_contains "$answer" "Completed:" "restore of $app's backup into $app-check"
  pvc_host_path "$app-check" db
}

# --- notes: pre- and post-backup hooks
backup_named db notes-data hooked
task="$(kubectl get tasks -n db -o 'jsonpath={range .items[?(@.spec.name=="hooked")]}{.metadata.name}{end}')"
hooks="$(kubectl get task "$task" -n db -o 'jsonpath={range .status.hooks[*]}{.point}={.result}:{.exitCode}:{.container}{" "}{end}')"
assert_eq "preBackup=Succeeded:0:writer postBackup=Succeeded:0:writer " "$hooks" "hooks recorded in the Task"
assert_eq "copied" "$(jp task "$task" '.status.hooks[0].message' -n db)" "the pre-backup hook's output"
event_exists db HookSucceeded || fail "no HookSucceeded Event"
[ ! -e "$(pvc_host_path notes-data db)/backup/app.db" ] || fail "the post-backup hook did not remove the copy from the live volume"
start_ms="$(task_ms db "$task")"
dir="$(check_clone notes "$task")"
assert_eq ok "$(integrity "$dir/backup/app.db")" "the hook's copy passes integrity_check"
want="$(rows_before "$(pvc_host_path notes-data db)/app.db" "$start_ms")"
[ "$want" -gt 0 ] || fail "no rows were committed before the backup ($want)"
assert_eq "$want" "$(rows_before "$dir/backup/app.db" "$start_ms")" "rows committed before the backup, in the hook's copy"
log "notes: $want rows before the backup, all in the restored copy"

# --- ledger: stopPods
backup_named db ledger-data quiet
task="$(kubectl get tasks -n db -o 'jsonpath={range .items[?(@.spec.name=="quiet")]}{.metadata.name}{end}')"
assert_eq "Deployment/ledger" "$(jp task "$task" '.status.quiescedWorkloads[0]' -n db)" "the writer was stopped for the backup"
assert_eq "preBackup=Succeeded " "$(kubectl get task "$task" -n db -o 'jsonpath={range .status.hooks[*]}{.point}={.result}{" "}{end}')" \
  "ledger's selector sets no hooks: the Config's pre-backup hook ran (before the scale-down)"
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/ledger -n db --timeout=90s >/dev/null
wait_for 60 "ledger's writer to commit rows again" grows ledger
start_ms="$(task_ms db "$task")"
dir="$(check_clone ledger "$task")"
assert_eq ok "$(integrity "$dir/app.db")" "the stopped writer's database passes integrity_check"
want="$(rows_before "$(pvc_host_path ledger-data db)/app.db" "$start_ms")"
[ "$want" -gt 0 ] || fail "no rows were committed before the backup ($want)"
assert_eq "$want" "$(rows_before "$dir/app.db" "$start_ms")" "rows committed before the backup, after restore"
log "ledger: $want rows before the backup, all restored"

# --- raw: neither; what the user gets is reported, not promised
backup_named db raw-data live
task="$(kubectl get tasks -n db -o 'jsonpath={range .items[?(@.spec.name=="live")]}{.metadata.name}{end}')"
assert_eq "" "$(jp task "$task" '.status.hooks' -n db)" "hooks: {} on the raw selector replaces the Config's hook"
start_ms="$(task_ms db "$task")"
dir="$(check_clone raw "$task")"
want="$(rows_before "$(pvc_host_path raw-data db)/app.db" "$start_ms")"
got="$(rows_before "$dir/app.db" "$start_ms")"
echo "raw copy of a live SQLite database (no hook, no quiesce): integrity_check '$(integrity "$dir/app.db")', $got of $want rows committed before the backup readable" >>"$SCENARIO_DIR/figures.txt"

# --- failing hooks: Fail takes no backup, Continue backs up with a Warning
k annotate pvc notes-data -n db --overwrite \
  'backup.datarestor-operator.com/pre-backup-hook={"command": ["sh", "-c", "echo database is locked >&2; exit 5"]}' >/dev/null
k annotate pvc notes-data -n db --overwrite backup.datarestor-operator.com/manual-backup=refused >/dev/null
wait_for 60 "the backup refused by its hook" bash -c "kubectl get tasks -n db -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx 'refused=Failed'"
task="$(kubectl get tasks -n db -o 'jsonpath={range .items[?(@.spec.name=="refused")]}{.metadata.name}{end}')"
assert_eq "HookFailed" "$(jp task "$task" '.status.conditions[?(@.type=="Succeeded")].reason' -n db)" "reason"
assert_contains "$(jp task "$task" .status.message -n db)" "exit code 5: database is locked" "the hook's exit and output"
assert_eq "" "$(jp task "$task" .status.jobName -n db)" "no restic Job ran"
[ -z "$(restic_cli snapshots --json --tag name=refused | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))')" ] ||
  fail "a snapshot was taken although the hook failed with onError Fail"
k annotate pvc notes-data -n db --overwrite \
  'backup.datarestor-operator.com/pre-backup-hook={"command": ["sleep", "30"], "timeoutSeconds": 2, "onError": "Continue"}' >/dev/null
backup_named db notes-data anyway
task="$(kubectl get tasks -n db -o 'jsonpath={range .items[?(@.spec.name=="anyway")]}{.metadata.name}{end}')"
assert_eq "preBackup=TimedOut" "$(kubectl get task "$task" -n db -o 'jsonpath={.status.hooks[0].point}={.status.hooks[0].result}')" "a hook past its timeout"
warnings="$(kubectl get events.events.k8s.io -n db -o 'jsonpath={range .items[?(@.type=="Warning")]}{.reason}{"\n"}{end}')"
assert_contains "$warnings" "HookFailed" "a Warning for the failed hook"
k annotate pvc notes-data -n db --overwrite 'backup.datarestor-operator.com/pre-backup-hook={"command": [' >/dev/null
k annotate pvc notes-data -n db --overwrite backup.datarestor-operator.com/manual-backup=malformed >/dev/null
wait_for 60 "the backup with a malformed hook" bash -c "kubectl get tasks -n db -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx 'malformed=Failed'"
task="$(kubectl get tasks -n db -o 'jsonpath={range .items[?(@.spec.name=="malformed")]}{.metadata.name}{end}')"
assert_eq "InvalidHook" "$(jp task "$task" '.status.conditions[?(@.type=="Succeeded")].reason' -n db)" "a malformed hook annotation"
operator_running || fail "the operator restarted"
