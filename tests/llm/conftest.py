"""Fixtures of the LLM tests: the loopback server, a toy instruction follower, a recording sleep."""

import pytest

from mcbo.llm.tasks import load_task
from tests.llm.loopback import LoopbackLLM, ToyFollower

#: Candidate instructions for the first-letter task: the toy follower's skill is the share of
#: {"first", "letter"} each contains (1, 1/2 or 0).
ADJECTIVES = ["first", "last", "second", "initial", "final", "middle"]
NOUNS = ["letter", "character", "word", "symbol", "vowel"]
VERBS = ["Write", "Give", "Return", "Name", "Output"]
FIRST_LETTER_POOL = [f"{v} the {a} {n} of the input." for v in VERBS for a in ADJECTIVES for n in NOUNS]


@pytest.fixture
def first_letter():
    return load_task("first_letter")


@pytest.fixture
def follower(first_letter):
    return ToyFollower(first_letter, keywords=["first", "letter"], instructions=FIRST_LETTER_POOL)


@pytest.fixture
def server(follower):
    pytest.importorskip("openai")  # the client under test is the real SDK (extra "llm")
    with LoopbackLLM(follower) as srv:
        yield srv


@pytest.fixture
def no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


class SleepRecorder:
    """Stands in for ``time.sleep``: records the requested waits, returns at once."""

    def __init__(self):
        self.calls = []

    def __call__(self, seconds):
        self.calls.append(seconds)


@pytest.fixture
def sleeps():
    return SleepRecorder()
