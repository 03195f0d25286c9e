# rbac: the operator installed the other supported way, `kubectl apply -k config/default` (through
# an overlay that only sets the image and test intervals), runs under its own ServiceAccount and
# ClusterRole: a Config whose credentials come from a Secret and a ConfigMap is Ready, a stopPods
# backup and a restore succeed, the API server never refuses the operator anything, and
# `kubectl auth can-i --list` for the ServiceAccount grants exactly config/rbac/role.yaml, nothing
# more. (Every other real-cluster scenario runs under the chart's ClusterRole, the same rules, and
# e2e/run.sh fails any scenario whose operator log shows an RBAC refusal.)
# e2e-stage: real cluster only: RBAC is enforced by the real API server
# e2e-timeout: 300

source "$E2E_DIR/datarestor.sh"
install_datarestor
OPERATOR_NAMESPACE=datarestor-operator-system
SERVICE_ACCOUNT="system:serviceaccount:$OPERATOR_NAMESPACE:datarestor-operator"

overlay="$SCENARIO_DIR/overlay"
mkdir -p "$overlay"
cat >"$overlay/kustomization.yaml" <<YAML
resources:
  - $(python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$ROOT/config/default" "$overlay")
images:
  - {name: ghcr.io/datarestor/datarestor-operator, newName: $OPERATOR_IMAGE_REPO, newTag: $OPERATOR_IMAGE_TAG}
patches:
  - target: {kind: Namespace, name: $OPERATOR_NAMESPACE}
    patch: |-
      - {op: add, path: /metadata/labels, value: {pod-security.kubernetes.io/enforce: restricted}}
  - target: {kind: Deployment, name: datarestor-operator}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--restic-image=$RESTIC_IMAGE_REF"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--repository-check-seconds=5"}
      - {op: add, path: /spec/template/spec/containers/0/args/-, value: "--retry-seconds=2"}
YAML
k apply -k "$overlay" >"$SCENARIO_DIR/apply.log" 2>&1 || fail "kubectl apply -k failed: $(tail -3 "$SCENARIO_DIR/apply.log")"
k rollout status deployment/datarestor-operator -n "$OPERATOR_NAMESPACE" --timeout=120s >/dev/null
wait_for 60 "the operator to start" operator_started

# Credentials from a Secret (password, secret key) and a ConfigMap (access key id).
k create configmap s3-settings -n backup-system --from-literal=access-key-id="$AWS_ACCESS_KEY_ID" >/dev/null
kapply >/dev/null <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: backup, namespace: backup-system}
spec:
  stopPods: true
  selectors: [{matchNamespaces: [shop]}]
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic-credentials, key: password}}
  repositories:
    - target: "$REPO"
      priority: 1
      env:
        - name: AWS_ACCESS_KEY_ID
          valueFrom: {configMapKeyRef: {name: s3-settings, key: access-key-id}}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: restic-credentials, key: secret-key}}
YAML
wait_config_ready 90
app_on_claim shop web web-data
wait_for 60 "web-data released as new" released shop web-data
fill_volume shop web-data
backup_named shop web-data under-rbac
dir="$(pvc_host_path web-data shop)"
echo "changed" >"$dir/db/table.bin"
assert_contains "$(restore_request shop web-data under-rbac)" "Completed" "restore"
same_tree "$SCENARIO_DIR/original-shop-web-data" "$dir" "restored volume"
k wait --for=jsonpath='{.status.readyReplicas}'=1 deployment/web -n shop --timeout=90s >/dev/null

save_operator_log
! grep -E 'cannot [a-z]+ resource' "$SCENARIO_DIR/operator.log" >&2 || fail "the API server refused the operator something (operator.log)"

# What the ServiceAccount may do beyond what every ServiceAccount may do, against the role file.
k auth can-i --list --as="$SERVICE_ACCOUNT" -n shop >"$SCENARIO_DIR/can-i-operator.txt"
k auth can-i --list --as=system:serviceaccount:shop:default -n shop >"$SCENARIO_DIR/can-i-default.txt"
python3 - "$SCENARIO_DIR/can-i-operator.txt" "$SCENARIO_DIR/can-i-default.txt" "$ROOT/config/rbac/role.yaml" <<'PY' >&2 || fail "the ServiceAccount's permissions differ from config/rbac/role.yaml (see scenario.log)"
import re, sys
def granted(path):
    rules = {}
    for line in open(path).read().splitlines()[1:]:
        parts = re.findall(r"\[[^\]]*\]|\S+", line)
        if len(parts) != 4 or parts[1] != "[]":
            continue  # non-resource URLs
        resource, names, verbs = parts[0], parts[2].strip("[]").split(), parts[3].strip("[]").split()
        rules.setdefault((resource, tuple(sorted(names))), set()).update(verbs)
    return rules
def from_role(path):
    rules, rule = {}, None
    def flush():
        if rule:
            for group in rule["apiGroups"]:
                for res in rule["resources"]:
                    base, _, sub = res.partition("/")
                    name = base + ("." + group if group else "") + ("/" + sub if sub else "")
                    rules.setdefault((name, tuple(sorted(rule.get("resourceNames", [])))), set()).update(rule["verbs"])
    for line in open(path):
        m = re.match(r'\s*(-\s*)?(apiGroups|resources|verbs|resourceNames):\s*\[(.*)\]', line)
        if not m:
            continue
        if m.group(1):
            flush()
            rule = {}
        rule[m.group(2)] = [x.strip().strip('"') for x in m.group(3).split(",")]
    flush()
    return rules
operator, everyone, expected = granted(sys.argv[1]), granted(sys.argv[2]), from_role(sys.argv[3])
extra = {k: v - everyone.get(k, set()) for k, v in operator.items()}
extra = {k: v for k, v in extra.items() if v}
ok = True
for key in sorted(set(extra) | set(expected)):
    have, want = extra.get(key, set()), expected.get(key, set())
    if have != want:
        ok = False
        print(f"{key}: granted {sorted(have)}, role.yaml says {sorted(want)}")
print(f"{len(expected)} resource rules checked against kubectl auth can-i --list")
sys.exit(0 if ok else 1)
PY

assert_no_credentials
k delete -k "$overlay" --wait=true --timeout=120s >/dev/null 2>&1 || true
