# PE-score — the two README commands (`make demo`, `make test`) do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
# Re-install only when the project's dependency files change.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/constraints.txt requirements/no-deps.txt requirements/delta-jars.txt | md5sum | cut -c1-12)
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed-$(shell cat requirements/airflow.txt requirements/airflow-constraints.txt 2>/dev/null | md5sum | cut -c1-12)
PYTEST_ARGS ?=

export PYSPARK_PYTHON := $(abspath $(VPY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(VPY))
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYTHONUNBUFFERED := 1

.PHONY: install demo lint test test-fast test-slow bench airflow java clean

install: $(STAMP)

java:
	@ver=$$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -n1); \
	if [ -z "$$ver" ] || [ "$$ver" -lt 17 ]; then \
	  echo "error: Spark 4 needs Java 17 or newer (found: $${ver:-none})." >&2; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y openjdk-17-jdk-headless" >&2; \
	  echo "  macOS:         brew install openjdk@17" >&2; \
	  echo "  then make sure 'java -version' prints 17 or newer (or set JAVA_HOME)." >&2; \
	  exit 1; fi

$(STAMP): pyproject.toml requirements/constraints.txt requirements/no-deps.txt requirements/delta-jars.txt | java
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found" >&2; exit 1; }
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel
	$(VPY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	$(VPY) -m pip install -q --no-deps -r requirements/no-deps.txt
	$(VPY) -m models.weights install
	$(VPY) -m jobs.spark install
	rm -f $(VENV)/.installed-*
	touch $@

demo: install
	$(VENV)/bin/pe demo

# pyflakes, import order and unused `# noqa` (ruff; `ruff check --fix .` repairs all three) and types of
# pe_udfs, models and jobs (mypy);
# their settings are in pyproject.toml.
lint: install
	$(VENV)/bin/ruff check .
	$(VPY) -m mypy

# Lint, fast unit tests and the integration suite (real Spark, Delta, MLflow in temp folders).
test: install airflow lint
	$(VPY) -m pytest $(PYTEST_ARGS)

test-fast: install lint
	$(VPY) -m pytest -m "not slow" $(PYTEST_ARGS)

BENCH_LAKE ?= /tmp/pe-bench-lake40

# Benchmarks print measured ratios (not run by CI: they take tens of minutes and want a quiet machine).
bench: install
	$(VPY) bench/lake.py
	$(VPY) bench/per_video.py
	$(VENV)/bin/pe --lake $(BENCH_LAKE) sample --videos 40 --max-seconds 30
	$(VPY) bench/product_accuracy.py --lake $(BENCH_LAKE)
	$(VPY) bench/sample.py
	$(VPY) bench/train.py
	$(VPY) bench/score.py

# Airflow lives in its own virtual environment (it pulls pyspark-client, which would overwrite pyspark).
airflow: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): requirements/airflow.txt requirements/airflow-constraints.txt
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found" >&2; exit 1; }
	@test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip setuptools wheel
	$(AIRFLOW_VENV)/bin/python -m pip install -q -c requirements/airflow-constraints.txt -r requirements/airflow.txt
	rm -f $(AIRFLOW_VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) lake .pytest_cache build *.egg-info
