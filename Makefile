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

.PHONY: setup postgresql demo test lint typecheck docs pytest bench clean

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

demo: setup
	$(BIN)/armada-hooks demo

lint: $(VENV)/.synced
	$(BIN)/ruff check .

typecheck: $(VENV)/.synced
	$(BIN)/mypy

# The user docs (docs/, Sphinx + MyST) into docs/_build/html; any warning fails the build.
# -E: a fresh environment each time, so that no page's warnings hide in a cache.
docs: $(VENV)/.synced
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html

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

pytest: setup postgresql
	$(BIN)/pytest

test: lint typecheck docs pytest

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

clean:
	rm -rf $(TOOLS) $(VENV) $(AIRFLOW_HOME) .bench docs/_build .pytest_cache .mypy_cache .ruff_cache
