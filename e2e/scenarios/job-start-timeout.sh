# job-start-timeout: after the workloads were stopped for a Task, creating its Job keeps failing
# for a passing reason (the API server answers 500): the Task retries, but only for
# --job-start-timeout-seconds; then it fails with the reason and the workloads come back.
# e2e-stage: kube-sim only: it makes the API server answer 500 to Job creation (sim_fault)

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  stopPods: true
  autoRestore: false
  selectors:
    - matchNamespaces: [shop]
YAML
)"
start_datarestor --job-start-timeout-seconds 8
wait_config_ready
app_on_claim shop web data
sim_fault create jobs 500 0 shop
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-backup=never-created' >/dev/null
scaled_down() { [ "$(jp deployment web .spec.replicas -n shop)" = 0 ]; }
wait_for 30 "the workload stopped for the Task" scaled_down
task="$(wait_task shop data backup Failed 90)"
assert_eq JobNotCreated "$(jp task "$task" '.status.conditions[?(@.type=="Succeeded")].reason' -n shop)" "failure reason"
assert_contains "$(jp task "$task" .status.message -n shop)" "stayed scaled down" "failure message"
web_back() { [ "$(jp deployment web .spec.replicas -n shop)" = 1 ] && [ "$(jp deployment web .status.readyReplicas -n shop)" = 1 ]; }
wait_for 60 "the workload back" web_back
sim_clear_faults
backup_named shop data after-the-fault
