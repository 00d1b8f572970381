"""The ask/tell contract: failures, history, best, pending points, seeds and save/load."""

import math

import numpy as np
import pytest

from mcbo.solvers import RandomSearch, build_solver
from mcbo.space import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", -1, 1), Integer("n", 0, 5), Categorical("c", ["a", "b"])])


def f(p):
    return p["x"] ** 2 + p["n"] + (p["c"] == "b")


def test_failed_evaluations_are_recorded_and_skipped(space):
    solver = RandomSearch(space, seed=0)
    points = solver.ask(4)
    solver.tell(points, [1.0, float("nan"), None, math.inf], errors=[None, None, None, None])
    solver.tell(solver.ask(1), [0.5], errors=["RuntimeError: boom"])
    h = solver.history
    assert list(h["status"]) == ["ok", "failed", "failed", "failed", "failed"]
    assert "boom" in h["error"].iloc[4]
    assert len(solver.y) == 1 and solver.best[1] == 1.0


def test_optimize_survives_a_raising_black_box(space):
    calls = {"n": 0}

    def flaky(p):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("simulator crashed")
        return f(p)

    solver = RandomSearch(space, seed=0)
    point, value = solver.optimize(flaky, 12, batch_size=2)
    h = solver.history
    assert len(h) == 12 and (h["status"] == "failed").sum() == 4
    assert h["error"].str.contains("simulator crashed").sum() == 4
    assert value == pytest.approx(h.loc[h["status"] == "ok", "value"].min())
    assert f(point) == pytest.approx(value)
    assert h["best_value"].is_monotonic_decreasing


def test_pending_points_and_validation(space):
    solver = RandomSearch(space, seed=0)
    points = solver.ask(3)
    assert solver.pending == points
    solver.tell(points[:1], [1.0])
    assert solver.pending == points[1:]
    with pytest.raises(ValueError, match="positive integer"):
        solver.ask(0)
    with pytest.raises(ValueError, match="2 points but 1 values"):
        solver.tell(points[1:], [1.0])
    with pytest.raises(ValueError, match="'x'"):
        solver.tell([{"x": 5.0, "n": 0, "c": "a"}], [1.0])


def test_user_points_can_be_told(space):
    solver = RandomSearch(space, seed=0)
    solver.tell({"x": 0.0, "n": 0, "c": "a"}, 0.0)
    assert solver.best == ({"x": 0.0, "n": 0, "c": "a"}, 0.0)


def test_seeds_reproduce_and_differ(space):
    a = RandomSearch(space, seed=1).ask(5)
    assert a == RandomSearch(space, seed=1).ask(5)
    assert a != RandomSearch(space, seed=2).ask(5)


def test_save_load_continues_identically(space, tmp_path):
    solver = RandomSearch(space, seed=3)
    solver.optimize(f, 7)
    pending = solver.ask(2)
    solver.save(tmp_path / "state.json")
    assert b"pickle" not in (tmp_path / "state.json").read_bytes()
    restored = RandomSearch(space, seed=99)
    restored.load(tmp_path / "state.json")
    assert restored.pending == pending
    assert restored.history.drop(columns=["ask_seconds", "eval_seconds"]).equals(
        solver.history.drop(columns=["ask_seconds", "eval_seconds"]))
    assert restored.ask(3) == solver.ask(3)


def test_load_rejects_other_spaces(space, tmp_path):
    solver = RandomSearch(space, seed=0)
    solver.save(tmp_path / "s.json")
    other = RandomSearch(SearchSpace([Real("x", -1, 1)]), seed=0)
    with pytest.raises(ValueError, match="different search space"):
        other.load(tmp_path / "s.json")


def test_registry_errors(space):
    with pytest.raises(ValueError, match="unknown solver recipe 'nope'"):
        build_solver("nope", space)
    with pytest.raises(ValueError, match="unknown solver kind 'magic'"):
        build_solver({"solver": "magic"}, space)
    with pytest.raises(ValueError, match="random search method"):
        build_solver({"solver": "rs", "method": "grid"}, space)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['colour'\]"):
        build_solver({"solver": "rs", "colour": "red"}, space)
    assert np.isfinite(build_solver("rs", space, seed=0).optimize(f, 3)[1])


def test_set_pending_replaces_the_pending_points_and_keeps_known_ask_times(space):
    solver = RandomSearch(space, seed=0)
    asked = solver.ask(2)
    elsewhere = {"x": 0.5, "n": 1, "c": "a"}
    solver.set_pending([asked[1], elsewhere])
    assert solver.pending == [asked[1], elsewhere]
    solver.tell(asked[1], 1.0)
    assert not math.isnan(solver.history["ask_seconds"].iloc[0])  # the ask time of a point asked here survives
    with pytest.raises(ValueError, match="'n'"):
        solver.set_pending([{"x": 0.5, "n": 9, "c": "a"}])


def test_on_told_sees_ok_and_failed_records_in_order(space):
    seen = []

    class Recording(RandomSearch):
        def _on_told(self, records):
            seen.extend((r["status"], r["point"]["n"]) for r in records)

    solver = Recording(space, seed=0)
    points = [{"x": 0.0, "n": i, "c": "a"} for i in range(3)]
    solver.tell(points, [1.0, None, 2.0])
    assert seen == [("ok", 0), ("failed", 1), ("ok", 2)]


def test_tell_accepts_every_real_scalar_type(space):
    import decimal
    import fractions

    import torch

    solver = RandomSearch(space, seed=0)
    values = [torch.tensor(0.5), np.float32(0.25), np.array(2.0), decimal.Decimal("0.5"), fractions.Fraction(1, 3),
              True, 3, np.int64(4)]
    solver.tell(solver.ask(len(values)), values)
    h = solver.history
    assert (h["status"] == "ok").all()
    assert list(h["value"]) == pytest.approx([0.5, 0.25, 2.0, 0.5, 1 / 3, 1.0, 3.0, 4.0])
    solver.tell(solver.ask(3), ["0.5", torch.tensor([1.0, 2.0]), decimal.Decimal("NaN")])
    assert list(solver.history["status"].iloc[-3:]) == ["failed"] * 3


def test_an_array_of_several_numbers_is_no_value(space):
    import torch

    from mcbo.solvers.base import _finite_real

    assert _finite_real(np.array([[3.0]])) == 3.0 and _finite_real(torch.tensor([[2.0]])) == 2.0
    for array in (np.array([1.0, 2.0]), np.array([]), np.ones((2, 2)), torch.tensor([1.0, 2.0])):
        assert _finite_real(array) is None
    solver = RandomSearch(space, seed=0)
    point = solver.ask(1)[0]
    with pytest.raises(ValueError, match=r"tell: got 1 points but 2 values"):  # a lone array is several values
        solver.tell(point, [np.array([1.0, 2.0])])
    with pytest.raises(ValueError, match=r"eval_seconds must be non-negative numbers \(or None\), got "
                                         r"array\(\[1\., 2\.\]\)"):
        solver.tell(point, 1.0, eval_seconds=[np.array([1.0, 2.0])])
    assert len(solver.history) == 0 and len(solver.pending) == 1
    points = [point, *solver.ask(1)]
    solver.tell(points, [np.array([1.0, 2.0]), 0.5])  # among other values: a failed evaluation naming it
    assert list(solver.history["status"]) == ["failed", "ok"]
    assert solver.history["error"].iloc[0] == "invalid value array([1., 2.])"


def test_a_bad_entry_in_a_batch_records_nothing(space):
    solver = RandomSearch(space, seed=0)
    points = solver.ask(2)
    with pytest.raises(ValueError, match="eval_seconds"):
        solver.tell(points, [1.0, 2.0], eval_seconds=[0.1, "slow"])
    with pytest.raises(ValueError, match="'n'"):
        solver.tell([points[0], {**points[1], "n": 99}], [1.0, 2.0])
    assert len(solver.history) == 0 and len(solver.pending) == 2


def test_tell_dataframe_loads_prior_evaluations_and_another_runs_history(space):
    import pandas as pd

    prior = pd.DataFrame({"x": [0.1, -0.5, 0.9], "n": [1, 2, 3], "c": ["a", "b", "a"], "value": [1.0, None, 2.0],
                          "notes": ["ignored", "", ""]})
    solver = RandomSearch(space, seed=0)
    solver.tell_dataframe(prior)
    assert list(solver.history["status"]) == ["ok", "failed", "ok"]
    assert solver.best == ({"x": 0.1, "n": 1, "c": "a"}, 1.0)
    other = RandomSearch(space, seed=1)
    other.tell_dataframe(solver.history)
    assert solver.history.drop(columns=["ask_seconds"]).equals(other.history.drop(columns=["ask_seconds"]))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['value'\]"):
        solver.tell_dataframe(prior.drop(columns=["value"]))
