# Developer entry points. `make test` is what CI runs.
CARGO ?= cargo

.PHONY: generate fmt lint unit fuzz e2e e2e-real scenarios cluster-build cluster-up cluster-down test bench demo

## Regenerate the committed CRD YAML from the Rust types.
generate:
	$(CARGO) run --quiet --bin datarestor-operator -- crd --output-dir config/crd/bases --output-dir charts/datarestor-operator/crds

fmt:
	@bash e2e/stage.sh fmt $(CARGO) fmt --all -- --check

lint:
	@bash e2e/stage.sh lint $(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	@bash e2e/stage.sh unit $(CARGO) test --workspace --no-fail-fast

## The fuzz targets (annotation grammar, schedules), each for FUZZ_SECONDS (nightly + cargo-fuzz).
FUZZ_SECONDS ?= 30
fuzz:
	@bash e2e/stage.sh fuzz bash fuzz/run.sh $(FUZZ_SECONDS)

## Every scenario on kube-sim.
e2e:
	@bash e2e/stage.sh e2e-kube-sim bash e2e/run.sh

## Every scenario on a real single-node Kubernetes (root; builds it once, brings it up, takes it down).
e2e-real:
	@bash e2e/stage.sh e2e-real-cluster bash e2e/cluster/suite.sh

## Both of the above side by side, then the fuzz targets in the kube-sim lane (what `make test` runs).
scenarios:
	@bash e2e/stage.sh scenarios-and-fuzz env FUZZ_SECONDS=$(FUZZ_SECONDS) bash e2e/lanes.sh

cluster-build:
	bash e2e/cluster/build.sh
cluster-up:
	bash e2e/cluster/up.sh
cluster-down:
	bash e2e/cluster/down.sh

## Everything CI checks: formatting, lints, unit and integration tests, then the scenarios on the real
## cluster beside the scenarios on kube-sim and fuzzing (e2e/lanes.sh).
test: fmt lint unit scenarios

## The quick start's story on a simulated cluster (keeps running until Ctrl-C).
demo:
	bash e2e/demo.sh

## Benchmarks: figures only, nothing asserted about time.
bench:
	bash e2e/run.sh e2e/benches/quiesce-downtime.sh
	for n in 300 1000; do BENCH_PVCS=$$n E2E_PROFILE=release bash e2e/run.sh e2e/benches/dr-decisions.sh; done
	cat /tmp/dr-decisions.txt
	$(CARGO) run --release -p kube-sim --bin kube-sim-bench
