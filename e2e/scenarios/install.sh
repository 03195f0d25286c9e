# install: what a platform engineer does on a real cluster. `helm install` the chart with its
# defaults (only the image names are set: no registry is reachable here), wait until the operator
# is ready, apply the seed README's Config (two repositories, three selectors, stopPods), back a
# PVC up and restore it by annotation, `helm upgrade` to two replicas (the gate keeps its CA), then
# `helm uninstall`: nothing the chart or the operator made is left behind. The chart rendered with
# every option set (charts/datarestor-operator/ci/all-options-values.yaml) is validated by this
# API server (server-side dry run) too. A second release in another namespace is refused, naming the
# first (the CRDs and the restore gate are cluster-wide).
# e2e-stage: real cluster only: it installs the chart into a real cluster
# e2e-timeout: 300

source "$E2E_DIR/datarestor.sh"
SECOND_PORT="$(free_port)"
start_s3 second "$SECOND_PORT"
SECOND="s3:http://$S3_HOST:$SECOND_PORT/backup-bucket"

# The chart's defaults: no test flags, production intervals.
operator_namespace
"$HELM" install datarestor "$ROOT/charts/datarestor-operator" -n "$OPERATOR_NAMESPACE" --wait --timeout 120s \
  --set image.repository="$OPERATOR_IMAGE_REPO" --set image.tag="$OPERATOR_IMAGE_TAG" \
  --set resticImage="$RESTIC_IMAGE_REF" >"$SCENARIO_DIR/helm.log" 2>&1 || fail "helm install failed: $(tail -3 "$SCENARIO_DIR/helm.log")"
k rollout status deployment/datarestor-operator -n "$OPERATOR_NAMESPACE" --timeout=60s >/dev/null
wait_for 60 "the operator to start" operator_started
wait_for 30 "the restore gate's caBundle" bash -c '[ -n "$(kubectl get mutatingwebhookconfiguration datarestor-restore-gate -o jsonpath="{.webhooks[0].clientConfig.caBundle}")" ]'
assert_eq True "$(k get crd configs.backup.datarestor-operator.com -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}')" "the chart installed the CRDs"

# The seed README's Config, with this machine's S3 servers as its two repositories.
credentials_secret
kapply >/dev/null <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata:
  name: my-backup-config
  namespace: backup-system
spec:
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic-credentials, key: password}}
  repositories:
    - target: "$REPO"
      priority: 1
      backupSchedule: "0 2 * * *"
      forgotSchedule: "0 4 * * 0"
      forgetArgs: ["--keep-last", "10", "--keep-daily", "7"]
      env:
        - {name: AWS_ACCESS_KEY_ID, value: "$AWS_ACCESS_KEY_ID"}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
    - target: "$SECOND"
      priority: 2
      backupSchedule: "0 3 * * *"
      forgotSchedule: "0 5 * * 0"
      forgetArgs: ["--keep-last", "5", "--keep-daily", "3"]
      env:
        - {name: AWS_ACCESS_KEY_ID, value: "$AWS_ACCESS_KEY_ID"}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
  selectors:
    - matchLabels:
        app: "my-app"
    - matchNamespaces:
        - "default"
        - "production"
    - matchLabels:
        backupMeUp: "true"
  stopPods: true
  autoRestore: true
YAML
# The API server itself enforces the CRD's CEL rules.
refused="$(kapply 2>&1 <<YAML || true
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: duplicate-priorities, namespace: backup-system}
spec:
  repositories:
    - {target: "$REPO/a", priority: 1}
    - {target: "$REPO/b", priority: 1}
YAML
)"
assert_contains "$refused" "repository priorities must be unique" "CEL validation by the API server"
gone config duplicate-priorities -n backup-system || fail "a Config breaking a CEL rule was stored"
wait_for 90 "Config my-backup-config Ready" jp_is True config my-backup-config '.status.conditions[?(@.type=="Ready")].status' -n backup-system

app_on_claim production web web-data
wait_for 60 "web-data released as new" released production web-data
fill_volume production web-data
backup_named production web-data installed
dir="$(pvc_host_path web-data production)"
echo "written after the backup" >"$dir/app/config/settings.yaml"
answer="$(restore_request production web-data installed)"
assert_contains "$answer" "Completed" "the restore by annotation"
same_tree "$SCENARIO_DIR/original-production-web-data" "$dir" "restored volume"
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n production --timeout=90s >/dev/null
assert_no_credentials

# Every option set: each built-in object is one this API server accepts (the prometheus-operator
# kinds are checked against the served metrics by tests/manifests.rs; their CRDs are not here).
# A namespace of its own, so the dry run creates rather than patches the installed release's objects.
k create namespace datarestor-dry-run >/dev/null
"$HELM" template datarestor "$ROOT/charts/datarestor-operator" -n datarestor-dry-run \
  -f "$ROOT/charts/datarestor-operator/ci/all-options-values.yaml" >"$SCENARIO_DIR/all-options.yaml" 2>>"$SCENARIO_DIR/helm.log" ||
  fail "helm template with every option failed"
python3 - "$SCENARIO_DIR/all-options.yaml" >"$SCENARIO_DIR/all-options-builtin.yaml" <<'PY'
import sys
docs = open(sys.argv[1]).read().split("\n---")
print("\n---".join(d for d in docs if "monitoring.coreos.com/" not in d))
PY
kubectl apply --server-side --force-conflicts --dry-run=server -f "$SCENARIO_DIR/all-options-builtin.yaml" >"$SCENARIO_DIR/dry-run.log" 2>&1 ||
  fail "the API server refuses the all-options rendering: $(grep -i error "$SCENARIO_DIR/dry-run.log" | head -2 | tr '\n' ' ')"
log "all-options rendering: $(grep -c 'server dry run' "$SCENARIO_DIR/dry-run.log") objects accepted by the API server"

# One release per cluster: a second one is refused before anything is created.
if "$HELM" install second "$ROOT/charts/datarestor-operator" -n datarestor-dry-run \
  --set image.repository="$OPERATOR_IMAGE_REPO" --set image.tag="$OPERATOR_IMAGE_TAG" >"$SCENARIO_DIR/second.log" 2>&1; then
  fail "a second release was installed beside the first"
fi
assert_contains "$(cat "$SCENARIO_DIR/second.log")" "already installed in this cluster (release \"datarestor\" in namespace \"$OPERATOR_NAMESPACE\"" "the refusal names the first release"

# Upgrade to two replicas: both serve the gate with the certificate the first one made.
ca_before="$(kubectl get mutatingwebhookconfiguration datarestor-restore-gate -o jsonpath='{.webhooks[0].clientConfig.caBundle}')"
"$HELM" upgrade datarestor "$ROOT/charts/datarestor-operator" -n "$OPERATOR_NAMESPACE" --reuse-values --set replicas=2 \
  --wait --timeout 120s >>"$SCENARIO_DIR/helm.log" 2>&1 || fail "helm upgrade failed: $(tail -3 "$SCENARIO_DIR/helm.log")"
k rollout status deployment/datarestor-operator -n "$OPERATOR_NAMESPACE" --timeout=120s >/dev/null
assert_eq 2 "$(jp deployment datarestor-operator .status.readyReplicas -n "$OPERATOR_NAMESPACE")" "ready replicas after the upgrade"
exists pdb datarestor-operator -n "$OPERATOR_NAMESPACE" || fail "no PodDisruptionBudget with two replicas"
assert_eq "$ca_before" "$(kubectl get mutatingwebhookconfiguration datarestor-restore-gate -o jsonpath='{.webhooks[0].clientConfig.caBundle}')" \
  "the gate's CA after the upgrade"
[ -n "$(kubectl get lease datarestor-operator -n "$OPERATOR_NAMESPACE" -o jsonpath='{.spec.holderIdentity}')" ] ||
  fail "no replica holds the leader Lease after the upgrade"

# Uninstall: the release's objects and the restore gate go; the CRDs stay (Helm never deletes
# CRDs, so Configs and Tasks survive a reinstall), and so do the users' Configs and Secrets.
save_operator_log
"$HELM" uninstall datarestor -n "$OPERATOR_NAMESPACE" --wait --timeout 60s >>"$SCENARIO_DIR/helm.log" 2>&1 || fail "helm uninstall failed"
wait_for 60 "the operator pod to go" bash -c '[ -z "$(kubectl get pods -n '"$OPERATOR_NAMESPACE"' -o name)" ]'
left="$(kubectl get deployments,services,serviceaccounts,secrets,configmaps,roles,rolebindings,leases,pdb -n "$OPERATOR_NAMESPACE" -o name |
  grep -vxE 'serviceaccount/default|configmap/kube-root-ca.crt' || true)"
assert_eq "" "$left" "objects left in $OPERATOR_NAMESPACE"
left="$(kubectl get clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations -o name | grep -i datarestor || true)"
assert_eq "" "$left" "cluster-scoped objects left"
exists crd configs.backup.datarestor-operator.com || fail "the CRDs were removed with the release"
