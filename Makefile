# Turnout developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := tools/buf/node_modules/.bin/buf
NODE_SDK := tests/http_api/node/node_modules/.installed
HTTP_PORT ?= 8080
CONFIG ?= examples/turnout.yaml
SIM_CONFIG ?= examples/simulator.yaml

.DEFAULT_GOAL := help
.PHONY: help install run test fuzz test-deps check lint format typecheck contracts lint-proto check-proto proto bench bench-quick bench-compare soak image-test clean \
	clients clients-check clients-test check-breaking check-examples

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml simulator/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./simulator -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install Turnout, its dev tools and the provider simulator (simulator/)

run: $(STAMP) ## start the provider simulator and the sidecar with examples/ (no API key needed); OpenAI/Anthropic HTTP API on :8080
	@echo "Starting Turnout on 127.0.0.1:50051 (gRPC) and 127.0.0.1:$(HTTP_PORT) (OpenAI/Anthropic HTTP) with $(CONFIG), simulator on 127.0.0.1:8400."
	@echo "Try, in another shell:  $(BIN)/turnout generate --task-type classify 'Is this email spam? Win a prize now'"
	@echo "                        curl -s 127.0.0.1:$(HTTP_PORT)/v1/chat/completions -d '{\"model\": \"auto\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}'"
	$(BIN)/turnout serve --config $(CONFIG) --simulator $(SIM_CONFIG) --http-port $(HTTP_PORT)

test: $(STAMP) test-deps $(NODE_SDK) ## run the test suite
	$(BIN)/pytest -q

$(NODE_SDK): tests/http_api/node/package.json tests/http_api/node/package-lock.json
	npm ci --prefix tests/http_api/node --no-audit --no-fund --loglevel=error
	@touch $@

fuzz: $(STAMP) ## the property (request and config) and byte-level fuzz tests, longer (~19 min; `make test`: ~25 s)
	TURNOUT_FUZZ_SECONDS=600 TURNOUT_FUZZ_EXAMPLES=10000 $(BIN)/pytest -q -p no:cacheprovider -o timeout=1800 tests/server/test_fuzz.py tests/test_config_property.py

test-deps: ## build/install the real Jaeger and Prometheus the integration tests use
	bash scripts/test-deps.sh

check: lint typecheck contracts check-proto lint-proto check-breaking check-examples helm-check clients-check ## every static check CI runs

.PHONY: helm-check
helm-check: $(STAMP) ## helm lint --strict, helm template | kubeconform -strict (k8s 1.29, 1.37, CRDs), helm unittest
	PYTHON=$(BIN)/python bash scripts/helm-check.sh

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy (strict on domain, policy, execution, registry)
	$(BIN)/mypy sidecar simulator/turnout_simulator

contracts: $(STAMP) ## import-layer contracts (import-linter)
	$(BIN)/lint-imports

proto: $(STAMP) $(BUF) ## regenerate the sidecar's Python stubs from proto/ (buf generate)
	rm -rf sidecar/server/_proto
	$(BUF) generate --template proto/buf.gen.sidecar.yaml

check-proto: $(STAMP) $(BUF) ## fail if the committed stubs differ from a fresh generation
	bash scripts/check-generated.sh sidecar/server/_proto proto/buf.gen.sidecar.yaml sidecar/server/_proto "make proto"

$(BUF): tools/buf/package.json tools/buf/package-lock.json
	npm ci --prefix tools/buf --no-audit --no-fund --loglevel=error
	@touch $@

lint-proto: $(BUF) ## buf lint (STANDARD rules) on proto/
	cd proto && ../$(BUF) lint

check-breaking: $(BUF) ## buf breaking: proto/ must stay compatible with the released v1 API (proto/breaking-baseline.binpb)
	cd proto && ../$(BUF) breaking --against breaking-baseline.binpb && echo "proto/ is compatible with the released v1 API"

check-examples: $(STAMP) ## every README example marked with its file is that (tested) file
	$(BIN)/python scripts/check_examples.py

CLIENTS := python go typescript java
clients: ## regenerate every client package's code with buf generate (clients/*/buf.gen.yaml)
	@for c in $(CLIENTS); do $(MAKE) -C clients/$$c generate || exit 1; done

clients-check: ## fail if any client's committed generated code differs from a fresh generation
	@for c in $(CLIENTS); do $(MAKE) --no-print-directory -C clients/$$c check-generated || exit 1; done

clients-test: $(STAMP) ## every client's own tests (pytest, go test, node --test, Maven) against one live sidecar
	$(BIN)/python scripts/clients_test.py $(CLIENTS)

bench: $(STAMP) ## every benchmark, about 50 min: decision time, Route RPC, instructions per call, overhead vs LiteLLM, hedging, money table (-> benchmarks/results/)
	bash scripts/bench-deps.sh
	$(BIN)/python -m benchmarks.run

bench-quick: $(STAMP) ## the same, short (a few minutes), to keep the harness working
	bash scripts/bench-deps.sh
	$(BIN)/python -m benchmarks.run --quick --out benchmarks/results/quick

BASE ?=
bench-compare: $(STAMP) ## this tree vs BASE=<commit>, side by side in one run: Route/Generate calls/s, telemetry off/on (-> benchmarks/results/compare-builds.json)
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=<commit, e.g. main~3>"; exit 2; }
	$(BIN)/python -m benchmarks.compare_builds --base $(BASE)

SOAK_MINUTES ?= 30
soak: $(STAMP) ## mixed load with random provider faults for SOAK_MINUTES (30); fails on RSS/fd growth, hangs (-> benchmarks/results/)
	$(BIN)/python -m benchmarks.soak --minutes $(SOAK_MINUTES)

image-test: $(STAMP) ## build the container image with podman (local Debian base) and smoke-test it: health, Generate, SIGTERM
	bash scripts/image-test.sh

clean: ## remove the venv and caches
	rm -rf $(VENV) tools/buf/node_modules tests/http_api/node/node_modules .mypy_cache .ruff_cache .pytest_cache
