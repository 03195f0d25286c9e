# backup-scheduled: a per-minute schedule makes exactly one Task per PVC per slot; applying the
# Config backs nothing up at once; the slots missed while the operator was down run once (the
# latest), not once each; a crash right after a slot neither loses nor doubles it; and no more
# Jobs run at once than maxConcurrentJobs allows.
# e2e-timeout: 480

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  succeededTasksHistoryLimit: 20
  selectors:
    - matchLabels: {app: my-app}
YAML
)" '      maxConcurrentJobs: 1'
kubectl patch config backup -n backup-system --type=json -p '[{"op":"replace","path":"/spec/repositories/0/backupSchedule","value":"* * * * *"}]' >/dev/null
for pvc in alpha beta gamma; do
  make_pvc shop "$pvc" app=my-app
  fill_volume shop "$pvc"
done
start_datarestor
wait_config_ready
created="$(jp config backup .metadata.creationTimestamp -n backup-system)"

# Watch how many restic Jobs run at once.
(
  max=0
  while :; do
    n="$(kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.status.phase}{"\n"}{end}' 2>/dev/null | grep -c '^Running$' || true)"
    [ "$n" -gt "$max" ] && max="$n" && echo "$max" >"$SCENARIO_DIR/max-running"
    sleep 0.2
  done
) &
echo $! >"$SCENARIO_DIR/sampler.pid"

# slots: "slot count" lines, one per schedule slot that has Tasks.
# Only scheduled Tasks count: a pre-existing PVC may also get an (IfEmpty, refused) automatic restore.
slots() { kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.trigger=="scheduled")]}{.spec.scheduledFor}{"\n"}{end}' | sort | uniq -c | awk '{print $2, $1}'; }
completed_in_slot() { # SLOT: all three Tasks of the slot Completed
  [ "$(kubectl get tasks -n shop -o "jsonpath={range .items[?(@.spec.scheduledFor==\"$1\")]}{.status.phase}{\"\\n\"}{end}" | grep -c '^Completed$')" = 3 ]
}
slot_count() { slots | grep -c . || true; }
has_slots() { [ "$(slot_count)" -ge "$1" ]; }

wait_for 90 "the first slot's Tasks" has_slots 1
first="$(slots | head -1 | cut -d' ' -f1)"
wait_for 90 "first slot completed" completed_in_slot "$first"
python3 - "$created" "$first" <<'PY' || fail "the first slot is not after the Config was applied"
import sys, datetime
created, first = (datetime.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in sys.argv[1:3])
assert first > created, (first, created)
PY

# new_slot BEFORE: the one slot that is not among BEFORE (fails if there are several).
new_slot() {
  local fresh
  fresh="$(slots | cut -d' ' -f1 | grep -vxF -f <(printf '%s\n' $1) || true)"
  [ "$(printf '%s' "$fresh" | grep -c .)" = 1 ] || fail "expected one new slot, got: $(echo $fresh)"
  echo "$fresh"
}
minute_before() { python3 -c 'import sys,datetime; t=datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ"); print((t-datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))' "$1"; }

log "stopping the operator across two slot boundaries"
stop_operator
before="$(slots | cut -d' ' -f1)"
sleep $((60 - $(date +%-S) + 62))
restart_minute="$(date -u +%Y-%m-%dT%H:%M:00Z)"
start_datarestor
wait_for 90 "the catch-up slot's Tasks" has_slots $(($(echo "$before" | grep -c .) + 1))
catch_up="$(new_slot "$before")"
wait_for 90 "catch-up slot completed" completed_in_slot "$catch_up"
assert_eq "$restart_minute" "$catch_up" "the catch-up runs the latest missed slot"
missed="$(minute_before "$restart_minute")"
assert_eq "" "$(slots | grep "^$missed " || true)" "the earlier missed slot does not run as well"

log "killing the operator right after the next slot"
sleep $((60 - $(date +%-S) + 1))
before="$(slots | cut -d' ' -f1)"
crash_minute="$(date -u +%Y-%m-%dT%H:%M:00Z)"
stop_operator KILL
start_datarestor
wait_for 90 "the crash slot's Tasks" bash -c "kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.scheduledFor}{\"\\n\"}{end}' | grep -qx '$crash_minute'"
wait_for 90 "crash slot completed" completed_in_slot "$crash_minute"

# Exactly one Task per PVC per slot.
per_slot_pvc="$(kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.scheduledFor} {.spec.pvcName}{"\n"}{end}' | sort | uniq -d)"
assert_eq "" "$per_slot_pvc" "duplicate Tasks for a slot and PVC"
slots | while read -r slot count; do assert_eq 3 "$count" "Tasks in slot $slot"; done
max="$(cat "$SCENARIO_DIR/max-running" 2>/dev/null || echo 0)"
assert_eq 1 "$max" "most restic Jobs running at once (maxConcurrentJobs 1)"
log "slots: $(slots | tr '\n' ' ')"
