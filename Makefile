# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow clean

venv: $(STAMP)

# torch is pinned first so that pip takes the local CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

demo: venv
	$(PY) -m mcbo.cli demo

test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test-slow: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) results build *.egg-info
