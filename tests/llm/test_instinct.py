"""INSTINCT end to end through the real openai client and the loopback server: scoring, caching,
budget stops, failures, and the solver wiring."""

import math

import numpy as np
import pytest

from mcbo.llm import Budget, LLMCache, PriceTable
from mcbo.llm.client import LLMClient, prompt_token_bound
from mcbo.llm.instinct import InstructionScorer, instinct_solver, run_instinct
from mcbo.llm.pool import HashingEmbedder
from tests.llm.conftest import FIRST_LETTER_POOL

PRICES = PriceTable({"toy": (1.0, 2.0)})
N_EX = 5


@pytest.fixture
def embeddings():
    return HashingEmbedder(64).embed(FIRST_LETTER_POOL)


def client_for(server, **kw):
    return LLMClient("toy", server.base_url, prices=PRICES, **kw)


def test_scorer_averages_the_metric_and_caches_the_score(server, first_letter, follower, no_key):
    client = client_for(server, cache=LLMCache())
    scorer = InstructionScorer(client, first_letter, "valid", n_examples=N_EX)
    assert scorer("Write the first letter of the input.") == 1.0
    assert scorer("Write the last word of the input.") == 0.0
    half = "Write the first word of the input."
    expected = np.mean([follower(
        {"messages": [{"content": first_letter.prompt(half, e)}]}) == e.outputs[0]
        for e in first_letter.examples("valid", N_EX)])
    assert scorer(half) == pytest.approx(expected)
    n = server.n_chat_requests
    assert n == 3 * N_EX
    assert scorer(half) == pytest.approx(expected) and server.n_chat_requests == n  # score cache
    assert client.cache.counts()["scores"] == 3


def test_instinct_run_finds_a_perfect_instruction_and_accounts_for_every_call(server, first_letter, embeddings,
                                                                             no_key, tmp_path):
    client = client_for(server, cache=LLMCache(tmp_path / "cache.db"))
    result = run_instinct(client, first_letter, FIRST_LETTER_POOL, embeddings, n_evaluations=30, n_init=10,
                          n_examples=N_EX, seed=0)
    h = result.history
    assert result.stopped == "completed" and len(h) == 30 and h["pool_id"].nunique() == 30
    assert (h["status"] == "ok").all()
    assert result.best_score == 1.0 == h["score"].max()
    assert "first letter" in result.best_instruction
    assert h["best_score"].is_monotonic_increasing
    assert server.n_chat_requests == 30 * N_EX
    calls = client.calls_table()
    expected_cost = (calls["prompt_tokens"] * 1.0 + calls["completion_tokens"] * 2.0).sum() / 1e6
    assert result.usage["cost_usd"] == pytest.approx(expected_cost) and result.usage["calls"] == 30 * N_EX

    # The same run again: every score comes from the cache, no request is sent, the run is identical.
    client.cache.close()
    again_client = client_for(server, cache=LLMCache(tmp_path / "cache.db"))
    again = run_instinct(again_client, first_letter, FIRST_LETTER_POOL, embeddings, n_evaluations=30, n_init=10,
                         n_examples=N_EX, seed=0)
    assert server.n_chat_requests == 30 * N_EX and again.usage["calls"] == 0
    assert again.usage["cache"]["score_hits"] >= 30
    assert again.history[["pool_id", "score"]].equals(h[["pool_id", "score"]])


def test_instinct_beats_its_own_initial_design(server, first_letter, embeddings, no_key):
    client = client_for(server)
    result = run_instinct(client, first_letter, FIRST_LETTER_POOL, embeddings, n_evaluations=25, n_init=10,
                          n_examples=N_EX, seed=1)
    h = result.history
    assert h["score"].iloc[10:].mean() > h["score"].iloc[:10].mean()


def test_budget_stop_is_clean_and_returns_the_incumbent(server, first_letter, embeddings, no_key):
    # Worst case of one instruction's N_EX answers, priced at 1 and 2 USD per million tokens.
    scorer_prompts = [first_letter.prompt(FIRST_LETTER_POOL[0], e) for e in first_letter.examples("valid", N_EX)]
    worst = sum((prompt_token_bound([{"role": "user", "content": p}]) + 2 * 32) / 1e6 for p in scorer_prompts)
    budget = Budget(max_usd=2 * worst)  # true costs are far below the worst case: a few instructions fit
    client = client_for(server, budget=budget)
    result = run_instinct(client, first_letter, FIRST_LETTER_POOL, embeddings, n_evaluations=40, n_init=10,
                          n_examples=N_EX, seed=0, evaluate_test=True)
    h = result.history
    assert result.stopped == "budget" and 3 <= len(h) < 40
    assert budget.usd <= budget.max_usd and result.usage["budget"]["usd"] == budget.usd
    assert server.n_chat_requests == N_EX * len(h)  # no instruction was left half-scored
    assert result.best_score == h["score"].max()
    assert result.best_instruction == h.loc[h["score"].idxmax(), "instruction"]
    assert result.test_score is None  # the test split (30 answers) is not affordable any more


def test_failed_instruction_is_recorded_and_the_run_goes_on(server, first_letter, embeddings, no_key, sleeps):
    client = client_for(server, max_retries=0, sleep=sleeps)
    server.script(*[(None,)] * 7, ("status", 400))  # the 8th request (2nd instruction) is rejected
    result = run_instinct(client, first_letter, FIRST_LETTER_POOL, embeddings, n_evaluations=12, n_init=5,
                          n_examples=N_EX, seed=0, concurrency=1)
    h = result.history
    assert len(h) == 12 and list(h["status"]).count("failed") == 1
    failed = h[h["status"] == "failed"].iloc[0]
    assert failed["index"] == 1 and "HTTP 400" in failed["error"] and math.isnan(failed["score"])
    assert result.stopped == "completed"


def test_test_split_score_of_the_winner(server, first_letter, embeddings, no_key):
    client = client_for(server)
    result = run_instinct(client, first_letter, FIRST_LETTER_POOL[:20], embeddings[:20], n_evaluations=50, n_init=5,
                          n_examples=N_EX, evaluate_test=True)
    assert result.stopped == "pool exhausted" and result.history["pool_id"].nunique() == len(result.history) == 20
    assert result.test_score == 1.0  # the winner "... first letter ..." answers every test example
    assert server.n_chat_requests == 20 * N_EX + 30


def test_inputs_are_validated(server, first_letter, embeddings, no_key):
    client = client_for(server)
    with pytest.raises(ValueError, match="duplicate"):
        run_instinct(client, first_letter, ["a", "a"], np.eye(2))
    with pytest.raises(ValueError, match="embeddings has 3 rows"):
        run_instinct(client, first_letter, ["a", "b"], np.eye(3))
    with pytest.raises(ValueError, match="K >= 2"):
        instinct_solver(np.ones((1, 4)))
    solver = instinct_solver(embeddings, seed=3, n_init=7, model={"width": 20})
    assert solver.model.width == 20 and solver.model.seed == 3 and solver.n_init == 7


def test_repeats_in_the_initial_design_cost_nothing(server, first_letter, embeddings, no_key):
    from mcbo.solvers import load_recipe

    recipe = {**load_recipe("instinct"), "init_sampler": "uniform"}  # i.i.d. draws: 15 of 20 items repeat some
    client = client_for(server)
    result = run_instinct(client, first_letter, FIRST_LETTER_POOL[:20], embeddings[:20], n_evaluations=20,
                          n_init=15, n_examples=N_EX, recipe=recipe, seed=0)
    h = result.history
    assert h["pool_id"].nunique() == len(h) == 20
    assert server.n_chat_requests == 20 * N_EX  # every item scored once
