# quiesce-backup: with stopPods, a Deployment (2 replicas) and a StatefulSet (3 replicas, a PVC
# per pod) are scaled to zero, their pods are gone before any restic Job starts, the StatefulSet is
# scaled down once for its three PVCs, the backups complete, and the replicas come back to 2 and 3.

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
quiesce_apps
for pvc in web-data data-db-0 data-db-1 data-db-2; do fill_volume shop "$pvc"; done

# Timeline: app pods present, restic Job pods running, and each workload's replicas.
(
  while :; do
    apps="$(kubectl get pods -n shop -l 'app.kubernetes.io/managed-by!=datarestor-operator' -o name 2>/dev/null | grep -c . || true)"
    jobs="$(kubectl get pods -n shop -l 'app.kubernetes.io/managed-by=datarestor-operator' --field-selector=status.phase=Running -o name 2>/dev/null | grep -c . || true)"
    echo "$apps $jobs $(kubectl get statefulset db -n shop -o 'jsonpath={.spec.replicas}' 2>/dev/null)" >>"$SCENARIO_DIR/timeline"
    sleep 0.2
  done
) &
echo $! >"$SCENARIO_DIR/sampler.pid"

k annotate config backup -n backup-system backup.datarestor-operator.com/manual-backup=quiet >/dev/null
for pvc in web-data data-db-0 data-db-1 data-db-2; do wait_task shop "$pvc" backup Completed 120 >/dev/null; done
wait_for 60 "workloads back at 2 and 3 replicas" apps_back
kill "$(cat "$SCENARIO_DIR/sampler.pid")"; rm -f "$SCENARIO_DIR/sampler.pid"

overlap="$(awk '$1 > 0 && $2 > 0' "$SCENARIO_DIR/timeline" | head -3)"
assert_eq "" "$overlap" "app pods and restic Jobs at the same time (apps jobs replicas)"
awk '$2 > 0' "$SCENARIO_DIR/timeline" | grep -q . || fail "the sampler never saw a restic Job running"
downs="$(awk '{print $3}' "$SCENARIO_DIR/timeline" | uniq | grep -c '^0$' || true)"
assert_eq 1 "$downs" "times the StatefulSet was scaled to zero"
for pvc in web-data data-db-0 data-db-1 data-db-2; do
  count="$(restic_cli snapshots --json --host "shop-$pvc" --tag name=quiet | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  assert_eq 1 "$count" "snapshot of $pvc"
done
