# metrics: what a platform engineer scrapes. The operator serves /healthz and /readyz (ready once
# its caches are filled and the restore gate is published) and, after a manual backup, /metrics
# says so with the right values: the Task counted by type, trigger and result, its duration, the
# PVC's last backup time and size equal to the Task's own status, its next due time from the
# repository's schedule, the repository ready, one protected PVC, reconciles counted, no Task left
# queued; after a restore, its bytes and duration. No credential value appears in the metrics. On
# the real cluster the same endpoint is read through the API server's pod proxy, and the chart's
# probes use it (`helm --wait` waited for them).

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

assert_eq ok "$(operator_http /healthz)" "/healthz"
ready() { [ "$(operator_http /readyz)" = ok ]; }
wait_for 30 "/readyz to answer ok" ready

k annotate pvc data -n shop backup.datarestor-operator.com/manual-backup=scraped >/dev/null
task="$(wait_task shop data backup Completed)"
log "task $task completed"

# metric NAME{LABELS}: the sample's value in the current scrape (empty when it is not there).
metric() { operator_http /metrics | awk -v s="$1" '$1 == s {print $2; exit}'; }
# as_number VALUE: a sample value as an integer, so 1.7e9 and 1700000000 compare equal.
as_number() { python3 -c 'import sys; print(round(float(sys.argv[1])))' "$1"; }

series='{namespace="shop",pvc="data"}'
completed="$(python3 -c 'import sys,datetime; print(int(datetime.datetime.fromisoformat(sys.argv[1].replace("Z","+00:00")).timestamp()))' \
  "$(jp task "$task" .status.completionTime -n shop)")"
backup_counted() { [ -n "$(metric 'datarestor_tasks_finished_total{type="backup",trigger="manual",result="succeeded"}')" ]; }
wait_for 20 "the backup counted in /metrics" backup_counted
operator_http /metrics >"$SCENARIO_DIR/metrics.txt"
value() { awk -v s="$1" '$1 == s {print $2; exit}' "$SCENARIO_DIR/metrics.txt"; }

assert_eq 1 "$(value 'datarestor_tasks_finished_total{type="backup",trigger="manual",result="succeeded"}')" "backups counted"
assert_eq "" "$(value 'datarestor_tasks_finished_total{type="backup",trigger="manual",result="failed"}')" "no failed backup"
assert_eq 1 "$(value 'datarestor_task_duration_seconds_count{type="backup",result="succeeded"}')" "backup duration observed"
assert_eq 1 "$(value 'datarestor_backup_volume_bytes_count{kind="processed"}')" "backup bytes observed"
assert_eq "$completed" "$(as_number "$(value "datarestor_pvc_last_backup_timestamp_seconds$series")")" "last backup time = the Task's completionTime"
assert_eq "$(jp task "$task" .status.bytesProcessed -n shop)" "$(value "datarestor_pvc_last_backup_size_bytes$series")" "last backup size = the Task's bytesProcessed"
# The schedule is "0 2 * * *" (UTC): due at the first 02:00 after the backup.
due="$(python3 -c 'import sys,datetime as d; t=d.datetime.fromtimestamp(int(sys.argv[1]),d.timezone.utc); n=t.replace(hour=2,minute=0,second=0,microsecond=0); n = n if n > t else n + d.timedelta(days=1); print(int(n.timestamp()))' "$completed")"
assert_eq "$due" "$(as_number "$(value "datarestor_pvc_backup_due_timestamp_seconds$series")")" "next backup due at the schedule's next slot"
assert_eq 1 "$(value "datarestor_repository_ready{config_namespace=\"backup-system\",config=\"backup\",repository=\"$REPO\"}")" "repository ready"
assert_eq 1 "$(value datarestor_pvcs_protected)" "protected PVCs"
assert_eq 0 "$(value datarestor_pvcs_held_for_restore)" "PVCs held for restore"
assert_eq 0 "$(value datarestor_workloads_scaled_down)" "workloads scaled down"
[ "$(value 'datarestor_reconciles_total{controller="task"}')" -gt 0 ] || fail "Task reconciles are not counted"
[ "$(value 'datarestor_reconciles_total{controller="config"}')" -gt 0 ] || fail "Config reconciles are not counted"
grep -q '^datarestor_tasks{' "$SCENARIO_DIR/metrics.txt" && fail "a finished backup still shows as an unfinished Task: $(grep '^datarestor_tasks{' "$SCENARIO_DIR/metrics.txt")"
# A restore (Clean, the default): counted, and the bytes it wrote, which are the snapshot's files'
# bytes, in the Task, the histogram and the Config's statistics.
assert_contains "$(restore_request shop data latest)" "Completed:" "manual-restore=latest"
restore_task="$(wait_task shop data restore Completed)"
written="$(find "$SCENARIO_DIR/original-shop-data" -type f -exec stat -c %s {} + | awk '{ t += $1 } END { print t }')"
assert_eq "$written" "$(jp task "$restore_task" .status.bytesProcessed -n shop)" "the restore Task's bytes = its files' bytes"
restore_counted() { [ -n "$(metric 'datarestor_tasks_finished_total{type="restore",trigger="manual",result="succeeded"}')" ]; }
wait_for 20 "the restore counted in /metrics" restore_counted
operator_http /metrics >"$SCENARIO_DIR/metrics.txt"
assert_eq 1 "$(value 'datarestor_restore_volume_bytes_count')" "restore bytes observed once"
assert_eq "$written" "$(as_number "$(value 'datarestor_restore_volume_bytes_sum')")" "restore bytes = the Task's"
assert_eq 1 "$(value 'datarestor_task_duration_seconds_count{type="restore",result="succeeded"}')" "restore duration observed"
statistics_counted() { [ "$(jp config backup '.status.statistics.restoresCompleted' -n backup-system)" = 1 ]; }
wait_for 20 "the restore in the Config's statistics" statistics_counted
assert_eq "$written" "$(jp config backup '.status.statistics.restoreBytesWritten' -n backup-system)" "the Config's statistics count the bytes restored"
while IFS= read -r secret; do
  [ -z "$secret" ] || ! grep -qF -- "$secret" "$SCENARIO_DIR/metrics.txt" || fail "a credential value appears in /metrics"
done <"$SCENARIO_DIR/.secret-values"
assert_no_credentials
log "metrics: $(grep -c '^datarestor_' "$SCENARIO_DIR/metrics.txt") samples served, each checked value right"
