# leader-election: two operator replicas share the Lease `datarestor-operator`. Exactly one leads
# (the Lease names it, its datarestor_leader is 1, the other's 0) and acts: a manual backup makes
# one Task and one snapshot. The leader is killed (SIGKILL, no release): the standby takes over once
# the Lease expires (6 s here; the figure is printed), and the next backup again makes exactly one
# Task. The restore gate answers across the hand-over: pods naming a PVC that does not exist yet are
# held, before and after. On the real cluster both replicas are pods of the chart's Deployment
# serving the gate behind its Service with the certificate from the shared Secret (the published
# caBundle is the same before and after); on kube-sim the standby alone serves the gate (two local
# processes cannot share one webhook URL), which shows a standby answers it.
# e2e-timeout: 420

source "$E2E_DIR/datarestor.sh"
install_datarestor
write_config shop "$(cat <<'YAML'
  selectors:
    - matchNamespaces: [shop]
YAML
)"
make_pvc shop data
fill_volume shop data
LEASE=datarestor-operator LEASE_SECONDS=6 LEASE_NAMESPACE="${OPERATOR_NAMESPACE:-datarestor-system}"

if on_real_cluster; then
  HELM_VALUES_EXTRA="leaderElection: {enabled: true, leaseSeconds: $LEASE_SECONDS}" start_datarestor
  kubectl scale deployment datarestor-operator -n "$OPERATOR_NAMESPACE" --replicas=2 >/dev/null
  kubectl rollout status deployment/datarestor-operator -n "$OPERATOR_NAMESPACE" --timeout=120s >/dev/null ||
    fail "the second replica did not become ready"
  replicas() { kubectl get pods -n "$OPERATOR_NAMESPACE" -l "$OPERATOR_SELECTOR" --field-selector=status.phase=Running -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}'; }
  replica_http() { kubectl get --raw "/api/v1/namespaces/$OPERATOR_NAMESPACE/pods/$1:8080/proxy$2"; }
  # kill_replica POD: SIGKILL to its operator process, from this host (the node): a crash, with no
  # chance to give the Lease up. (Deleting the pod, even forced, lets it stop gracefully.)
  kill_replica() {
    save_operator_log
    local pid
    for pid in $(pgrep -f 'datarestor-operator run'); do
      if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "POD_NAME=$1"; then kill -KILL "$pid"; return 0; fi
    done
    fail "no operator process of pod $1 on this node"
  }
else
  k create namespace "$LEASE_NAMESPACE" >/dev/null
  # replica NAME [ARGS...]: one more local operator process named NAME (its POD_NAME).
  replica() {
    local name="$1" port
    shift
    port="$(free_port)"
    echo "$port" >"$SCENARIO_DIR/$name.metrics-port"
    POD_NAME="$name" POD_NAMESPACE="$LEASE_NAMESPACE" "$OPERATOR_BIN" run --metrics-listen "127.0.0.1:$port" \
      --restic-cache "$SCENARIO_DIR/restic-cache-$name" --repository-check-seconds 5 --retry-seconds 2 \
      --leader-election-lease "$LEASE" --leader-election-lease-seconds "$LEASE_SECONDS" "$@" >>"$SCENARIO_DIR/operator-$name.log" 2>&1 &
    echo $! >"$SCENARIO_DIR/$name.pid"
  }
  replica replica-a
  sleep 2 # replica-a is first to the Lease
  webhook_port="$(free_port)"
  replica replica-b --webhook-listen "127.0.0.1:$webhook_port" --webhook-url "https://127.0.0.1:$webhook_port" \
    --webhook-certificate-secret datarestor-operator-webhook-tls
  replicas() { for name in replica-a replica-b; do kill -0 "$(cat "$SCENARIO_DIR/$name.pid")" 2>/dev/null && echo "$name"; done; }
  replica_http() { curl -fsS "http://127.0.0.1:$(cat "$SCENARIO_DIR/$1.metrics-port")$2"; }
  kill_replica() { kill -KILL "$(cat "$SCENARIO_DIR/$1.pid")"; }
  trap 'for p in "$SCENARIO_DIR"/replica-*.pid; do kill -KILL "$(cat "$p")" 2>/dev/null || true; done' EXIT
fi

# holder: the replica (pod) holding the Lease; its identity is the pod's name and a per-process suffix.
holder() { kubectl get lease "$LEASE" -n "$LEASE_NAMESPACE" -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null | sed 's/_[0-9a-f]*$//'; }
leader_metric() { replica_http "$1" /metrics | awk '$1 == "datarestor_leader" {print $2}'; }
both_ready() { [ "$(replicas | wc -l)" = 2 ] && for r in $(replicas); do [ "$(replica_http "$r" /readyz)" = ok ] || return 1; done; }
wait_for 90 "two ready replicas" both_ready
wait_for 30 "a leader" bash -c "[ -n \"\$(kubectl get lease $LEASE -n $LEASE_NAMESPACE -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null)\" ]"
leader="$(holder)"
standby="$(replicas | grep -vx "$leader" | sed -n 1p)"
[ -n "$standby" ] || fail "no standby besides the leader $leader ($(replicas | tr '\n' ' '))"
log "leader $leader, standby $standby"
assert_eq 1 "$(leader_metric "$leader")" "datarestor_leader of the leader"
assert_eq 0 "$(leader_metric "$standby")" "datarestor_leader of the standby"

# The gate answers (from whichever replica serves it): a pod naming a PVC that does not exist yet in
# a namespace an autoRestore Config selects waits.
gated_pod() { # NAME
  kapply >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: shop}
spec:
  containers: [{name: app, $APP_CONTAINER, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: not-yet-$1}}]
YAML
  assert_eq backup.datarestor-operator.com/restore "$(jp pod "$1" '.spec.schedulingGates[0].name' -n shop)" "pod $1 is held by the restore gate"
  k delete pod "$1" -n shop --wait=false >/dev/null
}
if on_real_cluster; then ca_before="$(jp mutatingwebhookconfiguration datarestor-restore-gate '.webhooks[0].clientConfig.caBundle')"; fi
for i in 1 2 3; do gated_pod "before-$i"; done

backup_tasks() { kubectl get tasks -n shop -l backup.datarestor-operator.com/pvc=data,backup.datarestor-operator.com/type=backup -o name | wc -l; }
backup_named shop data first
assert_eq 1 "$(backup_tasks)" "one Task for one request"

log "killing the leader $leader"
killed_at=$SECONDS
kill_replica "$leader"
took_over() { [ "$(holder)" = "$standby" ]; }
wait_for $((LEASE_SECONDS * 4)) "$standby to take the Lease over" took_over
takeover=$((SECONDS - killed_at))
log "takeover: $standby leads ${takeover}s after $leader was killed (lease ${LEASE_SECONDS}s)"
echo "leader-election: takeover ${takeover}s with a ${LEASE_SECONDS}s Lease" >>"$SCENARIO_DIR/figures.txt"
new_leader_says_so() { [ "$(leader_metric "$standby")" = 1 ]; }
wait_for 20 "datarestor_leader of the new leader" new_leader_says_so

for i in 1 2 3; do gated_pod "after-$i"; done
if on_real_cluster; then
  assert_eq "$ca_before" "$(jp mutatingwebhookconfiguration datarestor-restore-gate '.webhooks[0].clientConfig.caBundle')" \
    "the published CA is the one every replica serves with"
fi

backup_named shop data second
assert_eq 2 "$(backup_tasks)" "one more Task for one more request"
assert_eq 2 "$(restic_cli snapshots --json --host shop-data | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "snapshots of shop/data"
assert_no_credentials
