"""Tests of mcbo/tasks/contamination.py: the BOCS contamination-control problem."""

from __future__ import annotations

import numpy as np
import pytest

from mcbo.tasks import build_task
from mcbo.tasks.contamination import Contamination


def _reference(x: list[int], seed: int, lam: float, n_stages: int = 25) -> float:
    """Direct loop over simulations and stages, written from the BOCS description."""
    rng = np.random.default_rng(seed)
    z0 = rng.beta(1.0, 30.0, size=100)
    lambdas = rng.beta(1.0, 17.0 / 3.0, size=(n_stages, 100))
    gammas = rng.beta(1.0, 3.0 / 7.0, size=(n_stages, 100))
    below = np.zeros(n_stages)
    for s in range(100):
        z = z0[s]
        for i in range(n_stages):
            z = lambdas[i, s] * (1 - x[i]) * (1 - z) + (1 - gammas[i, s] * x[i]) * z
            below[i] += z < 0.1
    cost = sum(1.0 * xi for xi in x)
    constraint = sum(below[i] / 100 - (1 - 0.05) for i in range(n_stages))
    return cost - 1.0 * constraint + lam * sum(abs(xi) for xi in x)


def _bits(point: dict, task: Contamination) -> list[int]:
    return [int(point[n]) for n in task.space.names]


def test_random_batch_is_finite_shaped_and_deterministic():
    task = Contamination(seed=3)
    points = task.space.sample_points(8, seed=0)
    values = task.evaluate(points)
    assert values.shape == (8,) and np.all(np.isfinite(values))
    np.testing.assert_array_equal(Contamination(seed=3).evaluate(points), values)
    assert not np.allclose(Contamination(seed=4).evaluate(points), values)


@pytest.mark.parametrize("lam", [0.0, 1e-2])
def test_matches_the_loop_reference(lam):
    task = Contamination(seed=7, lam=lam)
    points = task.space.sample_points(8, seed=1)
    points += [{n: False for n in task.space.names}, {n: True for n in task.space.names}]
    expected = [_reference(_bits(p, task), seed=7, lam=lam) for p in points]
    np.testing.assert_allclose(task.evaluate(points), expected, rtol=1e-12, atol=1e-12)


def test_short_chain_matches_the_reference():
    task = Contamination(seed=2, n_stages=5, lam=1e-4)
    points = task.space.sample_points(8, seed=2)
    expected = [_reference(_bits(p, task), seed=2, lam=1e-4, n_stages=5) for p in points]
    np.testing.assert_allclose(task.evaluate(points), expected, rtol=1e-12, atol=1e-12)


def test_prevention_everywhere_keeps_contamination_low():
    task = Contamination(seed=0, lam=0.0)
    everywhere = task({n: True for n in task.space.names})
    # 25 stages at cost 1 each; with prevention nearly every simulation stays below U, so the
    # Lagrangian term is close to its best value 25 * 0.05.
    assert everywhere == pytest.approx(25.0 - 25 * 0.05, abs=1.0)


def test_regulariser_adds_lam_times_the_number_of_preventions():
    points = Contamination().space.sample_points(8, seed=5)
    plain, reg = Contamination(seed=1, lam=0.0), Contamination(seed=1, lam=0.5)
    counts = np.array([sum(p.values()) for p in points])
    np.testing.assert_allclose(reg.evaluate(points) - plain.evaluate(points), 0.5 * counts)


def test_registered():
    task = build_task("contamination", seed=1, lam=0.0)
    assert isinstance(task, Contamination) and len(task.space) == 25 and task.optimum is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n_stages": 0}, "n_stages"), ({"n_stages": 2.5}, "n_stages"), ({"lam": -1.0}, "lam"),
     ({"lam": float("nan")}, "lam"), ({"lam": "big"}, "lam")],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Contamination(**kwargs)
