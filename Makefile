# The two commands of the README. Each sets up .venv from this repository's own files, so a fresh machine needs
# nothing but python3 and the package registry.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONSTRAINTS := .ci/constraints.txt
INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS)
# Test files run in parallel, one pytest worker per core (pytest-xdist); a file's tests stay on one worker, so a
# module's costly fixture (a trained run, a wheel bundle) is built once. WORKERS=1 runs them one after another.
WORKERS ?= auto
PYTEST := -n $(WORKERS) --dist loadfile

.PHONY: train test test-main test-fast test-tf219 lint typecheck benchmark clean

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

## make test: set up and run every test (the slow end-to-end ones too), ruff and mypy, and the TPU-stack subset.
# The subset runs beside the main suite, so it fills the cores whenever the main suite's workers leave one idle;
# each one's output is shown whole when it ends.
test: $(VENV)/.test-installed lint typecheck
	$(MAKE) --no-print-directory -j2 --output-sync=target test-main test-tf219

test-main: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST) $(PYTEST_ARGS)

# The code that runs on a TPU is the code tested: tensorflow-tpu 2.19.1 is TensorFlow's last TPU build, so a fast
# subset (the tests of config, distribute, data, the loop and resume not marked slow, and the v5e-8 rehearsal) also
# runs under tensorflow-cpu 2.19.1, in its own environment inside $(VENV) (removed with it). Nothing in tfkit may need
# a newer TensorFlow than that.
TF219 := $(VENV)/tf219
TF219_TESTS ?= tests/test_config_loader.py tests/test_config_checks.py tests/test_distribute.py tests/test_data.py \
	tests/test_loop.py tests/scenarios/test_resume.py
TF219_REHEARSAL := tests/test_kaggle.py::test_the_cpu_rehearsal_in_the_configs_comments_runs_with_8_replicas

$(TF219)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(TF219)
	$(TF219)/bin/python -m pip install --quiet --disable-pip-version-check -e . 'tensorflow-cpu==2.19.1' \
		'pytest>=8' nbformat nbclient
	touch $@

## make test-tf219: the subset under tensorflow-cpu 2.19.1 alone.
test-tf219: $(TF219)/.installed
	$(TF219)/bin/python -m pytest -p no:cacheprovider -m "not slow" $(TF219_TESTS)
	$(TF219)/bin/python -m pytest -p no:cacheprovider $(TF219_REHEARSAL)

## make test-fast: the same without the tests marked slow.
test-fast: $(VENV)/.test-installed lint typecheck
	$(BIN)/python -m pytest $(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(BIN)/ruff check tfkit tests benchmarks tfrecords
	$(BIN)/ruff format --check tfkit tests benchmarks tfrecords

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy tfkit

benchmark: $(VENV)/.test-installed
	$(BIN)/python benchmarks/loop_vs_fit.py

clean:
	rm -rf $(VENV) build dist *.egg-info runs
