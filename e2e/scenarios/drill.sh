# drill: restore drills on a schedule (every minute here). Each selected PVC's newest snapshot is
# restored into a scratch PVC beside it, its entries and bytes are checked against the snapshot's
# own totals, the drill's command runs in the restored volume, and the scratch PVC is deleted. The
# app keeps running on its own volume throughout (no scale-down, nothing written to it). A selector
# whose drill command finds the data wrong fails its drill and says so; a drill's command never
# sees the repository's credentials.
# e2e-timeout: 360

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  stopPods: true
  drill:
    schedule: "* * * * *"
    command: ["sh", "-c", "grep -qx 'hello from shop/web-data' app/config/settings.yaml && test -s db/table.bin && ! env | grep -q RESTIC_PASSWORD"]
  selectors:
    - matchLabels: {tier: broken}
      drill:
        schedule: "* * * * *"
        command: ["sh", "-c", "echo 'expected a file the app never wrote' >&2; test -e missing.db"]
    - matchNamespaces: [shop]
YAML
)"
start_datarestor
wait_config_ready
app_on_claim shop web web-data
wait_for 30 "web-data released as new" released shop web-data
fill_volume shop web-data
make_pvc shop other tier=broken
fill_volume shop other
backup_named shop web-data before-drill
backup_named shop other before-drill
before="$(cd "$(pvc_host_path web-data shop)" && find . -type f | sort | xargs sha256sum)"

drill_task() { kubectl get tasks -n shop -l "backup.datarestor-operator.com/type=drill,backup.datarestor-operator.com/pvc=$1" -o 'jsonpath={range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}'; }
finished_drill() { drill_task "$1" | awk '$2 == "Completed" || $2 == "Failed" {print $1; exit}'; }
wait_for 150 "a finished drill of web-data" bash -c "[ -n \"\$(kubectl get tasks -n shop -l backup.datarestor-operator.com/type=drill,backup.datarestor-operator.com/pvc=web-data -o 'jsonpath={.items[?(@.status.phase==\"Completed\")].metadata.name}{.items[?(@.status.phase==\"Failed\")].metadata.name}')\" ]"
task="$(finished_drill web-data)"
report() { kubectl get task "$1" -n shop -o "jsonpath={.status.drill.$2}"; }
assert_eq Completed "$(jp task "$task" .status.phase -n shop)" "web-data's drill ($(jp task "$task" .status.message -n shop))"
assert_eq "$(report "$task" expectedEntries)" "$(report "$task" restoredEntries)" "entries restored as the snapshot holds"
assert_eq "$(report "$task" expectedBytes)" "$(report "$task" restoredBytes)" "bytes restored as the snapshot holds"
[ "$(report "$task" expectedBytes)" -gt 200000 ] || fail "the drill restored less than the volume's data ($(report "$task" expectedBytes) bytes)"
assert_eq 0 "$(report "$task" commandExitCode)" "the drill's command"
newest="$(restic_cli snapshots --json --host shop-web-data | python3 -c 'import json,sys; print(max(json.load(sys.stdin), key=lambda s: s["time"])["short_id"])')"
assert_eq "$newest" "$(jp task "$task" .status.shortSnapshotId -n shop)" "the newest snapshot was drilled"
claim="$(report "$task" claim)"
wait_for 60 "the scratch volume $claim deleted" gone pvc "$claim" -n shop
assert_contains "$(jp task "$task" .status.message -n shop)" "Drill passed" "the Task says what passed"
event_exists shop DrillCompleted || fail "no DrillCompleted Event"
assert_eq Completed "$(jp catalog web-data .status.lastDrill.result -n shop)" "the Catalog records the drill"

# The app ran throughout, on a volume the drill never wrote to.
assert_eq 1 "$(jp deployment web .spec.replicas -n shop)" "web was not scaled down"
assert_eq "" "$(jp task "$task" .status.quiescedWorkloads -n shop)" "a drill stops nothing"
assert_eq "$before" "$(cd "$(pvc_host_path web-data shop)" && find . -type f | sort | xargs sha256sum)" "web-data untouched"

wait_for 150 "a finished drill of other" bash -c "[ -n \"\$(kubectl get tasks -n shop -l backup.datarestor-operator.com/type=drill,backup.datarestor-operator.com/pvc=other -o 'jsonpath={.items[?(@.status.phase==\"Failed\")].metadata.name}{.items[?(@.status.phase==\"Completed\")].metadata.name}')\" ]"
task="$(finished_drill other)"
assert_eq Failed "$(jp task "$task" .status.phase -n shop)" "the drill whose command finds the data wrong"
assert_eq DrillCommandFailed "$(jp task "$task" '.status.conditions[?(@.type=="Succeeded")].reason' -n shop)" "reason"
assert_contains "$(jp task "$task" .status.message -n shop)" "the drill's command exited 1" "the message"
warnings="$(kubectl get events.events.k8s.io -n shop -o 'jsonpath={range .items[?(@.type=="Warning")]}{.reason}{"\n"}{end}')"
assert_contains "$warnings" "DrillFailed" "a Warning for the failed drill"
wait_for 60 "the failed drill's scratch volume deleted too" gone pvc "$(report "$task" claim)" -n shop
[ -n "$(kubectl get config backup -n backup-system -o 'jsonpath={.status.drills[0].nextDrill}')" ] || fail "the Config does not say when the next drill is"
operator_running || fail "the operator restarted"
