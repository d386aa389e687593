# The README's commands. Each bootstraps what it needs from nothing but python3 + make:
# uv (pinned, from PyPI) into .tools/, the locked environment into .venv/, and a migrated
# SQLite Airflow home in .airflow/. Re-running is quick: every step is stamped.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/example_dags
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(CURDIR)/.airflow/airflow.db
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON_DOWNLOADS := never

# The second environment: Airflow 2.11 and Flyte's Airflow connector, from envs/airflow2's
# lock, with its own Airflow home; it runs the tests marked `airflow` (tests/conftest.py).
VENV2 := .venv-airflow2
AIRFLOW2_HOME := $(CURDIR)/.airflow2
AIRFLOW2_ENV := AIRFLOW_HOME=$(AIRFLOW2_HOME) \
	AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$(AIRFLOW2_HOME)/airflow.db

.PHONY: setup postgresql redis-server chromium demo test lint typecheck docs pytest \
	pytest-airflow2 bench clean protos historic-client

setup: $(VENV)/.synced $(AIRFLOW_HOME)/.migrated

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "armada-hooks needs Python 3.11+ (set PYTHON=...)")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(shell command -v $(PYTHON))
	@touch $@

$(AIRFLOW_HOME)/.migrated: $(VENV)/.synced
	@mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/migrate.log; exit 1)
	@touch $@

$(VENV2)/.synced: $(UV) envs/airflow2/pyproject.toml envs/airflow2/uv.lock pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(VENV2) $(UV) sync --quiet --frozen --project envs/airflow2 \
		--python $(shell command -v $(PYTHON))
	@touch $@

$(AIRFLOW2_HOME)/.migrated: $(VENV2)/.synced
	@mkdir -p $(AIRFLOW2_HOME)
	$(AIRFLOW2_ENV) $(VENV2)/bin/airflow db migrate > $(AIRFLOW2_HOME)/migrate.log 2>&1 \
		|| (cat $(AIRFLOW2_HOME)/migrate.log; exit 1)
	@touch $@

demo: setup
	$(BIN)/armada-hooks demo

# The job service's stubs from armada_hooks/jobservice/protos/*.proto (checked in; a test
# regenerates them into a temporary directory and compares).
protos: $(VENV)/.synced
	$(BIN)/python -m armada_hooks.jobservice.codegen

lint: $(VENV)/.synced
	$(BIN)/ruff check .

typecheck: $(VENV)/.synced
	$(BIN)/mypy

# The user docs (docs/, Sphinx + MyST) into docs/_build/html; any warning fails the build.
# -E: a fresh environment each time, so that no page's warnings hide in a cache.
docs: $(VENV)/.synced
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

# The job service's wire-compatibility test runs armada-airflow 0.5.6's own JobServiceClient
# (grpcio 1.58) in this separate environment: its stubs cannot share a process with ours.
HISTORIC_ENV := .compat/armada-airflow-0.5
HISTORIC_REQUIREMENTS := tests/jobservice/historic-client-requirements.txt

$(HISTORIC_ENV)/.installed: $(UV) $(HISTORIC_REQUIREMENTS)
	$(UV) venv --quiet --allow-existing --python $(shell command -v $(PYTHON)) $(HISTORIC_ENV)
	$(UV) pip install --quiet --no-deps --python $(HISTORIC_ENV)/bin/python -r $(HISTORIC_REQUIREMENTS)
	@touch $@

historic-client: $(HISTORIC_ENV)/.installed


# PostgreSQL for the real-stack tests (tests/stack, armada_hooks.testing.stack): Debian's
# server, installed when no initdb is found (CI runs as root). Debian puts the programs in
# /usr/lib/postgresql/<version>/bin; no main cluster is made: the fixture runs its own.
PG_INITDB := $(wildcard /usr/lib/postgresql/*/bin/initdb)

postgresql:
ifeq ($(PG_INITDB),)
	@[ "$$(id -u)" = 0 ] || { echo "tests/stack needs PostgreSQL: sudo apt-get install -y postgresql"; exit 1; }
	@[ -e /etc/postgresql-common/createcluster.conf ] || { mkdir -p /etc/postgresql-common && \
	  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql > /dev/null
endif


# The job service's Redis tests start Debian's redis-server (127.0.0.1, a free port);
# installed here when missing (CI runs as root).
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }


# The UI tests of tests/stack drive Debian's Chromium headless through Playwright (never
# Playwright's own browser download); installed here when missing (CI runs as root), with
# fonts-liberation, which Chromium only recommends: without a font, screenshots show no text.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		[ "$$(id -u)" = 0 ] || { echo "tests/stack needs Chromium: sudo apt-get install -y chromium"; exit 1; }; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation > /dev/null; }


pytest: setup postgresql redis-server chromium $(HISTORIC_ENV)/.installed
	$(BIN)/pytest

pytest-airflow2: $(AIRFLOW2_HOME)/.migrated
	$(AIRFLOW2_ENV) $(VENV2)/bin/pytest

test: lint typecheck docs pytest pytest-airflow2

# Benchmarks: our env plus matplotlib, and a separate env for Armada's own operator
# (armada-airflow pins Airflow < 3.3, so it cannot share ours).
BENCH_ENV := .bench/armada-airflow

$(VENV)/.bench-synced: $(VENV)/.synced
	$(UV) sync --frozen --group bench
	@touch $@

$(BENCH_ENV)/.installed: $(UV) bench/armada-airflow-requirements.txt
	$(UV) venv --quiet --allow-existing --python $(shell command -v $(PYTHON)) $(BENCH_ENV)
	$(UV) pip install --quiet --python $(BENCH_ENV)/bin/python -r bench/armada-airflow-requirements.txt
	@touch $@

bench: setup $(VENV)/.bench-synced $(BENCH_ENV)/.installed
	$(BIN)/python bench/import_cost.py
	$(BIN)/python bench/local_armada.py
	$(BIN)/python bench/waiting.py
	$(BIN)/python bench/waiting.py --logs
	$(BIN)/python bench/job_service.py

clean:
	rm -rf $(TOOLS) $(VENV) $(VENV2) $(AIRFLOW_HOME) $(AIRFLOW2_HOME) .bench .compat docs/_build \
		.pytest_cache .mypy_cache .ruff_cache
