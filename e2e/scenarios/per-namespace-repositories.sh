# per-namespace-repositories: the administrators' Config gives each namespace a repository of its
# own (`{namespace}` in the target) with a password of its own (Secrets `restic-{namespace}`).
# Each team's backups land in its own repository, which the other team's password cannot open; the
# Config lists one repository per namespace; a namespace deleted and re-created is restored from its
# own repository, byte-identical; a clone out of another namespace is refused even with
# allowCrossNamespaceRestore, since it would read another team's repository.

source "$E2E_DIR/datarestor.sh"
install_datarestor
PASSWORD_A="team-a-password-$RANDOM$RANDOM"
PASSWORD_B="team-b-password-$RANDOM$RANDOM"
secret_value "$PASSWORD_A"
secret_value "$PASSWORD_B"
k create secret generic restic-team-a -n backup-system --from-literal=password="$PASSWORD_A" >/dev/null
k create secret generic restic-team-b -n backup-system --from-literal=password="$PASSWORD_B" >/dev/null
kapply >/dev/null <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: backup, namespace: backup-system}
spec:
  autoRestore: true
  allowCrossNamespaceRestore: true
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: "restic-{namespace}", key: password}}
  repositories:
    - target: "$REPO/{namespace}"
      priority: 1
      env:
        - {name: AWS_ACCESS_KEY_ID, value: "$AWS_ACCESS_KEY_ID"}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
  selectors:
    - matchNamespaces: [team-a, team-b]
YAML
make_pvc team-a data
make_pvc team-b data
start_datarestor
wait_config_ready
for ns in team-a team-b; do wait_for 60 "$ns/data released as new" released "$ns" data; done
assert_eq "2/2" "$(jp config backup .status.repositorySummary -n backup-system)" "one repository per namespace, both ready"
targets="$(jp config backup '.status.repositories[*].target' -n backup-system)"
assert_eq "$REPO/team-a $REPO/team-b" "$targets" "the Config lists each namespace's repository"
assert_eq "$REPO/{namespace} $REPO/{namespace}" "$(jp config backup '.status.repositories[*].instanceOf' -n backup-system)" \
  "each names the target it is an instance of"

fill_volume team-a data
fill_volume team-b data
backup_named team-a data before-disaster
backup_named team-b data before-disaster
backup_task="$(wait_task team-a data backup Completed)"
assert_eq "$REPO/team-a" "$(jp task "$backup_task" .status.repository -n team-a)" "team-a's backup went to team-a's repository"

# As an administrator sees the bucket: each repository opens with its own team's password only.
team_restic() { RESTIC_PASSWORD="$1" restic --repo "$REPO/$2" --cache-dir "$SCENARIO_DIR/cli-cache" "${@:3}"; }
hosts="$(team_restic "$PASSWORD_A" team-a snapshots --json | python3 -c 'import json,sys; print(" ".join(s["hostname"] for s in json.load(sys.stdin)))')"
assert_eq team-a-data "$hosts" "team-a's repository holds team-a's snapshot only"
if team_restic "$PASSWORD_A" team-b snapshots >"$SCENARIO_DIR/cross.log" 2>&1; then
  fail "team-a's password opened team-b's repository"
fi
assert_contains "$(cat "$SCENARIO_DIR/cross.log")" "wrong password" "team-a's password does not open team-b's repository"

answer="$(restore_request team-a data 'team-b-data|latest')"
assert_contains "$answer" "Rejected:" "a clone out of team-b is refused"
assert_contains "$answer" "its own repository" "the refusal says why"

log "disaster: namespace team-a deleted, then its claim applied again"
k delete namespace team-a --wait=true --timeout=120s >/dev/null
make_pvc team-a data
restored="$(wait_task team-a data restore Completed 180)"
assert_eq "$REPO/team-a" "$(jp task "$restored" .status.repository -n team-a)" "restored from team-a's own repository"
wait_for 30 "team-a/data released" released team-a data
same_tree "$SCENARIO_DIR/original-team-a-data" "$(pvc_host_path data team-a)" "team-a's data after the disaster"
assert_no_credentials
