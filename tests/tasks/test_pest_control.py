"""Pest Control against a plain transcription of the COMBO/BOCS simulation."""

import numpy as np
import pytest

from mcbo.tasks import build_task
from mcbo.tasks.pest_control import CHOICES, pest_control_cost


def _reference(x, seed):
    """The published simulation written as plainly as possible (fresh RandomState per draw)."""
    n = len(x)
    beta = {1: 2 / 7, 2: 3 / 7, 3: 3 / 7, 4: 5 / 7}
    growth = {1: 1 / 7, 2: 2.5 / 7, 3: 2 / 7, 4: 0.5 / 7}
    price = {1: 1.0, 2: 0.8, 3: 0.7, 4: 0.5}
    discount = {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.0}
    frac = np.random.RandomState(seed).beta(1.0, 30.0, size=100)
    total = 0.0
    for i in range(n):
        spread = np.random.RandomState(seed).beta(1.0, 17.0 / 3.0, size=100)
        if x[i] > 0:
            control = np.random.RandomState(seed).beta(1.0, beta[x[i]], size=100)
            nxt = (1.0 - control) * frac
            beta[x[i]] += growth[x[i]] / n
            total += price[x[i]] * (1.0 - discount[x[i]] / n * np.sum(np.asarray(x) == x[i]))
        else:
            nxt = spread * (1 - frac) + frac
        total += np.mean(frac > 0.1)
        frac = nxt
    return total


@pytest.mark.parametrize("seed", [0, 7])
def test_matches_reference_simulation(seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        x = rng.integers(0, 5, size=25)
        assert pest_control_cost(x, seed) == pytest.approx(_reference(list(x), seed), rel=1e-12)


def test_task_is_deterministic_and_uses_choice_labels():
    task = build_task("pest_control", seed=3)
    assert task.space.params[0].categories == CHOICES
    points = task.space.sample_points(6, seed=0)
    assert np.array_equal(task.evaluate(points), task.evaluate(points))
    never = {f"stage_{i + 1:02d}": "do nothing" for i in range(25)}
    assert task(never) > 10  # untreated pests spread above the threshold at most stages
