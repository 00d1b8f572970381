"""Tests of mcbo/tasks/llm_decoding.py: best-of-k decoding and speculative decoding simulators."""

from __future__ import annotations

import numpy as np
import pytest

from mcbo.tasks import build_task
from mcbo.tasks.llm_decoding import (
    BestOfK,
    SpeculativeDecoding,
    leviathan_expected_tokens,
    leviathan_speedup,
    simulate_speculation,
)

BASE = dict(k=8, temperature=0.8, top_p=0.95, max_tokens=1024, selector="majority_vote", adaptive=False, k_max=16)


@pytest.fixture(scope="module")
def best_of_k() -> BestOfK:
    return build_task("best_of_k", seed=0)


@pytest.fixture(scope="module")
def spec_iid() -> SpeculativeDecoding:
    return build_task("speculative_decoding", seed=0, variant="iid", alpha=0.8, draft_cost=0.1,
                      n_sequences=128, n_positions=1024)


# ================================================================================ best-of-k
def test_best_of_k_batch_of_four_is_finite_and_deterministic(best_of_k: BestOfK) -> None:
    points = best_of_k.space.sample_points(4, seed=3)
    values = best_of_k.evaluate(points)
    assert values.shape == (4,) and np.all(np.isfinite(values))
    np.testing.assert_array_equal(values, BestOfK(seed=0).evaluate(points))
    assert not np.array_equal(values, BestOfK(seed=1).evaluate(points))


def test_objective_trades_accuracy_against_tokens(best_of_k: BestOfK) -> None:
    out = best_of_k.simulate(BASE)
    assert out.objective == pytest.approx(-(out.accuracy - best_of_k.token_cost * out.mean_tokens / 1000))
    assert best_of_k(BASE) == pytest.approx(out.objective)
    free = BestOfK(seed=0, token_cost=0.0)
    assert free(BASE) == pytest.approx(-out.accuracy)


def test_k_max_is_ignored_when_not_adaptive(best_of_k: BestOfK) -> None:
    for selector in ("majority_vote", "best_of_reward_model", "first_valid"):
        point = {**BASE, "selector": selector, "adaptive": False}
        values = {best_of_k({**point, "k_max": k_max}) for k_max in (2, 9, 32)}
        assert len(values) == 1
    adaptive = {**BASE, "adaptive": True, "k": 2}
    assert best_of_k({**adaptive, "k_max": 4}) != best_of_k({**adaptive, "k_max": 32})


@pytest.mark.parametrize("selector", ["majority_vote", "best_of_reward_model", "first_valid"])
def test_adaptive_draws_between_k_and_k_max(best_of_k: BestOfK, selector: str) -> None:
    point = {**BASE, "selector": selector, "adaptive": True, "k": 2, "k_max": 16}
    out = best_of_k.simulate(point)
    assert 2 <= out.mean_samples < 16
    fixed = best_of_k.simulate({**point, "adaptive": False, "k": 16})
    assert out.mean_tokens < fixed.mean_tokens
    # k_max below k: exactly k samples.
    assert best_of_k.simulate({**point, "k": 6, "k_max": 3}).mean_samples == 6


def test_temperature_trades_single_sample_accuracy_for_diversity(best_of_k: BestOfK) -> None:
    def acc(**kw: object) -> float:
        return best_of_k.simulate({**BASE, **kw}).accuracy

    # Greedy-like decoding: one sample is better than a hot one, and all samples agree, so the
    # selector makes no difference.
    assert acc(k=1, temperature=0.1) > acc(k=1, temperature=1.3)
    greedy = {"k": 16, "temperature": 0.05, "top_p": 0.1}
    assert len({acc(**greedy, selector=s) for s in ("majority_vote", "best_of_reward_model", "first_valid")}) == 1
    # Diversity pays off with a selector: self-consistency and a verifier beat greedy.
    assert acc(k=16, temperature=1.0) > acc(k=1, temperature=0.05) + 0.03
    assert acc(k=16, temperature=1.0, selector="best_of_reward_model") > acc(k=16, temperature=1.0)
    # Without a nucleus, a very hot sampler derails.
    assert acc(k=8, temperature=1.8, top_p=1.0) < 0.3


def test_truncation_by_max_tokens_fails_samples(best_of_k: BestOfK) -> None:
    short = best_of_k.simulate({**BASE, "max_tokens": 64})
    long = best_of_k.simulate({**BASE, "max_tokens": 4096})
    assert short.accuracy < 0.1 < long.accuracy
    assert short.mean_tokens <= 64 * BASE["k"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_problems": 0}, "n_problems"),
        ({"confidence": 1.0}, "confidence"),
        ({"difficulty": (0.0, 1.0)}, "difficulty"),
        ({"token_cost": -1.0}, "token_cost"),
        ({"n_distractors": 2.5}, "n_distractors"),
    ],
)
def test_best_of_k_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        BestOfK(**kwargs)


def test_best_of_k_bad_point_names_the_parameter(best_of_k: BestOfK) -> None:
    with pytest.raises(ValueError, match="selector"):
        best_of_k.evaluate({**BASE, "selector": "beam_search"})
    with pytest.raises(ValueError, match="k_max"):
        best_of_k.evaluate({**BASE, "k_max": 64})


# ====================================================================== speculative decoding
def test_speculative_batch_of_four_is_finite_and_deterministic() -> None:
    task = build_task("speculative_decoding", seed=0)
    points = task.space.sample_points(4, seed=5)
    values = task.evaluate(points)
    assert values.shape == (4,) and np.all(np.isfinite(values)) and np.all(values < 0)
    np.testing.assert_array_equal(values, SpeculativeDecoding(seed=0).evaluate(points))


@pytest.mark.parametrize("k", [1, 3, 8])
def test_iid_static_matches_leviathan_closed_form(spec_iid: SpeculativeDecoding, k: int) -> None:
    trace = spec_iid.simulate({"policy": "static", "k": k, "threshold": 0.5})
    se = trace.tokens_per_call.std(ddof=1) / np.sqrt(trace.tokens_per_call.size)
    assert abs(trace.mean_tokens_per_call - leviathan_expected_tokens(0.8, k)) < 4 * se
    # Static K: every iteration costs K c + 1, so the speed-up's error is the tokens' error scaled.
    assert abs(trace.tokens_per_time - leviathan_speedup(0.8, k, 0.1)) < 4 * se / (k * 0.1 + 1)
    assert spec_iid({"policy": "static", "k": k, "threshold": 0.5}) == pytest.approx(-trace.tokens_per_time)


def test_closed_forms() -> None:
    assert leviathan_expected_tokens(0.5, 1) == pytest.approx(1.5)
    assert leviathan_expected_tokens(1.0, 4) == 5.0
    assert leviathan_speedup(0.5, 2, 0.25) == pytest.approx(1.75 / 1.5)


def test_threshold_is_ignored_by_static_policy() -> None:
    task = SpeculativeDecoding(seed=0)
    values = {task({"policy": "static", "k": 5, "threshold": t}) for t in (0.05, 0.5, 0.95)}
    assert len(values) == 1
    assert task({"policy": "threshold", "k": 5, "threshold": 0.05}) != task(
        {"policy": "threshold", "k": 5, "threshold": 0.95}
    )


def test_threshold_zero_drafts_like_static() -> None:
    rng = np.random.default_rng(0)
    alpha = rng.uniform(0.3, 0.95, size=(8, 80))
    uniforms = rng.random((8, 80))
    static = simulate_speculation(alpha, uniforms, 60, 4, 0.1)
    never_stops = simulate_speculation(alpha, uniforms, 60, 4, 0.1, predicted=alpha, threshold=0.0)
    always_stops = simulate_speculation(alpha, uniforms, 60, 4, 0.1, predicted=alpha, threshold=1.0)
    np.testing.assert_array_equal(static.tokens_per_call, never_stops.tokens_per_call)
    assert np.all(always_stops.drafted_per_call == 1)
    with pytest.raises(ValueError, match="alpha"):
        simulate_speculation(alpha, uniforms, 78, 4, 0.1)


def test_specdecpp_beats_every_static_length_on_bursty_acceptance() -> None:
    task = SpeculativeDecoding(seed=0, variant="contextual")
    best_static = min(task({"policy": "static", "k": k, "threshold": 0.5}) for k in range(1, 17))
    assert task({"policy": "threshold", "k": 16, "threshold": 0.2}) < best_static


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"variant": "markov"}, "variant"),
        ({"alpha": 1.0}, "alpha"),
        ({"draft_cost": -0.1}, "draft_cost"),
        ({"n_sequences": 0}, "n_sequences"),
        ({"predictor_noise": float("nan")}, "predictor_noise"),
    ],
)
def test_speculative_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SpeculativeDecoding(**kwargs)
