# check: a repository with checkSchedule runs `restic check --read-data-subset 100%` in a Job on
# schedule (every minute here). After a backup the check passes: the Config's status says Passed,
# an IntegrityCheckPassed Event, and the metric reads 1. Then one data pack in the bucket is
# overwritten with garbage of the same size (the damage a failing disk or a buggy S3 server does,
# invisible to a structure-only check): the next check fails with restic's own words in the status,
# an IntegrityCheckFailed Warning, and the metric reads 0.
# e2e-timeout: 360

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchNamespaces: [shop]
YAML
)" '      checkSchedule: "* * * * *"
      checkReadDataSubset: "100%"'
make_pvc shop data
fill_volume shop data
start_datarestor
wait_config_ready
wait_for 30 "data released as new" released shop data
backup_named shop data checked
check_field() { kubectl get config backup -n backup-system -o "jsonpath={.status.repositories[0].lastIntegrityCheck.$1}"; }
next_check="$(kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[0].nextIntegrityCheck}')"
[ -n "$next_check" ] || fail "no nextIntegrityCheck in the Config's status"

# The first check after the backup (a slot passed while it ran may have checked an empty repository).
checked_after() { [ -n "$(check_field time)" ] && [ "$(date -d "$(check_field time)" +%s)" -gt "$1" ]; }
after_backup="$(date +%s)"
wait_for 150 "an integrity check after the backup" checked_after "$after_backup"
assert_eq Passed "$(check_field result)" "check of a sound repository ($(check_field message))"
assert_eq "100%" "$(check_field readDataSubset)" "the subset it read"
event_exists backup-system IntegrityCheckPassed || fail "no IntegrityCheckPassed Event"
metric_line() { operator_http /metrics | grep '^datarestor_repository_integrity_check_passed{' || true; }
assert_contains "$(metric_line)" "} 1" "the metric after a passing check"

log "damaging one data pack"
python3 - <<'PY' || fail "could not damage a pack"
import os, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
bucket = os.environ["S3_BUCKET"]
packs = [o for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/").get("Contents", [])]
assert packs, "no data packs"
pack = max(packs, key=lambda o: o["Size"])
s3.put_object(Bucket=bucket, Key=pack["Key"], Body=os.urandom(pack["Size"]))
print("overwrote", pack["Key"], pack["Size"], "bytes")
PY
after_damage="$(date +%s)"
wait_for 150 "an integrity check after the damage" checked_after "$after_damage"
assert_eq Failed "$(check_field result)" "check of a damaged repository"
message="$(check_field message)"
assert_contains "$message" "check Job" "the message names the Job"
warnings="$(kubectl get events.events.k8s.io -n backup-system -o 'jsonpath={range .items[?(@.type=="Warning")]}{.reason}{"\n"}{end}')"
assert_contains "$warnings" "IntegrityCheckFailed" "a Warning for the failed check"
assert_contains "$(metric_line)" "} 0" "the metric after a failed check"
log "damage reported: $message"
operator_running || fail "the operator restarted"
