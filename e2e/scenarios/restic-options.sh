# restic-options: a repository on a self-hosted S3 server (s3rver, on disk) over HTTPS whose
# certificate a private CA signed. Without `restic.caCertificate` the repository is not Ready and
# says why (the certificate); with the CA from a Secret it is, and backups and restores run through
# it. The Config's restic settings are honoured: excludes (a pattern, an anchored path,
# --exclude-caches, --exclude-if-present) leave exactly those files out of the snapshot,
# compression shows in `restic stats` (`Max`: compressible data stored at under 60% of its size;
# `None`: stored whole), a vetted extra argument reaches restic, and an argument off the allow-list
# makes the Config Valid=False with a message, running nothing.
# e2e-timeout: 300

source "$E2E_DIR/datarestor.sh"
S3RVER="$(bash "$E2E_DIR/install-s3rver.sh")" || fail "s3rver is not available (e2e/install-s3rver.sh)"
install_datarestor

# A private CA and the server's certificate for the address pods reach it at.
pki="$SCENARIO_DIR/pki"
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 -subj "/CN=datarestor-e2e-storage-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=s3rver" 2>/dev/null
echo "subjectAltName=IP:$S3_HOST" >"$pki/server.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -out "$pki/server.crt" -days 2 \
  -extfile "$pki/server.ext" 2>/dev/null
port="$(free_port)"
"$S3RVER" -d "$SCENARIO_DIR/s3rver-data" -a "$S3_HOST" -p "$port" --key "$pki/server.key" --cert "$pki/server.crt" \
  --configure-bucket options >"$SCENARIO_DIR/s3rver.log" 2>&1 &
echo $! >"$SCENARIO_DIR/s3rver.pid"
wait_for 30 "s3rver over HTTPS" curl -fsS --cacert "$pki/ca.crt" -o /dev/null "https://$S3_HOST:$port/"
TLS_REPO="s3:https://$S3_HOST:$port/options"
k create secret generic storage-ca -n backup-system --from-file=ca.crt="$pki/ca.crt" >/dev/null
# s3rver's own fixed keys (not secrets of this scenario's storage: s3rver accepts these only).
tls_restic() {
  RESTIC_PASSWORD="$RESTIC_PASSWORD_VALUE" AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER \
    restic --repo "$TLS_REPO" --cacert "$pki/ca.crt" --cache-dir "$SCENARIO_DIR/cli-cache" "$@"
}

config() { # RESTIC_SETTINGS (YAML lines under `restic:`, or empty)
  kapply >/dev/null <<YAML
apiVersion: backup.datarestor-operator.com/v1alpha1
kind: Config
metadata: {name: backup, namespace: backup-system}
spec:
  env:
    - name: RESTIC_PASSWORD
      valueFrom: {secretKeyRef: {name: restic-credentials, key: password}}
  selectors: [{matchNamespaces: [shop]}]
  repositories:
    - target: "$TLS_REPO"
      priority: 1
      env:
        - {name: AWS_ACCESS_KEY_ID, value: S3RVER}
        - {name: AWS_SECRET_ACCESS_KEY, value: S3RVER}
$1
YAML
}
repo_field() { kubectl get config backup -n backup-system -o "jsonpath={.status.repositories[0].$1}"; }
condition() { kubectl get config backup -n backup-system -o "jsonpath={.status.conditions[?(@.type==\"$1\")].$2}"; }

start_datarestor
config ""
wait_for 60 "the repository to be checked" bash -c "[ -n \"\$(kubectl get config backup -n backup-system -o 'jsonpath={.status.repositories[0].lastCheckTime}')\" ]"
assert_eq false "$(repo_field ready)" "a repository whose certificate nobody trusts is not ready"
assert_contains "$(repo_field message)" "certificate" "it says why ($(repo_field message))"

SETTINGS='      restic:
        compression: Max
        packSizeMib: 8
        excludes: ["*.tmp", "/scratch"]
        excludeCaches: true
        excludeIfPresent: [".nobackup"]
        extraBackupArgs: ["--one-file-system"]
        cacheSizeLimit: 1Gi
        caCertificate: {secretKeyRef: {name: storage-ca, key: ca.crt}}'
config "$SETTINGS"
wait_config_ready 90

# The volume: data to keep, and one thing for each exclude.
make_pvc shop data
wait_for 30 "data released as new" released shop data
dir="$(pvc_host_path data shop)"
mkdir -p "$dir/app" "$dir/scratch" "$dir/thumbs" "$dir/private" "$dir/deep/scratch"
# Random bytes written as hex: nothing to deduplicate, half of it redundant (compressible).
head -c 1000000 /dev/urandom | od -An -tx1 -v >"$dir/app/log.txt"
head -c 100000 /dev/urandom >"$dir/app/blob.bin"
echo temporary >"$dir/app/work.tmp"
echo scratch >"$dir/scratch/big"
echo "kept: only the volume's /scratch is anchored" >"$dir/deep/scratch/kept"
printf 'Signature: 8a477f597d28d172789f06886806bc55\n' >"$dir/thumbs/CACHEDIR.TAG"
echo thumbnail >"$dir/thumbs/1.png"
touch "$dir/private/.nobackup"
echo private >"$dir/private/diary"

backup_named shop data tuned
task="$(kubectl get tasks -n shop -o 'jsonpath={range .items[?(@.spec.name=="tuned")]}{.metadata.name}{end}')"
job="$(jp task "$task" .status.jobName -n shop)"
args="$(kubectl get job "$job" -n shop -o 'jsonpath={.spec.template.spec.containers[0].args}')"
for expected in '"--exclude-caches"' '"--one-file-system"' '"--exclude","/data/scratch"' '"--exclude-if-present",".nobackup"'; do
  assert_contains "$args" "$expected" "the Job's restic arguments"
done
listed="$(tls_restic ls latest --host shop-data | sort)"
printf '%s\n' "$listed" >"$SCENARIO_DIR/listed.txt"
for kept in /data/app/log.txt /data/app/blob.bin /data/deep/scratch/kept /data/thumbs/CACHEDIR.TAG; do
  printf '%s\n' "$listed" | grep -qx "$kept" || fail "$kept is not in the snapshot (listed.txt)"
done
for left in /data/app/work.tmp /data/scratch/big /data/thumbs/1.png /data/private/diary; do
  ! printf '%s\n' "$listed" | grep -qx "$left" || fail "$left is in the snapshot, and an exclude says it should not be"
done
# What the repository stores (raw-data) against what the snapshot holds (restore-size).
total() { tls_restic stats --mode "$1" --json --host shop-data latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_size"])'; }
stored="$(total raw-data)"
holds="$(total restore-size)"
[ "$holds" -gt 3000000 ] && [ "$stored" -lt $((holds * 6 / 10)) ] ||
  fail "compression Max: $stored bytes stored for $holds bytes of data"
echo "restic-options: compression Max stores $stored bytes for $holds bytes of data (restic stats raw-data / restore-size)" >>"$SCENARIO_DIR/figures.txt"

# A restore through the same TLS repository brings back exactly what was kept.
make_pvc shop copy
answer="$(restore_request shop copy "shop-data|tuned")"
assert_contains "$answer" "Completed:" "restore through the private-CA repository"
restored="$(cd "$(pvc_host_path copy shop)" && find . -type f | sed 's|^\.|/data|' | sort)"
files_listed="$(printf '%s\n' "$listed" | while read -r p; do if [ -f "$dir/${p#/data/}" ]; then echo "$p"; fi; done | sort)"
assert_eq "$files_listed" "$restored" "restored files"
cmp "$dir/app/log.txt" "$(pvc_host_path copy shop)/app/log.txt" || fail "log.txt differs after restore"

# The setting is what decides: the same kind of data backed up with compression None is stored whole.
config "${SETTINGS/compression: Max/compression: None}"
make_pvc shop plain
wait_for 30 "plain released as new" released shop plain
head -c 1000000 /dev/urandom | od -An -tx1 -v >"$(pvc_host_path plain shop)/log.txt"
backup_named shop plain uncompressed
total_of() { tls_restic stats --mode "$1" --json --host shop-plain latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_size"])'; }
plain_stored="$(total_of raw-data)"
plain_holds="$(total_of restore-size)"
[ "$plain_stored" -gt $((plain_holds * 9 / 10)) ] || fail "compression None: $plain_stored bytes stored for $plain_holds bytes of data"
echo "restic-options: compression None stores $plain_stored bytes for $plain_holds bytes of data" >>"$SCENARIO_DIR/figures.txt"

# An argument off the allow-list: Valid=False, said, and nothing of it runs.
config "$SETTINGS
        extraRestoreArgs: [\"--target\", \"/\"]"
wait_for 30 "the Config to be invalid" bash -c "[ \"\$(kubectl get config backup -n backup-system -o 'jsonpath={.status.conditions[?(@.type==\"Valid\")].status}')\" = False ]"
assert_contains "$(condition Valid message)" 'restic.extraRestoreArgs: "--target" is not allowed' "the refusal says which argument"
operator_running || fail "the operator restarted"
