# status-cli: what `datarestor-operator status` (also `kubectl datarestor status`) tells a person
# after backups and a restore made with the same command: every protected PVC, with its Config,
# its last backup's time, snapshot and size exactly as its Task recorded them, how many backups,
# when the next is due, its health; nothing about a PVC no Config selects. `backup` and `restore`
# write the annotations, wait and print the operator's answer; a value the grammar refuses is
# refused before anything is written.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchNamespaces: [shop]
YAML
)"
make_pvc shop data
make_pvc shop logs
make_pvc elsewhere unprotected
fill_volume shop data
start_datarestor
wait_config_ready
cli() { "$OPERATOR_BIN" "$@"; }

answer="$(cli backup data first -n shop)"
assert_contains "$answer" "Completed: Task" "backup prints the operator's answer"
task="$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="first")]}{.metadata.name}{end}')"
snapshot="$(jp task "$task" .status.shortSnapshotId -n shop)"
[ -n "$snapshot" ] || fail "the backup Task records no snapshot"

if output="$(cli backup data 'two words' -n shop 2>&1)"; then fail "a value with whitespace was accepted: $output"; fi
assert_contains "$output" "whitespace" "the grammar's own message"
assert_eq "" "$(jp pvc data '.metadata.annotations.backup\.datarestor-operator\.com/manual-backup' -n shop)" "nothing written for a refused value"

make_pvc shop copy
answer="$(cli restore copy 'shop-data|first' -n shop)"
assert_contains "$answer" "Completed: Task" "restore prints the operator's answer"
same_tree "$SCENARIO_DIR/original-shop-data" "$(pvc_host_path copy shop)" "the restored copy"

table="$(cli status -n shop)"
log "status:"$'\n'"$table"
row() { echo "$table" | awk -v p="$1" '$2 == p'; }
assert_contains "$(row data)" "backup-system/backup" "data's Config"
assert_contains "$(row data)" "$snapshot" "data's snapshot"
assert_contains "$(row data)" "Healthy" "data's health"
assert_contains "$(row logs)" "NotBackedUpYet" "logs, never backed up"
[ -n "$(row copy)" ] || fail "the restored copy is not listed"
assert_eq "" "$(echo "$table" | grep unprotected || true)" "a PVC no Config selects"

json="$(cli status -A -o json)"
field() { echo "$json" | python3 -c "import json,sys; items={(i['namespace'],i['pvc']): i for i in json.load(sys.stdin)['items']}; print($1)"; }
assert_eq "$snapshot" "$(field "items[('shop','data')]['lastBackup']['snapshot']")" "JSON: snapshot"
assert_eq "$(jp task "$task" .status.bytesProcessed -n shop)" "$(field "items[('shop','data')]['lastBackup']['bytes']")" "JSON: size = the Task's bytesProcessed"
assert_eq 1 "$(field "items[('shop','data')]['backups']")" "JSON: backups on record"
assert_eq "$(jp task "$task" .status.completionTime -n shop)" "$(field "items[('shop','data')]['lastBackup']['time']")" "JSON: time = the Task's completionTime"
assert_eq "False" "$(field "('elsewhere','unprotected') in items")" "JSON: unprotected PVC absent"
assert_eq 3 "$(field "len([k for k in items if k[0] == 'shop'])")" "JSON: every protected PVC of shop"
assert_no_credentials
