# certmint: everyday commands. `make test` works from a fresh clone on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KUBECONFIG_LOCAL := $(CURDIR)/.local/kubeconfig
N ?= 1000

.PHONY: help venv tools prometheus cluster-up cluster-down lint test test-unit test-integration run bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@

venv: $(VENV)/.installed ## Create .venv and install certmint with its test extras

tools: venv ## Build (first run) or reuse the cached etcd, kube-apiserver and kubectl; link them into .venv/bin
	@dirs="$$(bash hack/build-control-plane.sh)"; \
	for d in $$dirs; do for f in "$$d"/*; do ln -sf "$$f" $(BIN)/; done; done

prometheus: ## Install Prometheus and promtool from Debian's packages if missing
	@bash hack/install-prometheus.sh

cluster-up: tools ## Start etcd + kube-apiserver on loopback (idempotent); admin kubeconfig in .local/kubeconfig
	@$(BIN)/python hack/cluster.py up

cluster-down: ## Stop the local control plane and remove its state (no-op when nothing runs)
	@if [ -x $(BIN)/python ]; then $(BIN)/python hack/cluster.py down; else echo "control plane was not running"; fi

lint: venv ## ruff, mypy --strict, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv tools prometheus lint ## Lint and run every test (unit, integration against the real control plane)
	$(BIN)/pytest -q

test-unit: venv ## Only the fast unit tests
	$(BIN)/pytest -q tests/unit

run: tools ## Run the operator against $$KUBECONFIG, or a local control plane started for you
	@if [ -z "$${KUBECONFIG:-}" ]; then $(MAKE) --no-print-directory cluster-up; fi; \
	export KUBECONFIG="$${KUBECONFIG:-$(KUBECONFIG_LOCAL)}"; \
	$(BIN)/kubectl apply --server-side --force-conflicts -f crds/ && \
	$(BIN)/kubectl wait --for=condition=Established --timeout=60s -f crds/ && \
	$(BIN)/kubectl apply -f deploy/namespace.yaml && \
	$(BIN)/kubectl apply -f examples/ && \
	exec $(BIN)/certmint run -A

bench: tools ## The scale benchmark (N certificates, default 1000); writes bench/results.json
	@$(MAKE) --no-print-directory cluster-up
	$(BIN)/python bench/run.py --n $(N) --kubeconfig "$${CERTMINT_LOCAL_DIR:-$(CURDIR)/.local}/kubeconfig" $(BENCH_ARGS)

clean: cluster-down ## Remove the venv and local state (the binary cache in ~/.cache/certmint stays)
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
