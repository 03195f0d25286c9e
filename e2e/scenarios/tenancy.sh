# tenancy: a team's Config protects only its own namespace. A Config in `team-a` whose selectors
# name `team-b` says so in its status and an Event, and never touches team-b's PVCs: a request there
# is answered "no Config selects this PVC", and a Task written by hand in team-b that names the
# Config is refused. A Config whose selector is empty (every PVC in the cluster) is refused by the
# API server. The administrators' Config in backup-system still reaches every namespace.

source "$E2E_DIR/datarestor.sh"
install_datarestor
for ns in team-a team-b; do k create namespace "$ns" >/dev/null; done
k create secret generic restic-credentials -n team-a \
  --from-literal=password="$RESTIC_PASSWORD_VALUE" --from-literal=secret-key="$AWS_SECRET_ACCESS_KEY" >/dev/null
config_in_team_a() {
  kapply <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: $1, namespace: team-a}
spec:
  autoRestore: false
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic-credentials, key: password}}
    - {name: AWS_ACCESS_KEY_ID, value: "$AWS_ACCESS_KEY_ID"}
    - name: AWS_SECRET_ACCESS_KEY
      valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
  repositories:
    - {target: "$REPO", priority: 1}
  selectors:
$2
YAML
}
# The schema's CEL rule is evaluated by a real API server only (kube-sim does not evaluate CEL;
# tests/crd.rs checks the rule itself with kube's CEL evaluator).
if on_real_cluster; then
  if output="$(config_in_team_a everything '    - {}' 2>&1)"; then
    fail "an empty selector was accepted"
  fi
  assert_contains "$output" "an empty one would select every PVC in the cluster" "the API server says why"
else
  log "kube-sim does not evaluate CEL: the empty-selector check runs on the real cluster"
fi

config_in_team_a team '    - matchNamespaces: [team-a, team-b]' >/dev/null
make_pvc team-a data
make_pvc team-b data
fill_volume team-a data
start_datarestor
wait_for 60 "team's Config Ready" jp_is True config team '.status.conditions[?(@.type=="Ready")].status' -n team-a
assert_eq False "$(jp config team '.status.conditions[?(@.type=="SelectorsInReach")].status' -n team-a)" "out-of-reach selectors reported"
assert_contains "$(jp config team '.status.conditions[?(@.type=="SelectorsInReach")].message' -n team-a)" "team-b" "the condition names the namespace"
wait_for 30 "SelectorsOutOfReach Event" event_exists team-a SelectorsOutOfReach
assert_eq 1 "$(jp config team .status.matchedPvcs -n team-a)" "only its own namespace's PVC counts"

k annotate pvc data -n team-b 'backup.datarestor-operator.com/manual-backup=reach' >/dev/null
rejected() { kubectl get pvc data -n team-b -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result}' | grep -q '^Rejected:'; }
wait_for 30 "team-b's request answered" rejected
assert_contains "$(jp pvc data '.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result' -n team-b)" "no Config selects this PVC" "rejection says why"
backup_named team-a data own-namespace

kapply >/dev/null <<'YAML'
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Task
metadata: {name: handmade, namespace: team-b}
spec:
  type: backup
  trigger: manual
  pvcName: data
  configRef: {name: team, namespace: team-a}
  repository: "placeholder"
  host: team-b-data
YAML
wait_for 60 "the handmade Task answered" jp_is Failed task handmade .status.phase -n team-b
assert_eq NotAllowed "$(jp task handmade '.status.conditions[?(@.type=="Succeeded")].reason' -n team-b)" "refused"
assert_contains "$(jp task handmade .status.message -n team-b)" "does not select PVC team-b/data" "the refusal says why"
count="$(restic_cli snapshots --json --host team-b-data | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
assert_eq 0 "$(echo "$count")" "nothing of team-b was backed up"
assert_no_credentials
