# postgres-live: three real PostgreSQL 15 servers (Debian's, in pods) commit rows without pause,
# under one Config whose selectors give each its own policy, as in sqlite-live:
#   notes  - a pre-backup hook dumps the database (pg_dump) into the volume, a post-backup hook
#            removes the dump from the live volume;
#   ledger - stopPods: the server is stopped for the backup and comes back;
#   raw    - neither: the live data directory is copied as it is.
# Each backup is restored into a new PVC. For notes the dump loads into a fresh server, for ledger
# the restored data directory starts (crash recovery if it needs it) and answers; both hold every
# row committed before the backup's Task existed. For raw, what a user gets is reported as a figure.
# e2e-timeout: 480

source "$E2E_DIR/datarestor.sh"
PG="/usr/lib/postgresql/15/bin"
[ -x "$PG/postgres" ] || fail "PostgreSQL 15 is required (Debian package postgresql-15; .ci/run installs it)"
PG_UID="$(id -u postgres)" PG_GID="$(id -g postgres)"
install_datarestor
write_config db "$(cat <<YAML
  autoRestore: false
  selectors:
    - matchLabels: {app: notes}
      hooks:
        preBackup:
          command: ["sh", "-c", "mkdir -p /data/backup && $PG/pg_dump -h /data/run -U postgres -f /data/backup/dump.sql postgres && echo dumped"]
          timeoutSeconds: 120
        postBackup:
          command: ["rm", "-f", "/data/backup/dump.sql"]
    - matchLabels: {app: ledger}
      stopPods: true
    - matchLabels: {app: raw}
YAML
)"
start_datarestor
wait_config_ready

# Host-side servers for the checks run as postgres, outside the scenario's private directory.
work="$(mktemp -d /tmp/pg-live.XXXXXX)"
chmod 755 "$work"
trap 'for f in "$work"/*.pid; do [ -e "$f" ] && kill -INT "$(cat "$f")" 2>/dev/null; done; sleep 1; rm -rf "$work"' EXIT
as_postgres() { setpriv --reuid="$PG_UID" --regid="$PG_GID" --clear-groups "$@"; }

# server NAME: a Deployment NAME on claim NAME-data (labelled app=NAME) running PostgreSQL with its
# data in /data/pg and its socket in /data/run, and a writer committing a row every few ms.
server() {
  local name="$1"
  k get namespace db >/dev/null 2>&1 || k create namespace db >/dev/null
  # Two files, one object each: kubectl reads a file starting with '{' as one JSON stream (no
  # `---` between objects), and kube-sim's OpenAPI has no schema for a List to validate against.
  python3 - "$name" "$PG_IMAGE" "$PG_UID" "$PG_GID" "$PG" "$SCENARIO_DIR" <<'PY'
import json, sys
name, image, uid, gid, pg, out = sys.argv[1:]
serve = f"""set -e
[ -s /data/pg/PG_VERSION ] || {pg}/initdb -D /data/pg -U postgres --auth=trust >/dev/null
rm -f /data/pg/postmaster.pid
{pg}/postgres -D /data/pg -k /data/run -c listen_addresses= &
server=$!
trap 'kill -INT $server; wait $server; exit 0' TERM
until {pg}/pg_isready -h /data/run -q; do sleep 0.2; done
{pg}/psql -h /data/run -U postgres -qc 'CREATE TABLE IF NOT EXISTS t(id bigserial PRIMARY KEY, ms bigint NOT NULL, payload text NOT NULL)'
while :; do
  echo "INSERT INTO t(ms, payload) VALUES ((extract(epoch from clock_timestamp()) * 1000)::bigint, md5(random()::text));"
  sleep 0.005
done | {pg}/psql -h /data/run -U postgres -q >/dev/null &
wait
"""
# util-linux's setpriv by its path: the image's busybox sh runs its own applets before PATH for a
# bare name, and busybox's setpriv cannot change user.
# The volume's root may come as 0750 root (the host-path provisioner makes it so): the server's
# user must be able to pass through it.
start = f"""set -e
chmod 755 /data
mkdir -p /data/pg /data/run
chown {uid}:{gid} /data/pg /data/run
chmod 700 /data/pg
cat >/data/run/serve.sh <<'SH'
{serve}SH
exec /usr/bin/setpriv --reuid={uid} --regid={gid} --clear-groups sh /data/run/serve.sh
"""
claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
         "metadata": {"name": f"{name}-data", "namespace": "db", "labels": {"app": name}},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "db"},
  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "strategy": {"type": "Recreate"},
    "template": {"metadata": {"labels": {"app": name}, "annotations": {"kube-sim.datarestor.test/run-process": "true"}},
      "spec": {"terminationGracePeriodSeconds": 20, "containers": [{"name": "postgres", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", start], "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": f"{name}-data"}}]}}}}
for suffix, obj in (("claim", claim), ("deployment", deployment)):
    with open(f"{out}/{name}-{suffix}.json", "w") as f:
        json.dump(obj, f)
PY
  k apply -f "$SCENARIO_DIR/$name-claim.json" >/dev/null
  k apply -f "$SCENARIO_DIR/$name-deployment.json" >/dev/null
}

# socket DIR: a short path to the socket directory DIR (a socket's path has at most 107 bytes).
socket() {
  local link="$work/s-$(echo "$1" | sha256sum | cut -c1-8)"
  [ -e "$link" ] || ln -s "$1" "$link"
  echo "$link"
}
# sql SOCKET_DIR QUERY: one value.
sql() { psql -h "$1" -U postgres -d postgres -XAtqc "$2"; }
rows_before() { sql "$1" "SELECT count(*) FROM t WHERE ms < $2"; }
live_socket() { socket "$(pvc_host_path "$1-data" db)/run"; }
# task_ms NAMESPACE TASK: the Task's creation, in ms.
task_ms() { echo $(($(date -d "$(jp task "$2" .metadata.creationTimestamp -n "$1")" +%s) * 1000)); }
# start_copy NAME SOURCE_DIR: a server on a copy of a data directory; prints its socket directory,
# or fails (its log in $work/NAME.log).
start_copy() {
  local dir="$work/$1"
  rm -rf "$dir"
  cp -a "$2" "$dir"
  mkdir -p "$dir.run"
  chown -R "$PG_UID:$PG_GID" "$dir" "$dir.run"
  chmod 700 "$dir"
  rm -f "$dir/postmaster.pid"
  as_postgres "$PG/postgres" -D "$dir" -k "$dir.run" -c listen_addresses= >"$work/$1.log" 2>&1 &
  echo $! >"$work/$1.pid"
  local deadline=$((SECONDS + 60))
  until "$PG/pg_isready" -h "$dir.run" -q; do
    kill -0 "$(cat "$work/$1.pid")" 2>/dev/null && [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
  echo "$dir.run"
}

for app in notes ledger raw; do server "$app"; done
server_ready() { # APP: ready, or the failure says what its server printed
  kubectl wait --for=jsonpath='{.status.readyReplicas}'=1 "deployment/$1" -n db --timeout=120s >/dev/null 2>&1 ||
    fail "$1's server is not ready: $(kubectl logs -n db "deployment/$1" --tail=15 2>&1 | tr '\n' ' ') previous: $(kubectl logs -n db "deployment/$1" --previous --tail=15 2>&1 | tr '\n' ' ')"
}
for app in notes ledger raw; do server_ready "$app"; done
grows() {
  local socket before
  socket="$(live_socket "$1")"
  before="$(sql "$socket" 'SELECT count(*) FROM t' 2>/dev/null)" || return 1
  sleep 1
  [ "$(sql "$socket" 'SELECT count(*) FROM t' 2>/dev/null)" -gt "${before:-0}" ]
}
for app in notes ledger raw; do wait_for 90 "$app's server to take rows" grows "$app"; done
sleep 3

# check_clone APP TASK: restores APP's backup (Task TASK) into a new PVC APP-check; prints its directory.
check_clone() {
  local snapshot answer
  snapshot="$(jp task "$2" .status.snapshotId -n db)"
  make_pvc db "$1-check" "app=$1"
  answer="$(restore_request db "$1-check" "db-$1-data|$snapshot")"
  assert_contains "$answer" "Completed:" "restore of $1's backup into $1-check"
  pvc_host_path "$1-check" db
}
task_named() { kubectl get tasks -n db -o "jsonpath={range .items[?(@.spec.name==\"$1\")]}{.metadata.name}{end}"; }

# --- notes: pg_dump in a pre-backup hook
backup_named db notes-data dumped
task="$(task_named dumped)"
hooks="$(kubectl get task "$task" -n db -o 'jsonpath={range .status.hooks[*]}{.point}={.result}{" "}{end}')"
assert_eq "preBackup=Succeeded postBackup=Succeeded " "$hooks" "hooks recorded in the Task"
[ ! -e "$(pvc_host_path notes-data db)/backup/dump.sql" ] || fail "the post-backup hook did not remove the dump from the live volume"
start_ms="$(task_ms db "$task")"
dir="$(check_clone notes "$task")"
[ -s "$dir/backup/dump.sql" ] || fail "the restored volume has no dump"
mkdir -p "$work/fresh"
chown "$PG_UID:$PG_GID" "$work/fresh"
as_postgres "$PG/initdb" -D "$work/fresh" -U postgres --auth=trust >"$work/initdb.log" 2>&1 || fail "initdb failed"
fresh="$(start_copy fresh-server "$work/fresh")" || fail "a fresh server did not start ($(tail -2 "$work/fresh-server.log"))"
psql -h "$fresh" -U postgres -d postgres -Xq -v ON_ERROR_STOP=1 -f "$dir/backup/dump.sql" >"$work/load.log" 2>&1 ||
  fail "the dump does not load: $(tail -2 "$work/load.log")"
want="$(rows_before "$(live_socket notes)" "$start_ms")"
[ "$want" -gt 0 ] || fail "no rows were committed before the backup ($want)"
assert_eq "$want" "$(rows_before "$fresh" "$start_ms")" "rows committed before the backup, in the loaded dump"
log "notes: $want rows before the backup, all in the dump"

# --- ledger: stopPods
backup_named db ledger-data quiet
task="$(task_named quiet)"
assert_eq "Deployment/ledger" "$(jp task "$task" '.status.quiescedWorkloads[0]' -n db)" "the server was stopped for the backup"
server_ready ledger
wait_for 90 "ledger's server to take rows again" grows ledger
start_ms="$(task_ms db "$task")"
dir="$(check_clone ledger "$task")"
restored="$(start_copy ledger-restored "$dir/pg")" || fail "the restored data directory does not start ($(tail -3 "$work/ledger-restored.log" | tr '\n' ' '))"
assert_eq 1 "$(sql "$restored" 'SELECT 1')" "the restored server answers"
want="$(rows_before "$(live_socket ledger)" "$start_ms")"
[ "$want" -gt 0 ] || fail "no rows were committed before the backup ($want)"
assert_eq "$want" "$(rows_before "$restored" "$start_ms")" "rows committed before the backup, after restore"
log "ledger: $want rows before the backup, all restored"

# --- raw: neither; reported, not promised
backup_named db raw-data live
task="$(task_named live)"
start_ms="$(task_ms db "$task")"
dir="$(check_clone raw "$task")"
want="$(rows_before "$(live_socket raw)" "$start_ms")"
if raw="$(start_copy raw-restored "$dir/pg")"; then
  got="$(rows_before "$raw" "$start_ms" 2>&1)"
  outcome="started (after crash recovery: $(grep -c 'redo' "$work/raw-restored.log" || true) redo lines in its log); $got of $want rows committed before the backup"
else
  outcome="did not start: $(grep -m1 -E 'FATAL|PANIC' "$work/raw-restored.log" || tail -1 "$work/raw-restored.log")"
fi
echo "raw copy of a live PostgreSQL data directory (no hook, no quiesce): $outcome" >>"$SCENARIO_DIR/figures.txt"
operator_running || fail "the operator restarted"
