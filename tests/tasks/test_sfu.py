"""Tests of mcbo/tasks/sfu.py: SFU functions over mixed numeric / integer / categorical spaces."""

from __future__ import annotations

import numpy as np
import pytest

from mcbo.space import Categorical, Integer, Real
from mcbo.tasks import build_task
from mcbo.tasks.sfu import SfuTask
from mcbo.tasks.sfu_functions import SFU_FUNCTIONS


def _mixed(function: str, seed: int = 0) -> SfuTask:
    """2 numeric + 1 integer + 1 categorical (Powell: d = 4 as well)."""
    return SfuTask(function, n_numeric=2, n_integer=1, n_categorical=1, n_categories=5, seed=seed)


@pytest.mark.parametrize("function", sorted(SFU_FUNCTIONS))
def test_random_batch_is_finite_shaped_and_deterministic(function):
    task = _mixed(function)
    points = task.space.sample_points(8, seed=0)
    values = task.evaluate(points)
    assert values.shape == (8,) and np.all(np.isfinite(values))
    np.testing.assert_array_equal(_mixed(function).evaluate(points), values)


@pytest.mark.parametrize("function", sorted(SFU_FUNCTIONS))
def test_values_are_the_function_at_the_mapped_point(function):
    task = _mixed(function)
    points = task.space.sample_points(8, seed=1)
    x = np.array([[p["x00"], p["x01"], p["x02"], task.levels[p["x03"]]] for p in points])
    np.testing.assert_allclose(task.evaluate(points), task.spec.evaluate(x, task.params))


def test_space_kinds_follow_the_domain():
    task = SfuTask("ackley", n_numeric=2, n_integer=2, n_categorical=3, n_categories=7)
    kinds = [type(p) for p in task.space.params]
    assert kinds == [Real, Real, Integer, Integer, Categorical, Categorical, Categorical]
    real, integer, cat = task.space.params[0], task.space.params[2], task.space.params[4]
    assert (real.lb, real.ub) == (-32.768, 32.768)
    assert (integer.lb, integer.ub) == (-32, 32)
    assert cat.categories == list(range(7))
    np.testing.assert_allclose(task.levels, np.linspace(-32.768, 32.768, 7))


def test_domain_depends_on_the_total_dimension():
    task = SfuTask("trid", n_numeric=1, n_integer=2, n_categorical=0)
    assert task.space.params[0].lb == -9.0 and task.space.params[1].ub == 9


def test_ackley_minimum_at_the_origin():
    task = SfuTask("ackley", n_numeric=3)
    assert task.optimum == pytest.approx(0.0, abs=1e-12)
    assert task.evaluate({"x00": 0.0, "x01": 0.0, "x02": 0.0})[0] == pytest.approx(0.0, abs=1e-12)


def test_ackley_categorical_optimum_only_with_a_middle_level():
    odd = SfuTask("ackley", n_numeric=1, n_integer=1, n_categorical=3, n_categories=11)
    assert odd.optimum == pytest.approx(0.0, abs=1e-12)
    best = {"x00": 0.0, "x01": 0, "x02": 5, "x03": 5, "x04": 5}
    assert odd.evaluate(best)[0] == pytest.approx(odd.optimum, abs=1e-12)
    even = SfuTask("ackley", n_numeric=1, n_categorical=3, n_categories=10)
    assert even.optimum is None


def test_rosenbrock_minimum_at_ones_across_kinds():
    task = SfuTask("rosenbrock", n_numeric=2, n_integer=2, n_categorical=0)
    assert task.optimum == 0.0
    assert task({"x00": 1.0, "x01": 1.0, "x02": 1, "x03": 1}) == 0.0
    # linspace(-5, 10, 16) holds 1.0 (level 6); linspace(-5, 10, 4) does not.
    assert SfuTask("rosenbrock", n_numeric=1, n_categorical=2, n_categories=16).optimum == 0.0
    assert SfuTask("rosenbrock", n_numeric=1, n_categorical=2, n_categories=4).optimum is None


def test_optimum_none_when_the_minimiser_is_not_an_integer_point():
    assert SfuTask("dixon_price", n_numeric=2, n_integer=1).optimum is None
    assert SfuTask("dixon_price", n_numeric=3).optimum == pytest.approx(0.0, abs=1e-12)
    assert SfuTask("styblinski_tang", n_integer=2, n_numeric=0).optimum is None


def test_numeric_space_uses_the_tabulated_value_without_a_minimiser():
    assert SfuTask("michalewicz", n_numeric=5).optimum == pytest.approx(-4.687658)
    assert SfuTask("michalewicz", n_numeric=4).optimum is None
    assert SfuTask("langermann", n_numeric=2).optimum is None


@pytest.mark.parametrize("function", sorted(SFU_FUNCTIONS))
def test_optimum_is_not_beaten_by_random_points(function):
    task = SfuTask(function, n_numeric=4, seed=3)
    if task.optimum is None:
        pytest.skip(f"{function}: no known minimum in d = 4")
    values = task.evaluate(task.space.sample_points(256, seed=2))
    assert np.all(values >= task.optimum - 1e-9)


def test_seed_changes_generated_constants_only():
    a, b = SfuTask("langermann", n_numeric=3, seed=0), SfuTask("langermann", n_numeric=3, seed=1)
    points = a.space.sample_points(8, seed=0)
    assert not np.allclose(a.evaluate(points), b.evaluate(points))
    c, d = SfuTask("ackley", n_numeric=3, seed=0), SfuTask("ackley", n_numeric=3, seed=1)
    np.testing.assert_array_equal(c.evaluate(points), d.evaluate(points))


def test_registered_and_described():
    task = build_task("sfu", function="levy", n_numeric=2, n_categorical=2)
    assert isinstance(task, SfuTask) and task.name == "sfu_levy"
    text = task.describe()
    assert "Levy function" in text and "https://www.sfu.ca/~ssurjano/levy.html" in text and "Surjanovic" in text


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"function": "nope"}, "function"),
        ({"function": 3}, "function"),
        ({"n_numeric": -1}, "n_numeric"),
        ({"n_integer": 1.5}, "n_integer"),
        ({"n_categorical": True}, "n_categorical"),
        ({"n_categorical": 2, "n_categories": 1}, "n_categories"),
        ({"n_numeric": 0}, "n_numeric"),
        ({"function": "powell", "n_numeric": 5}, "powell"),
        ({"function": "rosenbrock", "n_numeric": 1}, "rosenbrock"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SfuTask(**kwargs)
