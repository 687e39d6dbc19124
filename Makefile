# Quick start:  make run   (the main job)   ·   make test   (the whole test suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## the main job: a durable human-in-the-loop workflow on the embedded SQLite default
	$(BIN)/python examples/approval.py --db tether.sqlite

test: $(STAMP)  ## lint, type-check the core, run every test (starts a throwaway PostgreSQL server)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-sandbox.sh
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src

bench:  ## Tether vs LangGraph, measured in one run (installs LangGraph into .bench-venv)
	bash benchmarks/run.sh

clean:
	rm -rf $(VENV) .bench-venv tether.sqlite tether.sqlite-wal tether.sqlite-shm
