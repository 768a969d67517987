# Trellis: `make demo` runs the main job on embedded defaults; `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HARNESS := tests/backstage
MODULE  := backend/plugin-scaffolder-backend-module-trellis
PROVIDER := backend/plugin-catalog-backend-module-trellis
BROWSER := tests/browser

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.DEFAULT_GOAL := help
.PHONY: help demo test test-busy lint typecheck unit contract browser bench docs clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[demo]'
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# checkov pins old versions of shared libraries, so it lives in a virtualenv of its own.
CHECKOV_VENV ?= .venv-checkov
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov>=3.2,<4'
	@touch $@

$(HARNESS)/node_modules/.installed: $(HARNESS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm (with Node.js 20+) is needed for the Backstage test harness: apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix $(HARNESS) --no-audit --no-fund --loglevel=error
	@touch $@

# The scaffolder module compiles with the harness's TypeScript and Backstage packages; the
# tests load its dist/ into the test backend. Rebuilt when a source or tsconfig changes.
$(MODULE)/dist/index.js: $(shell find $(MODULE)/src -name '*.ts') $(MODULE)/tsconfig.json $(HARNESS)/tsconfig.module.json $(HARNESS)/node_modules/.installed
	npm run build-module --prefix $(HARNESS) --silent
	@touch $@

# The catalog entity provider compiles the same way.
$(PROVIDER)/dist/index.js: $(shell find $(PROVIDER)/src -name '*.ts') $(PROVIDER)/tsconfig.json $(HARNESS)/tsconfig.provider.json $(HARNESS)/node_modules/.installed
	npm run build-provider --prefix $(HARNESS) --silent
	@touch $@

# The browser test's app (new frontend system, the stock catalog, scaffolder, TechDocs and
# Kubernetes plugins, Trellis's frontend plugin)
# and playwright-core; Chromium is Debian's.
$(BROWSER)/node_modules/.installed: $(BROWSER)/package-lock.json
	@command -v npm >/dev/null || { echo "npm (with Node.js 20+) is needed for the browser test: apt-get install nodejs npm" >&2; exit 1; }
	npm ci --prefix $(BROWSER) --no-audit --no-fund --loglevel=error
	@touch $@

demo: $(VENV)/.demo ## Train demo models into an embedded registry and serve them to Backstage
	$(BIN)/trellis demo

lint: $(VENV)/.test ## ruff, formatting, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.test ## mypy --strict over the package
	$(BIN)/mypy

unit: $(VENV)/.test ## tests/unit: Python only, no process or network, under a minute
	$(BIN)/pytest tests/unit

# What a test starts is its marker (pyproject.toml); these are the contracts with real services.
contract: $(VENV)/.test $(HARNESS)/node_modules/.installed $(MODULE)/dist/index.js $(PROVIDER)/dist/index.js ## Only the tests that start a real service (by marker)
	$(BIN)/pytest $(XDIST) -m "mlflow or prometheus or backstage or postgres or kube_replay"

# One worker per core and one more, each taking whole test files (a module's services start
# once, on one worker). The extra worker runs while the others wait on a service to start or
# answer: on 2 cores the suite took 544 s with 3 workers against 609 s with 2.
XDIST := -n $(shell echo $$(( $$(nproc) + 1 ))) --dist loadfile

test: $(VENV)/.test $(CHECKOV_VENV)/.installed $(HARNESS)/node_modules/.installed $(MODULE)/dist/index.js $(PROVIDER)/dist/index.js lint typecheck ## Install what the tests need and run them all
	$(BIN)/pytest $(XDIST)

browser: $(VENV)/.test $(HARNESS)/node_modules/.installed $(MODULE)/dist/index.js $(PROVIDER)/dist/index.js $(BROWSER)/node_modules/.installed ## A real Backstage app in headless Chromium; writes docs/images/ screenshots
	@test -x /usr/lib/chromium/chromium || { echo "Chromium is needed: apt-get install -y --no-install-recommends chromium" >&2; exit 1; }
	npm run typecheck --prefix $(BROWSER) --silent
	TRELLIS_BROWSER=1 $(BIN)/pytest -p no:cacheprovider $(BROWSER)

test-busy: ## The whole suite twice in a row beside two CPU hogs (deadlines must hold)
	scripts/busy-machine --hogs 2 --runs 2 -- $(MAKE) test

bench: $(VENV)/.test ## Catalog benchmark on 10,000 models (JSON on stdout)
	$(BIN)/python benchmarks/catalog.py

docs: $(VENV)/.test ## Build the TechDocs site into site/
	$(BIN)/mkdocs build --strict

clean: ## Remove the virtualenv, caches and local state
	rm -rf $(VENV) $(CHECKOV_VENV) .trellis site .pytest_cache .mypy_cache .ruff_cache $(HARNESS)/node_modules $(MODULE)/dist $(PROVIDER)/dist $(BROWSER)/node_modules frontend/plugin-trellis/node_modules
