"""Tests of mcbo/tasks/alignment.py: DPO-family and GRPO regret tasks on a log-linear bandit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcbo.tasks import build_task
from mcbo.tasks.alignment import (
    DPOAlignment,
    GRPOAlignment,
    _preference_loss,
    make_bandit,
    sample_preferences,
)

DPO_POINT = dict(loss="rdpo", beta=0.5, learning_rate=0.05, steps=200, batch_size=64, label_smoothing=0.2)
GRPO_POINT = dict(group_size=8, kl_coef=0.05, clip_eps=0.2, advantage_norm="mean_only", learning_rate=0.05)


@pytest.fixture(scope="module")
def dpo() -> DPOAlignment:
    return build_task("dpo_alignment", seed=0)


@pytest.fixture(scope="module")
def grpo() -> GRPOAlignment:
    return build_task("grpo_alignment", seed=0)


# ================================================================================ the bandit
def test_oracle_policy_has_zero_regret(dpo: DPOAlignment) -> None:
    bandit = dpo.bandit
    assert dpo.regret_of(bandit.oracle_theta()) == pytest.approx(0.0, abs=1e-10)
    assert bandit.regret(bandit.optimal_log_policy()) == pytest.approx(0.0, abs=1e-10)
    assert dpo.regret_of(bandit.theta_ref) > 0.5


def test_regret_is_nonnegative_and_grows_away_from_the_oracle(dpo: DPOAlignment) -> None:
    rng = np.random.default_rng(0)
    oracle = dpo.bandit.oracle_theta()
    regrets = [dpo.regret_of(rng.normal(scale=3.0, size=oracle.shape)) for _ in range(20)]
    assert min(regrets) > 0
    direction = rng.normal(size=oracle.shape)
    along = [dpo.regret_of(oracle + s * direction) for s in (0.0, 0.1, 1.0)]
    assert along[0] < along[1] < along[2]


def test_optimal_value_matches_brute_force_on_one_prompt() -> None:
    bandit = make_bandit(np.random.default_rng(1), 1, 3, 2, 1.0, 1.0, beta_eval=0.7)
    ref, r = np.exp(bandit.log_ref[0]), bandit.reward[0]
    best = -np.inf
    for a in np.linspace(0, 1, 201):  # grid over the 2-simplex
        for b in np.linspace(0, 1 - a, max(2, int(round((1 - a) * 200)) + 1)):
            pi = np.clip(np.array([a, b, 1 - a - b]), 1e-300, None)
            best = max(best, pi @ r - 0.7 * np.sum(pi * (np.log(pi) - np.log(ref))))
    assert bandit.optimal_value() >= best - 1e-12
    assert bandit.optimal_value() == pytest.approx(best, abs=1e-3)


def test_preferences_follow_bradley_terry_with_flips() -> None:
    bandit = make_bandit(np.random.default_rng(2), 16, 6, 4, reward_scale=20.0, ref_scale=1.0, beta_eval=1.0)
    data, flipped = sample_preferences(np.random.default_rng(3), bandit, 4000, flip_rate=0.25)
    assert np.all(data.chosen != data.rejected)
    assert flipped.mean() == pytest.approx(0.25, abs=0.03)
    r = bandit.reward[data.prompt]
    rows = np.arange(len(data.prompt))
    chosen_better = r[rows, data.chosen] > r[rows, data.rejected]
    # With a large reward scale, Bradley-Terry labels are nearly always right; flips make them wrong.
    assert chosen_better[~flipped].mean() > 0.9
    assert chosen_better[flipped].mean() < 0.1


# ============================================================================== DPO losses
def test_preference_losses_known_values() -> None:
    h = torch.tensor([0.0], dtype=torch.float64)
    assert _preference_loss(h, "dpo", 1.0, 0.0).item() == pytest.approx(np.log(2))
    assert _preference_loss(torch.tensor([1.0 / (2 * 0.25)], dtype=torch.float64), "ipo", 0.25, 0.0).item() == 0.0
    assert _preference_loss(torch.tensor([2.0], dtype=torch.float64), "hinge", 0.5, 0.0).item() == 0.0
    hs = torch.linspace(-3, 3, 7, dtype=torch.float64)
    for loss in ("cdpo", "rdpo"):
        dpo_value = _preference_loss(hs, "dpo", 0.7, 0.0).item()
        assert _preference_loss(hs, loss, 0.7, 0.0).item() == pytest.approx(dpo_value)
    with pytest.raises(ValueError, match="loss"):
        _preference_loss(hs, "kto", 1.0, 0.0)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_rdpo_is_unbiased_under_label_flips(eps: float) -> None:
    # Chowdhury et al. 2024: the expected rDPO loss over flipped labels equals the clean DPO loss.
    for h in (-2.0, 0.3, 1.5):
        clean = _preference_loss(torch.tensor([h], dtype=torch.float64), "dpo", 0.8, 0.0).item()
        noisy = (1 - eps) * _preference_loss(torch.tensor([h], dtype=torch.float64), "rdpo", 0.8, eps).item()
        noisy += eps * _preference_loss(torch.tensor([-h], dtype=torch.float64), "rdpo", 0.8, eps).item()
        assert noisy == pytest.approx(clean)


# ================================================================================= DPO task
def test_dpo_batch_of_four_is_finite_and_deterministic(dpo: DPOAlignment) -> None:
    points = dpo.space.sample_points(4, seed=7)
    values = dpo.evaluate(points)
    assert values.shape == (4,) and np.all(np.isfinite(values)) and np.all(values > 0)
    np.testing.assert_array_equal(values, DPOAlignment(seed=0).evaluate(points))


def test_dpo_training_reduces_regret_and_rdpo_resists_flips(dpo: DPOAlignment) -> None:
    reference = dpo.regret_of(dpo.bandit.theta_ref)
    robust = dpo(DPO_POINT)
    plain = dpo({**DPO_POINT, "loss": "dpo"})
    assert robust < 0.2 * reference
    assert robust < plain


def test_label_smoothing_only_read_by_cdpo_and_rdpo(dpo: DPOAlignment) -> None:
    for loss in ("dpo", "ipo", "hinge"):
        assert dpo({**DPO_POINT, "loss": loss, "label_smoothing": 0.0}) == dpo(
            {**DPO_POINT, "loss": loss, "label_smoothing": 0.4}
        )
    assert dpo({**DPO_POINT, "label_smoothing": 0.0}) != dpo({**DPO_POINT, "label_smoothing": 0.4})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flip_rate": 0.5}, "flip_rate"),
        ({"beta_eval": 0.0}, "beta_eval"),
        ({"n_responses": 1}, "n_responses"),
        ({"n_pairs": 0}, "n_pairs"),
    ],
)
def test_dpo_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        DPOAlignment(**kwargs)


# ================================================================================ GRPO task
def test_grpo_batch_of_four_is_finite_and_deterministic(grpo: GRPOAlignment) -> None:
    points = grpo.space.sample_points(4, seed=11)
    values = grpo.evaluate(points)
    assert values.shape == (4,) and np.all(np.isfinite(values)) and np.all(values > 0)
    np.testing.assert_array_equal(values, GRPOAlignment(seed=0).evaluate(points))


def test_grpo_budget_sets_updates_and_training_reduces_regret(grpo: GRPOAlignment) -> None:
    assert grpo.n_updates(8) == 4096 // (8 * 8)
    assert grpo.n_updates(32) == 16
    assert GRPOAlignment(sample_budget=10).n_updates(32) == 1
    assert grpo(GRPO_POINT) < 0.2 * grpo.regret_of(grpo.bandit.theta_ref)
    # A strong pull towards the reference keeps the policy near it.
    assert grpo({**GRPO_POINT, "kl_coef": 3.0}) > grpo(GRPO_POINT)
    assert grpo({**GRPO_POINT, "advantage_norm": "std"}) != grpo(GRPO_POINT)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompts_per_step": 0}, "prompts_per_step"),
        ({"sample_budget": -5}, "sample_budget"),
        ({"reward_noise": -1.0}, "reward_noise"),
        ({"inner_steps": 1.5}, "inner_steps"),
    ],
)
def test_grpo_bad_arguments_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        GRPOAlignment(**kwargs)
