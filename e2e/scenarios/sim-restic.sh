# kube-sim + restic + S3 plumbing: Jobs run the real restic under bubblewrap with their PVC mounted
# and credentials from a Secret; a backup of one claim restored into another must be identical.
# e2e-stage: kube-sim only: it tests kube-sim's own Job runner

repo="s3:$S3_ENDPOINT/$S3_BUCKET/sim-restic"
kubectl create secret generic restic-creds \
  --from-literal=RESTIC_PASSWORD=e2e-password \
  --from-literal=RESTIC_REPOSITORY="$repo" \
  --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"

for claim in source target; do
  kapply <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: $claim}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML
done
k wait --for=jsonpath='{.status.phase}'=Bound pvc/source pvc/target --timeout=30s

# Some data with nested directories and a binary file.
src="$(pvc_host_path source)"
mkdir -p "$src/a/b"
echo "hello" >"$src/a/b/hello.txt"
head -c 100000 /dev/urandom >"$src/random.bin"

# job NAME CLAIM READONLY SCRIPT: run SCRIPT with the claim at /data and restic's credentials.
job() {
  kapply <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: $1}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: restic
        image: restic/restic
        command: [sh, -c, '$4']
        envFrom: [{secretRef: {name: restic-creds}}]
        env: [{name: RESTIC_CACHE_DIR, value: /cache}]
        volumeMounts: [{name: data, mountPath: /data, readOnly: $3}, {name: cache, mountPath: /cache}]
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: $2}}
      - {name: cache, emptyDir: {}}
YAML
  if ! kubectl wait --for=condition=Complete "job/$1" --timeout=90s; then
    kubectl logs "job/$1" >&2 || true
    fail "job $1 did not complete"
  fi
}

job backup source true 'restic init && restic backup --host sim /data'
assert_contains "$(k logs job/backup)" "snapshot" "backup output names the snapshot"
job restore target false 'restic restore latest --target / && ls -R /data'

dst="$(pvc_host_path target)"
diff -r "$src" "$dst" || fail "restored tree differs from the source"
log "sim-restic ok"
