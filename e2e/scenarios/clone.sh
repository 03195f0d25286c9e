# clone: manual-restore with another PVC's host fills a new PVC with that PVC's data; across
# namespaces only when the Config allows it (otherwise a Warning and nothing changes). A host that
# merely starts with the PVC's namespace is not its own: `shop-prod-db` asked for in `shop` is PVC
# `db` of namespace `shop-prod`, and is refused as a cross-namespace clone. A Task written by hand
# is checked the same way, and a snapshot whose namespace tag names another namespace is refused
# even when that namespace no longer exists.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  autoRestore: false
  selectors:
    - matchNamespaces: [shop, staging, shop-prod]
YAML
)"
make_pvc shop source
make_pvc shop copy
make_pvc staging copy
make_pvc shop-prod db
fill_volume shop source
fill_volume shop-prod db
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

backup_named shop-prod db prod-golden
before="$(find "$(pvc_host_path copy shop)" -type f | sort | xargs sha256sum)"
answer="$(restore_request shop copy 'shop-prod-db|latest')"
assert_contains "$answer" "Rejected:" "a host of namespace shop-prod is not shop's own"
assert_contains "$answer" "cross-namespace restores are off" "denial says why"
assert_eq "$before" "$(find "$(pvc_host_path copy shop)" -type f | sort | xargs sha256sum)" "denied clone changed nothing"
# With shop-prod gone its snapshots remain, and the host no longer tells: the snapshot's own
# namespace tag does.
k delete namespace shop-prod --wait=true --timeout=90s >/dev/null
answer="$(restore_request shop copy 'shop-prod-db|latest')"
assert_contains "$answer" "Failed:" "a snapshot of another namespace is refused"
assert_contains "$answer" "taken of a PVC in namespace shop-prod" "the refusal names the namespace"
assert_eq "$before" "$(find "$(pvc_host_path copy shop)" -type f | sort | xargs sha256sum)" "refused restore changed nothing"

# A Task written by hand gets the same answer as the annotation: it is a request too.
kapply >/dev/null <<'YAML'
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Task
metadata: {name: handmade-clone, namespace: staging}
spec:
  type: restore
  trigger: manual
  pvcName: copy
  configRef: {name: backup, namespace: backup-system}
  host: shop-source
  restoreMode: Clean
YAML
wait_for 60 "the handmade Task answered" jp_is Failed task handmade-clone .status.phase -n staging
assert_eq NotAllowed "$(jp task handmade-clone '.status.conditions[?(@.type=="Succeeded")].reason' -n staging)" "handmade cross-namespace Task refused"
assert_eq "" "$(ls -A "$(pvc_host_path copy staging)")" "the refused Task changed nothing"

kubectl patch config backup -n backup-system --type=merge -p '{"spec":{"allowCrossNamespaceRestore":true}}' >/dev/null
answer="$(restore_request staging copy 'shop-source|latest')"
assert_contains "$answer" "Completed:" "cross-namespace clone once allowed"
same_tree "$SCENARIO_DIR/original-shop-source" "$(pvc_host_path copy staging)" "cross-namespace clone has the source's bytes"
