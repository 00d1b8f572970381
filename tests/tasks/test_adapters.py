"""Tests of mcbo/tasks/adapters.py: BoTorch test functions and pymoo problems as tasks."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from botorch.test_functions import synthetic as bt
from pymoo.core.problem import ElementwiseProblem, Problem
from pymoo.core.variable import Binary, Choice
from pymoo.core.variable import Integer as PymooInteger
from pymoo.core.variable import Real as PymooReal
from pymoo.problems import get_problem
from pymoo.problems.single import Knapsack

from mcbo.space import Boolean, Categorical, Integer, Real
from mcbo.tasks import build_task
from mcbo.tasks.adapters import BoTorchTask, PymooTask


def _batch(task, seed=0):
    points = task.space.sample_points(8, seed=seed)
    return points, task.evaluate(points)


# ------------------------------------------------------------------------------ BoTorch
def test_botorch_random_batch_matches_the_function():
    fn = bt.Hartmann(dim=6)
    task = BoTorchTask(fn)
    points, values = _batch(task)
    assert values.shape == (8,) and np.all(np.isfinite(values))
    X = torch.tensor([[p[n] for n in task.space.names] for p in points], dtype=torch.double)
    np.testing.assert_allclose(values, fn.evaluate_true(X).numpy())
    assert [type(p) for p in task.space.params] == [Real] * 6
    assert task.optimum == pytest.approx(-3.32237)


def test_botorch_branin_optimum_at_its_optimizers():
    task = build_task("botorch", function="Branin")
    assert task.optimum == pytest.approx(0.397887)
    for x1, x2 in bt.Branin().optimizers.tolist():
        assert task({"x00": x1, "x01": x2}) == pytest.approx(0.397887, abs=1e-6)


def test_botorch_negate_does_not_change_what_is_minimised():
    plain, negated = BoTorchTask(bt.Branin()), BoTorchTask(bt.Branin(negate=True))
    points, values = _batch(plain)
    np.testing.assert_allclose(negated.evaluate(points), values)
    assert negated.optimum == plain.optimum


def test_botorch_maximisation_problem_is_negated_once():
    task = BoTorchTask(bt.Cosine8())
    points, values = _batch(task)
    X = torch.tensor([[p[n] for n in task.space.names] for p in points], dtype=torch.double)
    np.testing.assert_allclose(values, -bt.Cosine8().evaluate_true(X).numpy())
    assert task.optimum == pytest.approx(-0.8)


def test_botorch_discrete_and_categorical_inds_become_integer_and_categorical():
    task = BoTorchTask(bt.AckleyMixed(dim=6))
    assert [type(p) for p in task.space.params] == [Integer] * 3 + [Real] * 3
    _, values = _batch(task)
    assert np.all(np.isfinite(values))
    assert task({n: 0 for n in task.space.names[:3]} | {n: 0.0 for n in task.space.names[3:]}) == pytest.approx(0.0)

    class Cat(bt.SyntheticTestFunction):
        dim = 2
        _bounds: ClassVar[list[tuple[float, float]]] = [(0.0, 3.0), (-1.0, 1.0)]
        categorical_inds: ClassVar[list[int]] = [0]
        continuous_inds: ClassVar[list[int]] = [1]
        _optimal_value = 0.0

        def _evaluate_true(self, X):
            return (X[..., 0] != 2).double() + X[..., 1] ** 2

    cat = BoTorchTask(Cat())
    assert isinstance(cat.space.params[0], Categorical) and cat.space.params[0].categories == [0, 1, 2, 3]
    assert cat({"x00": 2, "x01": 0.0}) == 0.0 and cat.optimum == 0.0


def test_botorch_labs_maximises_the_merit_factor():
    task = build_task("botorch", function="Labs", dim=10)
    best = bt.Labs(dim=10).optimizers[0].tolist()
    assert task(dict(zip(task.space.names, (int(v) for v in best)))) == pytest.approx(-100 / 26)
    assert task.optimum == pytest.approx(-3.846)


def test_botorch_noise_is_seeded():
    points = BoTorchTask(bt.Branin()).space.sample_points(8, seed=0)
    a = BoTorchTask(bt.Branin(noise_std=1.0), seed=3).evaluate(points)
    b = BoTorchTask(bt.Branin(noise_std=1.0), seed=3).evaluate(points)
    clean = BoTorchTask(bt.Branin()).evaluate(points)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, clean) and np.all(np.abs(a - clean) < 6.0)


def test_botorch_constrained_function_needs_fail_handling():
    with pytest.raises(ValueError, match="constraint_handling"):
        BoTorchTask(bt.PressureVessel())
    fn = bt.PressureVessel()
    task = BoTorchTask(fn, constraint_handling="fail")
    points = task.space.sample_points(64, seed=1)
    values = task.evaluate(points)
    X = torch.tensor([[p[n] for n in task.space.names] for p in points], dtype=torch.double)
    feasible = fn.is_feasible(X, noise=False).numpy()
    assert feasible.any() and (~feasible).any()
    assert np.all(np.isnan(values[~feasible]))
    np.testing.assert_allclose(values[feasible], fn.evaluate_true(X).numpy()[feasible])


def test_botorch_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="test_function"):
        BoTorchTask(object())
    with pytest.raises(ValueError, match="constraint_handling"):
        BoTorchTask(bt.Branin(), constraint_handling="ignore")
    with pytest.raises(ValueError, match="function 'Nope'.*allowed"):
        build_task("botorch", function="Nope")
    with pytest.raises(ValueError, match="function"):
        build_task("botorch")


# -------------------------------------------------------------------------------- pymoo
def test_pymoo_rastrigin_by_name():
    task = build_task("pymoo", problem="rastrigin", n_var=5)
    assert task.name == "pymoo_rastrigin" and len(task.space) == 5
    assert all(isinstance(p, Real) and (p.lb, p.ub) == (-5.0, 5.0) for p in task.space.params)
    points, values = _batch(task)
    assert values.shape == (8,) and np.all(np.isfinite(values))
    X = np.array([[p[n] for n in task.space.names] for p in points])
    np.testing.assert_allclose(values, get_problem("rastrigin", n_var=5).evaluate(X).reshape(-1))
    assert task.optimum == 0.0 and task({n: 0.0 for n in task.space.names}) == 0.0


def test_pymoo_integer_vtype_becomes_integer_params():
    class IntSquare(Problem):
        def __init__(self):
            super().__init__(n_var=3, n_obj=1, xl=-2.5, xu=4.0, vtype=int)

        def _evaluate(self, x, out, *args, **kwargs):
            assert np.issubdtype(x.dtype, np.integer)
            out["F"] = np.sum((x - 1) ** 2, axis=1)

    task = PymooTask(IntSquare())
    assert all(isinstance(p, Integer) and (p.lb, p.ub) == (-2, 4) for p in task.space.params)
    _, values = _batch(task)
    assert np.all(values == np.round(values))
    assert task({n: 1 for n in task.space.names}) == 0.0 and task.optimum is None


def test_pymoo_constrained_knapsack():
    knapsack = Knapsack(4, np.array([3, 4, 5, 6]), np.array([4, 5, 6, 7]), 9)
    with pytest.raises(ValueError, match="Knapsack.*constraint_handling"):
        PymooTask(knapsack)
    task = PymooTask(knapsack, constraint_handling="fail")
    assert all(isinstance(p, Boolean) for p in task.space.params)
    assert task({"x00": True, "x01": False, "x02": False, "x03": True}) == -11.0  # weight 9 <= 9
    assert np.isnan(task({"x00": True, "x01": True, "x02": True, "x03": False}))  # weight 12 > 9


def test_pymoo_equality_constraints_use_a_tolerance():
    class OnCircle(Problem):
        def __init__(self):
            super().__init__(n_var=2, n_obj=1, n_eq_constr=1, xl=-2.0, xu=2.0)

        def _evaluate(self, x, out, *args, **kwargs):
            out["F"] = x[:, 0] + x[:, 1]
            out["H"] = x[:, 0] ** 2 + x[:, 1] ** 2 - 1.0

    task = PymooTask(OnCircle(), constraint_handling="fail")
    assert task({"x00": 1.0, "x01": 0.0}) == 1.0
    assert np.isnan(task({"x00": 0.5, "x01": 0.0}))


def test_pymoo_mixed_variables():
    class Mixed(ElementwiseProblem):
        def __init__(self):
            variables = {"b": Binary(), "c": Choice(options=["add", "mul"]), "i": PymooInteger(bounds=(0, 3)),
                         "r": PymooReal(bounds=(-1.0, 1.0))}
            super().__init__(vars=variables, n_obj=1)

        def _evaluate(self, X, out, *args, **kwargs):
            base = X["i"] + X["r"] if X["c"] == "add" else X["i"] * X["r"]
            out["F"] = base + (10.0 if X["b"] else 0.0)

    task = PymooTask(Mixed())
    assert [type(p) for p in task.space.params] == [Boolean, Categorical, Integer, Real]
    points, values = _batch(task)
    expected = [(p["i"] + p["r"] if p["c"] == "add" else p["i"] * p["r"]) + 10.0 * p["b"] for p in points]
    np.testing.assert_allclose(values, expected)


def test_pymoo_bad_inputs_name_the_problem_or_field():
    with pytest.raises(ValueError, match="ZDT1.*n_obj"):
        PymooTask(get_problem("zdt1"))
    with pytest.raises(ValueError, match="problem must be a pymoo Problem"):
        PymooTask("rastrigin")
    with pytest.raises(ValueError, match="problem 'nope'"):
        build_task("pymoo", problem="nope")
    with pytest.raises(ValueError, match="G1.*constraint_handling"):
        build_task("pymoo", problem="g1")
    with pytest.raises(ValueError, match="problem: give the name exactly once"):
        build_task("pymoo")


def test_pymoo_constrained_by_name_with_fail_handling():
    task = build_task("pymoo", problem="g1", constraint_handling="fail")
    _, values = _batch(task)
    assert values.shape == (8,) and task.optimum == -15.0
    # G1's known optimum is feasible and attains -15.
    best = dict(zip(task.space.names, [1.0] * 9 + [3.0, 3.0, 3.0, 1.0]))
    assert task(best) == pytest.approx(-15.0)
