# The two commands of the README. Each sets up .venv from this repository's own files, so a fresh machine needs
# nothing but python3 and the package registry.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := .ci/constraints.txt
INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS)

.PHONY: train test test-fast lint typecheck benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall only when the package's declared dependencies change.
$(VENV)/.cpu-installed: setup.cfg pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(INSTALL) -e '.[cpu]'
	touch $@

$(VENV)/.test-installed: setup.cfg pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(INSTALL) -e '.[cpu,test]'
	touch $@ $(VENV)/.cpu-installed

## make train: set up and train the embedded default (digits CNN on CPU). ARGS="--cpu_replicas 2" passes flags.
train: $(VENV)/.cpu-installed
	$(BIN)/python -m tfkit.train $(ARGS)

## make test: set up and run every test (the slow end-to-end ones too), ruff and mypy.
test: $(VENV)/.test-installed lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: the same without the tests marked slow.
test-fast: $(VENV)/.test-installed lint typecheck
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check tfkit tests benchmarks tfrecords
	$(BIN)/ruff format --check tfkit tests benchmarks tfrecords

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy tfkit

benchmark: $(VENV)/.test-installed
	$(BIN)/python benchmarks/loop_vs_fit.py

clean:
	rm -rf $(VENV) build dist *.egg-info runs
