# Benchmark (not a test): disaster-recovery decisions at scale. One Config with two repositories,
# BENCH_PVCS (default 200) new PVCs created at once, half of them with a snapshot in repository 1
# (written beforehand with restic, as a previous cluster would have): how long until every PVC is
# decided (restore Task created, or released as new), and what it cost the operator (its peak
# restic child processes and RSS). Run with
# `BENCH_PVCS=1000 bash e2e/run.sh e2e/benches/dr-decisions.sh`; prints figures, asserts nothing
# about time.
# e2e-timeout: 3000

source "$E2E_DIR/datarestor.sh"
install_datarestor
count="${BENCH_PVCS:-200}"
ns=bench
# autoRestore is on by default.
two_repository_config "$REPO/one" "$REPO/two" "$ns"

log "writing $((count / 2)) snapshots into repository 1 (hosts $ns-pvc-N, path /data)"
data="$SCENARIO_DIR/data"
mkdir -p "$data" && echo "bench" >"$data/file"
export RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE"
restic -r "$REPO/one" init -q >/dev/null
seq 1 2 "$count" | xargs -P 4 -I{} bwrap --dev-bind / / --bind "$data" /data \
  restic -r "$REPO/one" --cache-dir "$SCENARIO_DIR/cli-cache" backup -q /data --host "$ns-pvc-{}" >/dev/null

start_datarestor
wait_config_ready 120
pid="$(cat "$SCENARIO_DIR/operator.pid")"

k create namespace "$ns" >/dev/null
for i in $(seq 1 "$count"); do
  printf 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: pvc-%s, namespace: %s}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n---\n' "$i" "$ns"
done >"$SCENARIO_DIR/pvcs.yaml"
: >"$SCENARIO_DIR/samples"
(
  while :; do
    rss="$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
    echo "$(date +%s.%N) ${rss:-0} $(pgrep -P "$pid" -x restic | grep -c . || true)" >>"$SCENARIO_DIR/samples"
    sleep 0.2
  done
) &
sampler=$!
created_at="$(date +%s.%N)"
k apply -f "$SCENARIO_DIR/pvcs.yaml" >/dev/null
applied_at="$(date +%s.%N)"
decided() {
  kubectl get pvc -n "$ns" -o 'jsonpath={range .items[*]}{.metadata.annotations.backup\.datarestor-operator\.com/restore-state}{"\n"}{end}' |
    grep -cE '^(Restoring|Released)$' || true
}
while :; do
  n="$(decided)"
  echo "$(date +%s.%N) $n" >>"$SCENARIO_DIR/progress"
  [ "$n" -lt "$count" ] || break
  [ $(( $(date +%s) - ${created_at%.*} )) -lt 2400 ] || break
  sleep 0.5
done
done_at="$(date +%s.%N)"
kill "$sampler"; wait "$sampler" 2>/dev/null || true
kubectl get events.events.k8s.io -n "$ns" -o json >"$SCENARIO_DIR/events.json"
kubectl get pvc -n "$ns" -o json >"$SCENARIO_DIR/pvcs.json"
restores="$(kubectl get tasks -n "$ns" -o name | grep -c . || true)"
released=$((count - restores))
python3 - "$SCENARIO_DIR/samples" "$count" "$n" "$created_at" "$applied_at" "$done_at" "$restores" "$released" "$SCENARIO_DIR" <<'PY' | tee "$SCENARIO_DIR/figures" >&2
import json, sys
from datetime import datetime
def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
# Per PVC: from its creation to the Event that says what was decided (RestoreStarted or NothingToRestore).
created_of = {p["metadata"]["name"]: when(p["metadata"]["creationTimestamp"]) for p in json.load(open(sys.argv[9] + "/pvcs.json"))["items"]}
decided_of, blocked = {}, 0
for e in json.load(open(sys.argv[9] + "/events.json"))["items"]:
    name, reason = e["regarding"]["name"], e["reason"]
    t = when(e.get("eventTime") or e["deprecatedFirstTimestamp"])
    if reason in ("RestoreStarted", "NothingToRestore"):
        decided_of[name] = min(t, decided_of.get(name, t))
    blocked += reason == "RestoreBlocked"
latency = sorted(decided_of[n] - created_of[n] for n in decided_of if n in created_of)
pick = lambda q: latency[min(len(latency) - 1, int(q * len(latency)))] if latency else float("nan")
samples = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 3]
count, decided = int(sys.argv[2]), int(sys.argv[3])
created, applied, done = map(float, sys.argv[4:7])
restores, released = sys.argv[7], sys.argv[8]
rss = max((int(s[1]) for s in samples), default=0) / 1024
restic = max((int(s[2]) for s in samples), default=0)
print("| PVCs created at once | decided | first create to last decision | (creating them took) | creation to decision p50 / p99 / max (s, from Events) | restore Tasks / released as new | RestoreBlocked Events | operator peak RSS | restic children at once (peak) |")
print("|---|---|---|---|---|---|---|---|---|")
print(f"| {count} | {decided} | {done - created:.1f} s | {applied - created:.1f} s | {pick(0.5):.1f} / {pick(0.99):.1f} / {pick(1.0):.1f} | {restores} / {released} | {blocked} | {rss:.0f} MiB | {restic} |")
PY
cat "$SCENARIO_DIR/figures" >>"${BENCH_OUT:-/tmp/dr-decisions.txt}"
[ "$n" -eq "$count" ] || fail "only $n of $count PVCs decided"
