# Helpers shared by e2e scenarios. run.sh sources this file before each scenario; it expects
# SCENARIO_DIR, KUBECONFIG, KUBE_SIM_* , S3_* and *_BIN variables exported by run.sh.
# Scenarios run with `set -euo pipefail`: the first failing command fails the scenario, and its
# text becomes the reason printed by run.sh.
# errtrace (-E) so a failure inside a helper function also records its command as the reason.
set -Eeuo pipefail
trap '[ -s "$SCENARIO_DIR/failure" ] || echo "line $LINENO: command failed: $BASH_COMMAND" >"$SCENARIO_DIR/failure"' ERR

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# fail REASON: stop the scenario with a reason run.sh prints.
fail() {
  echo "$*" >"$SCENARIO_DIR/failure"
  echo "FAILED: $*" >&2
  exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: run COMMAND until it succeeds, or fail after SECONDS.
# COMMAND is re-run each time, so pass a function or `bash -c '...'` rather than "$(...)".
wait_for() {
  local secs="$1" what="$2"
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

# assert_eq EXPECTED ACTUAL [MESSAGE]
assert_eq() {
  [ "$1" = "$2" ] || fail "${3:-assertion failed}: expected '$1', got '$2'"
}

# assert_contains HAYSTACK NEEDLE [MESSAGE]
assert_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "${3:-assertion failed}: '$2' not found in: $1" ;;
  esac
}

# on_real_cluster: the scenario runs on the real cluster (E2E_CLUSTER=real), not on kube-sim.
on_real_cluster() { [ "${E2E_CLUSTER:-sim}" = real ]; }

# k ...: kubectl against the scenario's cluster (KUBECONFIG is exported).
k() { kubectl --request-timeout=30s "$@"; }

# kapply: kubectl apply -f - (manifest on stdin).
kapply() { kubectl apply -f - "$@"; }

# jp RESOURCE NAME JSONPATH [kubectl args...]: one field of one object.
jp() {
  local res="$1" name="$2" path="$3"
  shift 3
  kubectl get "$res" "$name" -o "jsonpath={$path}" "$@"
}

# jp_is EXPECTED RESOURCE NAME JSONPATH [args...]: succeeds when the field equals EXPECTED (for wait_for).
jp_is() {
  local want="$1"
  shift
  [ "$(jp "$@" 2>/dev/null)" = "$want" ]
}

# exists RESOURCE NAME [args...] / gone RESOURCE NAME [args...]
exists() { kubectl get "$@" -o name >/dev/null 2>&1; }
gone() { ! exists "$@"; }

# pvc_host_path CLAIM [NAMESPACE]: the host directory behind a bound claim.
pvc_host_path() {
  local ns="${2:-default}" pv
  pv="$(kubectl get pvc "$1" -n "$ns" -o 'jsonpath={.spec.volumeName}')"
  [ -n "$pv" ] || fail "claim $ns/$1 is not bound"
  kubectl get pv "$pv" -o 'jsonpath={.spec.hostPath.path}'
}

# ---------------------------------------------------------------- kube-sim

start_kube_sim() {
  mkdir -p "$KUBE_SIM_STATE_DIR"
  "$KUBE_SIM_BIN" --listen "127.0.0.1:$KUBE_SIM_PORT" --state-dir "$KUBE_SIM_STATE_DIR" \
    --kubeconfig "$KUBECONFIG" --nodes "${KUBE_SIM_NODES:-2}" --pod-grace-seconds "${KUBE_SIM_POD_GRACE:-1}" \
    >>"$SCENARIO_DIR/kube-sim.log" 2>&1 &
  echo $! >"$SCENARIO_DIR/kube-sim.pid"
  local deadline=$((SECONDS + 30))
  until curl -fsS "$KUBE_SIM_URL/sim/healthz" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "kube-sim did not start"
    sleep 0.1
  done
}

# stop_kube_sim: SIGTERM (it writes its final snapshot) and wait.
stop_kube_sim() {
  local pid
  pid="$(cat "$SCENARIO_DIR/kube-sim.pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$SCENARIO_DIR/kube-sim.pid"
}

# restart_kube_sim [DOWN_SECONDS]: stop the process and start it again from its state dir. Every
# watch breaks and every Job process dies, as in an API server + node restart.
restart_kube_sim() {
  stop_kube_sim
  sleep "${1:-0}"
  start_kube_sim
}

# sim_fault VERB RESOURCE CODE [COUNT] [NAMESPACE]: fail the next COUNT (default 1; 0 = until
# cleared) requests matching VERB (get/list/watch/create/update/patch/delete or *) and RESOURCE
# (plural, e.g. persistentvolumeclaims, pods/log, or *) with HTTP CODE.
sim_fault() {
  local ns=""
  [ -n "${5:-}" ] && ns=",\"namespace\":\"$5\""
  curl -fsS -X POST "$KUBE_SIM_URL/sim/faults" -H 'content-type: application/json' \
    -d "{\"verb\":\"$1\",\"resource\":\"$2\",\"code\":$3,\"count\":${4:-1}$ns}" >/dev/null
}
sim_clear_faults() { curl -fsS -X DELETE "$KUBE_SIM_URL/sim/faults" >/dev/null; }
# sim_restart [DOWN_SECONDS]: in-process restart (watches closed, Job processes killed, 503 while
# down, state reloaded from the snapshot) without changing the process.
sim_restart() { curl -fsS -X POST "$KUBE_SIM_URL/sim/restart?downSeconds=${1:-0}" >/dev/null; }
sim_close_watches() { curl -fsS -X POST "$KUBE_SIM_URL/sim/close-watches" >/dev/null; }

# ---------------------------------------------------------------- operator

# free_port [HOST]: a TCP port nothing listens on at HOST (default $S3_HOST, where the test
# servers listen).
free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "${1:-$S3_HOST}"; }

# start_operator [ARGS...]: run `datarestor-operator run ARGS` in the background, logging to
# $SCENARIO_DIR/operator.log.
start_operator() {
  local port
  port="$(free_port 127.0.0.1)"
  echo "$port" >"$SCENARIO_DIR/metrics.port"
  "$OPERATOR_BIN" run --metrics-listen "127.0.0.1:$port" "$@" >>"$SCENARIO_DIR/operator.log" 2>&1 &
  echo $! >"$SCENARIO_DIR/operator.pid"
}

# operator_http PATH: GET PATH (/metrics, /healthz, /readyz) from the running operator; fails on
# any status but 200.
operator_http() {
  curl -fsS "http://127.0.0.1:$(cat "$SCENARIO_DIR/metrics.port")$1"
}

# stop_operator [SIGNAL]: default TERM (graceful); KILL simulates a crash.
stop_operator() {
  local pid
  pid="$(cat "$SCENARIO_DIR/operator.pid" 2>/dev/null)" || return 0
  kill "-${1:-TERM}" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$SCENARIO_DIR/operator.pid"
}

operator_running() {
  local pid
  pid="$(cat "$SCENARIO_DIR/operator.pid" 2>/dev/null)" && kill -0 "$pid" 2>/dev/null
}

# ---------------------------------------------------------------- S3

# start_own_s3: a private moto server for this scenario (S3 outages without disturbing others);
# re-exports S3_ENDPOINT. Its data is in memory and lost when it stops.
start_own_s3() {
  local port
  port="$(free_port 127.0.0.1)"
  moto_server -H "$S3_HOST" -p "$port" >>"$SCENARIO_DIR/own-s3.log" 2>&1 &
  echo $! >"$SCENARIO_DIR/own-s3.pid"
  export S3_ENDPOINT="http://$S3_HOST:$port"
  wait_for 30 "private moto server" curl -fsS -o /dev/null "$S3_ENDPOINT"
}

stop_own_s3() {
  local pid
  pid="$(cat "$SCENARIO_DIR/own-s3.pid" 2>/dev/null)" || return 0
  kill "$pid" 2>/dev/null || true
  rm -f "$SCENARIO_DIR/own-s3.pid"
}

# On the real cluster the operator is a pod installed by the chart: real.sh replaces the helpers above
# that start and stop it, and those that only kube-sim has.
if on_real_cluster; then
  # shellcheck source=real.sh
  source "$E2E_DIR/real.sh"
fi

# scan_for_credentials: 0 when none of the values in $SCENARIO_DIR/.secret-values appears in the
# cluster's objects (Secrets and the Config spec a user wrote excepted) or the operator's log;
# otherwise 1, with what was found in $SCENARIO_DIR/credentials-scan.txt. No file: nothing to scan.
scan_for_credentials() {
  local values="$SCENARIO_DIR/.secret-values" dump="$SCENARIO_DIR/objects.yaml" value found="" log_file
  [ -s "$values" ] || return 0
  {
    # Not ConfigMaps or Secrets: users keep their own values there (configMapKeyRef sources).
    kubectl get tasks,catalogs,jobs,pods,pvc,deployments,statefulsets -A -o yaml
    kubectl get events -A -o yaml
    kubectl get events.events.k8s.io -A -o yaml
    kubectl get config -A -o jsonpath='{.items[*].status}'
  } >"$dump" 2>/dev/null
  while IFS= read -r value; do
    [ -n "$value" ] || continue
    if grep -qF -- "$value" "$dump"; then found="a credential value appears in cluster objects ($dump)"; fi
    # Every operator process's log (a scenario may run several).
    for log_file in "$SCENARIO_DIR"/operator*.log; do
      if [ -f "$log_file" ] && grep -qF -- "$value" "$log_file"; then
        found="a credential value appears in the operator log $(basename "$log_file")"
      fi
    done
  done <"$values"
  [ -z "$found" ] && return 0
  echo "$found" >"$SCENARIO_DIR/credentials-scan.txt"
  return 1
}
