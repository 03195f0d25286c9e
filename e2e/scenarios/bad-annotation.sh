# bad-annotation: malformed or unservable manual-backup values get a Warning Event and an answer
# on the PVC, create no Task, and disturb nothing else: a valid request made at the same time
# completes, and the operator keeps running.

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchLabels: {app: my-app}
YAML
)"
make_pvc shop good app=my-app
make_pvc shop bad app=my-app
make_pvc shop unknown-priority app=my-app
make_pvc shop unprotected app=other
fill_volume shop good
start_datarestor
wait_config_ready

k annotate pvc bad -n shop 'backup.datarestor-operator.com/manual-backup=1abc|x|y'
k annotate pvc unknown-priority -n shop 'backup.datarestor-operator.com/manual-backup=7|nightly'
k annotate pvc unprotected -n shop 'backup.datarestor-operator.com/manual-backup=nightly'
k annotate pvc good -n shop 'backup.datarestor-operator.com/manual-backup=nightly'

wait_task shop good backup Completed >/dev/null

result() { kubectl get pvc "$1" -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result}'; }
answered() { [ -n "$(result "$1")" ]; }
for pvc in bad unknown-priority unprotected; do
  wait_for 20 "answer on $pvc" answered "$pvc"
  [ -z "$(kubectl get pvc "$pvc" -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup}')" ] ||
    fail "request annotation on $pvc was not removed"
  assert_eq "" "$(tasks_of shop "$pvc" backup)" "no Task for $pvc"
done
assert_contains "$(result bad)" 'repository "1abc" is neither a priority number' "answer for 1abc|x|y"
assert_contains "$(result unknown-priority)" "no repository has priority 7 (configured priorities: 1)" "answer for 7|nightly"
assert_contains "$(result unprotected)" "no Config selects this PVC" "answer for an unprotected PVC"

warnings="$(kubectl get events.events.k8s.io -n shop -o 'jsonpath={range .items[?(@.type=="Warning")]}{.reason}: {.note}{"\n"}{end}')"
assert_contains "$warnings" 'InvalidRequest: manual-backup="1abc|x|y" rejected' "Warning Event for 1abc|x|y"
assert_contains "$warnings" 'InvalidRequest: manual-backup="7|nightly" rejected' "Warning Event for 7|nightly"
operator_running || fail "the operator stopped"
