"""What ``tell`` accepts (docs/solvers.md, "What tell records"): points never asked, and the same point twice."""

import math

import pytest

from mcbo.solvers import RandomSearch, build_solver
from mcbo.space import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", -1, 1), Integer("n", 0, 5), Categorical("c", ["a", "b"])])


POINT = {"x": 0.25, "n": 2, "c": "a"}


def test_a_point_never_asked_is_recorded_and_used_as_data(space):
    solver = RandomSearch(space, seed=0)
    solver.tell(POINT, 1.5)
    h = solver.history
    assert len(h) == 1 and h["status"].iloc[0] == "ok" and math.isnan(h["ask_seconds"].iloc[0])
    assert solver.X.shape == (1, space.d) and solver.y.tolist() == [1.5]  # what a model is fitted on
    assert solver.best == (POINT, 1.5) and solver.pending == []
    assert POINT not in solver.ask(20)  # told points are never proposed again


def test_the_same_point_told_twice_is_two_evaluations(space):
    solver = RandomSearch(space, seed=0)
    solver.tell(POINT, 3.0)
    solver.tell(POINT, 1.0)
    h = solver.history
    assert len(h) == 2 == solver.n_evaluations
    assert h[["x", "n", "c"]].to_dict(orient="records") == [POINT, POINT]
    assert h["value"].tolist() == [3.0, 1.0] and h["best_value"].tolist() == [3.0, 1.0]
    assert solver.X.shape == (2, space.d) and solver.y.tolist() == [3.0, 1.0]  # both rows are data
    assert solver.best == (POINT, 1.0)


def test_an_asked_point_told_twice_takes_its_ask_time_once(space):
    solver = RandomSearch(space, seed=0)
    point = solver.ask(1)[0]
    solver.tell(point, 0.5)
    solver.tell(point, 0.7)
    seconds = solver.history["ask_seconds"].tolist()
    assert not math.isnan(seconds[0]) and math.isnan(seconds[1])
    assert solver.pending == []


def test_a_point_failed_then_told_ok_has_both_rows(space):
    solver = RandomSearch(space, seed=0)
    solver.tell(POINT, None)
    solver.tell(POINT, 2.0)
    assert solver.history["status"].tolist() == ["failed", "ok"]
    assert solver.X_failed.shape == (1, space.d) and solver.X.shape == (1, space.d)
    assert solver.best == (POINT, 2.0)


def test_bo_counts_told_duplicates_toward_its_initial_design_and_fits_on_them(space):
    solver = build_solver("casmopolitan", space, seed=0, n_init=3)
    solver.tell([POINT, POINT], [1.0, 3.0])
    first = solver.ask(1)  # one initial-design point left: two of the three are told
    solver.tell(first, [0.5])
    assert solver.X.shape == (3, space.d)
    point = solver.ask(1)[0]  # the model is fitted on data holding the same point twice
    assert point != POINT and space.validate(point) == point
