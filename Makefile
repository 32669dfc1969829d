# The two commands a newcomer needs: `make run` and `make test`. `make help` lists the rest.
SHELL := bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: tools
tools: ## Install cargo-lambda, moto, the AWS CLI and botocore into .venv (from PyPI)
	@bash scripts/tools.sh

.PHONY: run
run: ## Build, start the local Lambda emulator, invoke events/*.json, print responses, logs and traces
	@bash scripts/run-local.sh

.PHONY: test
test: tools ## Every test: unit, layers, doc tests, runtime API, protocol, OTel env spec, cargo lambda watch end to end (long soaks: make soak)
	$(CARGO) test --workspace --all-targets
	$(CARGO) test --test cargo_lambda_watch -- --include-ignored
	$(CARGO) test --workspace --doc

.PHONY: soak
soak: ## The long soaks (ignored by make test): RSS over 100,000 invocations beside a plain lambda_runtime hello, 10,000 invocations of span accounting
	SOAK_INVOCATIONS=$${SOAK_INVOCATIONS:-100000} $(CARGO) test --workspace --tests -- --ignored soak

.PHONY: crates
crates: ## Package and verify the five library crates together (cargo package --workspace)
	@# Cargo verifies each crate against its packaged siblings as if they came from a registry:
	@# unpacked once per version into $$CARGO_HOME/registry/src and built once per target
	@# directory, never checked again. Copies and builds from an earlier run would stand in for
	@# this tree's, so both go first (the verification builds in its own target directory).
	rm -rf target/crates "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/*/lambda-observability-*-0.1.0
	$(CARGO) package --workspace --exclude hello-lambda --exclude lambda-observability-test-support \
	  --exclude bare-work --exclude bare-hello --exclude lr-otel --exclude lr-logs --target-dir target/crates

.PHONY: fuzz
fuzz: ## The proptest fuzzers of every boundary (Runtime API headers, event decoder, environment, X-Ray header), 20,000 cases each (make test runs 256)
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --workspace fuzz

.PHONY: lint
lint: ## rustfmt and clippy, warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

.PHONY: bench
bench: ## Benchmarks (release build): cold start per exporter vs bare work and the Python original, warm overhead, Managed Instances throughput; docs/cold-start.svg
	@start=$$(date +%s); status=0; \
	rm -f target/cold-start.json target/cpu-per-invocation.json target/throughput.json; \
	bash benches/python/install.sh || echo "bench: the Python original's packages are missing; its role is skipped"; \
	COLD_START_JSON="$(CURDIR)/target/cold-start.json" CPU_PER_INVOCATION_JSON="$(CURDIR)/target/cpu-per-invocation.json" \
	  THROUGHPUT_JSON="$(CURDIR)/target/throughput.json" \
	  $(CARGO) bench $(BENCH_ARGS) || status=$$?; \
	if [ $$status -eq 0 ] && [ -f target/cold-start.json ]; then \
	  python3 scripts/chart.py target/cold-start.json docs/cold-start.svg $(if $(CHART_NOTE),--note "$(CHART_NOTE)") || status=$$?; \
	fi; \
	echo "make bench: $$(( $$(date +%s) - start )) s; criterion's report: target/criterion/report/index.html"; \
	exit $$status

# The exporter features of docs/cold-start-levers.md, each built alone (`make features`).
EXPORTER_FEATURES := xray-segments otlp-udp otlp-http sigv4 console

.PHONY: features
features: ## Builds without default features: the facade with no exporter and its lib tests with each exporter feature alone (the missing-feature branch included), bootstrap with each one, the daemon crate (and its tests) with each of its two, the tower crate's tests without `env-filter`
	$(CARGO) check -p lambda-observability --no-default-features
	@# `make test` unifies `env-filter` in (hello-lambda's dev-dependencies); here the tower crate's
	@# own tests run without it: the log filter as it ships by default.
	$(CARGO) test -p lambda-observability-tower --lib
	@set -e; for feature in otlp-udp xray-segments; do \
	  echo "==> lambda-observability-daemon --no-default-features --features $$feature"; \
	  $(CARGO) check -p lambda-observability-daemon --no-default-features --features $$feature --all-targets; \
	done
	$(CARGO) test -p lambda-observability --no-default-features --lib
	@set -e; for feature in $(EXPORTER_FEATURES); do \
	  echo "==> --no-default-features --features $$feature"; \
	  $(CARGO) test -p lambda-observability --no-default-features --features $$feature --lib; \
	  $(CARGO) check -p hello-lambda --no-default-features --features $$feature --bin bootstrap; \
	done

.PHONY: bench-cpu
bench-cpu: ## CPU per warm invocation of a real bootstrap process against the same work bare (release): target/cpu-per-invocation.json
	CPU_PER_INVOCATION_JSON="$(CURDIR)/target/cpu-per-invocation.json" $(CARGO) bench --bench cpu_per_invocation

.PHONY: bench-throughput
bench-throughput: ## Managed Instances throughput at concurrency 1, 8, 64: ours vs bare work vs lambda_runtime's OpenTelemetry (release): target/throughput.json
	THROUGHPUT_JSON="$(CURDIR)/target/throughput.json" $(CARGO) bench --bench throughput

.PHONY: ci
ci: lint test ## What CI runs: lint, every test, each exporter feature alone, the crates' docs and packages, the release package and its checks, deploy targets against moto
	$(MAKE) --no-print-directory features
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(MAKE) --no-print-directory crates
	$(MAKE) --no-print-directory package SKIP_TESTS=1
	$(MAKE) --no-print-directory sam-build
	$(MAKE) --no-print-directory check-glibc
	$(MAKE) --no-print-directory deploy-test

# Packaging and deployment targets (package, create, update, invoke, get, list, delete, ...).
-include deploy/deploy.mk
