# retention: forgotSchedule runs `restic forget` with forgetArgs on this operator's snapshots
# (selected PVCs' hosts, path /data) and prunes, in a Job in the Config's namespace (not in the
# operator); its result is read back from forget's JSON. Snapshots of anything else stay. The PVC's
# Catalog counts four snapshots before and lists exactly the two kept after; the backup Task whose
# snapshot was forgotten gets SnapshotAvailable=False (Forgotten). A second selector with its own
# forgetArgs keeps one snapshot of its PVC in the same run (one forget per policy, then one prune).

source "$E2E_DIR/datarestor.sh"
install_datarestor
# The retention slot must not come before the four backups below are done: start the Config with
# a far-away retention schedule and switch it to every minute afterwards.
config_with_retention() {
  write_config shop "$(cat <<'YAML'
  selectors:
    - matchLabels: {app: my-app}
    - matchLabels: {app: cache}
      forgetArgs: ["--keep-last", "1"]
YAML
)" "      forgetArgs: [\"--keep-last\", \"2\"]
      forgotSchedule: \"$1\""
}
config_with_retention "0 4 1 1 *"
make_pvc shop data app=my-app
fill_volume shop data
make_pvc shop cache app=cache
fill_volume shop cache
start_datarestor
wait_config_ready

backup_named() { # PVC NAME
  k annotate pvc "$1" -n shop --overwrite "backup.datarestor-operator.com/manual-backup=$2" >/dev/null
  wait_for 60 "backup $2" bash -c "kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx '$2=Completed'"
}
for name in one two three four; do backup_named data "$name"; done
for name in c1 c2; do backup_named cache "$name"; done
host_snapshots() { restic_cli snapshots --json --host "$1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
assert_eq 4 "$(host_snapshots shop-data)" "four snapshots before retention"
assert_eq 2 "$(host_snapshots shop-cache)" "two snapshots of the second selector's PVC before retention"
assert_eq 4 "$(jp catalog data '.status.repositories[0].count' -n shop)" "the Catalog counts the four backups"
assert_eq "" "$(jp catalog data '.status.repositories[0].listedAt' -n shop)" "not yet listed from the repository"

# Someone else's snapshot in the same repository: another host and path.
mkdir -p "$SCENARIO_DIR/other"
echo other >"$SCENARIO_DIR/other/file"
restic_cli backup "$SCENARIO_DIR/other" --host other-tool >/dev/null
restic_cli backup "$SCENARIO_DIR/other" --host other-tool >/dev/null
restic_cli backup "$SCENARIO_DIR/other" --host other-tool >/dev/null

config_with_retention "* * * * *"
wait_for 150 "RetentionCompleted Event" event_exists backup-system RetentionCompleted
# One run is what is checked: the next minute's would overwrite lastRetention.
config_with_retention "0 4 1 1 *"
assert_eq 2 "$(host_snapshots shop-data)" "keep-last 2 applied to the PVC's snapshots"
assert_eq 1 "$(host_snapshots shop-cache)" "the selector's own keep-last 1 applied to its PVC's snapshots"
cache_kept="$(restic_cli snapshots --json --host shop-cache | python3 -c 'import json,sys; print(" ".join(t for s in json.load(sys.stdin) for t in s["tags"] if t.startswith("name=")))')"
assert_eq "name=c2" "$cache_kept" "the newest snapshot of the selector's PVC is the one kept"
retention_note="$(kubectl get events.events.k8s.io -n backup-system -o 'jsonpath={range .items[?(@.reason=="RetentionCompleted")]}{.note}{"\n"}{end}')"
assert_contains "$retention_note" "kept 3 and removed 3 snapshots" "the result read from both forgets' JSON"
assert_contains "$retention_note" "(Job forget-backup-" "run by a Job"
job="$(kubectl get jobs -n backup-system -l backup.datarestor-operator.com/type=retention -o 'jsonpath={.items[0].metadata.name}')"
[ -n "$job" ] || fail "no retention Job in the Config's namespace"
assert_eq "65532" "$(jp job "$job" .spec.template.spec.securityContext.runAsUser -n backup-system)" "the retention Job runs unprivileged"
commands="$(kubectl get job "$job" -n backup-system -o json | python3 -c '
import json, sys
args = json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]["args"][1:]
heads, current = [], []
for a in args + [";"]:
    if a == ";":
        heads.append(current[0])
        current = []
    else:
        current.append(a)
print(" ".join(heads))')"
assert_eq "forget forget prune" "$commands" "one forget per retention policy, then one prune"
assert_eq "kept 3 and removed 3 snapshots, then pruned" "$(jp config backup '.status.repositories[0].lastRetention' -n backup-system)" "status records the result"
names="$(restic_cli snapshots --json --host shop-data | python3 -c 'import json,sys; print(" ".join(sorted(t for s in json.load(sys.stdin) for t in s["tags"] if t.startswith("name="))))')"
assert_eq "name=four name=three" "$names" "the newest two are kept"
kept="$(restic_cli snapshots --json --host shop-data | python3 -c 'import json,sys; print(" ".join(sorted(s["short_id"] for s in json.load(sys.stdin))))')"
wait_for 30 "the Catalog lists what retention kept" bash -c "[ \"\$(kubectl get catalog data -n shop -o 'jsonpath={.status.repositories[0].count}')\" = 2 ]"
catalogued="$(kubectl get catalog data -n shop -o 'jsonpath={range .status.repositories[0].snapshots[*]}{.shortId}{"\n"}{end}' | sort | xargs)"
assert_eq "$kept" "$catalogued" "the Catalog lists exactly the snapshots the repository kept"
assert_eq "four three" "$(kubectl get catalog data -n shop -o 'jsonpath={range .status.repositories[0].snapshots[*]}{.name}{" "}{end}' | xargs)" "newest first, with their names"
[ -n "$(jp catalog data '.status.repositories[0].listedAt' -n shop)" ] || fail "the Catalog does not say when it was listed"
# The backup Task whose snapshot retention removed says so (`one`'s Task is gone with the history).
marks() {
  kubectl get tasks -n shop -l backup.datarestor-operator.com/type=backup \
    -o 'jsonpath={range .items[*]}{.spec.name}={.status.conditions[?(@.type=="SnapshotAvailable")].reason}{"\n"}{end}' | sort | xargs
}
wait_for 30 "the Task of the forgotten snapshot marked" bash -c "[ \"\$(kubectl get tasks -n shop -o 'jsonpath={.items[*].status.conditions[?(@.type==\"SnapshotAvailable\")].reason}')\" = 'Forgotten Forgotten' ]"
assert_eq "c1=Forgotten c2= four= three= two=Forgotten" "$(marks)" "only the Tasks whose snapshots were forgotten are marked"
assert_eq 3 "$(host_snapshots other-tool)" "snapshots of other hosts and paths are untouched"
restic_cli check >/dev/null || fail "repository check failed after prune"
last="$(jp config backup '.status.repositories[0].lastForgetSlot' -n backup-system)"
[ -n "$last" ] || fail "status does not record the retention slot"
