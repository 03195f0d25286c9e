# repository-down: with one S3 server stopped, its repository is reported unavailable (condition,
# reason, Event) while the other repository keeps serving backups; when the server returns, the
# repository becomes Ready again (re-initialised: this moto keeps no data across restarts).

source "$E2E_DIR/datarestor.sh"
install_datarestor
OUTAGE_PORT="$(free_port)"
start_s3 outage-s3 "$OUTAGE_PORT"
PRIMARY="s3:http://$S3_HOST:$OUTAGE_PORT/primary"
write_config shop "$(cat <<'YAML'
  selectors:
    - matchLabels: {app: my-app}
YAML
)" "    - target: \"$PRIMARY\"
      priority: 0
      env:
        - {name: AWS_ACCESS_KEY_ID, value: \"$AWS_ACCESS_KEY_ID\"}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}"
make_pvc shop data app=my-app
fill_volume shop data
RESTIC_TIMEOUT=15 start_datarestor
wait_config_ready
# The PVC is new to the operator: it must be looked at (and released: no snapshot anywhere) while
# both repositories answer. With one down it would rightly stay held (fail closed).
wait_for 60 "data released as new" released shop data
repo_field() { kubectl get config backup -n backup-system -o "jsonpath={.status.repositories[?(@.target==\"$1\")].$2}"; }
assert_eq true "$(repo_field "$PRIMARY" ready)" "primary ready"

log "stopping the primary's S3 server"
kill "$(cat "$SCENARIO_DIR/outage-s3.pid")"
primary_down() { [ "$(repo_field "$PRIMARY" ready)" = false ]; }
wait_for 90 "primary reported unavailable" primary_down
assert_eq Unreachable "$(repo_field "$PRIMARY" reason)" "reason"
assert_eq True "$(repo_field "$REPO" ready | sed 's/true/True/')" "the other repository stays ready"
assert_eq False "$(jp config backup '.status.conditions[?(@.type=="Ready")].status' -n backup-system)" "Config Ready"
assert_contains "$(jp config backup '.status.conditions[?(@.type=="RepositoriesReady")].message' -n backup-system)" "$PRIMARY" "condition names the repository"
wait_for 20 "RepositoryUnavailable Event" event_exists backup-system RepositoryUnavailable

# Manual requests to the other repository are served meanwhile.
k annotate pvc data -n shop 'backup.datarestor-operator.com/manual-backup=1|during-outage' >/dev/null
wait_task shop data backup Completed 90 >/dev/null
count="$(restic_cli snapshots --json --tag name=during-outage | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
assert_eq 1 "$count" "backup to the healthy repository during the outage"

log "starting the primary's S3 server again"
start_s3 outage-s3 "$OUTAGE_PORT"
wait_for 90 "primary ready again" bash -c "[ \"\$(kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[?(@.target==\"$PRIMARY\")].ready}')\" = true ]"
wait_config_ready 30
kill "$(cat "$SCENARIO_DIR/outage-s3.pid")" 2>/dev/null || true
