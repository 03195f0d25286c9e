# backup-manual: `kubectl annotate pvc ... manual-backup=pre-upgrade` produces a Completed Task, a
# snapshot with host {ns}-{pvc} and tag name=pre-upgrade (checked with restic itself) holding the
# volume's exact bytes, an answered annotation and Events, and no credential anywhere. A key
# someone adds to the operator's credentials Secret in the PVC's namespace (a password command)
# never reaches restic: the next Job rewrites the Secret whole and reads only its own keys.

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

log "a key added to the credentials Secret by someone else"
secret="$(kubectl get secrets -n shop -l app.kubernetes.io/managed-by=datarestor-operator -o 'jsonpath={.items[0].metadata.name}')"
[ -n "$secret" ] || fail "no credentials Secret in the PVC's namespace"
k patch secret "$secret" -n shop --type merge -p '{"stringData":{"RESTIC_PASSWORD_COMMAND":"sh -c \"touch /data/pwned; echo x\""}}' >/dev/null
backup_named shop data after-tampering
assert_eq "" "$(jp secret "$secret" '.data.RESTIC_PASSWORD_COMMAND' -n shop)" "the added key is gone from the Secret"
job="$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="after-tampering")]}{.status.jobName}{end}')"
assert_eq "" "$(jp job "$job" '.spec.template.spec.containers[0].envFrom' -n shop)" "no envFrom"
case " $(jp job "$job" '.spec.template.spec.containers[0].env[*].name' -n shop) " in
  *RESTIC_PASSWORD_COMMAND*) fail "the added key reached the Job" ;;
esac

assert_no_credentials
