# The two commands a new user runs:
#   make demo   set up .venv and run three researches on the embedded instance
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COUNT ?= 3
SEED ?= 1
# The pinned distributions the bundled data was built from (the provenance tests read them).
SAMPLE_SOURCES := .cache/sample-sources

.PHONY: setup lock check-lock demo test test-integration test-docker ui lint check-defs bench \
	clean-instance

LOCK := requirements.lock
locked = $$(grep -E '^$(1)==' $(LOCK))

# Exactly the versions in requirements.lock: a new upstream release never changes an install.
# The project itself goes in without build isolation, so its build backend is the locked one too.
$(BIN)/research: pyproject.toml $(LOCK)
	$(PYTHON) scripts/lock.py --check
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(call locked,pip)"
	# torch first: its CPU build is a local file here (pip prefers it for torch==2.13.0); without
	# that file pip takes PyPI's default build of the same version.
	$(BIN)/pip install --quiet -c $(LOCK) "$(call locked,torch)"
	$(BIN)/pip install --quiet -r $(LOCK)
	# (setuptools warns that every editable install is one: not news here)
	PYTHONWARNINGS=ignore $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(BIN)/research

setup: $(BIN)/research

# Regenerate requirements.lock after changing pyproject.toml's dependencies (UPGRADE=1 moves every
# package to its newest allowed release). Needs only the locked pip and pip-tools.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c $(LOCK) pip pip-tools
	$(BIN)/python scripts/lock.py $(if $(UPGRADE),--upgrade)

check-lock:
	$(PYTHON) scripts/lock.py --check

demo: setup
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/research run --count $(COUNT) --seed $(SEED)

# Every test, the integration suites included (a real dagster-daemon, code server, webserver and
# Chromium on SQLite and Postgres). Four workers: those suites mostly wait on their processes.
# ruff and `dg check defs` first: a lint error or definitions that do not load stop it early.
test: check-lock setup lint check-defs
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_system_packages.sh
	bash scripts/ensure_docker.sh
	bash scripts/ensure_sample_sources.sh $(BIN)/python $(SAMPLE_SOURCES)
	SAMPLE_DATA_DOWNLOAD_DIR=$(CURDIR)/$(SAMPLE_SOURCES) $(BIN)/pytest -n 4

# Only the integration suites.
test-integration: setup
	bash scripts/ensure_postgres.sh
	bash scripts/ensure_system_packages.sh
	$(BIN)/pytest -n 4 -m integration tests/integration tests/topology

# Only the compose stack on a Docker engine (started here when root can: scripts/ensure_docker.sh);
# the images are built without a registry (scripts/build_images.sh, cached).
test-docker: setup
	bash scripts/ensure_docker.sh
	$(BIN)/pytest -m docker tests/deploy

# The webserver and the daemon on the embedded instance, through Dagster's `dg` CLI (the project
# is configured under [tool.dg] in pyproject.toml).
ui: setup
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/dg dev

lint: setup
	$(BIN)/ruff check research_assets tests benchmarks scripts
	$(BIN)/ruff format --check research_assets tests benchmarks scripts

# Loads the definitions as Dagster does (`dg check defs`, offline); exits 1 when they do not load.
check-defs: setup
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/dg check defs

bench: setup
	$(BIN)/python benchmarks/backtest_engines.py --json

clean-instance:
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
