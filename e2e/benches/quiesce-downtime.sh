# Benchmark (not a test): how long a stopPods backup keeps a Deployment at zero beyond the restic
# run itself. Run with `bash e2e/run.sh e2e/benches/quiesce-downtime.sh`; prints figures, asserts
# nothing about time. BENCH_RUNS (default 5) backups of a 1-replica Deployment with a 20 MB volume.
# e2e-timeout: 900

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  stopPods: true
  selectors:
    - matchNamespaces: [shop]
YAML
)"
start_datarestor
wait_config_ready
app_on_claim shop web data
vol="$(pvc_host_path data shop)"
for i in $(seq 1 200); do head -c 100000 /dev/urandom >"$vol/file-$i"; done

runs="${BENCH_RUNS:-5}"
echo "run  at-zero(s)  restic(s)  overhead(s)" >"$SCENARIO_DIR/figures"
for run in $(seq 1 "$runs"); do
  : >"$SCENARIO_DIR/samples"
  (
    while :; do
      echo "$(date +%s.%N) $(kubectl get pods -n shop -l app=web --field-selector=status.phase=Running -o name 2>/dev/null | grep -c . || true)" >>"$SCENARIO_DIR/samples"
      sleep 0.05
    done
  ) &
  sampler=$!
  k annotate pvc data -n shop --overwrite "backup.datarestor-operator.com/manual-backup=bench-$run" >/dev/null
  wait_for 120 "backup bench-$run" bash -c "kubectl get tasks -n shop -o 'jsonpath={range .items[*]}{.spec.name}={.status.phase}{\"\\n\"}{end}' | grep -qx 'bench-$run=Completed'"
  k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n shop --timeout=60s >/dev/null
  sleep 0.5
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  restic_seconds="$(kubectl get tasks -n shop -o "jsonpath={range .items[?(@.spec.name==\"bench-$run\")]}{.status.durationSeconds}{end}")"
  python3 - "$SCENARIO_DIR/samples" "$run" "$restic_seconds" >>"$SCENARIO_DIR/figures" <<'PY'
import sys
samples = [line.split() for line in open(sys.argv[1]) if len(line.split()) == 2]
down = [float(t) for t, n in samples if n == "0"]
at_zero = (max(down) - min(down)) if down else 0.0
restic = float(sys.argv[3] or 0)
print(f"{sys.argv[2]:>3}  {at_zero:10.2f}  {restic:9.2f}  {at_zero - restic:11.2f}")
PY
done
python3 - "$SCENARIO_DIR/figures" <<'PY' | tee -a "$SCENARIO_DIR/figures"
import sys
rows = [l.split() for l in open(sys.argv[1]).readlines()[1:]]
over = sorted(float(r[3]) for r in rows)
print(f"overhead beyond restic: median {over[len(over)//2]:.2f}s, min {over[0]:.2f}s, max {over[-1]:.2f}s over {len(over)} runs")
PY
cat "$SCENARIO_DIR/figures" >&2
cp "$SCENARIO_DIR/figures" "${BENCH_OUT:-/tmp/quiesce-downtime.txt}"
