"""Fault injection against the LLM client and ``mcbo instruct``, through the loopback OpenAI-compatible server.

The server (``tests/llm/loopback.py``) over-reports, under-reports and garbles its usage, completes calls after
the client timed out, drops connections, sends malformed JSON, answers without choices, sends error objects
with HTTP 200 and echoes the API key. Promises: no raw exception, no leaked reservation, a spend that is
never negative and never below what an honest server billed, 0 overshoot against an honest server, a
dishonest server stopped after its first over-report, and the key redacted everywhere.
"""

import json
import logging
import traceback

import pytest

from mcbo.llm import Budget, BudgetExceeded, PriceTable
from mcbo.llm.budget import Reservation
from mcbo.llm.client import REDACTED, LLMClient, LLMError, prompt_token_bound
from tests.reliability.faults import (
    INSTRUCT_FAULTS,
    KEY_ENV,
    LLM_FAULTS,
    SECRET,
    run_budget_exhaustion,
    run_dishonest_server,
    run_instruct_fault,
    run_llm_fault,
)

PRICES = PriceTable({"toy": {"input": 1.0, "output": 2.0}})
PROMPT = "Instruction: Write the first letter of the input.\n\nInput: window\nOutput:"
BOUND = prompt_token_bound([{"role": "user", "content": PROMPT}])
WORST_USD = (BOUND * 1.0 + 16 * 2.0) / 1e6  # one call's reservation at max_tokens=16


def make(server, budget=None, **kw):
    kw.setdefault("sleep", lambda seconds: None)
    kw.setdefault("timeout", 0.25)
    return LLMClient("toy", server.base_url, api_key_env=KEY_ENV, prices=PRICES, budget=budget, **kw)


def no_leak(budget):
    return budget.reserved == Reservation(0, 0, 0.0)


# ------------------------------------------------------------------------------ the catalogue, case by case
@pytest.mark.parametrize("name", list(LLM_FAULTS))
def test_every_fault_fails_cleanly_and_keeps_the_budget_honest(server, secret_key, name):
    out = run_llm_fault(server, name)
    assert not out.raw, "".join(out.raw)
    assert not out.problems, (out.problems, out.detail)


@pytest.mark.parametrize("threads", [1, 4])
def test_an_honest_but_flaky_server_never_bills_past_the_limit(server, secret_key, threads):
    out = run_budget_exhaustion(server, limit_usd=0.002, threads=threads)
    assert not out.raw and not out.problems, (out.raw, out.problems, out.detail)
    assert out.faults >= 5 and out.overshoot_usd == 0.0


def test_a_dishonest_server_is_recorded_as_reported_and_stopped(server, secret_key):
    out = run_dishonest_server(server)
    assert not out.raw and not out.problems, (out.raw, out.problems, out.detail)
    assert out.faults == 1 and out.clean_errors == 4  # one request sent; the next four refused before sending


# ------------------------------------------------------------------------------------- the items
def test_over_report_is_recorded_and_refuses_every_further_call(server, secret_key):
    budget = Budget(max_usd=0.01)
    client = make(server, budget)
    server.script(("usage", {"prompt_tokens": 600_000, "completion_tokens": 600_000}))
    result = client.complete(PROMPT, max_tokens=16)
    assert result.cost_usd == pytest.approx(1.80) and budget.usd == pytest.approx(1.80)
    assert "more usage than a call can cost" in budget.overrun
    with pytest.raises(BudgetExceeded, match="more usage than a call can cost"):
        client.complete(PROMPT + " again", max_tokens=16)
    assert server.n_chat_requests == 1


def test_over_report_below_the_limit_also_stops_the_run(server, secret_key):
    budget = Budget(max_usd=5.0)
    client = make(server, budget)
    server.script(("usage", {"prompt_tokens": 10_000, "completion_tokens": 1}))
    client.complete(PROMPT, max_tokens=16)
    assert budget.usd == pytest.approx(0.010002) and budget.usd < budget.max_usd
    with pytest.raises(BudgetExceeded):
        client.complete(PROMPT + " again", max_tokens=16)
    assert server.n_chat_requests == 1


def test_negative_usage_never_lowers_the_spend(server, secret_key, caplog):
    budget = Budget(max_usd=1.0)
    client = make(server, budget)
    client.complete(PROMPT, max_tokens=16)
    before = budget.usd
    server.script(("usage", {"prompt_tokens": -9_000_000, "completion_tokens": 1}))
    result = client.complete(PROMPT + " 2", max_tokens=16)
    assert result.prompt_tokens == BOUND + 2 and budget.usd > before  # the worst case of the bad field
    assert "nonsense usage prompt_tokens=-9000000" in caplog.text


def test_non_integer_usage_is_not_a_raw_value_error(server, secret_key):
    budget = Budget(max_usd=1.0)
    client = make(server, budget)
    server.script(("usage", {"prompt_tokens": "12 tokens", "completion_tokens": 2.5}))
    result = client.complete(PROMPT, max_tokens=16)
    assert (result.prompt_tokens, result.completion_tokens) == (BOUND, 16)
    assert budget.usd == pytest.approx(WORST_USD) and no_leak(budget)


def test_a_timed_out_call_is_charged_its_reservation(server, secret_key):
    budget = Budget(max_usd=1.0)
    client = make(server, budget)
    server.script(("delay", 0.5))
    result = client.complete(PROMPT, max_tokens=16)
    server.wait_idle()
    assert result.attempts == 2 and result.charged_attempts == 1
    assert result.charged_usd == pytest.approx(WORST_USD)
    assert budget.usd == pytest.approx(WORST_USD + result.cost_usd - result.charged_usd)
    billed = sum((p + 2 * c) / 1e6 for p, c in server.billed)
    assert len(server.billed) == 2 and budget.usd >= billed
    assert client.usage()["charged_attempts"] == 1 and client.usage()["cost_usd"] == pytest.approx(budget.usd)


def test_retries_after_timeouts_reserve_anew_so_the_provider_cannot_bill_six_times_the_record(server, secret_key):
    budget = Budget(max_usd=2.5 * WORST_USD)  # room for two attempts' worst cases
    client = make(server, budget, max_retries=5)
    server.fault = ("delay", 0.5)
    with pytest.raises(BudgetExceeded):
        client.complete(PROMPT, max_tokens=16)
    server.fault = None
    server.wait_idle()
    billed = sum((p + 2 * c) / 1e6 for p, c in server.billed)
    assert server.n_chat_requests == 2 and len(server.billed) == 2
    assert billed <= budget.usd <= budget.max_usd and budget.usd == pytest.approx(2 * WORST_USD)
    assert no_leak(budget)
    row = client.calls_table().iloc[-1]
    assert not row["ok"] and row["charged_attempts"] == 2  # a failed call that was charged is in the table


def test_a_connection_reset_after_sending_is_charged(server, secret_key):
    budget = Budget(max_usd=1.0)
    client = make(server, budget)
    server.script(("reset",))
    result = client.complete(PROMPT, max_tokens=16)
    assert result.charged_attempts == 1 and budget.usd >= sum((p + 2 * c) / 1e6 for p, c in server.billed)


def test_a_refused_connection_costs_nothing(secret_key):
    pytest.importorskip("openai")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    budget = Budget(max_usd=1.0)
    client = LLMClient("toy", f"http://127.0.0.1:{port}/v1", api_key_env=KEY_ENV, prices=PRICES, budget=budget,
                       max_retries=1, sleep=lambda seconds: None)
    with pytest.raises(LLMError, match="gave up after 2 attempts"):
        client.complete(PROMPT, max_tokens=16)
    assert budget.usd == 0 and budget.calls == 0 and no_leak(budget)


def test_malformed_json_is_retried_and_charged_not_raised_raw(server, secret_key):
    budget = Budget(max_usd=1.0)
    client = make(server, budget)
    server.script(("body", 200, '{"choices": ['))
    result = client.complete(PROMPT, max_tokens=16)
    assert result.text.startswith("echo") and result.attempts == 2 and result.charged_attempts == 1
    server.fault = ("body", 200, "not json at all")
    with pytest.raises(LLMError, match="unreadable answer .malformed JSON"):
        client.complete(PROMPT + " 2", max_tokens=16)
    server.fault = None
    assert no_leak(budget)


@pytest.mark.parametrize("body", [json.dumps({"id": "x", "choices": []}),
                                  json.dumps({"error": {"message": "model overloaded", "type": "server_error"}})])
def test_answers_without_choices_and_errors_with_200_do_not_leak_reservations(server, secret_key, body):
    budget = Budget(max_calls=3)
    client = make(server, budget)
    server.fault = ("body", 200, body)
    errors = []
    for i in range(5):
        with pytest.raises((LLMError, BudgetExceeded)) as info:
            client.complete(f"{PROMPT} {i}", max_tokens=16)
        errors.append(info.value)
        assert no_leak(budget)
    server.fault = None
    if "error" in body:  # the server said the call failed: nothing counted, the budget is intact
        assert all(isinstance(e, LLMError) for e in errors) and budget.calls == 0
        assert client.complete(PROMPT, max_tokens=16).text
    else:  # an answer without choices was served (and billed): it counts, and the budget ends honestly
        assert budget.calls == 3 and isinstance(errors[-1], BudgetExceeded)
        assert "3 made, limit 3" in str(errors[-1])


@pytest.mark.parametrize("status", [401, 500])
def test_an_echoed_api_key_is_redacted_everywhere(server, secret_key, caplog, status):
    caplog.set_level(logging.DEBUG)
    client = make(server, Budget(max_usd=1.0), max_retries=1)
    server.fault = ("echo_key", status)
    with pytest.raises(LLMError) as info:
        client.complete(PROMPT, max_tokens=16)
    server.fault = None
    shown = "".join(traceback.format_exception(info.value))
    assert REDACTED in str(info.value)
    assert SECRET not in shown and SECRET not in caplog.text


# ---------------------------------------------------------------------------------------- mcbo instruct
@pytest.mark.parametrize("name", list(INSTRUCT_FAULTS))
def test_instruct_meets_each_fault_cleanly(server, secret_key, tmp_path, name):
    out, run = run_instruct_fault(server, tmp_path, name)
    assert not out.raw, "".join(out.raw)
    assert not out.problems, (out.problems, out.detail, run.stderr)
    if name == "malformed JSON body mid-run":  # retried: an incumbent, every output file, the charge reported
        assert "charged at their worst case" in run.stdout and run.report["usage"]["charged_attempts"] == 1
        assert all((tmp_path / "out" / f).is_file() for f in ("history.csv", "calls.csv", "pool.json"))
    if name.startswith("over-reporting"):  # $1.80 a call against $0.01: only the calls already in flight
        assert "budget stopped early" in run.stdout and "stopped: budget" in run.stdout and run.requests <= 2
        assert run.report["usage"]["budget"]["usd"] == pytest.approx(1.80 * run.requests)
    if name.startswith("API key"):
        assert run.rc == 1 and "HTTP 401" in run.stderr and REDACTED in run.stderr
    if name.startswith("negative usage"):
        assert run.report["usage"]["cost_usd"] > 0 and run.report["usage"]["budget"]["usd"] > 0
