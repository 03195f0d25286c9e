# per-selector: one Config, three selectors, three policies. `db` (tier=db) is backed up with its
# workload stopped (stopPods on its selector); `cache` (tier=cache) is not restored automatically
# (autoRestore: false on its selector) and a manual restore merges into it (manualRestoreMode);
# `web` (no tier) takes the Config's own settings. After the namespace is deleted and the same YAML
# applied again, db and web come back restored byte for byte while cache starts empty at once.
# e2e-timeout: 360

source "$E2E_DIR/datarestor.sh"
install_datarestor
config_yaml() {
  write_config shop "$(cat <<'YAML'
  autoRestore: true
  stopPods: false
  manualRestoreMode: Clean
  selectors:
    - matchLabels: {tier: db}
      stopPods: true
    - matchLabels: {tier: cache}
      autoRestore: false
      manualRestoreMode: Merge
    - matchNamespaces: [shop]
YAML
)"
}
# app NAME TIER: a Deployment NAME on claim NAME-data labelled tier=TIER (none when empty).
app() {
  local labels="{}"
  [ -z "$2" ] || labels="{tier: $2}"
  apply_app shop "$1" "$1-data" 1 ReadWriteOnce "$labels"
}
apps() { app db db; app cache cache; app web ""; }
ready() { k wait --for=jsonpath='{.status.readyReplicas}'=1 "deployment/$1" -n shop --timeout="${2:-120}s" >/dev/null; }

config_yaml
start_datarestor
wait_config_ready
apps
for name in db cache web; do
  ready "$name"
  # cache is never restored automatically, so it is never held or released either.
  [ "$name" = cache ] || wait_for 30 "$name-data released as new" released shop "$name-data"
  fill_volume shop "$name-data"
done
assert_eq "" "$(restore_state shop cache-data)" "cache-data has no restore state (autoRestore: false)"

k annotate config backup -n backup-system backup.datarestor-operator.com/manual-backup=before >/dev/null
for name in db cache web; do wait_task shop "$name-data" backup Completed 120 >/dev/null; done
quiesced() { kubectl get tasks -n shop -l "backup.datarestor-operator.com/pvc=$1" -o 'jsonpath={.items[0].status.quiescedWorkloads}'; }
assert_contains "$(quiesced db-data)" "Deployment/db" "db's selector stops its workload for the backup"
assert_eq "" "$(quiesced web-data)" "web takes the Config's stopPods: false"
assert_eq "" "$(quiesced cache-data)" "cache takes the Config's stopPods: false"
ready db 90

# A manual restore into a running app: refused for web (the Config's stopPods: false), done for db
# (its workload is stopped for it).
answer="$(restore_request shop web-data before)"
assert_contains "$answer" "Rejected:" "restore under web's running pod"
echo "changed" >"$(pvc_host_path db-data shop)/app/config/settings.yaml"
answer="$(restore_request shop db-data before)"
assert_contains "$answer" "Completed:" "restore of db, its workload stopped"
same_tree "$SCENARIO_DIR/original-shop-db-data" "$(pvc_host_path db-data shop)" "db restored (Clean)"
ready db 90

# cache's restore mode is Merge: a file the snapshot does not have stays.
k scale deployment cache -n shop --replicas=0 >/dev/null
wait_for 60 "cache's pod gone" bash -c "[ -z \"\$(kubectl get pods -n shop -l app=cache -o name)\" ]"
cache_dir="$(pvc_host_path cache-data shop)"
echo "written after the backup" >"$cache_dir/extra.txt"
rm "$cache_dir/.hidden"
answer="$(restore_request shop cache-data before)"
assert_contains "$answer" "Completed:" "restore of cache"
[ -f "$cache_dir/.hidden" ] || fail "cache: the snapshot's file was not restored"
assert_eq "written after the backup" "$(cat "$cache_dir/extra.txt")" "cache's Merge keeps a file the snapshot lacks"

log "disaster: the namespace goes, the same YAML comes back"
dirs="$(for name in db cache web; do pvc_host_path "$name-data" shop; done)"
k delete namespace shop --wait=true --timeout=120s >/dev/null
for dir in $dirs; do wait_for 30 "volume data gone ($dir)" test ! -e "$dir"; done
apps
for name in db web; do wait_for 180 "$name-data restored and released" released shop "$name-data"; done
for name in db cache web; do ready "$name" 180; done
for name in db web; do
  same_tree "$SCENARIO_DIR/original-shop-$name-data" "$(pvc_host_path "$name-data" shop)" "$name restored automatically"
done
assert_eq "" "$(ls -A "$(pvc_host_path cache-data shop)")" "cache (autoRestore: false on its selector) starts empty"
assert_eq "" "$(restore_state shop cache-data)" "cache-data was never held"
assert_eq "" "$(kubectl get tasks -n shop -l backup.datarestor-operator.com/pvc=cache-data,backup.datarestor-operator.com/type=restore -o name)" \
  "no restore Task for cache"
operator_running || fail "the operator restarted"
