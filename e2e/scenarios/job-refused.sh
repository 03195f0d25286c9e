# job-refused: the cluster refuses a Task's restic Job (a ResourceQuota on the real cluster, an
# injected 403 on kube-sim) after the workloads were stopped for it: the Task fails at once with
# the reason, and the workloads come straight back instead of waiting for a Job that never comes.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  stopPods: true
  autoRestore: false
  selectors:
    - matchNamespaces: [shop]
YAML
)"
start_datarestor
wait_config_ready
app_on_claim shop web data
if on_real_cluster; then
  kapply >/dev/null <<'YAML'
apiVersion: v1
kind: ResourceQuota
metadata: {name: no-jobs, namespace: shop}
spec:
  hard: {count/jobs.batch: "0"}
YAML
  quota_counted() { [ -n "$(jp resourcequota no-jobs '.status.hard.count/jobs\.batch' -n shop)" ]; }
  wait_for 30 "the quota in force" quota_counted
else
  sim_fault create jobs 403 0 shop
fi
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-backup=refused' >/dev/null
task="$(wait_task shop data backup Failed 90)"
assert_eq JobNotCreated "$(jp task "$task" '.status.conditions[?(@.type=="Succeeded")].reason' -n shop)" "failure reason"
assert_contains "$(jp task "$task" .status.message -n shop)" "the cluster refused restic Job" "failure message"
assert_eq "Deployment/web" "$(jp task "$task" '.status.quiescedWorkloads[0]' -n shop)" "the workload had been stopped for it"
web_back() {
  [ "$(jp deployment web .spec.replicas -n shop)" = 1 ] && [ "$(jp deployment web .status.readyReplicas -n shop)" = 1 ] &&
    [ -z "$(jp deployment web '.metadata.annotations.backup\.datarestor-operator\.com/quiesced-by' -n shop)" ]
}
wait_for 60 "the workload back" web_back
answer="$(kubectl get pvc data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result}')"
assert_contains "$answer" "Failed:" "the request is answered"
assert_no_credentials
