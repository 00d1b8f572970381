"""The real openai client against the loopback server: answers, usage and cost, keys, retries, budget, cache."""

import json
import logging
import math
import sqlite3

import pytest

from mcbo.llm import Budget, BudgetExceeded, LLMCache, PriceTable, RateLimiter
from mcbo.llm.client import (
    LOOPBACK_PLACEHOLDER_KEY,
    LLMClient,
    LLMError,
    is_loopback,
    parse_retry_after,
    prompt_token_bound,
)
from mcbo.llm.cache import request_key
from tests.llm.loopback import LoopbackLLM, toy_logprobs

PRICES = PriceTable({"toy": {"input": 1.0, "output": 2.0}})
EVAL = "Instruction: Write the first letter of the input.\n\nInput: window\nOutput:"


def make(server, **kw):
    kw.setdefault("prices", PRICES)
    return LLMClient("toy", server.base_url, **kw)


def test_answer_usage_and_cost_come_from_the_server(server, no_key):
    client = make(server)
    result = client.complete(EVAL)
    assert result.text == "w" and not result.cached and result.attempts == 1
    body = server.requests[-1]["body"]
    assert body["model"] == "toy" and body["messages"][0]["content"] == EVAL and body["max_tokens"] == 64
    assert result.prompt_tokens == len(EVAL.split()) + 4 and result.completion_tokens == 1
    assert result.cost_usd == pytest.approx((result.prompt_tokens * 1.0 + 2.0) / 1e6)
    table = client.calls_table()
    assert list(table["prompt_tokens"]) == [result.prompt_tokens]
    assert client.usage()["cost_usd"] == pytest.approx(result.cost_usd)


def test_key_comes_from_the_named_variable_and_is_never_logged_or_stored(server, monkeypatch, tmp_path, caplog,
                                                                          sleeps):
    secret = "sk-test-secret-0123456789"
    monkeypatch.setenv("MY_LLM_KEY", secret)
    cache_path = tmp_path / "cache.db"
    caplog.set_level(logging.DEBUG)
    client = make(server, api_key_env="MY_LLM_KEY", cache=LLMCache(cache_path), sleep=sleeps)
    server.script(("status", 500))  # a retry, so that the client logs something
    client.complete(EVAL)
    client.cache.close()
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {secret}"
    assert secret not in caplog.text and "retry" in caplog.text
    assert secret.encode() not in cache_path.read_bytes()
    assert secret not in repr(client)


def test_missing_key_is_an_error_except_on_loopback(server, no_key):
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        LLMClient("toy", "https://api.example.com/v1", prices=PRICES)
    make(server).complete("hi")
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {LOOPBACK_PLACEHOLDER_KEY}"


@pytest.mark.parametrize("url, expected", [("http://127.0.0.1:8000/v1", True), ("http://localhost/v1", True),
                                           ("http://[::1]:80/v1", True), ("http://127.8.9.1/v1", True),
                                           ("https://api.openai.com/v1", False), ("http://10.0.0.1/v1", False),
                                           (None, False)])
def test_is_loopback(url, expected):
    assert is_loopback(url) is expected


def test_rate_limit_waits_for_retry_after(server, no_key, sleeps):
    client = make(server, sleep=sleeps)
    server.script(("status", 429, {"Retry-After": "7"}), ("status", 429, {"retry-after-ms": "250"}))
    result = client.complete(EVAL)
    assert result.text == "w" and result.attempts == 3
    assert sleeps.calls == [7.0, 0.25]
    assert client.usage()["retries"] == 2 and client.usage()["calls"] == 1


def test_overlong_retry_after_is_capped(server, no_key, sleeps):
    client = make(server, sleep=sleeps, max_retry_after=5.0)
    server.script(("status", 429, {"Retry-After": "3600"}))
    client.complete(EVAL)
    assert sleeps.calls == [5.0]


def test_server_errors_back_off_exponentially_with_jitter(server, no_key, sleeps):
    client = make(server, sleep=sleeps, backoff_base=2.0, backoff_max=100.0)
    server.script(("status", 500), ("status", 503), ("status", 502))
    assert client.complete(EVAL).attempts == 4
    assert len(sleeps.calls) == 3
    for k, wait in enumerate(sleeps.calls):
        assert 0.5 * 2.0 * 2**k <= wait <= 2.0 * 2**k


def test_same_seed_same_backoff(server, no_key):
    waits = []
    for _ in range(2):
        rec = []
        client = make(server, sleep=rec.append, seed=3)
        server.script(("status", 500), ("status", 500))
        client.complete(EVAL)
        waits.append(rec)
    assert waits[0] == waits[1]


def test_timeouts_are_retried(server, no_key, sleeps):
    client = make(server, sleep=sleeps, timeout=0.3)
    server.script(("delay", 1.0))
    result = client.complete(EVAL)
    assert result.text == "w" and result.attempts == 2 and len(sleeps.calls) == 1


def test_exhausted_retries_raise_and_release_the_budget(server, no_key, sleeps):
    budget = Budget(max_calls=1)
    client = make(server, sleep=sleeps, max_retries=2, budget=budget)
    server.script(("status", 500), ("status", 500), ("status", 500))
    with pytest.raises(LLMError, match="gave up after 3 attempts"):
        client.complete(EVAL)
    assert server.n_chat_requests == 3 and budget.calls == 0
    assert client.complete(EVAL).text == "w"  # the failed call's reservation was released
    with pytest.raises(BudgetExceeded):
        client.complete(EVAL + " ")


def test_client_errors_are_not_retried(server, no_key, sleeps):
    client = make(server, sleep=sleeps)
    server.script(("status", 400))
    with pytest.raises(LLMError) as info:
        client.complete(EVAL)
    assert info.value.status == 400 and server.n_chat_requests == 1 and sleeps.calls == []


def test_cache_answers_repeats_without_a_call_and_persists(server, no_key, tmp_path):
    path = tmp_path / "c.db"
    client = make(server, cache=LLMCache(path))
    first = client.complete(EVAL)
    second = client.complete(EVAL)
    assert server.n_chat_requests == 1
    assert second.cached and second.text == first.text and second.cost_usd == 0.0 and second.attempts == 0
    assert client.usage()["calls"] == 1 and client.usage()["cache_hits"] == 1
    client.complete(EVAL, max_tokens=10)  # different settings: a new request
    assert server.n_chat_requests == 2
    client.cache.close()
    again = make(server, cache=LLMCache(path)).complete(EVAL)
    assert again.cached and server.n_chat_requests == 2


def test_money_budget_stops_before_it_is_exceeded(server, no_key):
    bound = prompt_token_bound([{"role": "user", "content": EVAL}])
    worst = (bound * 1.0 + 64 * 2.0) / 1e6
    budget = Budget(max_usd=3.5 * worst)
    client = make(server, budget=budget)
    for i in range(3):
        client.complete(EVAL + " " * i)  # distinct requests (no cache anyway)
    spent = budget.usd
    assert 0 < spent < 3 * worst  # true usage is below the worst case
    # Real spend leaves room for more calls, but each is admitted only while its worst case fits.
    n_more = 0
    with pytest.raises(BudgetExceeded, match="money"):
        while True:
            client.complete(EVAL + " " * (3 + n_more))
            n_more += 1
    assert budget.usd <= budget.max_usd
    assert budget.usd + worst > budget.max_usd
    assert server.n_chat_requests == 3 + n_more


def test_call_and_token_budgets(server, no_key):
    client = make(server, budget=Budget(max_calls=2))
    client.complete("a")
    client.complete("b")
    with pytest.raises(BudgetExceeded, match="calls"):
        client.complete("c")
    assert server.n_chat_requests == 2
    client = make(server, budget=Budget(max_tokens=prompt_token_bound([{"role": "user", "content": "a"}]) + 10))
    client.complete("a", max_tokens=10)
    with pytest.raises(BudgetExceeded, match="tokens"):
        client.complete("b", max_tokens=10)


def test_money_budget_needs_a_price(server, no_key):
    with pytest.raises(ValueError, match="no price known for model 'mystery'"):
        LLMClient("mystery", server.base_url, budget=Budget(max_usd=1.0))
    client = LLMClient("mystery", server.base_url)  # no money limit: runs, cost unknown
    assert math.isnan(client.complete("hi").cost_usd)


def test_client_side_rate_limit_spaces_requests(server, no_key):
    now = [0.0]

    def sleep(s):
        now[0] += s

    limiter = RateLimiter(requests_per_minute=60, clock=lambda: now[0], sleep=sleep)
    limiter._requests.level = 1.0  # start with one request in the bucket
    client = make(server, rate_limiter=limiter)
    for i in range(3):
        client.complete(f"q{i}")
    assert now[0] == pytest.approx(2.0)  # one request per second after the first


def test_bad_arguments_are_rejected(server, no_key):
    with pytest.raises(ValueError, match="base_url"):
        LLMClient("toy", "ftp://x")
    with pytest.raises(ValueError, match="api_key_env"):
        LLMClient("toy", server.base_url, api_key_env="not a name")
    client = make(server)
    with pytest.raises(ValueError, match="messages"):
        client.chat([])
    with pytest.raises(ValueError, match="role"):
        client.chat([{"role": "robot", "content": "x"}])
    with pytest.raises(ValueError, match="max_tokens"):
        client.complete("x", max_tokens=0)


def test_parse_retry_after_forms():
    assert parse_retry_after({"Retry-After": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


# ------------------------------------------------------------------ top_p and log-probabilities
def old_key(server, prompt, max_tokens=64, temperature=0.0, seed=None, stop=None):
    """The key :meth:`LLMClient.chat` gave a request before ``top_p`` and ``logprobs`` existed."""
    return request_key({"base_url": server.base_url, "model": "toy",
                        "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                        "temperature": float(temperature), "seed": seed, "stop": list(stop) if stop else None})


def test_top_p_and_logprobs_reach_the_server_and_the_mean_is_read(server, no_key):
    client = make(server, cache=LLMCache(":memory:"))
    result = client.chat([{"role": "user", "content": EVAL}], top_p=0.8, logprobs=True, temperature=0.5, seed=1)
    body = server.requests[-1]["body"]
    assert body["top_p"] == 0.8 and body["logprobs"] is True and body["top_logprobs"] == 1
    assert result.text == "w" and not result.cached
    assert result.mean_logprob == pytest.approx(sum(toy_logprobs("w")) / len(toy_logprobs("w")))
    again = client.chat([{"role": "user", "content": EVAL}], top_p=0.8, logprobs=True, temperature=0.5, seed=1)
    assert again.cached and again.mean_logprob == result.mean_logprob and server.n_chat_requests == 1
    # Each new argument is part of the key: changing or dropping one is a new request.
    assert not client.chat([{"role": "user", "content": EVAL}], top_p=0.7, logprobs=True, temperature=0.5,
                           seed=1).cached
    unasked = client.chat([{"role": "user", "content": EVAL}], top_p=0.8, temperature=0.5, seed=1)
    assert not unasked.cached and unasked.mean_logprob is None
    body = server.requests[-1]["body"]
    assert body["top_p"] == 0.8 and "logprobs" not in body and "top_logprobs" not in body
    plain = client.complete(EVAL, max_tokens=5)
    body = server.requests[-1]["body"]
    assert not {"top_p", "logprobs", "top_logprobs"} & set(body) and plain.mean_logprob is None
    assert list(client.calls_table().columns)[-1] == "charged_usd"  # the calls table is unchanged


def test_logprobs_of_a_longer_answer_are_averaged(no_key):
    pytest.importorskip("openai")
    with LoopbackLLM(lambda body: "one two three") as srv:
        result = make(srv).complete("x", logprobs=True)
    assert result.mean_logprob == pytest.approx(sum(toy_logprobs("one two three")) / 3)
    assert result.mean_logprob < 0


@pytest.mark.parametrize("logprobs", [
    None,  # the server ignores the request
    {"content": []},
    {"content": None},
    {"content": [{"token": "w", "logprob": -0.5}, {"token": "x"}]},
    {"content": [{"token": "w", "logprob": "-0.5"}]},
    {"content": [{"token": "w", "logprob": True}]},
    {"content": "nonsense"},
    [1, 2],
])
def test_missing_or_malformed_logprobs_give_none(server, no_key, logprobs):
    choice = {"index": 0, "message": {"role": "assistant", "content": "w"}, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    server.script(("body", 200, json.dumps({"choices": [choice], "usage": {"prompt_tokens": 3,
                                                                           "completion_tokens": 1}})))
    result = make(server).complete("x", logprobs=True)
    assert result.text == "w" and result.mean_logprob is None and result.attempts == 1


def test_non_finite_logprob_gives_none(server, no_key):
    body = ('{"choices": [{"index": 0, "message": {"role": "assistant", "content": "w"}, "logprobs": '
            '{"content": [{"token": "w", "logprob": -Infinity}]}}], "usage": {"prompt_tokens": 3, '
            '"completion_tokens": 1}}')
    server.script(("body", 200, body))
    assert make(server).complete("x", logprobs=True).mean_logprob is None


def test_logprobs_returned_unasked_are_not_reported(no_key):
    pytest.importorskip("openai")
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "w"},
                                    "logprobs": {"content": [{"token": "w", "logprob": -0.5}]}}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
    cache = LLMCache(":memory:")
    with LoopbackLLM() as srv:
        srv.script(("body", 200, body))
        assert make(srv, cache=cache).complete("x").mean_logprob is None
        assert make(srv, cache=cache).complete("x").mean_logprob is None  # nor stored


def test_key_of_a_request_without_the_new_arguments_is_unchanged(server, no_key, tmp_path):
    path = tmp_path / "c.db"
    client = make(server, cache=LLMCache(path))
    client.complete(EVAL)
    client.complete(EVAL, max_tokens=9, temperature=0.3, seed=4, stop=["\n"])
    client.cache.close()
    with sqlite3.connect(path) as conn:
        keys = {row[0] for row in conn.execute("SELECT key FROM responses")}
    assert keys == {old_key(server, EVAL), old_key(server, EVAL, 9, 0.3, 4, ["\n"])}
    # top_p / logprobs given: other keys, so their answers never answer a plain request (nor the reverse).
    client = make(server, cache=LLMCache(path))
    assert not client.complete(EVAL, top_p=1.0).cached
    assert not client.complete(EVAL, logprobs=True).cached
    assert client.complete(EVAL).cached


def test_cache_written_before_the_new_arguments_still_answers(server, no_key, tmp_path):
    """An old cache file (no ``mean_logprob`` column, old keys) is migrated and keeps hitting."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, content TEXT NOT NULL, "
                     "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, created REAL NOT NULL)")
        conn.execute("INSERT INTO responses VALUES (?, 'toy', 'from the old cache', 7, 2, 0.0)",
                     (old_key(server, EVAL),))
    client = make(server, cache=LLMCache(path))
    hit = client.complete(EVAL)
    assert hit.cached and hit.text == "from the old cache" and (hit.prompt_tokens, hit.completion_tokens) == (7, 2)
    assert hit.mean_logprob is None and server.n_chat_requests == 0
    fresh = client.complete(EVAL, logprobs=True)
    assert not fresh.cached and fresh.mean_logprob is not None
    assert client.complete(EVAL, logprobs=True).mean_logprob == fresh.mean_logprob


def test_bad_sampling_arguments_are_rejected(server, no_key):
    client = make(server)
    for top_p in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="top_p"):
            client.complete("x", top_p=top_p)
    with pytest.raises(ValueError, match="logprobs"):
        client.complete("x", logprobs="yes")
    assert server.n_chat_requests == 0


def test_budget_and_retries_are_unchanged_with_the_new_arguments(server, no_key, sleeps):
    budget = Budget(max_calls=2)
    client = make(server, sleep=sleeps, budget=budget)
    server.script(("status", 500))
    result = client.complete(EVAL, top_p=0.9, logprobs=True)
    assert result.attempts == 2 and result.mean_logprob is not None and budget.calls == 1
    body = server.requests[0]["body"]
    assert body["top_p"] == 0.9 and body["top_logprobs"] == 1  # every attempt carries the fields
    assert server.requests[1]["body"] == body
