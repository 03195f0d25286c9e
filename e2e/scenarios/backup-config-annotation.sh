# backup-config-annotation: manual-backup on the Config backs up every PVC it selects, in every
# listed namespace, under the given name; the request is removed from the Config and answered
# with an Event.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchNamespaces: [shop, billing]
YAML
)"
make_pvc shop data
make_pvc billing ledger
make_pvc elsewhere ignored
fill_volume shop data
fill_volume billing ledger
start_datarestor
wait_config_ready
wait_for 20 "matchedPvcs 2" jp_is 2 config backup .status.matchedPvcs -n backup-system

k annotate config backup -n backup-system backup.datarestor-operator.com/manual-backup=my-manual-backup-run
wait_task shop data backup Completed >/dev/null
wait_task billing ledger backup Completed >/dev/null
assert_eq "" "$(kubectl get tasks -n elsewhere -o name)" "unselected PVC untouched"

for host in shop-data billing-ledger; do
  count="$(restic_cli snapshots --json --host "$host" --tag name=my-manual-backup-run | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  assert_eq 1 "$count" "snapshot of $host named my-manual-backup-run"
done
wait_for 20 "request removed from the Config" bash -c \
  '[ -z "$(kubectl get config backup -n backup-system -o "jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup}")" ]'
wait_for 20 "BackupRequested Event on the Config" event_exists backup-system BackupRequested
assert_no_credentials
