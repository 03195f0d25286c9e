# restore-failover: a new PVC is restored from the first repository, in priority order, that has
# its host: the priority-1 repository lacks it, priority 2 has it. With every repository
# unreachable the app's pod stays held (condition on the PVC, Warning Event) instead of getting an
# empty volume; when the storage answers again the PVC is restored and the pod released.
# e2e-timeout: 360

source "$E2E_DIR/datarestor.sh"
install_datarestor
FIRST_PORT="$(free_port)"
SECOND_PORT="$(free_port)"
start_s3 first "$FIRST_PORT"
start_s3 second "$SECOND_PORT"
FIRST="s3:http://$S3_HOST:$FIRST_PORT/first"
SECOND="s3:http://$S3_HOST:$SECOND_PORT/second"
REPO="$SECOND" # restic_cli looks at the second repository

two_repository_config "$FIRST" "$SECOND" shop
RESTIC_TIMEOUT=10 start_datarestor
wait_config_ready
make_pvc shop data
fill_volume shop data
backup_named shop data "2|only-in-second"
assert_eq 0 "$(RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE" restic --repo "$FIRST" --cache-dir "$SCENARIO_DIR/cli-cache" snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "the first repository has no snapshot"

app() {
  kapply >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: shop}
spec:
  containers: [{name: app, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
YAML
}
lose_everything() {
  k delete pod app -n shop --ignore-not-found --wait=true >/dev/null
  # Finished restic pods must not keep the claim from going (PVC protection counts every pod).
  k delete pvc data -n shop --wait=true --timeout=60s >/dev/null || fail "the claim is still in use after its Tasks finished"
}

log "part 1: priority 1 lacks the PVC, priority 2 has it"
lose_everything
app
k wait --for=condition=Ready pod/app -n shop --timeout=90s >/dev/null
assert_eq Released "$(restore_state shop data)" "released after the restore"
task="$(kubectl get tasks -n shop -l backup.datarestor-operator.com/type=restore -o 'jsonpath={.items[0].metadata.name}')"
assert_eq "$SECOND" "$(jp task "$task" .status.repository -n shop)" "restored from priority 2"
assert_eq auto "$(jp task "$task" .spec.trigger -n shop)" "automatic restore"
same_tree "$SCENARIO_DIR/original-shop-data" "$(pvc_host_path data shop)" "restored bytes"

log "part 2: every repository unreachable"
lose_everything
kill -STOP "$(cat "$SCENARIO_DIR/first.pid")" "$(cat "$SCENARIO_DIR/second.pid")"
app
held() { [ "$(kubectl get pvc data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/restore-message}' | grep -c unreachable)" = 1 ]; }
wait_for 90 "PVC held because the repositories are unreachable" held
assert_eq Pending "$(restore_state shop data)" "restore state while unreachable"
assert_eq "backup.datarestor-operator.com/restore" "$(jp pod app '.spec.schedulingGates[*].name' -n shop)" "the pod is gated"
assert_eq "" "$(jp pod app .spec.nodeName -n shop)" "the pod is not scheduled"
wait_for 30 "RestoreBlocked Event" event_exists shop RestoreBlocked
sleep 5
assert_eq "" "$(jp pod app .spec.nodeName -n shop)" "still held"
kill -CONT "$(cat "$SCENARIO_DIR/first.pid")" "$(cat "$SCENARIO_DIR/second.pid")"
k wait --for=condition=Ready pod/app -n shop --timeout=120s >/dev/null
assert_eq Released "$(restore_state shop data)" "released once restored"
same_tree "$SCENARIO_DIR/original-shop-data" "$(pvc_host_path data shop)" "restored bytes after the outage"
