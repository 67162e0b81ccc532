# Chairside: `make demo` and `make test` work on a fresh clone (they install what they need).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/var/dagster
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install browser demo test lint format ui dbt-docs bench clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements.lock -e '.[dev]'
	touch $@

install: $(INSTALLED)

## Chromium for the report's browser test: the Debian package (playwright never downloads one).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

$(DAGSTER_HOME)/dagster.yaml: orchestration/dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp $< $@

## Start the simulator, run the whole pipeline through Dagster, print counts, timings, paths.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m chairside.demo

## Lint, then the whole test suite (real HTTP on loopback, real DuckDB files, real dbt runs).
test: install browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## The Dagster UI with the Open Dental simulator running (Ctrl-C stops both).
ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python -m chairside.ui

dbt-docs: install
	cd dbt_project && ../$(BIN)/dbt docs generate --profiles-dir . && ../$(BIN)/dbt docs serve --profiles-dir .

bench: install
	$(BIN)/python benchmarks/bench_world.py
	$(BIN)/python benchmarks/bench_identity.py
	$(BIN)/python benchmarks/bench_qbo_writeback.py

clean:
	rm -rf var dbt_project/target dbt_project/logs .pytest_cache
