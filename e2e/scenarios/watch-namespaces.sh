# watch-namespaces: an operator told to protect only `shop` (--watch-namespaces; chart value
# watchNamespaces) leaves `other` alone although the administrators' Config selects both: the
# Config says so in its status and an Event, counts only shop's PVC, a new app in `other` starts at
# once (no gate, no restore), a backup request there is answered "no Config selects this PVC" and
# nothing of it reaches the repository, while shop's PVC is backed up as usual.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchNamespaces: [shop, other]
YAML
)"
make_pvc shop data
make_pvc other data
fill_volume shop data
fill_volume other data
start_datarestor --watch-namespaces=shop
wait_config_ready
assert_eq 1 "$(jp config backup .status.matchedPvcs -n backup-system)" "only the watched namespace's PVC is selected"
assert_eq NamespaceNotWatched "$(jp config backup '.status.conditions[?(@.type=="SelectorsInReach")].reason' -n backup-system)" "the Config says why"
assert_contains "$(jp config backup '.status.conditions[?(@.type=="SelectorsInReach")].message' -n backup-system)" "other" "and names the namespace"
wait_for 30 "SelectorsOutOfReach Event" event_exists backup-system SelectorsOutOfReach

start=$SECONDS
app_on_claim other web fresh
log "app in the unwatched namespace ready after $((SECONDS - start))s"
assert_eq "" "$(restore_state other fresh)" "no restore decision in an unwatched namespace"

k annotate pvc data -n other 'backup.datarestor-operator.com/manual-backup=outside' >/dev/null
rejected() { kubectl get pvc data -n other -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result}' | grep -q '^Rejected:'; }
wait_for 30 "the request in other answered" rejected
assert_contains "$(jp pvc data '.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result' -n other)" "no Config selects this PVC" "the answer says why"
backup_named shop data watched
assert_eq 0 "$(restic_cli snapshots --json --host other-data | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "nothing of other was backed up"
assert_no_credentials
