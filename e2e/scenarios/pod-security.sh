# pod-security: the restic Jobs under Pod Security admission. In a namespace that enforces
# `baseline` (the level most clusters give app namespaces) a stopPods backup and a restore both
# succeed, byte for byte, and the app comes back. In a namespace that enforces `restricted`, where
# a root Job cannot run, the backup is answered within seconds with the admission's reason, the
# refused Job is removed, and the app is scaled back up: never a Job hanging until its deadline
# with the workload down. With `runJobsAs` set to the app's user, the same namespace admits the
# Jobs: a backup and a Clean restore succeed byte for byte, and the restored files belong to the
# app's user.
# e2e-stage: real cluster only: Pod Security admission is enforced by the real API server
# e2e-timeout: 420

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  stopPods: true
  selectors:
    - matchNamespaces: [team, locked]
YAML
)"
for ns in team locked; do k create namespace "$ns" >/dev/null; done
k label namespace team pod-security.kubernetes.io/enforce=baseline >/dev/null
k label namespace locked pod-security.kubernetes.io/enforce=restricted >/dev/null
# The deadline is long on purpose: the refusal must be noticed from the Job's Events, not its deadline.
JOB_DEADLINE=3600 start_datarestor
wait_config_ready

# baseline: both directions work.
app_on_claim team web web-data
wait_for 60 "web-data released as new" released team web-data
fill_volume team web-data
backup_named team web-data under-baseline
dir="$(pvc_host_path web-data team)"
rm -rf "$dir/app"
assert_contains "$(restore_request team web-data under-baseline)" "Completed" "restore under baseline"
same_tree "$SCENARIO_DIR/original-team-web-data" "$dir" "restored under baseline"
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n team --timeout=90s >/dev/null

# restricted: the app itself complies, the root restic Job cannot.
kapply >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: tight-data, namespace: locked}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: tight, namespace: locked}
spec:
  replicas: 1
  selector: {matchLabels: {app: tight}}
  template:
    metadata: {labels: {app: tight}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - {name: tight, $APP_CONTAINER, securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}, volumeMounts: [{name: data, mountPath: /data}]}
      volumes: [{name: data, persistentVolumeClaim: {claimName: tight-data}}]
YAML
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/tight -n locked --timeout=90s >/dev/null
k annotate pvc tight-data -n locked backup.datarestor-operator.com/manual-backup=refused >/dev/null
start=$SECONDS
task="$(wait_task locked tight-data backup Failed 90)"
log "answered after $((SECONDS - start))s"
assert_eq JobPodsRejected "$(jp task "$task" '.status.conditions[?(@.type=="Succeeded")].reason' -n locked)" "failure reason"
message="$(jp task "$task" .status.message -n locked)"
assert_contains "$message" "violates PodSecurity" "the admission's reason reaches the Task"
assert_contains "$(jp pvc tight-data '.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result' -n locked)" "Failed" "the request is answered"
wait_for 30 "the refused Job removed" gone job "$task" -n locked
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/tight -n locked --timeout=60s >/dev/null
assert_eq 1 "$(jp deployment tight .spec.replicas -n locked)" "the app is back at its replicas"

log "restricted with runJobsAs: the Jobs run as the app's user"
fill_volume locked tight-data
tight_dir="$(pvc_host_path tight-data locked)"
chown -R 1000:1000 "$tight_dir"
k patch config backup -n backup-system --type merge -p '{"spec":{"runJobsAs":{"user":1000,"group":1000}}}' >/dev/null
backup_named locked tight-data as-the-app
rm -rf "$tight_dir/app"
echo "written after the backup" >"$tight_dir/stray"
chown 1000:1000 "$tight_dir/stray"
assert_contains "$(restore_request locked tight-data as-the-app)" "Completed" "restore under restricted"
same_tree "$SCENARIO_DIR/original-locked-tight-data" "$tight_dir" "restored under restricted"
assert_eq 1000 "$(stat -c %u "$tight_dir/app/config/settings.yaml")" "restored files belong to the app's user"
restore_task="$(kubectl get tasks -n locked -l backup.datarestor-operator.com/type=restore -o 'jsonpath={.items[0].metadata.name}')"
assert_eq 1000 "$(jp job "$restore_task" .spec.template.spec.securityContext.runAsUser -n locked)" "the restore Job ran as the app's user"
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/tight -n locked --timeout=90s >/dev/null
assert_no_credentials
