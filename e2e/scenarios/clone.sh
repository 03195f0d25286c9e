# clone: manual-restore with another PVC's host fills a new PVC with that PVC's data; across
# namespaces only when the Config allows it (otherwise a Warning and nothing changes).

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  autoRestore: false
  selectors:
    - matchNamespaces: [shop, staging]
YAML
)"
make_pvc shop source
make_pvc shop copy
make_pvc staging copy
fill_volume shop source
start_datarestor
wait_config_ready
backup_named shop source golden

answer="$(restore_request shop copy 'shop-source|golden')"
assert_contains "$answer" "Completed:" "same-namespace clone"
same_tree "$SCENARIO_DIR/original-shop-source" "$(pvc_host_path copy shop)" "clone has the source's bytes"

answer="$(restore_request staging copy 'shop-source|latest')"
assert_contains "$answer" "Rejected:" "cross-namespace clone denied"
assert_contains "$answer" "cross-namespace restores are off" "denial says why"
assert_eq "" "$(ls -A "$(pvc_host_path copy staging)")" "denied clone changed nothing"
warnings="$(kubectl get events.events.k8s.io -n staging -o 'jsonpath={range .items[?(@.type=="Warning")]}{.reason}{"\n"}{end}')"
assert_contains "$warnings" "InvalidRequest" "Warning Event for the denied clone"

kubectl patch config backup -n backup-system --type=merge -p '{"spec":{"allowCrossNamespaceRestore":true}}' >/dev/null
answer="$(restore_request staging copy 'shop-source|latest')"
assert_contains "$answer" "Completed:" "cross-namespace clone once allowed"
same_tree "$SCENARIO_DIR/original-shop-source" "$(pvc_host_path copy staging)" "cross-namespace clone has the source's bytes"
