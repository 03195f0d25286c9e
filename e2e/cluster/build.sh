#!/usr/bin/env bash
# Builds the test cluster's Kubernetes (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy), etcd and the pause binary from the published Go modules pinned in
# k8s/go.mod, into a cache keyed by the Kubernetes version. A cached build returns at once.
set -euo pipefail
source "$(dirname "$0")/env.sh"

# One build at a time: CI starts one early in the background, and the real-cluster stage waits
# for it here rather than building the same thing again.
mkdir -p "$CLUSTER_CACHE"
exec 9>"$CLUSTER_CACHE/build.lock"
flock 9

commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd pause)
missing=0
for c in "${commands[@]}"; do [ -x "$K8S_BIN/$c" ] || missing=1; done
if [ $missing = 0 ]; then
  echo "cluster build: cached in $K8S_BIN"
  exit 0
fi
command -v go >/dev/null || { echo "cluster build: 'go' is required to build Kubernetes from its modules" >&2; exit 2; }

start=$SECONDS
mkdir -p "$K8S_BIN.partial"
ldflags="-s -w"
for kv in "gitVersion=$K8S_VERSION" gitMajor=1 "gitMinor=$K8S_MINOR" gitTreeState=clean; do
  ldflags="$ldflags -X k8s.io/component-base/version.$kv"
done
cd "$CLUSTER_SCRIPTS/k8s"
# CGO off: static binaries, and no C toolchain involved. The build's object cache (3 GB) is of no
# use once the binaries are cached, and the disk it takes is shared with the test cluster's node:
# it goes when the build is done.
export GOCACHE="$CLUSTER_CACHE/go-build.tmp"
trap 'rm -rf "$GOCACHE"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$K8S_BIN.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy \
  ./cmd/etcd ./cmd/pause
rm -rf "$K8S_BIN"
mv "$K8S_BIN.partial" "$K8S_BIN"
echo "cluster build: Kubernetes $K8S_VERSION built in $((SECONDS - start))s into $K8S_BIN"
