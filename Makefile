# MedFusion — the two set-up commands are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
HOST   ?= 127.0.0.1
PORT   ?= 8000
export MEDFUSION_SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: install install-dev run test bench lint clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "需要 Python 3.11 ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs only when the project metadata changed (idempotent, quick otherwise).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

run: install
	$(BIN)/medfusion db upgrade
	$(BIN)/medfusion demo seed
	$(BIN)/medfusion serve --host $(HOST) --port $(PORT)

test: install-dev
	$(BIN)/python -m pytest -n 2 --dist loadfile

BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): pyproject.toml $(DEV_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $@

# Long measurements live here, never in `make test`. Set MEDFUSION_TEST_PG_URL to include PostgreSQL.
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
