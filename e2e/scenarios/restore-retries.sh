# restore-retries: a failed automatic restore is tried again, as a new Task, from the next
# repository that holds the snapshot, while the app's pod stays held; the PVC shows the attempts.
# Then: a PVC held for a restore is let go (with an Event) when its Config is deleted, so no pod
# waits for ever on a restore nothing will do.
# e2e-timeout: 420

source "$E2E_DIR/datarestor.sh"
install_datarestor
FIRST_PORT="$(free_port)"
SECOND_PORT="$(free_port)"
start_s3 first "$FIRST_PORT"
start_s3 second "$SECOND_PORT"
FIRST="s3:http://$S3_HOST:$FIRST_PORT/first"
SECOND="s3:http://$S3_HOST:$SECOND_PORT/second"
REPO="$SECOND"

two_repository_config "$FIRST" "$SECOND" shop
RESTIC_TIMEOUT=10 start_datarestor
wait_config_ready
make_pvc shop data
fill_volume shop data
backup_named shop data "1|copy-one"
backup_named shop data "2|copy-two"

log "damaging every data pack of the first repository (its snapshot list still answers)"
python3 - "$S3_HOST" "$FIRST_PORT" first <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://{sys.argv[1]}:{sys.argv[2]}", region_name="us-east-1")
damaged = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[3], Prefix="data/"):
    for obj in page.get("Contents", []):
        s3.put_object(Bucket=sys.argv[3], Key=obj["Key"], Body=os.urandom(obj["Size"]))
        damaged += 1
assert damaged > 0, "no data pack found"
print(f"damaged {damaged} packs", file=sys.stderr)
PY

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
  k delete pvc data -n shop --wait=true --timeout=60s >/dev/null || fail "the claim is still in use after its Tasks finished"
}
annotation() { kubectl get pvc data -n shop -o "jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/$1}"; }

log "part 1: the first attempt fails in the first repository, the second restores from the second"
lose_everything
app
attempt_failed() { [ "$(annotation restore-attempts)" = 1 ]; }
wait_for 240 "the first attempt failed" attempt_failed
assert_eq "" "$(jp pod app .spec.nodeName -n shop)" "the pod stays held after a failed attempt"
assert_contains "$(annotation restore-failed-in)" "$FIRST" "the failed repository is recorded"
wait_for 30 "RestoreRetryScheduled Event" event_exists shop RestoreRetryScheduled
k wait --for=condition=Ready pod/app -n shop --timeout=240s >/dev/null
assert_eq Released "$(restore_state shop data)" "released after the second attempt"
assert_eq 1 "$(annotation restore-attempts)" "one failed attempt on record"
restores="$(kubectl get tasks -n shop -l backup.datarestor-operator.com/type=restore -o 'jsonpath={range .items[*]}{.status.repository} {.status.phase}{"\n"}{end}' | sort)"
assert_eq "$(printf '%s Failed\n%s Completed' "$FIRST" "$SECOND" | sort)" "$restores" "one Task per attempt: first failed, second completed"
same_tree "$SCENARIO_DIR/original-shop-data" "$(pvc_host_path data shop)" "restored bytes"

log "part 2: a held PVC is released when its Config goes"
lose_everything
kill -STOP "$(cat "$SCENARIO_DIR/first.pid")" "$(cat "$SCENARIO_DIR/second.pid")"
app
held() { [ "$(annotation restore-message | grep -c unreachable)" = 1 ]; }
wait_for 90 "PVC held while the repositories are unreachable" held
assert_eq "" "$(jp pod app .spec.nodeName -n shop)" "the pod is held"
k delete config backup -n backup-system >/dev/null
k wait --for=condition=Ready pod/app -n shop --timeout=90s >/dev/null
assert_eq Released "$(restore_state shop data)" "released when the Config went"
assert_contains "$(annotation restore-message)" "no Config with autoRestore" "the PVC says why"
wait_for 30 "RestoreCancelled Event" event_exists shop RestoreCancelled
kill -CONT "$(cat "$SCENARIO_DIR/first.pid")" "$(cat "$SCENARIO_DIR/second.pid")"
assert_no_credentials
