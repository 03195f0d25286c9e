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
    pods="$(kubectl get pods -n shop -o 'jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.backup\.datarestor-operator\.com/pvc} {.status.phase}{"\n"}{end}' 2>/dev/null)"
    count() { printf '%s\n' "$pods" | grep -c "$1" || true; }
    # web pods, web-data Jobs running; then per ordinal N: pod db-N, data-db-N Jobs running; db replicas
    line="$(count '^web-') $(count ' web-data Running$')"
    for n in 0 1 2; do line="$line $(count "^db-$n ") $(count " data-db-$n Running\$")"; done
    echo "$line $(kubectl get statefulset db -n shop -o 'jsonpath={.spec.replicas}' 2>/dev/null)" >>"$SCENARIO_DIR/timeline"
    sleep 0.2
  done
) &
echo $! >"$SCENARIO_DIR/sampler.pid"

k annotate config backup -n backup-system backup.datarestor-operator.com/manual-backup=quiet >/dev/null
for pvc in web-data data-db-0 data-db-1 data-db-2; do wait_task shop "$pvc" backup Completed 120 >/dev/null; done
wait_for 60 "workloads back at 2 and 3 replicas" apps_back
kill "$(cat "$SCENARIO_DIR/sampler.pid")"; rm -f "$SCENARIO_DIR/sampler.pid"

# A volume's Job never runs while a pod that mounts it exists (a StatefulSet goes down one ordinal
# at a time, so db-2's volume may be backed up while db-0 is still terminating).
overlap="$(awk '($1 > 0 && $2 > 0) || ($3 > 0 && $4 > 0) || ($5 > 0 && $6 > 0) || ($7 > 0 && $8 > 0)' "$SCENARIO_DIR/timeline" | head -3)"
assert_eq "" "$overlap" "a pod and the restic Job of its volume at the same time (web web-job db-0 job-0 db-1 job-1 db-2 job-2 replicas)"
awk '$2 > 0' "$SCENARIO_DIR/timeline" | grep -q . || fail "the sampler never saw web-data's Job running"
awk '$4 + $6 + $8 > 0' "$SCENARIO_DIR/timeline" | grep -q . || fail "the sampler never saw a db Job running"
downs="$(awk '{print $9}' "$SCENARIO_DIR/timeline" | uniq | grep -c '^0$' || true)"
assert_eq 1 "$downs" "times the StatefulSet was scaled to zero"
for pvc in web-data data-db-0 data-db-1 data-db-2; do
  count="$(restic_cli snapshots --json --host "shop-$pvc" --tag name=quiet | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  assert_eq 1 "$count" "snapshot of $pvc"
done
