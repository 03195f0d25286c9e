# missing-snapshot-wait: `onMissingSnapshot: Wait` for a DR whose repository is still being copied
# back. The app's data is backed up to one repository; after the disaster the Config names another
# one, still empty, and the app comes back: its pod stays gated (a WaitingForSnapshot Event says
# why) instead of starting on an empty volume. Once `restic copy` brings the snapshot over, the
# operator finds it at its next look, restores it byte for byte and the app runs. A PVC whose
# snapshot never appears is released empty when missingSnapshotWaitSeconds have passed, with a
# Warning.

source "$E2E_DIR/datarestor.sh"
install_datarestor
SOURCE_REPO="$REPO-source"
config() { # TARGET WAIT_SECONDS
  REPO="$1" write_config shop "$(cat <<YAML
  onMissingSnapshot: Wait
  missingSnapshotWaitSeconds: $2
  selectors:
    - matchNamespaces: [shop]
YAML
)"
}
app() { apply_app shop web web-data; }
message() { kubectl get pvc "$1" -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-message}'; }
gated() { [ -n "$(kubectl get pods -n shop -l app=web -o 'jsonpath={range .items[*]}{.spec.schedulingGates[*].name}{end}')" ]; }

# Before the disaster: the app's data backed up to the source repository. A brand-new PVC with no
# snapshot anywhere waits too, so it is released here by a short wait.
config "$SOURCE_REPO" 10
start_datarestor
wait_config_ready
app
wait_for 60 "web-data released after its 10 s wait" released shop web-data
assert_contains "$(message web-data)" "appeared in" "released after waiting, and says so"
wait_for 20 "a Warning for the PVC released empty" event_exists shop NothingToRestore
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n shop --timeout=90s >/dev/null
fill_volume shop web-data
k annotate pvc web-data -n shop backup.datarestor-operator.com/manual-backup=before-disaster >/dev/null
wait_task shop web-data backup Completed 120 >/dev/null

# The disaster; the rebuilt cluster's Config names a repository the copy has not reached yet.
dir="$(pvc_host_path web-data shop)"
k delete namespace shop --wait=true --timeout=120s >/dev/null
wait_for 30 "volume data gone" test ! -e "$dir"
config "$REPO" 600
wait_for 60 "the Config on the new repository" bash -c "[ \"\$(kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[0].target}')\" = '$REPO' ] && kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[0].ready}' | grep -qx true"
app
wait_for 30 "web-data held waiting for its snapshot" bash -c "kubectl get pvc web-data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-message}' | grep -q 'held: no snapshot of shop-web-data yet'"
wait_for 20 "WaitingForSnapshot Event" event_exists shop WaitingForSnapshot
sleep 12 # two looks (repository checks every 5 s): still held, never released empty
assert_eq Pending "$(restore_state shop web-data)" "still held while no snapshot exists"
gated || fail "the app's pod is not gated while its data is missing"
assert_eq "" "$(kubectl get tasks -n shop -o name)" "nothing restored or backed up meanwhile"

# The copy catches up: the operator finds the snapshot at its next look and restores it.
RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE" RESTIC_FROM_PASSWORD="$RESTIC_PASSWORD_VALUE" \
  restic --repo "$REPO" --cache-dir "$SCENARIO_DIR/cli-cache" copy --from-repo "$SOURCE_REPO" --host shop-web-data >"$SCENARIO_DIR/copy.log" 2>&1 ||
  fail "restic copy failed: $(tail -3 "$SCENARIO_DIR/copy.log")"
wait_for 90 "web-data restored and released" released shop web-data
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n shop --timeout=90s >/dev/null
same_tree "$SCENARIO_DIR/original-shop-web-data" "$(pvc_host_path web-data shop)" "the data copied back"
assert_contains "$(message web-data)" "restored" "released after the restore"
assert_eq "Completed" "$(kubectl get tasks -n shop -l backup.datarestor-operator.com/type=restore -o 'jsonpath={.items[0].status.phase}')" "the restore Task"
assert_no_credentials
