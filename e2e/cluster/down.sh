#!/usr/bin/env bash
# Stops the test cluster started by up.sh and removes everything it left: containers, mounts, the
# bridge, kube-proxy's rules and the state directory. Safe to run when nothing is running.
set -uo pipefail
source "$(dirname "$0")/env.sh"

if [ -f "$CLUSTER_DIR/pids" ]; then
  # Pods first (while containerd still runs), then the processes in reverse start order.
  if [ -S "$CONTAINERD_SOCK" ]; then
    for task in $(ctr_k8s tasks list -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
  fi
  tac "$CLUSTER_DIR/pids" | while read -r name pid; do
    kill "$pid" 2>/dev/null && for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  rm -f "$CLUSTER_DIR/pids"
fi
# Container shims and anything else still running from the cluster's directories.
pkill -9 -f "containerd-shim-runc-v2 .*$CLUSTER_DIR" 2>/dev/null
pkill -9 -f "$K8S_BIN/" 2>/dev/null
sleep 0.5
# Every mount below the state dir (pod volumes, container rootfs, ext4 loop volumes), deepest first.
for _ in 1 2 3; do
  mounts="$(awk -v d="$CLUSTER_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)"
  [ -n "$mounts" ] || break
  for m in $mounts; do umount -l "$m" 2>/dev/null; done
done
for loop in $(losetup -a 2>/dev/null | awk -F: -v d="$CLUSTER_DIR" 'index($0, d) {print $1}'); do losetup -d "$loop" 2>/dev/null; done
# Pod network namespaces containerd made, and the bridge.
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null; done
ip link delete "$BRIDGE" 2>/dev/null
# kube-proxy's chains.
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
rm -rf "$CLUSTER_DIR" /tmp/hostpath_pv
echo "cluster: down"
