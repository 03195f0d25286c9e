#!/usr/bin/env bash
# Starts a single-node Kubernetes on this machine: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy built by build.sh, Debian's containerd and runc, a CNI
# bridge, and two StorageClasses (hostPath `standard`, the default, and loop-mounted ext4 `ext4`).
# RBAC, Node authorization, Pod Security admission and CEL validation are on, as in production.
#
#   bash e2e/cluster/up.sh      # then: export KUBECONFIG=/var/lib/datarestor-e2e/admin.kubeconfig
#   bash e2e/cluster/down.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"

[ "$(id -u)" = 0 ] || { echo "cluster: must run as root (containerd, mounts, network)" >&2; exit 2; }
for tool in containerd runc ctr openssl ip iptables mkfs.ext4 losetup kubectl python3; do
  command -v "$tool" >/dev/null || { echo "cluster: '$tool' is not installed (see .ci/run)" >&2; exit 2; }
done
[ -x /usr/lib/cni/bridge ] || { echo "cluster: the CNI plugins are not installed (containernetworking-plugins)" >&2; exit 2; }
bash "$CLUSTER_SCRIPTS/build.sh"

if [ -f "$CLUSTER_DIR/pids" ]; then
  echo "cluster: a cluster seems to be running already ($CLUSTER_DIR); run down.sh first" >&2
  exit 2
fi
start=$SECONDS
mkdir -p "$CLUSTER_DIR"/{pki,logs,etcd,kubelet,containerd,cni/net.d,cni/ipam,volumes,hostpath} "$CLUSTER_CACHE"
# The kubelet, kube-proxy and the CNI bridge change these host settings; down.sh puts them back.
if [ ! -f "$CLUSTER_CACHE/sysctl-saved" ]; then
  for key in net.ipv4.ip_forward kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom net.ipv4.conf.all.route_localnet; do
    echo "$key $(sysctl -n "$key")"
  done >"$CLUSTER_CACHE/sysctl-saved"
fi
cd "$CLUSTER_DIR"
PKI="$CLUSTER_DIR/pki"

# started NAME PID: remembered so down.sh stops exactly what up.sh started.
started() { echo "$1 $2" >>"$CLUSTER_DIR/pids"; }
wait_until() { # SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: timed out waiting for $what; logs in $CLUSTER_DIR/logs" >&2
      tail -n 20 "$CLUSTER_DIR"/logs/*.log >&2 || true
      exit 1
    fi
    sleep 0.5
  done
}

# ---- certificates and credentials
if [ ! -f "$PKI/ca.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 30 -subj "/CN=datarestor-e2e-ca" 2>/dev/null
  cat >"$PKI/apiserver.ext" <<EXT
subjectAltName=IP:$HOST_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost
EXT
  openssl req -newkey rsa:2048 -nodes -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -out "$PKI/apiserver.crt" -days 30 -extfile "$PKI/apiserver.ext" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  # Static tokens: each component is a distinct user, so RBAC and Node authorization apply to it.
  token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
  {
    echo "$(token),admin,admin,system:masters"
    echo "$(token),system:kube-controller-manager,kcm"
    echo "$(token),system:kube-scheduler,scheduler"
    echo "$(token),system:node:$NODE_NAME,kubelet,system:nodes"
    echo "$(token),system:kube-proxy,kube-proxy"
  } >"$PKI/tokens.csv"
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
fi
kubeconfig_for() { # USER FILE
  local token
  token="$(awk -F, -v u="$1" '$2 == u {print $1}' "$PKI/tokens.csv")"
  cat >"$2" <<KC
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "https://$HOST_IP:$API_PORT", certificate-authority: "$PKI/ca.crt"}}]
users: [{name: "$1", user: {token: "$token"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: "$1"}}]
current-context: e2e
KC
  chmod 600 "$2"
}
kubeconfig_for admin "$KUBECONFIG_ADMIN"
kubeconfig_for system:kube-controller-manager "$CLUSTER_DIR/controller-manager.kubeconfig"
kubeconfig_for system:kube-scheduler "$CLUSTER_DIR/scheduler.kubeconfig"
kubeconfig_for "system:node:$NODE_NAME" "$CLUSTER_DIR/kubelet.kubeconfig"
kubeconfig_for system:kube-proxy "$CLUSTER_DIR/kube-proxy.kubeconfig"

# ---- network: the bridge exists before any pod, so the API server can listen on its address.
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$HOST_IP/24" dev "$BRIDGE"
fi
ip link set "$BRIDGE" up
# The bridge plugin turns IP forwarding on; nothing from the pods may be forwarded off the bridge.
iptables -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null || iptables -I FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
cat >"$CLUSTER_DIR/cni/net.d/10-datarestor-e2e.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "datarestor-e2e",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$CLUSTER_DIR/cni/ipam",
             "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$HOST_IP"}]], "routes": [{"dst": "$SERVICE_CIDR"}]}
  }]
}
JSON
printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$CLUSTER_DIR/resolv.conf"

# ---- containerd
cat >"$CLUSTER_DIR/containerd/config.toml" <<TOML
version = 2
root = "$CLUSTER_DIR/containerd/root"
state = "$CLUSTER_DIR/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This VM refuses lowering oom_score_adj below the caller's (measured: runc fails the sandbox
  # with "failed to update /proc/self/oom_score_adj: Permission denied"); keep containers at or above it.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
TOML
containerd --config "$CLUSTER_DIR/containerd/config.toml" >"$CLUSTER_DIR/logs/containerd.log" 2>&1 &
started containerd $!
wait_until 30 containerd ctr --address "$CONTAINERD_SOCK" version
bash "$CLUSTER_SCRIPTS/images.sh" base

# ---- etcd and the control plane
"$K8S_BIN/etcd" --name e2e --data-dir "$CLUSTER_DIR/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "e2e=http://127.0.0.1:$((ETCD_PORT + 1))" >"$CLUSTER_DIR/logs/etcd.log" 2>&1 &
started etcd $!
wait_until 30 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

"$K8S_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$HOST_IP" --advertise-address "$HOST_IP" --secure-port "$API_PORT" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
  --token-auth-file "$PKI/tokens.csv" \
  --service-account-issuer "https://kubernetes.default.svc" --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --enable-aggregator-routing=true \
  --kubelet-preferred-address-types InternalIP \
  --profiling=false >"$CLUSTER_DIR/logs/kube-apiserver.log" 2>&1 &
started kube-apiserver $!
wait_until 90 kube-apiserver kubectl --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz

"$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10257 \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --use-service-account-credentials=true --leader-elect=false \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --enable-hostpath-provisioner=true --profiling=false >"$CLUSTER_DIR/logs/kube-controller-manager.log" 2>&1 &
started kube-controller-manager $!
"$K8S_BIN/kube-scheduler" \
  --kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false \
  >"$CLUSTER_DIR/logs/kube-scheduler.log" 2>&1 &
started kube-scheduler $!

# ---- the node
cat >"$CLUSTER_DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: 10250
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
resolvConf: $CLUSTER_DIR/resolv.conf
hairpinMode: hairpin-veth
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Eviction only when the machine is truly out of room. The node shares its disk with the builds
# running beside it; at a percentage (1% of 252 GB is 2.5 GB) a disk that the builds fill turns the
# node DiskPressure, which taints it, and every later pod stays Pending (a CI run showed exactly
# that for its last eight scenarios). The inode signals are given explicitly as well.
evictionHard: {memory.available: "100Mi", nodefs.available: "500Mi", imagefs.available: "500Mi", nodefs.inodesFree: "1%", imagefs.inodesFree: "1%"}
maxPods: 110
YAML
"$K8S_BIN/kubelet" --config "$CLUSTER_DIR/kubelet/config.yaml" --kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" \
  --root-dir "$CLUSTER_DIR/kubelet" --cert-dir "$CLUSTER_DIR/kubelet/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$HOST_IP" >"$CLUSTER_DIR/logs/kubelet.log" 2>&1 &
started kubelet $!
"$K8S_BIN/kube-proxy" --kubeconfig "$CLUSTER_DIR/kube-proxy.kubeconfig" --hostname-override "$NODE_NAME" \
  --proxy-mode iptables --cluster-cidr "$POD_SUBNET" --conntrack-max-per-core 0 \
  --bind-address 127.0.0.1 --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 \
  >"$CLUSTER_DIR/logs/kube-proxy.log" 2>&1 &
started kube-proxy $!

export KUBECONFIG="$KUBECONFIG_ADMIN"
wait_until 120 "node $NODE_NAME Ready" bash -c "kubectl get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
wait_until 60 "the default ServiceAccount" kubectl get serviceaccount default -n default

# ---- storage
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
# Real ext4 filesystems (a loop-mounted image per volume), with lost+found as block storage has.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: ext4}
provisioner: datarestor.test/ext4-loop
reclaimPolicy: Delete
volumeBindingMode: Immediate
YAML
# Its own process group, so down.sh stops the loop and whatever it is running.
setsid bash "$CLUSTER_SCRIPTS/ext4-provisioner.sh" >"$CLUSTER_DIR/logs/ext4-provisioner.log" 2>&1 &
started ext4-provisioner $!

echo "cluster: Kubernetes $K8S_VERSION up in $((SECONDS - start))s (KUBECONFIG=$KUBECONFIG_ADMIN)"
