"""The ``llm_decoding_api`` task and INSTINCT scoring against SmolLM2-135M on llama.cpp's server.

The figures each test measures (seconds per evaluation, accuracy of the default and of a good
configuration) are logged at INFO level and attached to the test report (``record_property``).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mcbo.llm import LLMCache, LLMClient, PriceTable
from mcbo.llm.instinct import InstructionScorer
from mcbo.tasks.llm_decoding_api import DEFAULT_CONFIG, LLMDecodingAPI, instruction_task

logger = logging.getLogger(__name__)

#: Screened with SmolLM2-135M (docs/llm-instruction-tuning.md): greedy, the "concise" system prompt and 4
#: worked examples answer every one of the first 12 plural questions; the default configuration none.
GOOD = {**DEFAULT_CONFIG, "temperature": 0.0, "max_tokens": 8, "system_prompt": "concise", "n_shots": 4}
N_QUESTIONS = 6


@pytest.fixture(scope="module")
def plural(llm_server):
    return LLMDecodingAPI(llm_server.base_url, llm_server.model_alias, "plural", n_questions=N_QUESTIONS, seed=0)


def test_good_configuration_answers_and_default_does_worse(plural, record_property):
    default = plural.run(DEFAULT_CONFIG)
    good = plural.run(GOOD)
    for name, r in (("default", default), ("good", good)):
        record_property(f"{name}_accuracy", r.accuracy)
        record_property(f"{name}_seconds_per_evaluation", round(r.seconds, 2))
        record_property(f"{name}_tokens_per_question", r.tokens_per_question)
        logger.info("plural, %s configuration: accuracy %.2f, %.1f tokens/question, %.1fs per evaluation "
                    "(%d questions)", name, r.accuracy, r.tokens_per_question, r.seconds, N_QUESTIONS)
    assert good.accuracy > 0.5
    assert good.accuracy > default.accuracy
    assert good.objective < default.objective
    assert good.calls == N_QUESTIONS


def test_seeded_sampling_is_reproducible_without_the_cache(llm_server, plural):
    point = {**GOOD, "temperature": 0.9, "top_p": 0.9, "n_samples": 2, "selector": "majority_vote"}
    fresh = LLMDecodingAPI(llm_server.base_url, llm_server.model_alias, "plural", n_questions=3, seed=0, cache=None)
    first, second = fresh.run(point), fresh.run(point)
    assert first.answers == second.answers and first.tokens_per_question == second.tokens_per_question
    assert second.calls == 6  # no cache: both evaluations asked the server


def test_logprobs_and_selectors(plural):
    point = {**GOOD, "temperature": 1.0, "top_p": 0.95, "n_samples": 3, "selector": "max_logprob", "n_shots": 2}
    result = plural.run(point)
    messages = plural.messages(plural.questions[0], "concise", 2)
    sample = plural.client.chat(messages, max_tokens=8, temperature=1.0, top_p=0.95, seed=0, stop=("\n",),
                                logprobs=True)
    assert sample.cached and sample.mean_logprob is not None and sample.mean_logprob <= 0.0
    majority = plural.run({**point, "selector": "majority_vote"})
    assert majority.calls == 0  # the same samples, read from the cache: only the selector differs
    logger.info("plural, 3 samples at T=1: max_logprob accuracy %.2f, majority vote %.2f", result.accuracy,
                majority.accuracy)


def test_instinct_scoring_through_the_api(llm_server, record_property):
    client = LLMClient(llm_server.model_alias, llm_server.base_url,
                       prices=PriceTable().with_price(llm_server.model_alias, 0.0, 0.0), cache=LLMCache(":memory:"))
    task = instruction_task("plural", metric="contains", n_valid=6)
    scorer = InstructionScorer(client, task, "valid", n_examples=6, max_tokens=16, concurrency=1)
    good = scorer("Write the plural form of the word.")
    bad = scorer("Translate the word into French.")
    calls = client.usage()["calls"]
    record_property("instinct_good_instruction_score", good)
    record_property("instinct_bad_instruction_score", bad)
    logger.info("INSTINCT scorer on plural (6 questions): good instruction %.2f, bad instruction %.2f", good, bad)
    assert good > bad
    assert scorer("Write the plural form of the word.") == good and client.usage()["calls"] == calls  # cached


def test_short_tuning_run_beats_the_default(llm_server, record_property):
    from mcbo import minimize
    from mcbo.solvers import build_solver

    task = LLMDecodingAPI(llm_server.base_url, llm_server.model_alias, "plural", n_questions=4, max_samples=2,
                          max_tokens=16, max_shots=2, seed=0)
    default_point = task.space.validate({**DEFAULT_CONFIG, "max_tokens": 16})
    default = task.run(default_point)
    solver = build_solver("rs", task.space, seed=0)
    solver.tell([default_point], [default.objective])
    seconds = []

    def black_box(point):
        outcome = task.run(point)
        seconds.append(outcome.seconds)
        return outcome.objective

    result = minimize(black_box, task.space, n_evaluations=6, solver=solver)
    tuned = task.run(result.best_point)
    seconds = np.asarray(seconds)
    record_property("tuning_seconds_per_evaluation", round(float(seconds.mean()), 2))
    record_property("tuning_default_accuracy", default.accuracy)
    record_property("tuning_tuned_accuracy", tuned.accuracy)
    logger.info("6 random-search evaluations (4 questions): %.1fs per evaluation; default accuracy %.2f "
                "(%.0f tokens/question), tuned %.2f (%.0f tokens/question): %s", seconds.mean(), default.accuracy,
                default.tokens_per_question, tuned.accuracy, tuned.tokens_per_question, result.best_point)
    assert result.n_failed == 0
    assert tuned.objective < default.objective and tuned.accuracy > default.accuracy
