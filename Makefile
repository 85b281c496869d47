# The two commands a fresh machine needs are `make demo` and `make test`; both
# install what they use (virtualenv, Debian packages, Go-built cluster binaries).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# Every Python package at the version the tests passed with (build tools too).
CONSTRAINTS := $(CURDIR)/constraints.txt
VENV_STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help venv lock deps grpc-stubs cluster-tools cluster-up cluster-down lint test test-unit demo-down \
        test-integration test-e2e demo clean crds e2e-kind images images-stop

help:
	@echo "make demo         the local demo on an embedded cluster (installs what it needs)"
	@echo "make test         lint, then every test tier: unit, integration, e2e"
	@echo "make demo-down    stop the demo's operator and its cluster"
	@echo "make cluster-up   start (or reuse) the local cluster; prints KUBECONFIG=... last"
	@echo "make cluster-down stop it"
	@echo "make images       the operator, model-server, pause and base images for a real node (Docker, cached); prints an env file last"
	@echo "make images-stop  stop the private dockerd make images started (the images stay cached)"
	@echo "make lint         ruff, mypy --strict, import-linter"
	@echo "make crds         generate crds/modeldeployment.yaml from the API models, copy crds/ into the chart"
	@echo "make lock         record the venv's package versions in constraints.txt"
	@echo "make e2e-kind     images + kind + chart: canary, rollback, a 5% split through Envoy Gateway (needs Docker; not run here)"

$(VENV_STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "[venv] installing the project and its dev tools into $(VENV)" >&2
	PIP_CONSTRAINT=$(CONSTRAINTS) $(VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	PIP_CONSTRAINT=$(CONSTRAINTS) $(VENV)/bin/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# After changing dependencies in pyproject.toml: upgrade within its bounds, run the
# tests, then record what they passed with.
lock: venv
	@{ sed -n '1,2p' constraints.txt; $(VENV)/bin/pip freeze --all --exclude-editable; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt && echo "constraints.txt: $$(grep -c '==' constraints.txt) packages"

venv: $(VENV_STAMP)

deps:
	@bash scripts/install-debian-deps.sh

cluster-tools:
	@bash tools/cluster/build.sh >/dev/null

# stdout is the env file's path alone (OPERATOR_IMAGE, MODELSERVER_IMAGE, their _TARs, PAUSE_IMAGE, ...).
images: deps
	@bash tools/images/build.sh

images-stop:
	@bash tools/images/build.sh --stop-daemon

cluster-up: venv cluster-tools
	@$(PY) -m modelrollout.devenv.cluster up

cluster-down: venv
	@$(PY) -m modelrollout.devenv.cluster down

# The Open Inference Protocol's gRPC stubs, generated from the committed .proto; a unit
# test (tests/unit/test_grpc_stubs.py) fails while the committed files are stale.
grpc-stubs: venv
	@$(PY) -m modelserver.grpc.generate

lint: venv
	$(VENV)/bin/ruff check operator tests benchmarks docker tools scripts
	$(VENV)/bin/ruff format --check operator tests benchmarks docker tools scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: venv deps cluster-tools lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

test-integration: venv deps cluster-tools
	$(VENV)/bin/pytest -m integration $(PYTEST_ARGS)

test-e2e: venv deps cluster-tools
	$(VENV)/bin/pytest -m e2e $(PYTEST_ARGS)

demo: venv deps cluster-tools
	@$(PY) -m modelrollout.devenv.demo

demo-down: venv
	@$(PY) -m modelrollout.devenv.demo down

# The ModelDeployment CRD is generated from the pydantic models in
# operator/modelrollout/api/; a unit test fails while the files on disk are stale.
crds: venv
	@$(PY) -m modelrollout.devenv.crds

# Needs Docker, kind, kubectl and helm; this development machine has no Docker engine.
e2e-kind:
	@bash scripts/e2e-kind.sh

clean:
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache
