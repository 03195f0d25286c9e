# status-cli: what `datarestor-operator status` (also `kubectl datarestor status`) tells a person
# after backups and a restore made with the same command: every protected PVC, with its Config,
# its last backup's time, snapshot and size exactly as its Task recorded them, how many backups,
# when the next is due, its health; nothing about a PVC no Config selects. `backup` and `restore`
# write the annotations, wait and print the operator's answer; a value the grammar refuses is
# refused before anything is written. The same facts are in the API: each PVC's Catalog
# (`kubectl get catalogs`, and `snapshots PVC` reads it) and the Config's statistics.

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

# The Catalog beside each PVC, in plain kubectl.
listing="$(kubectl get catalogs -n shop)"
log "kubectl get catalogs:"$'\n'"$listing"
assert_contains "$(echo "$listing" | awk '$1 == "data"')" "$snapshot" "kubectl get catalogs shows data's last snapshot"
assert_eq "$snapshot" "$(jp catalog data .status.lastBackup.shortSnapshotId -n shop)" "Catalog: last snapshot"
assert_eq "$(jp task "$task" .status.completionTime -n shop)" "$(jp catalog data .status.lastBackup.time -n shop)" "Catalog: time = the Task's"
assert_eq 1 "$(jp catalog data .status.backupsCompleted -n shop)" "Catalog: one backup counted"
assert_eq "data" "$(jp catalog data '.metadata.ownerReferences[0].name' -n shop)" "Catalog: owned by its PVC"
assert_eq "Completed" "$(jp catalog copy .status.lastRestore.result -n shop)" "Catalog of the copy: its restore"
assert_eq "$snapshot" "$(jp catalog copy .status.lastRestore.shortSnapshotId -n shop)" "Catalog of the copy: the snapshot restored"
snapshots="$(cli snapshots data -n shop)"
log "snapshots:"$'\n'"$snapshots"
assert_contains "$(echo "$snapshots" | grep "$snapshot")" "first" "snapshots lists the backup with its name"
assert_contains "$snapshots" "1 snapshots, recorded from this operator's backups" "snapshots says where its list comes from"
if output="$(cli snapshots logs -n shop 2>&1)"; then fail "snapshots of a PVC without a Catalog succeeded: $output"; fi
assert_contains "$output" "has no Catalog" "a PVC never backed up is answered plainly"
assert_eq 1 "$(jp config backup .status.statistics.backupsCompleted -n backup-system)" "Config statistics: one backup"
assert_eq "$(jp task "$task" .status.bytesProcessed -n shop)" "$(jp config backup .status.statistics.backupBytesProcessed -n backup-system)" "Config statistics: its bytes"
[ "$(jp config backup .status.statistics.restoresCompleted -n backup-system)" -ge 1 ] || fail "Config statistics count no restore"
assert_no_credentials
