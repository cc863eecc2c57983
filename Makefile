# The README's two commands: `make demo` and `make test`. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format bench mnist clean

setup: $(STAMP)

# torch first, pinned: the CPU build on disk here. Installing the project before torch would
# make pip fetch the newest CUDA build (several GB).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The demo sweep: digits, mlp, 3 strategies x 5 sparsities, seed 0; prints the Pareto table.
demo: setup
	$(BIN)/sweeplab run -m experiment=demo
	$(BIN)/sweeplab table --where experiment=demo

test: setup
	$(BIN)/ruff check sweeplab hydra_plugins tests bench
	$(BIN)/ruff format --check sweeplab hydra_plugins tests bench
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check sweeplab hydra_plugins tests bench
	$(BIN)/ruff format --check sweeplab hydra_plugins tests bench

format:
	$(BIN)/ruff format sweeplab hydra_plugins tests bench
	$(BIN)/ruff check --fix sweeplab hydra_plugins tests bench

bench: setup
	$(BIN)/python bench/throughput.py

clean:
	rm -rf results/runs results/cache results/hydra results/logs
