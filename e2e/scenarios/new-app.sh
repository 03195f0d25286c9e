# new-app: a brand-new app whose PVC has no snapshot anywhere is held only until the operator has
# looked (seconds), then released as new and empty; it is never left scaled down or gated.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  stopPods: true
  selectors:
    - matchNamespaces: [shop]
YAML
)"
start_datarestor
wait_config_ready
start=$SECONDS
app_on_claim shop web web-data
log "app ready after $((SECONDS - start))s"
assert_eq Released "$(restore_state shop web-data)" "restore state"
assert_contains "$(kubectl get pvc web-data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-message}')" "no snapshot of shop-web-data" "why it was released"
assert_eq 1 "$(jp deployment web .spec.replicas -n shop)" "replicas untouched"
gated="$(kubectl get pods -n shop -o 'jsonpath={range .items[*]}{.spec.schedulingGates[*].name}{end}')"
assert_eq "" "$gated" "no pod left gated"
assert_eq "" "$(kubectl get tasks -n shop -o name)" "nothing to restore, no Task"
wait_for 20 "NothingToRestore Event" event_exists shop NothingToRestore
