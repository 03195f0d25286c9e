# existing-data: installing the operator and a Config into a cluster whose PVCs already hold data
# restores nothing, even where the repository has a snapshot of the same host: a PVC in use by a
# running app is left alone, and an unused PVC with data refuses the automatic (IfEmpty) restore.

source "$E2E_DIR/datarestor.sh"
install_datarestor
k create namespace shop >/dev/null
app_on_claim shop app live
kapply <<'YAML' >/dev/null
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: idle, namespace: shop}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML
wait_for 20 "idle bound" jp_is Bound pvc idle .status.phase -n shop
fill_volume shop live
fill_volume shop idle

# The repository already has (older, different) snapshots of both hosts.
restic_cli init >/dev/null
mkdir -p "$SCENARIO_DIR/old/data" && echo "old content" >"$SCENARIO_DIR/old/data/old.txt"
for host in shop-live shop-idle; do
  (cd "$SCENARIO_DIR/old" && RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE" bwrap --dev-bind / / --bind "$SCENARIO_DIR/old/data" /data -- \
    restic --repo "$REPO" --cache-dir "$SCENARIO_DIR/cli-cache" backup /data --host "$host" >/dev/null)
done

write_config shop "$(cat <<'YAML'
  selectors:
    - matchNamespaces: [shop]
YAML
)"
start_datarestor
wait_config_ready
wait_for 60 "live released" bash -c '[ "$(kubectl get pvc live -n shop -o "jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-state}")" = Released ]'
wait_for 90 "idle released" bash -c '[ "$(kubectl get pvc idle -n shop -o "jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-state}")" = Released ]'
assert_contains "$(kubectl get pvc live -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-message}')" "in use by pod" "live: why"
assert_contains "$(kubectl get pvc idle -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-message}')" "already holds data; nothing restored" "idle: why"
same_tree "$SCENARIO_DIR/original-shop-live" "$(pvc_host_path live shop)" "live data untouched"
same_tree "$SCENARIO_DIR/original-shop-idle" "$(pvc_host_path idle shop)" "idle data untouched"
assert_eq 1 "$(jp deployment app .status.readyReplicas -n shop)" "the app keeps running"
