"""The real openai client against the loopback server: answers, usage and cost, keys, retries, budget, cache."""

import logging
import math

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
