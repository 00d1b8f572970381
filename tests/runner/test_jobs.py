"""One job: ask / evaluate / tell with failures recorded, messages in order, exact resumption."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec
from mcbo.runner.jobs import evaluate_point, run_job, solver_overrides
from mcbo.space import Categorical, SearchSpace
from mcbo.tasks import Task


def _job(budget: int, batch_size: int = 2, seed: int = 3) -> JobSpec:
    return JobSpec(solver=SolverSpec("rs", "rs"), task=TaskSpec("ackley_cat", "ackley_cat", {"n_dims": 6}),
                   seed=seed, budget=budget, batch_size=batch_size)


def _collect(job: JobSpec, history: Sequence[dict] = (), state: str | None = None,
             checkpoint_seconds: float = 0.0) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    run_job(job, 7, messages.append, history=history, state=state, checkpoint_seconds=checkpoint_seconds)
    return messages


def _evals(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["type"] == "eval"]


class _Flaky(Task):
    """x0 = 'boom' raises, x0 = 'nan' returns NaN, otherwise the index of x1."""

    name = "flaky"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._space = SearchSpace([Categorical("x0", ["ok", "boom", "nan"]), Categorical("x1", [0, 1, 2])])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points):
        if points[0]["x0"] == "boom":
            raise RuntimeError("simulator crashed")
        return np.array([np.nan if p["x0"] == "nan" else float(p["x1"]) for p in points])


def test_failed_evaluations_carry_their_error() -> None:
    task = _Flaky()
    assert evaluate_point(task, {"x0": "ok", "x1": 2})[:2] == (2.0, None)
    value, error, seconds = evaluate_point(task, {"x0": "boom", "x1": 2})
    assert value is None and error == "RuntimeError: simulator crashed" and seconds >= 0
    assert evaluate_point(task, {"x0": "nan", "x1": 0})[:2] == (None, "task returned a non-finite value (nan)")
    assert evaluate_point(task, {"x0": "ok", "x1": 9})[1].startswith("ValueError")


def test_messages_cover_every_evaluation_in_order() -> None:
    messages = _collect(_job(budget=5, batch_size=2))
    evals = _evals(messages)
    assert [m["index"] for m in evals] == [0, 1, 2, 3, 4]
    assert [m["batch"] for m in evals] == [0, 0, 1, 1, 2]
    assert messages[-1]["type"] == "done" and messages[-1]["n_evaluations"] == 5
    assert messages[-1]["best_value"] == min(m["value"] for m in evals)
    state = json.loads([m for m in messages if m["type"] == "state"][-1]["state"])
    assert len(state["records"]) == 5
    assert all(m["run_id"] == 7 and m["error"] is None and m["acq_seconds"] >= 0 for m in evals)


def _as_history(evals: list[dict]) -> list[dict]:
    return [{k: m[k] for k in ("run_id", "index", "batch", "point", "value", "error", "fit_seconds",
                               "acq_seconds", "eval_seconds")} for m in evals]


def test_resuming_from_a_checkpoint_continues_exactly() -> None:
    straight = _evals(_collect(_job(budget=9)))
    first = _collect(_job(budget=4))
    state = [m for m in first if m["type"] == "state"][-1]["state"]
    rest = _evals(_collect(_job(budget=9), history=_as_history(_evals(first)), state=state))
    assert [m["index"] for m in rest] == [4, 5, 6, 7, 8]
    assert [m["point"] for m in _evals(first) + rest] == [m["point"] for m in straight]


def test_resuming_without_checkpoint_tells_the_stored_points() -> None:
    first = _evals(_collect(_job(budget=3)))  # killed after the first batch + one point of the second
    rest = _evals(_collect(_job(budget=7), history=_as_history(first), state=None))
    assert [m["index"] for m in rest] == [3, 4, 5, 6]
    assert [m["batch"] for m in rest] == [2, 2, 3, 3]


def test_a_checkpoint_ahead_of_the_history_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    first = _collect(_job(budget=4))
    state = [m for m in first if m["type"] == "state"][-1]["state"]
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.jobs"):
        rest = _evals(_collect(_job(budget=6), history=_as_history(_evals(first))[:2], state=state))
    assert "ignoring the stored solver checkpoint" in caplog.text
    assert [m["index"] for m in rest] == [2, 3, 4, 5]


def test_suite_n_init_goes_only_to_recipes_that_declare_one() -> None:
    assert solver_overrides(SolverSpec("rs", "rs"), n_init=5) == {}
    inline = SolverSpec("bo", {"solver": "bo", "name": "bo", "n_init": 20})
    assert solver_overrides(inline, n_init=5) == {"n_init": 5}
    own = SolverSpec("bo2", "casmopolitan", {"n_init": 3})
    assert solver_overrides(own, n_init=5) == {"n_init": 3}
