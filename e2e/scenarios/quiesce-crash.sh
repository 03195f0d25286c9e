# quiesce-crash: the operator is killed (SIGKILL) while a Task is ScalingDown, Running and
# ScalingUp; after each restart every workload returns to its original replicas and no Task is
# left unfinished.
# e2e-timeout: 420
# e2e-stage: kube-sim only: it injects API errors (sim_fault) and restarts the API server

export KUBE_SIM_POD_GRACE=4 # pods take a while to go, so ScalingDown lasts long enough to crash in
restart_kube_sim
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
phase_of() { kubectl get tasks -n shop -l "backup.datarestor-operator.com/pvc=$1" -o 'jsonpath={.items[*].status.phase}'; }
in_phase() { phase_of "$1" | grep -qw "$2"; }
freeze_s3() { kill -"$1" "$(pgrep -f "moto_server -H $S3_HOST -p ${S3_ENDPOINT##*:}" | head -1)"; }

crash_in() { # PVC PHASE NAME
  k annotate pvc "$1" -n shop "backup.datarestor-operator.com/manual-backup=$3" >/dev/null
  wait_for 60 "$3 reaches $2" in_phase "$1" "$2"
  log "killing the operator while $1's Task is $2"
  stop_operator KILL
}
recovered() { # NAME
  wait_for 120 "$1: workloads back" apps_back
  wait_for 120 "$1: every Task finished" all_tasks_finished shop
}

crash_in data-db-1 ScalingDown during-scaledown
start_datarestor
recovered during-scaledown

# The Job cannot finish while S3 is frozen: a stable Running phase to crash in.
k annotate pvc web-data -n shop backup.datarestor-operator.com/manual-backup=during-running >/dev/null
wait_for 60 "during-running is ScalingDown or Running" in_phase web-data 'ScalingDown\|Running'
freeze_s3 STOP
wait_for 60 "during-running is Running" in_phase web-data Running
log "killing the operator while web-data's Task is Running"
stop_operator KILL
freeze_s3 CONT
start_datarestor
recovered during-running

# Once the Job runs, workload updates fail (injected), so the Task stays in ScalingUp.
freeze_s3 STOP
k annotate pvc web-data -n shop backup.datarestor-operator.com/manual-backup=during-scaleup >/dev/null
wait_for 60 "during-scaleup is Running" in_phase web-data Running
sim_fault update deployments 500 0
freeze_s3 CONT
wait_for 90 "during-scaleup is ScalingUp" in_phase web-data ScalingUp
log "killing the operator while web-data's Task is ScalingUp"
stop_operator KILL
sim_clear_faults
start_datarestor
recovered during-scaleup
for name in during-scaledown during-running during-scaleup; do
  phase="$(kubectl get tasks -n shop -o "jsonpath={range .items[?(@.spec.name==\"$name\")]}{.status.phase}{end}")"
  log "$name: $phase"
  [ "$phase" = Completed ] || [ "$phase" = Failed ] || fail "$name left $phase"
done
