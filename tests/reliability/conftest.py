"""Fixtures of the reliability tests: a loopback OpenAI-compatible server and the API key the faults watch for."""

import pytest

from tests.llm.loopback import LoopbackLLM
from tests.reliability.faults import KEY_ENV, SECRET


@pytest.fixture
def server():
    pytest.importorskip("openai")  # the client under test is the real SDK (extra "llm")
    with LoopbackLLM() as srv:
        yield srv


@pytest.fixture
def secret_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET
