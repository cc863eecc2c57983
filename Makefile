# The README's two commands: `make demo` and `make test`. Both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format bench mnist clean docs/report.png

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

# In CI the report's end-to-end test needs headless Chromium (Debian's package); where apt is
# unavailable the install is skipped and that test skips with its reason.
test: setup
	$(BIN)/ruff check sweeplab hydra_plugins tests bench
	$(BIN)/ruff format --check sweeplab hydra_plugins tests bench
	@if [ "$$CI" = "true" ] && ! command -v chromium >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			>/dev/null 2>&1 || echo "chromium not installed: the report browser test will skip"; \
	fi
	$(BIN)/python -m pytest -q -n auto --dist worksteal

lint:
	$(BIN)/ruff check sweeplab hydra_plugins tests bench
	$(BIN)/ruff format --check sweeplab hydra_plugins tests bench

format:
	$(BIN)/ruff format sweeplab hydra_plugins tests bench
	$(BIN)/ruff check --fix sweeplab hydra_plugins tests bench

bench: setup
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/table_speed.py

# The README's screenshot of the report: drawn by the dashboard's headless-Chromium test, from
# DOCS_RESULTS (a real results dir: `make docs/report.png DOCS_RESULTS=/tmp/mixed`) or, when
# empty, from the test's own folder of made-up metrics.
DOCS_RESULTS ?=
docs/report.png: setup
	SWEEPLAB_DOCS_SCREENSHOT=$@ SWEEPLAB_DOCS_RESULTS=$(DOCS_RESULTS) $(BIN)/python -m pytest -q tests/test_dashboard.py -k screenshot

clean:
	rm -rf results/runs results/cache results/hydra results/logs results/runs.index.json
