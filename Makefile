# Every target works on a fresh machine with Python 3.11+: the first one that needs the virtual
# environment creates it (or uses the one that is active) and installs the package with its extras.
PYTHON ?= python3
VENV ?= .venv
ifdef VIRTUAL_ENV
BIN := $(VIRTUAL_ENV)/bin
else
BIN := $(VENV)/bin
endif
PY := $(BIN)/python
STAMP := $(BIN)/.vertex-loadtest-installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help demo test lint bench compile docs dist locks clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(STAMP) ## rehearse the reference pipeline locally, end to end (no cloud account)
	$(BIN)/vertex-loadtest demo $(DEMO_ARGS)

test: $(STAMP) lint ## install, lint and run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check components tests benchmarks scripts
	$(BIN)/ruff format --check components tests benchmarks scripts
	$(BIN)/mypy

bench: $(STAMP) ## run the benchmarks; tables under benchmarks/results/ (installs nginx and wrk if missing)
	@command -v nginx >/dev/null && command -v wrk >/dev/null || { \
		echo "make bench: installing nginx-light and wrk (Debian packages) for the throughput targets"; \
		apt-get install -y -q nginx-light wrk || sudo apt-get install -y -q nginx-light wrk; }
	$(PY) -m benchmarks $(BENCH)

compile: $(STAMP) ## regenerate every component.yaml and the pipeline template
	$(BIN)/vertex-loadtest compile

docs: $(STAMP) ## build the documentation site into site/ (component pages generated from the specs)
	$(BIN)/mkdocs build --strict

dist: $(STAMP) ## build the sdist and the wheel into dist/ as a release does (the images install that wheel)
	$(PY) -m scripts.images dist

locks: $(STAMP) ## regenerate the images' hash-pinned lock files under containers/ (needs the package index)
	$(PY) -m scripts.images locks

clean: ## remove the virtual environment and build leftovers
	rm -rf $(VENV) build dist *.egg-info components/*.egg-info .pytest_cache .mypy_cache .ruff_cache
