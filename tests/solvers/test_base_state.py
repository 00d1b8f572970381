"""Solver save files and ``ask`` sizes: a state is checked before anything is restored (issue 18).

The catalogue of hand edits (NaN marked ok, unknown statuses, duplicate indices, garbage pending points, ...)
is ``tests/reliability/faults.py``; here: the round trip still works, the edits the issue names fail with
the field named, a failed load changes nothing, and ``ask`` refuses absurd batch sizes.
"""

import json
import math

import pytest

from mcbo.solvers import build_solver
from mcbo.solvers.base import MAX_ASK
from mcbo.space import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", 0, 1), Integer("k", 0, 9), Categorical("c", ["a", "b"])])


def run(space, recipe="rs"):
    solver = build_solver(recipe, space, seed=0)
    points = solver.ask(3)
    solver.tell(points, [1.0, None, 0.5], errors=[None, "crashed", None])
    solver.ask(2)
    return solver


def test_a_state_with_failures_and_pending_points_round_trips(space, tmp_path):
    solver = run(space)
    solver.save(tmp_path / "s.json")
    assert "NaN" in (tmp_path / "s.json").read_text()  # the failed record's value
    loaded = build_solver("rs", space, seed=5)
    loaded.load(tmp_path / "s.json")
    assert loaded.pending == solver.pending
    assert loaded.history.drop(columns=["value"]).equals(solver.history.drop(columns=["value"]))
    assert math.isnan(loaded.history["value"][1]) and loaded.best == solver.best
    assert loaded.ask(2) == solver.ask(2)
    in_memory = build_solver("rs", space, seed=5)
    in_memory.load_state_dict(solver.state_dict())  # as the suite runner restores it
    assert in_memory.history.drop(columns=["value"]).equals(solver.history.drop(columns=["value"]))


@pytest.mark.parametrize("edit, field", [
    (lambda s: s["records"][0].update(value=float("nan")), r"records\[0\]\.value is nan with status 'ok'"),
    (lambda s: s["records"][1].update(status="maybe"), r"records\[1\]\.status is 'maybe'; allowed: \['ok', 'failed'\]"),
    (lambda s: s["records"][2].update(index=0), r"records\[2\]\.index is 0; allowed: 2"),
    (lambda s: s["pending"].append({"point": "garbage"}), r"pending\[2\]\.point is not a point of the search space"),
    (lambda s: s["pending"].append({"pointt": {}}), r"pending\[2\] must be an object with a 'point'"),
    (lambda s: s["records"][0].pop("point"), r"records\[0\] must be an object with keys"),
    (lambda s: s.pop("np_rng"), r"missing field\(s\) \['np_rng'\]"),
])
def test_hand_edits_raise_one_value_error_naming_the_file_and_field(space, tmp_path, edit, field):
    state = json.loads(json.dumps(run(space).state_dict()))
    edit(state)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(state))
    solver = run(space)
    before = (solver.history.to_json(), solver.pending, solver.np_rng.bit_generator.state)
    with pytest.raises(ValueError, match=field) as info:
        solver.load(path)
    assert str(path) in str(info.value)
    assert (solver.history.to_json(), solver.pending, solver.np_rng.bit_generator.state) == before
    assert len(solver.ask(1)) == 1  # and it still works (no KeyError: 'point' at the next ask)


def test_a_bad_extra_state_is_rolled_back(space, tmp_path):
    solver = run(space, "hc")
    state = json.loads(json.dumps(solver.state_dict()))
    state["extra"] = {"current": "garbage"}
    fresh = run(space, "hc")
    before = fresh.state_dict()
    with pytest.raises(ValueError, match="field 'extra' is not a valid hc state"):
        fresh.load_state_dict(state)
    assert json.dumps(fresh.state_dict(), default=str) == json.dumps(before, default=str)


def test_non_json_and_non_object_files_are_refused(space, tmp_path):
    solver = run(space)
    (tmp_path / "a.json").write_text('{"version": 1, "records": [')
    with pytest.raises(ValueError, match="is not valid JSON"):
        solver.load(tmp_path / "a.json")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        solver.load(tmp_path / "b.json")


@pytest.mark.parametrize("n", [0, -1, MAX_ASK + 1, 10**9, 2.0, True, "3"])
def test_ask_refuses_batches_outside_one_to_max_ask(space, n):
    solver = build_solver("rs", space, seed=0)
    with pytest.raises(ValueError, match=rf"positive integer of at most {MAX_ASK}"):
        solver.ask(n)
    assert solver.pending == []
