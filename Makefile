# certmint: everyday commands. `make test` works from a fresh clone on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KUBECONFIG_LOCAL := $(CURDIR)/.local/kubeconfig
N ?= 1000
SOAK_N ?= 200
SOAK_MINUTES ?= 10

.PHONY: help venv deps-upgrade tools prometheus cluster-up cluster-down lint test test-unit run bench soak clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

LOCK := requirements/lock.txt

# The venv installs exactly the locked versions (with hashes) and never resolves; a changed
# lock rebuilds it from scratch so nothing unlocked lingers. See docs/dependencies.md.
$(VENV)/.installed: $(LOCK) pyproject.toml
	@rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

venv: $(VENV)/.installed ## Create .venv from the lock (requirements/lock.txt): certmint, test and bench extras

UV_COMPILE := UV_NATIVE_TLS=1 $(BIN)/uv pip compile --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make deps-upgrade"

deps-upgrade: venv ## Refresh the lock to the newest versions pyproject.toml allows, reinstall, run the unit tests
	$(UV_COMPILE) --upgrade pyproject.toml requirements/tools.in --extra test --extra bench -o $(LOCK)
	$(UV_COMPILE) pyproject.toml --constraint $(LOCK) -o requirements/runtime.txt
	@$(MAKE) --no-print-directory venv
	$(BIN)/pytest -q tests/unit

tools: venv ## Build (first run) or reuse the cached etcd, kube-apiserver, kubectl and helm; link them into .venv/bin
	@dirs="$$(bash hack/build-control-plane.sh; bash hack/build-helm.sh)"; \
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
	$(BIN)/python -m bench.run --n $(N) --kubeconfig "$${CERTMINT_LOCAL_DIR:-$(CURDIR)/.local}/kubeconfig" $(BENCH_ARGS)

soak: tools ## Renew SOAK_N Certificates (default 200) at the 1 m minimum lifetime for SOAK_MINUTES (10); not in `make test`
	@$(MAKE) --no-print-directory cluster-up
	$(BIN)/python -m bench.soak --n $(SOAK_N) --minutes $(SOAK_MINUTES) --kubeconfig "$${CERTMINT_LOCAL_DIR:-$(CURDIR)/.local}/kubeconfig" $(SOAK_ARGS)

clean: cluster-down ## Remove the venv and local state (the binary cache in ~/.cache/certmint stays)
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
