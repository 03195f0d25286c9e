# credentials-in-target: a repository target that carries credentials in its URL
# (`s3:http://user:TOKEN@host/bucket`, as `rest:` servers are often addressed) works for backups
# and restores, and the token appears in no Task, Job, pod, Event, PVC answer, Config status or
# operator log: everything shows `***@host`, and restic reads the real target from the Job's
# credentials Secret. A request naming an unknown target is not answered with the configured ones.

source "$E2E_DIR/datarestor.sh"
install_datarestor
TOKEN="tok$RANDOM$RANDOM$RANDOM"
secret_value "$TOKEN"
ENDPOINT="${S3_ENDPOINT#http://}"
REPO="s3:http://tenant-user:$TOKEN@$ENDPOINT/$S3_BUCKET"
write_config shop "$(cat <<'YAML'
  autoRestore: false
  selectors:
    - matchNamespaces: [shop]
YAML
)"
make_pvc shop data
fill_volume shop data
start_datarestor
wait_config_ready
assert_eq "s3:http://***@$ENDPOINT/$S3_BUCKET" "$(jp config backup '.status.repositories[0].target' -n backup-system)" "status shows the target without its credentials"
backup_named shop data with-token
task="$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="with-token")]}{.metadata.name}{end}')"
assert_eq "s3:http://***@$ENDPOINT/$S3_BUCKET" "$(jp task "$task" .spec.repository -n shop)" "the Task shows the target without its credentials"
dir="$(pvc_host_path data shop)"
rm -rf "$dir/app"
assert_contains "$(restore_request shop data with-token)" "Completed" "restore"
same_tree "$SCENARIO_DIR/original-shop-data" "$dir" "restored bytes"
k annotate pvc data -n shop "backup.datarestor-operator.com/manual-backup=s3:http://nobody:x@$S3_HOST:1/elsewhere|probe" >/dev/null
probe_answered() { kubectl get pvc data -n shop -o 'jsonpath={.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result}' | grep -q '^Rejected:'; }
wait_for 30 "the probe answered" probe_answered
answer="$(jp pvc data '.metadata.annotations.backup\.datarestor-operator\.com/manual-backup-result' -n shop)"
assert_contains "$answer" "configured priorities: 1" "the answer names priorities"
case "$answer" in *"$S3_BUCKET"*) fail "the answer lists a configured target: $answer" ;; esac
assert_no_credentials
