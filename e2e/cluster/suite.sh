#!/usr/bin/env bash
# The real-cluster stage: build Kubernetes if it is not cached, bring the cluster up, run every
# scenario on it (E2E_CLUSTER=real), and take it down again whatever happened. Prints how long each
# step took. Arguments are passed to e2e/run.sh (scenario names).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
t=$SECONDS
bash "$here/build.sh" || exit 2
echo "== real cluster: build step took $((SECONDS - t))s"
bash "$here/down.sh" >/dev/null 2>&1 # a cluster left over from an interrupted run
t=$SECONDS
if ! bash "$here/up.sh"; then
  bash "$here/down.sh"
  exit 2
fi
echo "== real cluster: start took $((SECONDS - t))s"
t=$SECONDS
E2E_CLUSTER=real bash "$here/../run.sh" "$@"
rc=$?
echo "== real cluster: suite took $((SECONDS - t))s"
bash "$here/down.sh"
exit $rc
