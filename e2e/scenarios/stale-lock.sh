# stale-lock: a restic killed while holding the repository's exclusive lock leaves a stale lock.
# A backup that meets it has the stale lock removed (`restic unlock`, which spares live locks) and
# is retried: the Task completes on its second Job.
# e2e-stage: kube-sim only: the lock it plants carries this machine's hostname, which kube-sim's Jobs share; a real pod's restic never treats another host's lock as stale (the known limit: locks of dead pods, README)

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchLabels: {app: my-app}
YAML
)"
make_pvc shop data app=my-app
fill_volume shop data
start_datarestor
wait_config_ready
k annotate pvc data -n shop backup.datarestor-operator.com/manual-backup=first >/dev/null
wait_task shop data backup Completed >/dev/null

# Stop the operator so it cannot clear the lock before the next backup meets it.
stop_operator
# Freeze a pruning restic right after it takes its exclusive lock, then kill it. The bucket is
# listed directly (fast) to see the lock object appear.
locks() { curl -fsS "$S3_ENDPOINT/$S3_BUCKET?list-type=2&prefix=locks/" | grep -o '<Key>' | wc -l; }
RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE" restic --repo "$REPO" --cache-dir "$SCENARIO_DIR/cli-cache" prune >"$SCENARIO_DIR/prune.log" 2>&1 &
prune=$!
for _ in $(seq 1 400); do
  kill -STOP "$prune" 2>/dev/null || break
  [ "$(locks)" -gt 0 ] && break
  kill -CONT "$prune" 2>/dev/null || break
  sleep 0.01
done
kill -9 "$prune" 2>/dev/null || true
wait "$prune" 2>/dev/null || true
[ "$(locks)" -gt 0 ] || fail "could not leave a stale lock behind"
if restic_cli backup "$SCENARIO_DIR/original-shop-data" --host probe >/dev/null 2>&1; then
  fail "a backup went through despite the lock (the lock is not exclusive)"
fi

start_datarestor
k annotate pvc data -n shop backup.datarestor-operator.com/manual-backup=after-crash >/dev/null
wait_for 120 "backup after-crash" bash -c "kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx 'after-crash=Completed'"
task="$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="after-crash")]}{.metadata.name}{end}')"
assert_eq 2 "$(jp task "$task" .status.attempts -n shop)" "the Task needed a second Job"
wait_for 20 "StaleLockRemoved Event" event_exists shop StaleLockRemoved
# The operator's own short restic calls hold brief non-exclusive locks; a stale one would stay.
no_locks() { [ "$(locks)" = 0 ]; }
wait_for 20 "no lock left behind" no_locks
count="$(restic_cli snapshots --json --tag name=after-crash | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
assert_eq 1 "$count" "snapshot after-crash exists"
