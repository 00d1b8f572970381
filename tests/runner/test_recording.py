"""The recorder: the only writer of a suite's database, whichever backend runs the jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec
from mcbo.runner.recording import Recorder
from mcbo.runner.storage import ResultsDB


def _job() -> JobSpec:
    return JobSpec(solver=SolverSpec("rs", "rs"), task=TaskSpec("ackley_cat", "ackley_cat", {}), seed=0, budget=2)


def _eval(run_id: int, index: int) -> dict:
    return {"type": "eval", "run_id": run_id, "index": index, "batch": index, "point": '{"x": 1}', "value": 1.0,
            "error": None, "fit_seconds": 0.0, "acq_seconds": 0.1, "eval_seconds": 0.2}


def test_messages_become_rows_states_and_statuses(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "r.db") as db:
        run = db.ensure_run(_job())
        recorder = Recorder(db, n_jobs=1, jobs_done=0, n_evals=2, evals_done=0, progress=False)
        recorder.start(run)
        assert db.status(run) == "running"
        for message in (_eval(run, 0), _eval(run, 0), {"type": "state", "run_id": run, "n_evaluations": 1,
                                                          "state": "{}"}, _eval(run, 1)):
            recorder.handle(message)
        assert db.count(run) == 2 and db.load_state(run) == "{}"
        recorder.handle({"type": "done", "run_id": run})
        recorder.fail(run, _job(), RuntimeError("late"))  # a finished run stays finished
        assert db.status(run) == "done" and recorder.finished == {run}
        with pytest.raises(ValueError, match="unknown job message type 'nope'"):
            recorder.handle({"type": "nope"})
        recorder.close()
