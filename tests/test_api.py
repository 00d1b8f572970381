"""The public API: ``mcbo.minimize`` and the names exported by ``mcbo``."""

import math
import time

import pandas as pd
import pytest

import mcbo
from mcbo import Boolean, Categorical, Integer, OptimizationResult, Real, SearchSpace, build_solver, minimize
from mcbo.runner.config import BUDGET_RULE


def _space() -> SearchSpace:
    return SearchSpace([
        Real("x", -2.0, 2.0),
        Integer("n", 0, 6),
        Categorical("kind", ["a", "b", "c"]),
        Boolean("flag"),
    ])


def _black_box(p):  # minimum 0 at x=0.5, n=4, kind=b, flag=True
    return (p["x"] - 0.5) ** 2 + abs(p["n"] - 4) + (p["kind"] != "b") + (not p["flag"])


def test_exports():
    for name in ("SearchSpace", "minimize", "OptimizationResult", "build_solver", "build_task", "Real", "Integer",
                 "Ordinal", "Categorical", "Boolean", "Permutation", "Sequence", "__version__"):
        assert name in mcbo.__all__ and getattr(mcbo, name) is not None
    from mcbo.solvers import build_solver as registry_build_solver
    from mcbo.tasks import build_task as registry_build_task

    assert mcbo.build_solver is registry_build_solver and mcbo.build_task is registry_build_task
    with pytest.raises(AttributeError):
        mcbo.no_such_name  # noqa: B018


def test_minimize_finds_a_good_point_on_a_mixed_space():
    result = minimize(_black_box, _space(), 40, solver="casmopolitan", seed=0, n_init=10)
    assert isinstance(result, OptimizationResult)
    assert result.best_value < 1.0
    assert set(result.best_point) == {"x", "n", "kind", "flag"}
    assert math.isclose(result.best_value, _black_box(result.best_point))
    assert isinstance(result.history, pd.DataFrame) and len(result.history) == 40 == result.n_evaluations
    assert result.history["best_value"].iloc[-1] == result.best_value
    assert result.n_failed == 0 and result.success
    assert result.solver.name == "casmopolitan"
    with pytest.raises(AttributeError):  # frozen
        result.best_value = 0.0
    # the same seed gives the same run
    again = minimize(_black_box, _space(), 40, solver="casmopolitan", seed=0, n_init=10)
    assert again.best_value == result.best_value and again.best_point == result.best_point


def test_failed_evaluations_are_counted():
    def flaky(p):
        if p["kind"] == "c":
            raise RuntimeError("cannot evaluate kind c")
        return _black_box(p)

    result = minimize(flaky, _space(), 15, solver="rs", seed=1)
    assert result.n_failed == int((result.history["status"] == "failed").sum()) > 0
    assert result.best_point["kind"] != "c"


def test_a_prebuilt_solver_continues_and_an_inline_recipe_works():
    space = _space()
    solver = build_solver("rs", space, seed=3)
    first = minimize(_black_box, space, 5, solver=solver)
    assert first.solver is solver and len(first.history) == 5
    second = minimize(_black_box, space, 4, solver=first.solver, batch_size=2)
    assert len(second.history) == 9 and second.best_value <= first.best_value
    inline = minimize(_black_box, space, 6, solver={"name": "my-rs", "solver": "rs"}, seed=2)
    assert inline.solver.name == "my-rs" and len(inline.history) == 6


def test_bad_inputs_raise_value_errors():
    space = _space()
    with pytest.raises(ValueError, match="space must be a mcbo.SearchSpace"):
        minimize(_black_box, [Real("x", 0, 1)], 5)
    with pytest.raises(ValueError, match="black_box must be callable"):
        minimize("not a function", space, 5)
    for n in (0, -3, 2.5, True, "10"):  # the rule of `mcbo run --evals` and of suite budgets
        with pytest.raises(ValueError) as err:
            minimize(_black_box, space, n)
        assert str(err.value) == f"n_evaluations: got {n!r}; expected {BUDGET_RULE}"
    with pytest.raises(ValueError, match="n_evaluations: got 0; expected an integer"):
        minimize(_black_box, space, 0, solver=build_solver("rs", space))  # also to continue a run
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        minimize(_black_box, space, 5, batch_size=0)
    with pytest.raises(ValueError, match="unknown solver recipe 'nope'"):
        minimize(_black_box, space, 5, solver="nope")
    with pytest.raises(ValueError, match="solver must be a recipe name"):
        minimize(_black_box, space, 5, solver=42)
    solver = build_solver("rs", space)
    with pytest.raises(ValueError, match="overrides"):
        minimize(_black_box, space, 5, solver=solver, n_init=3)
    with pytest.raises(ValueError, match="another search space"):
        minimize(_black_box, SearchSpace([Real("y", 0, 1)]), 5, solver=solver)


def _hangs_on_c(p):  # module level: worker processes receive it pickled
    if p["kind"] == "c":
        time.sleep(3600)
    return 1.0 + (p["kind"] == "b")


def test_minimize_passes_eval_timeout_and_storage_to_optimize(tmp_path):
    space = SearchSpace([Categorical("kind", ["a", "b", "c"])])
    start = time.monotonic()
    result = minimize(_hangs_on_c, space, 3, solver="rs", eval_timeout=0.5, storage=tmp_path / "run.db")
    assert time.monotonic() - start < 30
    hung = result.history[result.history["kind"] == "c"].iloc[0]
    assert hung["status"] == "failed" and hung["error"].startswith("timeout: ")
    assert 0.5 <= hung["eval_seconds"] <= 1.0
    assert result.n_failed == 1 and result.best_point == {"kind": "a"} and result.best_value == 1.0
    again = minimize(_hangs_on_c, space, 3, solver="rs", eval_timeout=0.5, storage=tmp_path / "run.db")
    assert len(again.history) == 3  # with storage, n_evaluations is the run's total: nothing left to evaluate
    with pytest.raises(ValueError, match="eval_timeout must be a number of seconds > 0"):
        minimize(_hangs_on_c, space, 3, solver="rs", eval_timeout=0)
