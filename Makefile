# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEQ := $(BIN)/sequencer
DEMO_DB := .sequencer/demo.duckdb
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup demo test test-fast lint check-defs mutate bench bench-quick dev clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m pipelines.demo.run --project . --db $(DEMO_DB)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# What `dg check defs` checks (the dg CLI is not a dependency): the code location loads and
# validates, against the instance of dagster.yaml.
check-defs: $(STAMP)
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

test: $(STAMP) lint check-defs
	$(BIN)/pytest --doctest-modules pipelines tests

test-fast: $(STAMP)
	$(BIN)/pytest --doctest-modules pipelines tests -m "not slow" -x -q

# Mutation run (docs/testing.md): measures the tests, not part of `make test`; about 30 minutes.
# Last line: `mutants: K killed of N (P%)`; every verdict in .mutation/summary.json.
MUTATE_BUDGET ?= 1800
mutate: $(STAMP)
	$(BIN)/python -m tests.mutation.run --budget-seconds $(MUTATE_BUDGET)

# The issues' scale: 1e6 contacts, 1e7 activities, 50 sequences, 200 vs 10 (about 40 minutes).
bench: $(STAMP)
	$(BIN)/python bench/ingest_bench.py --contacts 1000000 --activities 10000000
	$(BIN)/python bench/tick_bench.py --contacts 1000000 --sequences 50 --compare 10,200
	$(BIN)/python bench/esp_bench.py --events 1000000 --sends 200000

# The same measurements at 1e5 contacts, in a few minutes.
bench-quick: $(STAMP)
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/tick_bench.py
	$(BIN)/python bench/serve_bench.py --requests 3000
	$(BIN)/python bench/esp_bench.py --events 100000 --sends 20000

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	SEQUENCER_PROJECT=$(CURDIR) SEQUENCER_DB=$(CURDIR)/$(DEMO_DB) $(BIN)/dagster dev -m pipelines.definitions

clean:
	rm -rf .sequencer .dagster_home imports .pytest_cache mutants .mutation
