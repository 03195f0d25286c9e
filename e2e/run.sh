#!/usr/bin/env bash
# End-to-end runner: builds kube-sim and the operator (debug profile unless E2E_PROFILE=release),
# starts one moto S3 server, then runs each scenario script against a fresh kube-sim.
#
#   bash e2e/run.sh [scenario...]      # default: every e2e/scenarios/*.sh
#   E2E_CLUSTER=real bash e2e/run.sh   # on the real cluster of e2e/cluster/up.sh instead
#
# On the real cluster the operator (the same debug build: no release build on the critical path of
# `make test`; E2E_PROFILE=release for benchmarks) is packed into an image, loaded into the
# node's containerd and installed by its Helm chart for each scenario; the cluster is cleaned between
# scenarios. A scenario marked "# e2e-stage: kube-sim only: WHY" (or "real cluster only: WHY") is
# reported as skipped, with that reason, where it cannot run.
#
# Environment knobs: E2E_TIMEOUT (seconds per scenario, default 300), E2E_PROFILE (debug|release),
# E2E_KEEP=1 (keep every scenario's temp dir, not only failed ones), KUBE_SIM_NODES (default 2),
# KUBE_SIM_POD_GRACE (default 1), E2E_BUILD=0 (use the binaries already built).
set -uo pipefail

E2E_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$E2E_DIR/.." && pwd)"
PROFILE="${E2E_PROFILE:-debug}"
TIMEOUT="${E2E_TIMEOUT:-300}"
export E2E_CLUSTER="${E2E_CLUSTER:-sim}"
case "$E2E_CLUSTER" in
  sim) STAGE="kube-sim" ;;
  real)
    STAGE="the real cluster"
    # shellcheck source=cluster/env.sh
    source "$E2E_DIR/cluster/env.sh"
    kubectl --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz >/dev/null 2>&1 ||
      { echo "e2e: the real cluster is not up (bash e2e/cluster/up.sh)" >&2; exit 2; }
    ;;
  *) echo "e2e: E2E_CLUSTER is sim or real, not '$E2E_CLUSTER'" >&2; exit 2 ;;
esac

for tool in kubectl bwrap restic moto_server python3 curl timeout; do
  command -v "$tool" >/dev/null || { echo "e2e: required tool '$tool' is not installed" >&2; exit 2; }
done

if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  scenarios=()
  for f in "$E2E_DIR"/scenarios/*.sh; do scenarios+=("$(basename "$f" .sh)"); done
fi

if [ "${E2E_BUILD:-1}" = 1 ]; then
  echo "building kube-sim and datarestor-operator ($PROFILE)..." >&2
  build=(cargo build --quiet -p datarestor-operator --bin datarestor-operator)
  [ "$E2E_CLUSTER" = sim ] && build+=(-p kube-sim --bin kube-sim)
  [ "$PROFILE" = release ] && build+=(--release)
  if ! (cd "$ROOT" && "${build[@]}"); then
    for name in "${scenarios[@]}"; do echo "FAIL $name: the binaries did not build"; done
    echo "0 passed, ${#scenarios[@]} failed"
    exit 1
  fi
fi
TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
export KUBE_SIM_BIN="$TARGET_DIR/$PROFILE/kube-sim"
export OPERATOR_BIN="$TARGET_DIR/$PROFILE/datarestor-operator"
export E2E_DIR ROOT
if [ "$E2E_CLUSTER" = real ]; then
  # The operator image, tagged by the binary's digest so a rebuilt operator is a new image.
  OPERATOR_IMAGE_TAG="e2e-$(sha256sum "$OPERATOR_BIN" | cut -c1-12)"
  bash "$E2E_DIR/cluster/images.sh" operator "$OPERATOR_BIN" "$OPERATOR_IMAGE_TAG" >&2 || { echo "e2e: the operator image did not build" >&2; exit 2; }
  HELM="$(bash "$E2E_DIR/cluster/install-helm.sh")" || { echo "e2e: helm is not available" >&2; exit 2; }
  export OPERATOR_IMAGE_TAG OPERATOR_IMAGE_REPO HELM RESTIC_IMAGE_REF APP_IMAGE PG_IMAGE HOST_IP NODE_NAME CLUSTER_DIR
  export S3_HOST="$HOST_IP"
  export KUBECONFIG="$KUBECONFIG_ADMIN"
else
  export S3_HOST=127.0.0.1 APP_IMAGE=busybox PG_IMAGE=postgres
fi

free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$S3_HOST"; }

wait_port() { # host port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.1
  done
}

RUN_DIR="$(mktemp -d -t e2e-run.XXXXXX)"
MOTO_PID=""
CURRENT_DIR=""

# Stops everything a scenario left running: kube-sim, the operator and any pid lib.sh recorded.
stop_scenario_processes() {
  local dir="$1" pidfile pid
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
    rm -f "$pidfile"
  done
}

cleanup() {
  stop_scenario_processes "$CURRENT_DIR"
  # A scenario may have left the shared S3 server stopped (SIGSTOP); a stopped process ignores TERM.
  if [ -n "$MOTO_PID" ]; then
    kill -CONT "$MOTO_PID" 2>/dev/null
    kill "$MOTO_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$MOTO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
  fi
  [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

S3_PORT="$(free_port)"
moto_server -H "$S3_HOST" -p "$S3_PORT" >"$RUN_DIR/moto.log" 2>&1 &
MOTO_PID=$!
wait_port "$S3_HOST" "$S3_PORT" 30 || { echo "e2e: moto_server did not start:" >&2; tail -20 "$RUN_DIR/moto.log" >&2; exit 2; }
export S3_ENDPOINT="http://$S3_HOST:$S3_PORT"
export AWS_ACCESS_KEY_ID="e2e-access-key" AWS_SECRET_ACCESS_KEY="e2e-secret-key" AWS_DEFAULT_REGION="us-east-1"

passed=0
failed=0
skipped=0
scans=0
scanned_values=0
for name in "${scenarios[@]}"; do
  script="$E2E_DIR/scenarios/$name.sh"
  # A path to a script also works (benchmarks live in e2e/benches/ and are not run by default).
  if [ -f "$name" ]; then
    script="$(cd "$(dirname "$name")" && pwd)/$(basename "$name")"
    name="$(basename "$name" .sh)"
  fi
  if [ ! -f "$script" ]; then
    echo "FAIL $name: no such scenario ($script)"
    failed=$((failed + 1))
    continue
  fi
  # Where a scenario cannot run, it says why, and is counted as skipped, never as passed.
  only="$(sed -n 's/^# e2e-stage: *//p' "$script" | head -1)"
  case "$E2E_CLUSTER:$only" in
    "real:kube-sim only"* | "sim:real cluster only"*)
      echo "SKIP $name ($only)"
      skipped=$((skipped + 1))
      continue
      ;;
  esac
  dir="$RUN_DIR/$name"
  mkdir -p "$dir"
  CURRENT_DIR="$dir"
  port="$(free_port)"
  export SCENARIO_NAME="$name" SCENARIO_DIR="$dir"
  if [ "$E2E_CLUSTER" = sim ]; then
    export KUBE_SIM_PORT="$port" KUBE_SIM_URL="http://127.0.0.1:$port"
    export KUBE_SIM_STATE_DIR="$dir/kube-sim-state" KUBECONFIG="$dir/kubeconfig"
  fi
  # kubectl's discovery cache is keyed by host:port; a private one cannot go stale across runs.
  export KUBECACHEDIR="$dir/kube-cache"
  export KUBE_SIM_NODES="${KUBE_SIM_NODES:-2}" KUBE_SIM_POD_GRACE="${KUBE_SIM_POD_GRACE:-1}"
  # A bucket per scenario keeps scenarios independent on the shared S3 server.
  export S3_BUCKET="e2e-$(echo "$name" | tr -c 'a-z0-9\n' '-')-$RANDOM"
  start=$(date +%s.%N)
  # shellcheck source=lib.sh
  if [ "$E2E_CLUSTER" = real ]; then
    if ! timeout 300 bash -c 'source "$E2E_DIR/lib.sh" && reset_cluster' >"$dir/runner.log" 2>&1; then
      echo "FAIL $name: the cluster could not be cleaned after the previous scenario"
      tail -20 "$dir/runner.log" | sed 's/^/    /'
      failed=$((failed + 1))
      continue
    fi
    rm -f "$dir/failure" # the reset's own expected misses are not the scenario's failure
  elif ! (source "$E2E_DIR/lib.sh" && start_kube_sim) >"$dir/runner.log" 2>&1; then
    echo "FAIL $name: kube-sim did not start"
    tail -20 "$dir/runner.log" "$dir/kube-sim.log" 2>/dev/null | sed 's/^/    /'
    failed=$((failed + 1))
    stop_scenario_processes "$dir"
    continue
  fi
  # A scenario may ask for more time with a "# e2e-timeout: SECONDS" line.
  limit="$(sed -n 's/^# e2e-timeout: *\([0-9][0-9]*\).*/\1/p' "$script" | head -1)"
  limit="${limit:-$TIMEOUT}"
  timeout --kill-after=10 "$limit" bash -c 'source "$E2E_DIR/lib.sh"; source "$1"' _ "$script" >"$dir/scenario.log" 2>&1
  rc=$?
  if [ "$E2E_CLUSTER" = real ]; then
    (source "$E2E_DIR/lib.sh" && save_operator_log) >/dev/null 2>&1
    kubectl get events -A --sort-by=.lastTimestamp >"$dir/events.txt" 2>&1
    # The chart's ClusterRole must be enough for everything a scenario makes the operator do.
    if [ $rc -eq 0 ] && grep -qE 'cannot [a-z]+ resource' "$dir/operator.log" 2>/dev/null; then
      echo "RBAC: the API server refused the operator: $(grep -m1 -oE '[^"]*cannot [a-z]+ resource[^"]*' "$dir/operator.log")" >"$dir/failure"
      rc=1
    fi
  fi
  # Every scenario that handles credentials is scanned for them afterwards, whatever it asserted.
  if [ $rc -eq 0 ] && ! (source "$E2E_DIR/lib.sh" && scan_for_credentials) >>"$dir/scenario.log" 2>&1; then
    cp "$dir/credentials-scan.txt" "$dir/failure"
    rc=1
  fi
  if [ $rc -eq 0 ] && [ -s "$dir/.secret-values" ]; then
    scans=$((scans + 1))
    scanned_values=$((scanned_values + $(grep -c . "$dir/.secret-values")))
  fi
  stop_scenario_processes "$dir"
  CURRENT_DIR=""
  secs=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  if [ $rc -eq 0 ]; then
    echo "PASS $name on $STAGE (${secs}s)"
    # Figures a scenario measured (never asserted): printed with its result.
    [ -s "$dir/figures.txt" ] && sed 's/^/    figure: /' "$dir/figures.txt"
    passed=$((passed + 1))
    [ "${E2E_KEEP:-0}" = 1 ] || rm -rf "$dir"
  else
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
      reason="timed out after ${limit}s"
    elif [ -s "$dir/failure" ]; then
      reason="$(head -1 "$dir/failure")"
    else
      reason="exit status $rc"
    fi
    echo "FAIL $name on $STAGE: $reason (${secs}s)"
    for log in scenario.log kube-sim.log operator.log; do
      [ -s "$dir/$log" ] || continue
      echo "  --- last lines of $log"
      tail -n 30 "$dir/$log" | sed 's/^/    /'
    done
    echo "  (logs kept in $dir)"
    E2E_KEEP=1
    failed=$((failed + 1))
  fi
done

echo "credential scans: $scans passing scenarios scanned for $scanned_values credential values in every object and log line; none found"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
