# requests-wait: what a user asks is never failed or misread because of timing.
# - A manual backup asked for while the repository is not usable yet (operator just started, S3 not
#   answering) waits, Pending and saying why, and completes once the repository is ready.
# - A PVC whose name is too long for a label value (64-253 characters) is backed up like any other.
# - `manual-restore` on a Config restores every PVC it selects, each answered on the PVC.
# - `manual-restore=latest` means the newest snapshot when it was asked: a restore queued behind a
#   running backup of the same PVC does not restore that backup.
# e2e-timeout: 420

source "$E2E_DIR/datarestor.sh"
install_datarestor
PORT="$(free_port)"
start_s3 own "$PORT"
REPO="s3:http://$S3_HOST:$PORT/requests"
LONG="data-$(printf 'x%.0s' $(seq 1 70))"
make_pvc shop data
make_pvc shop "$LONG"
fill_volume shop data
fill_volume shop "$LONG"

log "part 1: a request made before the repository is usable waits for it"
kill -STOP "$(cat "$SCENARIO_DIR/own.pid")"
# autoRestore off: these PVCs predate the Config and are not to be restored; with it on they would
# (rightly) be held, unbackupable, until the repository says whether they have a snapshot.
write_config shop "$(printf '  autoRestore: false\n  selectors:\n    - matchNamespaces: [shop]')"
RESTIC_TIMEOUT=5 start_datarestor
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-backup=early' >/dev/null
early_task() { kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="early")]}{.metadata.name}{end}'; }
waiting() { [ -n "$(early_task)" ] && jp task "$(early_task)" .status.message -n shop | grep -q "waiting for repository"; }
wait_for 60 "the backup Task waits for the repository" waiting
assert_eq Pending "$(jp task "$(early_task)" .status.phase -n shop)" "Pending while the repository is unusable"
kill -CONT "$(cat "$SCENARIO_DIR/own.pid")"
wait_config_ready 90
wait_for 90 "the early backup completed" jp_is Completed task "$(early_task)" .status.phase -n shop

log "part 2: a Config-wide backup covers the PVC with a 75-character name"
k annotate config backup -n backup-system 'backup.datarestor-operator.com/manual-backup=everyone' >/dev/null
both_backed_up() {
  [ "$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="everyone")]}{.status.phase}{"\n"}{end}' | grep -c Completed)" = 2 ]
}
wait_for 120 "both PVCs backed up" both_backed_up
long_task="$(kubectl get tasks -n shop -o "jsonpath={range .items[?(@.spec.pvcName==\"$LONG\")]}{.metadata.name}{end}")"
[ -n "$long_task" ] || fail "no Task for the long-named PVC"
value="$(jp task "$long_task" '.metadata.labels.backup\.datarestor-operator\.com/pvc' -n shop)"
[ "${#value}" -le 63 ] || fail "label value $value is longer than 63"

log "part 3: manual-restore on the Config restores every PVC it selects"
for pvc in data "$LONG"; do
  dir="$(pvc_host_path "$pvc" shop)"
  rm -rf "$dir/app"
  echo "written after the backup" >"$dir/stray"
done
k annotate config backup -n backup-system 'backup.datarestor-operator.com/manual-restore=everyone' >/dev/null
for pvc in data "$LONG"; do
  answered() { kubectl get pvc "$1" -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-restore-result}' | grep -q '^Completed:'; }
  wait_for 120 "restore of $pvc answered Completed" answered "$pvc"
  same_tree "$SCENARIO_DIR/original-shop-$pvc" "$(pvc_host_path "$pvc" shop)" "restored bytes of $pvc"
done
wait_for 30 "RestoreRequested Event on the Config" event_exists backup-system RestoreRequested

log "part 4: latest is the newest snapshot at the time of the request"
# Random bytes (nothing to deduplicate or compress), so the backup runs long enough to be asked
# for a restore meanwhile.
head -c 200000000 /dev/urandom >"$(pvc_host_path data shop)/big-later-file"
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-backup=later' >/dev/null
later_task() { kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="later")]}{.metadata.name}{end}'; }
running() { [ -n "$(later_task)" ] && jp_is Running task "$(later_task)" .status.phase -n shop; }
wait_for 60 "the later backup is running" running
k annotate pvc data -n shop backup.datarestor-operator.com/manual-restore-result- >/dev/null
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-restore=latest' >/dev/null
restore_answered() { kubectl get pvc data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-restore-result}' | grep -qE '^(Completed|Failed|Rejected):'; }
wait_for 180 "the restore answered" restore_answered
assert_contains "$(kubectl get pvc data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-restore-result}')" "Completed:" "restore result"
assert_eq Completed "$(jp task "$(later_task)" .status.phase -n shop)" "the later backup completed"
restore_task="$(kubectl get tasks -n shop --sort-by=.metadata.creationTimestamp -o 'jsonpath={range .items[?(@.spec.trigger=="manual")]}{.spec.type} {.spec.pvcName} {.metadata.name}{"\n"}{end}' | awk '$1=="restore" && $2=="data" {print $3}' | tail -1)"
requested="$(jp task "$restore_task" .metadata.creationTimestamp -n shop)"
finished="$(jp task "$(later_task)" .status.completionTime -n shop)"
[[ "$requested" < "$finished" ]] || fail "the later backup finished ($finished) before the restore was asked ($requested): the race this checks did not happen"
# Both PVCs have a snapshot named "everyone": the one of this PVC's host.
expected="$(restic_cli snapshots --json --tag name=everyone --host shop-data | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
assert_eq "$expected" "$(jp task "$restore_task" .status.snapshotId -n shop)" "restored the newest snapshot as of the request"
same_tree "$SCENARIO_DIR/original-shop-data" "$(pvc_host_path data shop)" "restored bytes"
assert_no_credentials
