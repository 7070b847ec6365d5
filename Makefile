# One command runs the product, one command passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Exact versions of every dependency; `make lock` regenerates it.
LOCK   := constraints.txt

.PHONY: run test test-fast lint format clean system-deps lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## Start the dashboard against the built-in demo AIRisk API.
	$(BIN)/airisk-viewer demo

system-deps:  ## Install Chromium and redis-server when missing (needs root).
	scripts/system-deps.sh

test: $(STAMP) system-deps  ## Run the whole test suite (browser and Redis tests included).
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

lock:  ## Re-resolve dependencies to the newest allowed releases into constraints.txt.
	PYTHON=$(PYTHON) scripts/lock.sh

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
