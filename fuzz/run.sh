#!/usr/bin/env bash
# fuzz/run.sh [SECONDS | build]: builds the fuzz targets (nightly toolchain, cargo-fuzz) and runs each for
# SECONDS (default 60; `make test` gives 30), printing how many inputs it tried. A crash fails the
# run; libFuzzer saves the input under fuzz/artifacts/TARGET/ and `cargo +nightly fuzz run TARGET
# FILE` replays it.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
cargo +nightly fuzz build -O
# `run.sh build`: only build (lanes.sh builds early, beside the kube-sim scenarios).
[ "$seconds" != build ] || exit 0
for target in annotation schedule; do
  log="target/fuzz-$target.log"
  if cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
    echo "fuzz $target: $(grep -E '^Done' "$log" | tail -1)"
  else
    echo "fuzz $target: FAILED"
    grep -v '^#' "$log" | tail -40
    exit 1
  fi
done
