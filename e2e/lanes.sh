#!/usr/bin/env bash
# lanes.sh: the long part of `make test`, in two lanes side by side.
#
#   lane "real": every scenario on the real cluster (the critical path, about 35 minutes);
#   lane "sim":  every scenario on kube-sim (the fuzz targets building beside them), then fuzzing.
#
# The scenarios spend most of their time waiting (pods starting, Jobs, minute boundaries), so two
# lanes on two cores take little longer than the slower one alone. What the scenarios need is built
# first, one build at a time: Kubernetes (when not cached), then the operator (one debug build serves
# both stages) and kube-sim. The fuzz build runs in the sim lane beside its scenarios, at the lowest
# priority, so it cannot starve the clusters' processes.
# Each line of output carries its lane's name; each lane's stages print how long they took.
# Arguments (scenario names) go to both lanes; none means every scenario.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
fuzz_seconds="${FUZZ_SECONDS:-30}"

bash "$here/stage.sh" build-for-scenarios bash -c "
  set -e
  bash '$here/cluster/build.sh'
  cd '$root'
  cargo build --quiet -p datarestor-operator --bin datarestor-operator -p kube-sim --bin kube-sim
" || exit 1

prefix() { sed -u "s/^/[$1] /"; }

(E2E_BUILD=0 bash "$here/stage.sh" e2e-real-cluster bash "$here/cluster/suite.sh" "$@" 2>&1 | prefix real
  exit "${PIPESTATUS[0]}") &
real=$!
(
  # The fuzz targets build (nightly, about 13 minutes of CPU) at the lowest priority while the
  # kube-sim scenarios wait on pods and Jobs; they run once the scenarios are done.
  (nice -n 19 bash "$here/stage.sh" fuzz-build bash "$root/fuzz/run.sh" build 2>&1 | prefix sim) &
  fuzz_build=$!
  E2E_BUILD=0 bash "$here/stage.sh" e2e-kube-sim bash "$here/run.sh" "$@" 2>&1 | prefix sim
  sim_rc=${PIPESTATUS[0]}
  wait $fuzz_build
  bash "$here/stage.sh" fuzz nice -n 19 bash "$root/fuzz/run.sh" "$fuzz_seconds" 2>&1 | prefix sim
  fuzz_rc=${PIPESTATUS[0]}
  [ "$sim_rc" = 0 ] && [ "$fuzz_rc" = 0 ]
) &
sim=$!

# Ctrl-C or a CI timeout stops both lanes and everything they started.
trap 'trap - INT TERM; kill 0' INT TERM
wait $real
real_rc=$?
wait $sim
sim_rc=$?
echo "== lanes: real cluster exit $real_rc, kube-sim and fuzz exit $sim_rc"
[ "$real_rc" = 0 ] && [ "$sim_rc" = 0 ]
