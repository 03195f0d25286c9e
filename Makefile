# Developer entry points. `make test` is what CI runs.
CARGO ?= cargo

.PHONY: generate fmt lint unit e2e test bench demo

## Regenerate the committed CRD YAML from the Rust types.
generate:
	$(CARGO) run --quiet --bin datarestor-operator -- crd --output-dir config/crd/bases --output-dir charts/datarestor-operator/crds

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) nextest run --workspace --no-fail-fast

e2e:
	bash e2e/run.sh

## Everything CI checks: formatting, lints, unit and integration tests, end-to-end scenarios.
test: fmt lint unit e2e

## The quick start's story on a simulated cluster (keeps running until Ctrl-C).
demo:
	bash e2e/demo.sh

## Benchmarks: figures only, nothing asserted about time.
bench:
	bash e2e/run.sh e2e/benches/quiesce-downtime.sh
	$(CARGO) run --release -p kube-sim --bin kube-sim-bench
