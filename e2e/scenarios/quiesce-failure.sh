# quiesce-failure: a backup to a repository whose password is wrong is failed with that reason
# before anything is stopped; a restic Job that runs past its deadline (S3 frozen) is failed and
# the workloads it stopped come back to their replicas.
# e2e-timeout: 360

source "$E2E_DIR/datarestor.sh"
install_datarestor
FROZEN_PORT="$(free_port)"
start_s3 frozen-s3 "$FROZEN_PORT"
FROZEN="s3:http://$S3_HOST:$FROZEN_PORT/frozen"
# The primary repository exists already with a password the Config does not know.
RESTIC_PASSWORD="some-other-password" restic --repo "$REPO" --cache-dir "$SCENARIO_DIR/cli-cache" init >/dev/null
# autoRestore off: new PVCs would otherwise stay held, since the wrong-password repository cannot
# be searched for their snapshots (fail closed).
write_config shop "$(cat <<'YAML'
  stopPods: true
  autoRestore: false
  selectors:
    - matchNamespaces: [shop]
YAML
)" "    - target: \"$FROZEN\"
      priority: 2
      env:
        - {name: AWS_ACCESS_KEY_ID, value: \"$AWS_ACCESS_KEY_ID\"}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}"
JOB_DEADLINE=8 RESTIC_TIMEOUT=10 start_datarestor
wait_for 60 "the frozen-to-be repository ready" bash -c "[ \"\$(kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[?(@.priority==2)].ready}')\" = true ]"
assert_eq WrongPassword "$(kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[?(@.priority==1)].reason}')" "wrong password reported"
quiesce_apps

log "wrong password"
k annotate pvc data-db-0 -n shop 'backup.datarestor-operator.com/manual-backup=1|bad-password' >/dev/null
task="$(wait_task shop data-db-0 backup Failed 120)"
assert_contains "$(jp task "$task" .status.message -n shop)" "WrongPassword" "failure reason"
assert_eq "" "$(jp task "$task" .status.quiescedWorkloads -n shop)" "nothing stopped for a repository known to refuse"
apps_back || fail "the workloads were touched"

log "deadline exceeded"
k annotate pvc web-data -n shop 'backup.datarestor-operator.com/manual-backup=2|too-slow' >/dev/null
# Frozen as soon as the Task exists (the repository was checked ready just before): a backup
# this small could finish between two looks for its Running phase.
wait_for 60 "the backup Task" bash -c "kubectl get tasks -n shop -l backup.datarestor-operator.com/pvc=web-data -o name | grep -q ."
kill -STOP "$(cat "$SCENARIO_DIR/frozen-s3.pid")"
wait_for 60 "its Job running against the frozen server" bash -c "kubectl get tasks -n shop -l backup.datarestor-operator.com/pvc=web-data -o 'jsonpath={.items[*].status.phase}' | grep -q Running"
task="$(wait_task shop web-data backup Failed 120)"
kill -CONT "$(cat "$SCENARIO_DIR/frozen-s3.pid")"
assert_contains "$(jp task "$task" .status.message -n shop)" "exceeded its deadline" "deadline reason"
wait_for 60 "workloads back after a deadline" apps_back
all_tasks_finished shop || fail "a Task was left unfinished"
