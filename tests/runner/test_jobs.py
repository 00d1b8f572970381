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


def _checkpoint(messages: list[dict], n: int) -> str:
    """The checkpoint sent once the first ``n`` evaluations were told."""
    (state,) = [m["checkpoint"]["state"] for m in messages if m.get("checkpoint", {}).get("n_evaluations") == n]
    return state


def test_messages_cover_every_evaluation_in_order() -> None:
    messages = _collect(_job(budget=5, batch_size=2))
    assert messages[0] == {"type": "start", "run_id": 7,
                           "environment": {"torch_threads": 1, "blas_threads": 1, "global_rngs": "seeded per batch"}}
    evals = _evals(messages)
    assert [m["index"] for m in evals] == [0, 1, 2, 3, 4]
    assert [m["batch"] for m in evals] == [0, 0, 1, 1, 2]
    assert messages[-1]["type"] == "done" and messages[-1]["n_evaluations"] == 5
    assert messages[-1]["best_value"] == min(m["value"] for m in evals)
    # the last evaluation of each batch carries the checkpoint taken once that batch was told
    assert [m.get("checkpoint", {}).get("n_evaluations") for m in evals] == [None, 2, None, 4, 5]
    assert len(json.loads(_checkpoint(messages, 5))["records"]) == 5
    assert not [m for m in messages if m["type"] == "state"]
    assert all(m["run_id"] == 7 and m["error"] is None and m["acq_seconds"] >= 0 for m in evals)


def _as_history(evals: list[dict]) -> list[dict]:
    return [{k: m[k] for k in ("run_id", "index", "batch", "point", "value", "error", "fit_seconds",
                               "acq_seconds", "eval_seconds")} for m in evals]


def _key(evals: list[dict]) -> list[tuple]:
    return [(m["index"], m["batch"], m["point"], m["value"], m["error"]) for m in evals]


def test_resuming_from_a_checkpoint_continues_exactly() -> None:
    straight = _evals(_collect(_job(budget=9)))
    first = _collect(_job(budget=4))
    state = _checkpoint(first, 4)
    rest = _evals(_collect(_job(budget=9), history=_as_history(_evals(first)), state=state))
    assert [m["index"] for m in rest] == [4, 5, 6, 7, 8]
    assert _key(_evals(first) + rest) == _key(straight)


@pytest.mark.parametrize("stored, checkpoint_after", [
    (7, 6),     # killed mid-batch (batch size 3): one evaluation of the third batch stored
    (8, 6),     # two of three stored
    (7, 3),     # and the checkpoint two batches behind (checkpoint_seconds > 0)
    (5, None),  # no checkpoint at all (killed before the first one was stored, or it was refused)
    (6, 3),     # a whole batch stored after the checkpoint (an older database)
])
def test_a_resumed_run_asks_what_the_uninterrupted_run_asked(stored: int, checkpoint_after: int | None) -> None:
    job = _job(budget=12, batch_size=3)
    straight_messages = _collect(job)
    straight = _evals(straight_messages)
    state = _checkpoint(straight_messages, checkpoint_after) if checkpoint_after else None
    rest = _evals(_collect(job, history=_as_history(straight[:stored]), state=state))
    assert _key(straight[:stored] + rest) == _key(straight)  # same points, batches and values, in order
    assert [m["index"] for m in rest] == list(range(stored, 12))
    assert rest[-1]["checkpoint"]["n_evaluations"] == 12


def test_a_solver_that_does_not_repeat_itself_is_told_the_stored_points(monkeypatch: pytest.MonkeyPatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    from mcbo.solvers.base import Solver

    job = _job(budget=8, batch_size=3)
    straight = _evals(_collect(job))
    original = Solver.ask

    def drifting(self, n=1):  # a solver whose asks depend on something not in its checkpoint
        self.np_rng.random()
        return original(self, n)

    monkeypatch.setattr(Solver, "ask", drifting)
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.jobs"):
        rest = _evals(_collect(job, history=_as_history(straight[:4]), state=None))
    assert "did not ask the stored points of batch 0 again" in caplog.text
    assert "differs from an uninterrupted run" in caplog.text
    assert [m["index"] for m in rest] == [4, 5, 6, 7] and [m["batch"] for m in rest] == [2, 2, 2, 3]
    points = [m["point"] for m in straight[:4] + rest]
    assert len(set(points)) == 8  # the stored points were told: none is asked again


def test_a_checkpoint_ahead_of_the_history_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    straight = _evals(_collect(_job(budget=6)))
    first = _collect(_job(budget=4))
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.jobs"):
        rest = _evals(_collect(_job(budget=6), history=_as_history(_evals(first))[:2], state=_checkpoint(first, 4)))
    assert "ignoring the stored solver checkpoint" in caplog.text
    assert [m["index"] for m in rest] == [2, 3, 4, 5]
    assert _key(_evals(first)[:2] + rest) == _key(straight)


def test_a_job_pins_threads_and_global_generators_and_restores_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    import torch

    from mcbo.runner import jobs

    seen = []

    class _Probe(_Flaky):
        def _evaluate(self, points):
            seen.append((torch.get_num_threads(), random.random(), float(np.random.random()), float(torch.rand(1))))
            return super()._evaluate(points)

    monkeypatch.setattr(jobs, "build_job_task", lambda job: _Probe())
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        state = (random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state())
        jobs.run_job(_job(budget=4, batch_size=2), 1, [].append)
        assert torch.get_num_threads() == 2  # the caller's settings come back
        assert random.getstate() == state[0] and np.random.get_state()[1].tolist() == state[1]
        assert torch.equal(torch.get_rng_state(), state[2])
        first = list(seen)
        seen.clear()
        random.random(), np.random.random(), torch.rand(1)  # other global draws in between change nothing
        jobs.run_job(_job(budget=4, batch_size=2), 1, [].append)
    finally:
        torch.set_num_threads(before)
    assert [s[0] for s in first] == [1, 1, 1, 1]
    assert seen == first  # the global generators are seeded per batch: the same draws in every run
    assert first[0][1:] != first[2][1:]  # and differently for each batch


def test_suite_n_init_goes_only_to_recipes_that_declare_one() -> None:
    assert solver_overrides(SolverSpec("rs", "rs"), n_init=5) == {}
    inline = SolverSpec("bo", {"solver": "bo", "name": "bo", "n_init": 20})
    assert solver_overrides(inline, n_init=5) == {"n_init": 5}
    own = SolverSpec("bo2", "casmopolitan", {"n_init": 3})
    assert solver_overrides(own, n_init=5) == {"n_init": 3}
