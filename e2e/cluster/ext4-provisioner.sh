#!/usr/bin/env bash
# The test cluster's provisioner for StorageClass `ext4`: each claim gets its own ext4 filesystem
# (an image file, mkfs.ext4, loop-mounted on the node), so a new volume holds `lost+found` exactly as
# EBS, PD, Ceph RBD or Longhorn volumes do. A released volume is unmounted and deleted. up.sh runs it.
set -uo pipefail
source "$(dirname "$0")/env.sh"
export KUBECONFIG="$KUBECONFIG_ADMIN"
VOLUMES="$CLUSTER_DIR/volumes"
PROVISIONER="datarestor.test/ext4-loop"

# provision: idempotent, so a pass that failed half-way (a refused PV create) is simply repeated.
provision() { # NAMESPACE NAME UID BYTES ACCESS_MODES_JSON
  local id="pvc-$3" img="$VOLUMES/pvc-$3.img" mnt="$VOLUMES/pvc-$3"
  { [ -f "$img" ] || { truncate -s "$4" "$img.new" && mkfs.ext4 -q -F "$img.new" && mv "$img.new" "$img"; }; } &&
    mkdir -p "$mnt" && { mountpoint -q "$mnt" || mount -o loop "$img" "$mnt"; } || {
    echo "could not make a filesystem for $1/$2"
    return 1
  }
  kubectl create -f - <<YAML
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $id
  annotations: {pv.kubernetes.io/provisioned-by: $PROVISIONER}
spec:
  storageClassName: ext4
  capacity: {storage: "$4"}
  accessModes: $5
  persistentVolumeReclaimPolicy: Delete
  claimRef: {namespace: $1, name: $2, uid: $3}
  hostPath: {path: $mnt, type: Directory}
YAML
  echo "provisioned $id for $1/$2 ($4 bytes)"
}

release() { # PV_NAME
  local mnt="$VOLUMES/$1"
  if mountpoint -q "$mnt"; then umount "$mnt" || return 1; fi
  rm -rf --one-file-system "$mnt" "$VOLUMES/$1.img"
  kubectl delete pv "$1" --wait=false && echo "deleted $1"
}

while :; do
  kubectl get pvc,pv -A -o json 2>/dev/null | python3 -c '
import json, sys
units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1000, "M": 10**6, "G": 10**9}
def size(q):
    for u, m in units.items():
        if q.endswith(u):
            return int(float(q[: -len(u)]) * m)
    return int(q)
for item in json.load(sys.stdin)["items"]:
    spec, meta = item["spec"], item["metadata"]
    if item["kind"] == "PersistentVolumeClaim":
        if spec.get("storageClassName") == "ext4" and not spec.get("volumeName") and not meta.get("deletionTimestamp"):
            request = max(size(spec["resources"]["requests"]["storage"]), 64 << 20)
            print("provision", meta["namespace"], meta["name"], meta["uid"], request, json.dumps(spec["accessModes"]))
    elif spec.get("storageClassName") == "ext4" and item.get("status", {}).get("phase") == "Released":
        print("release", meta["name"])
' | while read -r action a b c d e; do
    case "$action" in
      provision) kubectl get pv "pvc-$c" >/dev/null 2>&1 || provision "$a" "$b" "$c" "$d" "$e" ;;
      release) release "$a" ;;
    esac
  done
  sleep 1
done
