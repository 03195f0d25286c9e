#!/usr/bin/env bash
# Stops the test cluster started by up.sh and removes everything it left: containers, mounts, the
# bridge, kube-proxy's rules, the host settings it changed and the state directory. Safe to run when
# nothing is running, and after a run whose processes were killed.
set -uo pipefail
source "$(dirname "$0")/env.sh"

# ours PID: the process is still one up.sh started (PIDs are reused after a reboot or a long run).
ours() {
  local cmdline
  cmdline="$( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  case "$cmdline" in *"$K8S_BIN/"* | *"$CLUSTER_DIR/"* | *ext4-provisioner.sh*) return 0 ;; esac
  return 1
}
stop() { # PID
  ours "$1" || return 0
  kill "$1" 2>/dev/null && for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  ours "$1" && kill -9 "$1" 2>/dev/null
}

if [ -f "$CLUSTER_DIR/pids" ]; then
  # The kubelet first, so it restarts no container; the provisioner's whole process group.
  while read -r name pid; do
    case "$name" in
      kubelet) stop "$pid" ;;
      ext4-provisioner) ours "$pid" && kill -9 -- "-$pid" 2>/dev/null ;;
    esac
  done <"$CLUSTER_DIR/pids"
  if [ -S "$CONTAINERD_SOCK" ]; then
    for task in $(ctr_k8s tasks list -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
  fi
  tac "$CLUSTER_DIR/pids" | while read -r name pid; do stop "$pid"; done
  rm -f "$CLUSTER_DIR/pids"
fi
# Whatever still runs in the pods' cgroups (containers whose shim was lost), then the shims.
for procs in $(find /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/kubepods -name cgroup.procs 2>/dev/null); do
  while read -r pid; do kill -9 "$pid" 2>/dev/null; done <"$procs"
done
pkill -9 -f "containerd-shim-runc-v2 .*$CLUSTER_DIR/" 2>/dev/null
sleep 0.5
# Every mount below the state dir (pod volumes, container rootfs, ext4 loop volumes), deepest first.
for _ in 1 2 3; do
  mounts="$(awk -v d="$CLUSTER_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)"
  [ -n "$mounts" ] || break
  for m in $mounts; do umount -l "$m" 2>/dev/null; done
done
for loop in $(losetup -a 2>/dev/null | awk -F: -v d="$CLUSTER_DIR/" 'index($0, d) {print $1}'); do losetup -d "$loop" 2>/dev/null; done
# Pod network namespaces containerd made, and the bridge.
for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null; done
ip link delete "$BRIDGE" 2>/dev/null
# kube-proxy's chains, the forwarding guard, and the host settings up.sh saved.
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
while iptables -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null; do :; done
if [ -f "$CLUSTER_CACHE/sysctl-saved" ]; then
  while read -r key value; do sysctl -qw "$key=$value" 2>/dev/null; done <"$CLUSTER_CACHE/sysctl-saved"
  rm -f "$CLUSTER_CACHE/sysctl-saved"
fi
rm -rf --one-file-system "$CLUSTER_DIR" /tmp/hostpath_pv
echo "cluster: down"
