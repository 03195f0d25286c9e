# backup-manual: `kubectl annotate pvc ... manual-backup=pre-upgrade` produces a Completed Task, a
# snapshot with host {ns}-{pvc} and tag name=pre-upgrade (checked with restic itself) holding the
# volume's exact bytes, an answered annotation and Events, and no credential anywhere. The
# credentials Secret in the PVC's namespace exists only while a Task runs, and a key someone puts
# into it (a password command) never reaches restic: it is rewritten whole and read key by key.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchLabels: {app: my-app}
YAML
)"
make_pvc shop data app=my-app
fill_volume shop data
start_datarestor
wait_config_ready
# An app keeps the ReadWriteOnce volume mounted on its node: the Job must run there.
kapply >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {run: app}}
  template:
    metadata: {labels: {run: app}}
    spec:
      containers: [{name: app, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /data}]}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
YAML
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/app -n shop --timeout=60s >/dev/null
app_node="$(kubectl get pods -n shop -l run=app -o 'jsonpath={.items[0].spec.nodeName}')"

k annotate pvc data -n shop backup.datarestor-operator.com/manual-backup=pre-upgrade
task="$(wait_task shop data backup Completed)"
log "task $task completed"

assert_eq manual "$(jp task "$task" .spec.trigger -n shop)" "trigger"
job_node="$(jp job "$task" '.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]' -n shop)"
assert_eq "$app_node" "$job_node" "the Job is pinned to the node using the volume"
assert_eq true "$(jp job "$task" '.spec.template.spec.volumes[0].persistentVolumeClaim.readOnly' -n shop)" "read-only mount"
wait_for 20 "request annotation removed" bash -c '[ -z "$(kubectl get pvc data -n shop -o "jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup}")" ]'
answer="$(jp pvc data '.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result' -n shop)"
assert_contains "$answer" "Completed: Task $task" "answer on the PVC"
assert_contains "$(k describe pvc data -n shop)" "manual-backup-result" "kubectl describe shows the answer"

# The snapshot, seen by restic directly: host, tag, path, and the bytes.
snapshots="$(restic_cli snapshots --json --host shop-data --tag name=pre-upgrade)"
count="$(echo "$snapshots" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
assert_eq 1 "$count" "snapshots with host shop-data and tag name=pre-upgrade"
assert_eq '["/data"]' "$(echo "$snapshots" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]["paths"]))')" "snapshot path"
snapshot_id="$(echo "$snapshots" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
assert_contains "$snapshot_id" "$(jp task "$task" .status.snapshotId -n shop)" "Task records the snapshot"
restic_cli restore "$snapshot_id" --target "$SCENARIO_DIR/restored" >/dev/null
diff -r "$SCENARIO_DIR/original-shop-data" "$SCENARIO_DIR/restored/data" || fail "restored bytes differ from the volume"

[ -n "$(jp task "$task" .status.filesNew -n shop)" ] || fail "Task status lacks restic's summary"
wait_for 20 "BackupCompleted Event on the PVC" event_exists shop BackupCompleted
wait_for 20 "BackupRequested Event on the PVC" event_exists shop BackupRequested

# A request while a backup of the same PVC runs is queued, not lost.
k annotate pvc data -n shop --overwrite backup.datarestor-operator.com/manual-backup=first-of-two >/dev/null
wait_for 30 "first-of-two started" bash -c "kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.name}{\"\\n\"}{end}' | grep -qx first-of-two"
k annotate pvc data -n shop --overwrite backup.datarestor-operator.com/manual-backup=second-of-two >/dev/null
for name in first-of-two second-of-two; do
  wait_for 90 "$name completed" bash -c "kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx '$name=Completed'"
done

log "credentials live in the namespace only while a Task runs"
left="$(kubectl get secrets -n shop -l app.kubernetes.io/managed-by=datarestor-operator -o name)"
assert_eq "" "$left" "no credentials Secret stays after the Tasks finished"
# A Secret someone prepared under the name the next Task will use is rewritten whole: their key
# never reaches restic.
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-backup=after-tampering' >/dev/null
task=""
while [ -z "$task" ]; do
  task="$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="after-tampering")]}{.metadata.name}{end}')"
  sleep 0.2
done
k create secret generic "$task-credentials" -n shop --from-literal=RESTIC_PASSWORD_COMMAND='sh -c "touch /data/pwned; echo x"' >/dev/null 2>&1 || true
wait_for 90 "after-tampering completed" jp_is Completed task "$task" .status.phase -n shop
job="$(jp task "$task" .status.jobName -n shop)"
assert_eq "" "$(jp job "$job" '.spec.template.spec.containers[0].envFrom' -n shop)" "no envFrom"
case " $(jp job "$job" '.spec.template.spec.containers[0].env[*].name' -n shop) " in
  *RESTIC_PASSWORD_COMMAND*) fail "the added key reached the Job" ;;
esac
[ ! -e "$(pvc_host_path data shop)/pwned" ] || fail "a command from the Secret ran"
gone secret "$task-credentials" -n shop || fail "the Task's credentials Secret outlived it"

assert_no_credentials
