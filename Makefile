# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv tools demo test test-slow clean

venv: $(STAMP)

# torch is pinned first so that pip takes the local CPU wheel instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[all]'
	touch $(STAMP)

# External tools some tasks need (logic synthesis runs Debian's berkeley-abc); installed when root.
tools:
	@command -v berkeley-abc >/dev/null 2>&1 || command -v abc >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq berkeley-abc >/dev/null; \
	    else echo "note: berkeley-abc not found; logic-synthesis tests will skip (sudo apt-get install berkeley-abc)"; fi; }

demo: venv
	$(PY) -m mcbo.cli demo

test: venv tools
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

test-slow: venv tools
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) results build *.egg-info
