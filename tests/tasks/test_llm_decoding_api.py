"""The ``llm_decoding_api`` task against the loopback OpenAI-compatible server (no model needed)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("openai")  # the task's client is the real SDK (extra "llm")

from mcbo.llm.budget import Budget  # noqa: E402
from mcbo.llm.cache import LLMCache  # noqa: E402
from mcbo.llm.client import LLMClient  # noqa: E402
from mcbo.tasks.base import TASKS, build_task  # noqa: E402
from mcbo.tasks.llm_decoding_api import (  # noqa: E402
    DEFAULT_CONFIG,
    SHIPPED_DATASETS,
    LLMDecodingAPI,
    Sample,
    extract_answer,
    load_dataset,
)
from tests.llm.loopback import LoopbackLLM, toy_logprobs, unit_hash  # noqa: E402

_INPUT = re.compile(r"Input: (?P<input>.*)$", re.DOTALL)


class PluralFollower:
    """Answers the plural data set: right when the prompt carries a system prompt or a worked example;
    without either it is right only when a seeded coin says so (and then rambles before the answer)."""

    def __init__(self) -> None:
        data = load_dataset("plural")
        self.answers = {r.input: r.outputs[0] for r in data.demos + data.questions}

    def __call__(self, body: dict) -> str:
        messages = body["messages"]
        word = _INPUT.search(messages[-1]["content"])["input"]
        helped = messages[0]["role"] == "system" or any(m["role"] == "assistant" for m in messages)
        if helped:
            return self.answers.get(word, "?")
        coin = unit_hash(word, body.get("seed"), body.get("temperature"))
        return self.answers.get(word, "?") if coin < 0.3 else f"The plural of {word} is {word}s, I think."


@pytest.fixture
def server():
    with LoopbackLLM(PluralFollower()) as srv:
        yield srv


def make(server, **kwargs) -> LLMDecodingAPI:
    kwargs.setdefault("n_questions", 6)
    return build_task("llm_decoding_api", base_url=server.base_url, model="toy", dataset="plural", **kwargs)


def test_registered_and_space():
    assert TASKS["llm_decoding_api"] is LLMDecodingAPI
    task = LLMDecodingAPI(base_url="http://127.0.0.1:9/v1", max_samples=3, max_shots=2)
    assert task.space.names == ["temperature", "top_p", "max_tokens", "n_samples", "selector", "system_prompt",
                                "n_shots"]
    task.space.validate(DEFAULT_CONFIG)
    assert task.space.validate({**DEFAULT_CONFIG, "n_samples": 3, "n_shots": 2})["n_samples"] == 3
    no_lp = LLMDecodingAPI(base_url="http://127.0.0.1:9/v1", logprobs=False)
    assert "max_logprob" not in no_lp.space.params[no_lp.space.names.index("selector")].categories


@pytest.mark.parametrize("kwargs, message", [
    ({}, "'base_url': required"),
    ({"base_url": "http://127.0.0.1:9/v1", "dataset": "nope"}, "'dataset': invalid value 'nope'"),
    ({"base_url": "http://127.0.0.1:9/v1", "n_questions": 0}, "'n_questions': invalid value 0"),
    ({"base_url": "http://127.0.0.1:9/v1", "n_questions": 25}, "'n_questions': invalid value 25"),
    ({"base_url": "http://127.0.0.1:9/v1", "price_per_token": -1}, "'price_per_token'"),
    ({"base_url": "http://127.0.0.1:9/v1", "max_samples": 1}, "'max_samples'"),
    ({"base_url": "http://127.0.0.1:9/v1", "scorer": "fuzzy"}, "'scorer': invalid value 'fuzzy'"),
    ({"base_url": "http://127.0.0.1:9/v1", "stop": "\n"}, "'stop'"),
    ({"base_url": "http://127.0.0.1:9/v1", "client": object()}, "'client'"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        LLMDecodingAPI(**kwargs)


def test_user_jsonl_needs_scorer_and_instruction(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"input": f"{a} * 2", "output": str(2 * a)}) for a in range(8)) + "\n")
    with pytest.raises(ValueError, match="needs 'scorer'"):
        load_dataset(path)
    data = load_dataset(path, scorer="numeric", instruction="Double it.", max_shots=3)
    assert len(data.demos) == 3 and len(data.questions) == 5  # no "demo" records: the first max_shots are
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "x", "outputs": ["two"]}\n' * 6)
    with pytest.raises(ValueError, match=r"bad.jsonl:1: the numeric scorer needs numbers"):
        load_dataset(bad, scorer="numeric", instruction="Count.")
    bad.write_text('{"input": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: expected"):
        load_dataset(bad, scorer="exact", instruction="Count.")


def test_shipped_datasets_load():
    for name in SHIPPED_DATASETS:
        data = load_dataset(name)
        assert len(data.demos) >= 4 and len(data.questions) >= 20


@pytest.mark.parametrize("scorer, answer, outputs, correct", [
    ("exact", "cats", ["cats"], True),
    ("exact", "Cats", ["cats"], False),
    ("normalized", "The Cats", ["cats"], True),
    ("regex", "colour", ["colou?r"], True),
    ("regex", "colours", ["colou?r"], False),
    ("numeric", "The answer is 7.0", ["7"], True),
    ("numeric", "8", ["7"], False),
])
def test_scorers(tmp_path, scorer, answer, outputs, correct):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"input": str(i), "outputs": outputs}) + "\n" for i in range(6)))
    task = LLMDecodingAPI(base_url="http://127.0.0.1:9/v1", dataset=str(path), scorer=scorer, instruction="Do it.",
                          max_shots=1, n_questions=1)
    assert task._scorer.correct(extract_answer(answer), outputs) is correct


def test_extract_answer():
    assert extract_answer("\n  Answer: \"Paris\".\nBecause ...") == "Paris"
    assert extract_answer("") == ""


def test_messages_hold_system_prompt_and_shots(server):
    task = make(server)
    messages = task.messages(task.questions[0], "concise", 2)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == "dogs" and messages[-1]["content"].endswith("Input: cat")
    assert [m["role"] for m in task.messages(task.questions[0], "none", 0)] == ["user"]


def test_evaluation_sends_decoding_fields_and_scores(server):
    task = make(server)
    good = {**DEFAULT_CONFIG, "system_prompt": "concise", "temperature": 0.7, "top_p": 0.9, "max_tokens": 8,
            "n_samples": 2}
    result = task.run(good)
    assert result.accuracy == 1.0
    assert result.calls == 12 and len(server.requests) == 12
    body = server.requests[0]["body"]
    assert body["top_p"] == 0.9 and body["max_tokens"] == 8 and body["logprobs"] is True
    assert body["stop"] == ["\n"] and body["temperature"] == 0.7
    assert sorted({r["body"]["seed"] for r in server.requests}) == [0, 1]  # sample j is sent seed*1000 + j
    prompt_tokens = sum(len(m["content"].split()) + 4 for m in body["messages"])
    assert result.tokens_per_question == pytest.approx(2 * (prompt_tokens + 1))  # 1 completion token per sample
    assert result.objective == pytest.approx(-(1.0 - 1e-4 * result.tokens_per_question))
    bad = task.run({**good, "system_prompt": "none"})
    assert bad.accuracy < 1.0


def test_repeated_evaluation_is_reproducible_and_cached(server):
    task = make(server)
    point = {**DEFAULT_CONFIG, "temperature": 0.9, "n_samples": 3, "selector": "majority_vote"}
    first = task.evaluate([point])[0]
    n_requests = len(server.requests)
    assert task.evaluate([point])[0] == first
    assert len(server.requests) == n_requests  # answered from the cache
    other = make(server, cache=None)  # a fresh client, no cache: the seeded server gives the same answers
    assert other.evaluate([point])[0] == first


def test_greedy_samples_are_one_call(server):
    task = make(server)
    result = task.run({**DEFAULT_CONFIG, "temperature": 0.0, "top_p": 0.3, "n_samples": 4})
    assert result.calls == 6  # 4 identical greedy requests per question: 1 call, 3 cache hits
    assert {r["body"]["top_p"] for r in server.requests} == {1.0}
    single = task.run({**DEFAULT_CONFIG, "temperature": 0.0, "n_samples": 1})
    assert result.tokens_per_question == pytest.approx(4 * single.tokens_per_question)  # still paid per sample


def test_selectors():
    task = LLMDecodingAPI(base_url="http://127.0.0.1:9/v1")

    def s(text, lp=None):
        return Sample(text, 1, 1, lp, False)

    samples = [s(""), s("dogs", -2.0), s("cats", -0.5), s("Dogs.", -3.0)]
    assert task.select(samples, "first_valid") == "dogs"
    assert task.select(samples, "majority_vote") == "dogs"  # "dogs" and "Dogs." normalise alike
    assert task.select(samples, "max_logprob") == "cats"
    assert task.select([s(""), s("  ")], "majority_vote") == ""
    assert task.select([s("cats"), s("dogs")], "majority_vote") == "cats"  # a tie goes to the answer seen first
    assert task.select([s("cats"), s("dogs")], "max_logprob") == "cats"  # no log-probabilities: first valid


def test_logprobs_read_from_the_response():
    def body(text, logprobs):
        return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "toy",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                        "logprobs": {"content": [{"token": t, "logprob": lp, "top_logprobs": []}
                                                                 for t, lp in logprobs]},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}})

    with LoopbackLLM() as server:  # answers "echo: <prompt>"
        check_chat_samples(server, body)


def check_chat_samples(server, body):
    client = LLMClient("toy", server.base_url, cache=LLMCache(":memory:"), max_retries=0)
    messages = [{"role": "user", "content": "plural of cat"}]
    server.script(("body", 200, body("cats", [("c", -0.1), ("ats", -0.3)])))
    sample = Sample.of(client.chat(messages, max_tokens=4, temperature=0.5, top_p=0.8, seed=3, logprobs=True))
    assert sample == Sample("cats", 10, 2, pytest.approx(-0.2), False)
    sent = server.requests[-1]["body"]
    assert sent["top_p"] == 0.8 and sent["logprobs"] is True and sent["top_logprobs"] == 1
    again = client.chat(messages, max_tokens=4, temperature=0.5, top_p=0.8, seed=3, logprobs=True)
    assert again.cached and again.mean_logprob == pytest.approx(-0.2) and len(server.requests) == 1
    server.script(("body", 200, body("dogs", [])))  # a server that returns no log-probabilities
    other_top_p = client.chat(messages, max_tokens=4, temperature=0.5, top_p=0.7, seed=3, logprobs=True)
    assert not other_top_p.cached and other_top_p.mean_logprob is None
    plain = client.chat([{"role": "user", "content": "hi"}], max_tokens=4)  # without the new arguments
    assert "top_p" not in server.requests[-1]["body"] and "logprobs" not in server.requests[-1]["body"]
    assert plain.text.startswith("echo") and plain.mean_logprob is None
    assert client.usage()["calls"] == 3 and client.usage()["cache_hits"] == 1
    task = LLMDecodingAPI(client=client, n_questions=2)  # a client of one's own is used as it is
    assert task.client is client


def test_max_logprob_selects_from_the_server_log_probabilities():
    class TwoAnswers:
        def __call__(self, body):
            return "cats" if body["seed"] % 2 else "The plural is kats"

    with LoopbackLLM(TwoAnswers()) as server:
        task = make(server, n_questions=1)
        point = {**DEFAULT_CONFIG, "temperature": 1.0, "n_samples": 2, "selector": "max_logprob"}
        answer = task.run(point).answers[0]
    best = max(["cats", "The plural is kats"], key=lambda t: np.mean(toy_logprobs(t)))
    assert answer == extract_answer(best)


def test_budget_refusal_fails_the_evaluation(server):
    from mcbo.llm.budget import BudgetExceeded

    task = make(server, budget=Budget(max_calls=3))
    with pytest.raises(BudgetExceeded):
        task.run({**DEFAULT_CONFIG, "system_prompt": "concise"})
    assert len(server.requests) == 3


def test_minimize_smoke(server):
    from mcbo import minimize

    task = make(server, n_questions=3, max_samples=2, max_shots=1)
    result = minimize(task, task.space, n_evaluations=6, solver="rs", seed=0)
    assert result.n_failed == 0 and np.isfinite(result.best_value)
    assert result.best_value <= task.evaluate([DEFAULT_CONFIG])[0]
