# restore-manual-forms: every manual-restore form restores the right snapshot, byte for byte, and
# leaves exactly its files (Clean mode); an unknown name fails with a clear message and changes
# nothing.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchLabels: {app: my-app}
YAML
)"
make_pvc shop data app=my-app
vol="$(pvc_host_path data shop)"
start_datarestor
wait_config_ready
wait_for 30 "new empty PVC released" bash -c '[ "$(kubectl get pvc data -n shop -o "jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-state}")" = Released ]'

version() { # NAME: put version NAME's files in the volume and keep a copy
  rm -rf "${vol:?}"/* "$vol"/.[!.]* 2>/dev/null || true
  mkdir -p "$vol/conf"
  echo "$1" >"$vol/conf/version"
  head -c 50000 /dev/urandom >"$vol/blob-$1"
  rm -rf "$SCENARIO_DIR/v-$1" && cp -a "$vol" "$SCENARIO_DIR/v-$1"
}
version one
backup_named shop data v1
version two
backup_named shop data v2
version three  # never backed up: each restore must replace it

check() { # VALUE EXPECTED-VERSION
  local answer
  answer="$(restore_request shop data "$1")"
  assert_contains "$answer" "Completed:" "manual-restore=$1"
  same_tree "$SCENARIO_DIR/v-$2" "$vol" "manual-restore=$1 should give version $2"
  version three
}
v1="$(snapshot_id v1)"
v2="$(snapshot_id v2)"
check v1 one
check latest two
check true two
check now two
check "" two
check "${v1:0:6}" one
check "$v2" two
check "1|shop-data|${v1:0:6}" one
check "$REPO|shop-data|now" two
check "1|v1" one

answer="$(restore_request shop data no-such-backup)"
assert_contains "$answer" 'Failed:' "unknown name fails"
assert_contains "$answer" 'no snapshot "no-such-backup" of host shop-data' "and says why"
same_tree "$SCENARIO_DIR/v-three" "$vol" "a failed restore changes nothing"

answer="$(restore_request shop data '9|latest')"
assert_contains "$answer" "Rejected:" "unknown priority"
assert_contains "$answer" "no repository has priority 9" "unknown priority message"
assert_eq Released "$(restore_state shop data)" "a restore of a released PVC leaves it released"
