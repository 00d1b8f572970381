"""Tests of mcbo/tasks/maxsat.py: weighted MaxSAT on generated (planted) k-SAT instances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mcbo.tasks import build_task
from mcbo.tasks.maxsat import MaxSat


def _satisfied_weight(task: MaxSat, point: dict) -> float:
    """Loop over clauses and literals."""
    x = [point[n] for n in task.space.names]
    total = 0.0
    for clause, signs, weight in zip(task.variables, task.signs, task.weights):
        if any(x[v] == s for v, s in zip(clause, signs)):
            total += weight
    return total


def test_random_batch_is_finite_shaped_and_deterministic():
    task = MaxSat(seed=1)
    points = task.space.sample_points(8, seed=0)
    values = task.evaluate(points)
    assert values.shape == (8,) and np.all(np.isfinite(values))
    assert np.all((values >= -1.0) & (values <= 0.0))
    np.testing.assert_array_equal(MaxSat(seed=1).evaluate(points), values)
    assert not np.array_equal(MaxSat(seed=2).evaluate(points), values)


@pytest.mark.parametrize("normalise", [True, False])
def test_matches_the_loop_reference(normalise):
    task = MaxSat(seed=3, n_variables=20, n_clauses=50, normalise=normalise)
    points = task.space.sample_points(8, seed=4)
    expected = np.array([-_satisfied_weight(task, p) for p in points])
    if normalise:
        expected /= task.weights.sum()
    np.testing.assert_allclose(task.evaluate(points), expected)


def test_planted_assignment_attains_the_optimum():
    task = MaxSat(seed=5)
    assert task.optimum == -1.0
    assert task(task.planted_point()) == pytest.approx(-1.0)
    raw = MaxSat(seed=5, normalise=False)
    assert raw.optimum == -raw.weights.sum()
    assert raw(raw.planted_point()) == pytest.approx(raw.optimum)


def test_planted_optimum_is_the_brute_force_minimum():
    task = MaxSat(seed=6, n_variables=10, n_clauses=60)
    points = [dict(zip(task.space.names, bits)) for bits in itertools.product([False, True], repeat=10)]
    values = task.evaluate(points)
    assert values.min() == pytest.approx(task.optimum)
    assert np.sum(np.isclose(values, task.optimum)) < len(points)


def test_instance_shape_and_defaults():
    task = MaxSat(seed=0, n_variables=40)
    assert task.n_clauses == round(4.26 * 40)
    assert task.variables.shape == (task.n_clauses, 3)
    assert all(len(set(row)) == 3 for row in task.variables.tolist())
    assert task.weights.min() >= 1 and task.weights.max() <= 100
    assert np.all(task.weights == np.round(task.weights))


def test_unplanted_instance_has_no_known_optimum():
    task = MaxSat(seed=0, planted=False)
    assert task.optimum is None and task.planted_point() is None


def test_registered():
    task = build_task("maxsat", seed=2, n_variables=30, clause_size=4)
    assert isinstance(task, MaxSat) and len(task.space) == 30 and task.variables.shape[1] == 4


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"n_variables": 0}, "n_variables"), ({"n_clauses": 0}, "n_clauses"), ({"clause_size": 0}, "clause_size"),
     ({"n_variables": 2, "clause_size": 3}, "clause_size"), ({"max_weight": 0}, "max_weight"),
     ({"planted": "yes"}, "planted"), ({"normalise": 1}, "normalise"), ({"n_variables": 3.0}, "n_variables")],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MaxSat(**kwargs)
