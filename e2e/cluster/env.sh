# Shared settings of the real test cluster (sourced by the scripts beside it).
# Everything is addressed on this machine: loopback, and the suite's own bridge and pod namespaces.

CLUSTER_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_SCRIPTS/../.." && pwd)"

# The Kubernetes release, and the etcd its go.mod pins (k8s/go.mod says the same).
K8S_VERSION="v1.34.4"
K8S_MINOR="34"
# Binaries are cached by version, so only the first run on a machine builds them.
CLUSTER_CACHE="${DATARESTOR_E2E_CACHE:-/var/cache/datarestor-e2e}"
K8S_BIN="$CLUSTER_CACHE/kubernetes-$K8S_VERSION"
# Live state of a running cluster: certificates, etcd data, kubelet, containerd, volumes, logs.
CLUSTER_DIR="${E2E_CLUSTER_DIR:-/var/lib/datarestor-e2e}"
KUBECONFIG_ADMIN="$CLUSTER_DIR/admin.kubeconfig"

# The node's bridge: pods live on POD_SUBNET; the host end HOST_IP is where the API server, the
# kubelet and the tests' S3 servers listen. No masquerading and no forwarding: nothing leaves it.
BRIDGE="drtest0"
HOST_IP="10.213.0.1"
POD_SUBNET="10.213.0.0/24"
SERVICE_CIDR="10.214.0.0/24"
KUBERNETES_SERVICE_IP="10.214.0.1"
NODE_NAME="datarestor-node"
API_PORT=6443
ETCD_PORT=23790

# Images built here (no registry can be reached); pods use them with imagePullPolicy IfNotPresent.
PAUSE_IMAGE="datarestor.test/pause:1"
APP_IMAGE="datarestor.test/busybox:1"
PG_MAJOR=15
PG_IMAGE="datarestor.test/postgres:$PG_MAJOR"
RESTIC_IMAGE_REF="datarestor.test/restic:$(restic version 2>/dev/null | awk '{print $2}')"
OPERATOR_IMAGE_REPO="datarestor.test/datarestor-operator"

CONTAINERD_SOCK="$CLUSTER_DIR/containerd/containerd.sock"
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
