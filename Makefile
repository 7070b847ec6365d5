# One command runs the product, one command passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exact versions of every dependency; `make lock` regenerates it.
LOCK   := constraints.txt

.PHONY: run test test-fast lint format clean system-deps lock oidc-deps
# The demo OpenID Connect provider (oidc-provider on Node.js), from its lockfile.
OIDC_STAMP := oidc/node_modules/.package-lock.json

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## Start the dashboard against the built-in demo AIRisk API.
	$(BIN)/airisk-viewer demo

system-deps:  ## Install Chromium, redis-server and Node.js when missing (needs root).
	scripts/system-deps.sh

# npm ci installs exactly what oidc/package-lock.json pins, and refuses a
# lockfile that does not match package.json.
$(OIDC_STAMP): oidc/package.json oidc/package-lock.json
	cd oidc && npm ci --no-audit --no-fund
	touch $(OIDC_STAMP)

oidc-deps: system-deps $(OIDC_STAMP)  ## Install the demo identity provider (npm ci in oidc/).

test: $(STAMP) system-deps $(OIDC_STAMP)  ## Run the whole test suite (browser, Redis and SSO tests included).
	$(BIN)/python -m pytest

test-fast: $(STAMP)  ## The unit tier: no browser, no real servers (under a minute).
	$(BIN)/python -m pytest -m "not slow and not browser"

lint: $(STAMP)  ## ruff (check + format --check), mypy, and pip-audit.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pip-audit --skip-editable --progress-spinner off

.PHONY: screenshots
screenshots: $(STAMP)  ## Regenerate docs/screenshots/ with Debian's Chromium.
	$(BIN)/python scripts/screenshots.py

.PHONY: bench
bench: $(STAMP)  ## Run the benchmark suite (about 11 min; BENCH_ARGS=--quick for seconds).
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.trail

lock:  ## Re-resolve dependencies to the newest allowed releases into constraints.txt.
	PYTHON=$(PYTHON) scripts/lock.sh

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -rf oidc/node_modules
