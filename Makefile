# The two commands a new user runs:
#   make demo   set up .venv and run three researches on the embedded instance
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COUNT ?= 3
SEED ?= 1

.PHONY: setup demo test test-integration ui lint bench clean-instance

$(BIN)/research: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: its CPU build is a local file here; anything else pulls CUDA.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/research

setup: $(BIN)/research

demo: setup
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/research run --count $(COUNT) --seed $(SEED)

# Every test, the integration suites included (a real dagster-daemon, code server, webserver and
# Chromium on SQLite and Postgres). Four workers: those suites mostly wait on their processes.
test: setup
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_system_packages.sh
	$(BIN)/pytest -n 4

# Only the integration suites.
test-integration: setup
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_system_packages.sh
	$(BIN)/pytest -n 4 -m integration tests/integration tests/topology

ui: setup
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/dagster dev -w workspace.yaml

lint: setup
	$(BIN)/ruff check research_assets tests benchmarks scripts

bench: setup
	$(BIN)/python benchmarks/backtest_engines.py --json

clean-instance:
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
