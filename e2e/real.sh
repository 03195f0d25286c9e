# The real-cluster side of the scenario helpers: sourced by lib.sh when E2E_CLUSTER=real, it replaces
# the helpers that start and stop the operator. On the real cluster the operator is a pod, installed
# by its Helm chart from the image run.sh built, under the chart's ServiceAccount and ClusterRole.
# Expects KUBECONFIG (the cluster's admin), HELM, OPERATOR_IMAGE_TAG and the e2e/cluster/env.sh values.

OPERATOR_NAMESPACE="datarestor-system"
OPERATOR_RELEASE="datarestor"
OPERATOR_SELECTOR="app.kubernetes.io/name=datarestor-operator"

# operator_namespace: the operator's namespace, Pod Security `restricted` as a careful admin sets it.
operator_namespace() {
  kubectl get namespace "$OPERATOR_NAMESPACE" >/dev/null 2>&1 && return 0
  kubectl create namespace "$OPERATOR_NAMESPACE" >/dev/null
  kubectl label namespace "$OPERATOR_NAMESPACE" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted >/dev/null
}

# helm_install ARGS...: helm upgrade --install of the chart with the image built for this run, the
# Jobs' restic image, `datarestor-operator run` flags ARGS, and the values in $HELM_VALUES_EXTRA.
helm_install() {
  local values="$SCENARIO_DIR/values.yaml" arg
  {
    echo "image: {repository: $OPERATOR_IMAGE_REPO, tag: $OPERATOR_IMAGE_TAG, pullPolicy: IfNotPresent}"
    echo "resticImage: $RESTIC_IMAGE_REF"
    echo "logFormat: text"
    # More chart values a scenario sets (YAML lines).
    [ -z "${HELM_VALUES_EXTRA:-}" ] || echo "$HELM_VALUES_EXTRA"
    echo "extraArgs:"
    for arg in "$@"; do echo "  - \"$arg\""; done
  } >"$values"
  operator_namespace
  "$HELM" upgrade --install "$OPERATOR_RELEASE" "$ROOT/charts/datarestor-operator" -n "$OPERATOR_NAMESPACE" \
    -f "$values" --force-conflicts --wait --timeout 120s >>"$SCENARIO_DIR/helm.log" 2>&1 || {
    kubectl get pods -n "$OPERATOR_NAMESPACE" -o wide >&2 || true
    cluster_diagnosis >&2
    fail "helm upgrade --install failed (helm.log: $(tail -2 "$SCENARIO_DIR/helm.log" | tr '\n' ' '))"
  }
}

# cluster_diagnosis: why pods of the operator's namespace are not running, in a few lines (the
# failure report shows a scenario log's last 30): the namespace's last Events (FailedScheduling
# says why), the node's conditions that are not as they should be, its taints, and the disk; the
# whole picture (allocated resources, every pod) goes to cluster-diagnosis.txt beside the log.
cluster_diagnosis() {
  kubectl get events -n "$OPERATOR_NAMESPACE" --sort-by=.lastTimestamp --no-headers \
    -o 'custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message' 2>&1 | tail -n 4 | cut -c1-300
  kubectl get node "$NODE_NAME" -o 'jsonpath={range .status.conditions[*]}{.type}={.status} {.reason}{"\n"}{end}' 2>&1 |
    grep -vE '^(Ready=True|[A-Za-z]+Pressure=False|NetworkUnavailable=False)' || true
  echo "node taints: $(kubectl get node "$NODE_NAME" -o 'jsonpath={.spec.taints}' 2>&1); disk: $(df -h "$CLUSTER_DIR" 2>&1 | awk 'END {print $4 " free of " $2}')"
  {
    kubectl describe node "$NODE_NAME"
    kubectl get pods -A -o wide
  } >"$SCENARIO_DIR/cluster-diagnosis.txt" 2>&1
}

# operator_pod: the name of a running operator pod, if any (sed reads every line: `head -1` would
# close the pipe on a kubectl still writing the second pod and fail it with SIGPIPE).
operator_pod() {
  kubectl get pods -n "$OPERATOR_NAMESPACE" -l "$OPERATOR_SELECTOR" \
    -o 'jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{"\n"}{end}' 2>/dev/null | sed -n 1p
}

# save_operator_log: appends the operator pod's log to $SCENARIO_DIR/operator.log (the pod and its
# log go away when it is stopped, so this runs before every stop and after each scenario).
save_operator_log() {
  local pod
  pod="$(operator_pod)"
  [ -n "$pod" ] || return 0
  kubectl logs -n "$OPERATOR_NAMESPACE" "$pod" --all-containers >>"$SCENARIO_DIR/operator.log" 2>/dev/null || true
}

operator_started() {
  local pod
  pod="$(operator_pod)"
  [ -n "$pod" ] && kubectl logs -n "$OPERATOR_NAMESPACE" "$pod" 2>/dev/null | grep -q "datarestor-operator started"
}

# start_operator ARGS...: install (or upgrade and scale back to one) and wait until it serves.
start_operator() {
  helm_install "$@"
  kubectl scale deployment datarestor-operator -n "$OPERATOR_NAMESPACE" --replicas=1 >/dev/null
  kubectl rollout status deployment/datarestor-operator -n "$OPERATOR_NAMESPACE" --timeout=120s >/dev/null ||
    fail "the operator did not become ready"
  wait_for 60 "the operator to start" operator_started
}

# stop_operator [SIGNAL]: TERM scales the Deployment to zero (graceful); KILL also force-deletes the
# pod at once, as a crashed node would lose it.
stop_operator() {
  save_operator_log
  kubectl scale deployment datarestor-operator -n "$OPERATOR_NAMESPACE" --replicas=0 >/dev/null 2>&1 || return 0
  if [ "${1:-TERM}" = KILL ]; then
    kubectl delete pods -n "$OPERATOR_NAMESPACE" -l "$OPERATOR_SELECTOR" --grace-period=0 --force >/dev/null 2>&1 || true
  fi
  wait_for 60 "the operator pod to go" bash -c "[ -z \"\$(kubectl get pods -n $OPERATOR_NAMESPACE -l $OPERATOR_SELECTOR -o name)\" ]"
}

# operator_http PATH: GET PATH (/metrics, /healthz, /readyz) from the operator pod's metrics port,
# through the API server's pod proxy; fails on any status but 200.
operator_http() {
  local pod
  pod="$(operator_pod)"
  [ -n "$pod" ] || { echo "no operator pod runs" >&2; return 1; }
  kubectl get --raw "/api/v1/namespaces/$OPERATOR_NAMESPACE/pods/$pod:8080/proxy$1"
}

# operator_running: its pod runs and never restarted (a crash shows as a restart).
operator_running() {
  local pod
  pod="$(operator_pod)"
  [ -n "$pod" ] && [ "$(kubectl get pod "$pod" -n "$OPERATOR_NAMESPACE" -o 'jsonpath={.status.containerStatuses[0].restartCount}')" = 0 ]
}

# kube-sim's powers do not exist here; a scenario that needs them is marked kube-sim only.
start_kube_sim() { fail "start_kube_sim: kube-sim only"; }
restart_kube_sim() { fail "restart_kube_sim: kube-sim only"; }
sim_fault() { fail "sim_fault: kube-sim only"; }
sim_restart() { fail "sim_restart: kube-sim only"; }

# reset_cluster: what a scenario leaves behind goes before the next one starts: the operator, its
# CRDs (and so every Config and Task), the webhook configuration and every namespace it created.
reset_cluster() {
  "$HELM" uninstall "$OPERATOR_RELEASE" -n "$OPERATOR_NAMESPACE" --wait --timeout 60s >/dev/null 2>&1 || true
  # What a kustomize install (the rbac scenario) leaves when it fails before removing itself.
  kubectl delete clusterrole,clusterrolebinding datarestor-operator --ignore-not-found --timeout=60s >/dev/null
  kubectl delete crd configs.backup.datarestor-operator.com tasks.backup.datarestor-operator.com catalogs.backup.datarestor-operator.com --ignore-not-found --timeout=120s >/dev/null
  local namespaces
  namespaces="$(kubectl get namespaces -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')"
  namespaces="$(echo "$namespaces" | grep -vxE 'default|kube-system|kube-public|kube-node-lease')" || true
  # Pods without their grace period, then the PVCs, and only then the namespaces: a namespace whose
  # content is gone when its controller first looks is gone at once, while one still holding a PVC
  # is looked at again only after a growing back-off (about 10 s more per scenario).
  local ns deadline=$((SECONDS + 180))
  for ns in $namespaces default; do
    kubectl delete deployments,statefulsets,jobs --all -n "$ns" --wait=false >/dev/null 2>&1 || true
    kubectl delete pods --all -n "$ns" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    kubectl delete pvc --all -n "$ns" --wait=false >/dev/null 2>&1 || true
  done
  while [ -n "$(kubectl get pvc -A -o 'jsonpath={range .items[*]}{.metadata.namespace}{"\n"}{end}' | grep -vxE 'kube-system|kube-public|kube-node-lease')" ]; do
    [ $SECONDS -lt $deadline ] || { echo "reset: PVCs still there after 180s" >&2; return 1; }
    sleep 0.5
  done
  [ -z "$namespaces" ] || kubectl delete namespace $namespaces --wait=false >/dev/null
  while [ -n "$(kubectl get namespaces -o name | grep -vxE 'namespace/(default|kube-system|kube-public|kube-node-lease)')" ] ||
    [ -n "$(kubectl get pvc -n default -o name)" ]; do
    [ $SECONDS -lt $deadline ] || { echo "reset: namespaces still terminating after 180s" >&2; return 1; }
    sleep 0.5
  done
  # Last, once no operator can publish it again: the restore gate.
  kubectl delete mutatingwebhookconfiguration datarestor-restore-gate --ignore-not-found --timeout=60s >/dev/null
}
