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


def test_a_batchs_last_evaluation_and_its_checkpoint_are_one_transaction(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import sqlite3

    with ResultsDB(tmp_path / "r.db") as db:
        run = db.ensure_run(_job())
        recorder = Recorder(db, n_jobs=1, jobs_done=0, n_evals=2, evals_done=0, progress=False)
        environment = {"torch_threads": 1, "blas_threads": 1}
        recorder.handle({"type": "start", "run_id": run, "environment": environment})
        recorder.handle(_eval(run, 0))
        db.conn.execute("PRAGMA max_page_count = " + str(db.conn.execute("PRAGMA page_count").fetchone()[0]))
        big = {**_eval(run, 1), "checkpoint": {"n_evaluations": 2, "state": "s" * 100_000}}
        with pytest.raises(ValueError, match="the disk is full"):
            recorder.handle(big)  # the checkpoint does not fit: the evaluation is not stored either
        assert db.count(run) == 1 and db.load_state(run) is None
        db.conn.execute("PRAGMA max_page_count = 1000000")
        recorder.handle({**big, "checkpoint": {"n_evaluations": 2, "state": "{}"}})
        assert db.count(run) == 2 and db.load_state(run) == "{}"
        with caplog.at_level(logging.WARNING, logger="mcbo.runner.recording"):
            recorder.handle({"type": "start", "run_id": run, "environment": {"torch_threads": 4, "blas_threads": 4}})
        assert "continues with other settings than it started with" in caplog.text
        recorder.close()
    stored = sqlite3.connect(tmp_path / "r.db").execute("SELECT environment FROM runs").fetchone()[0]
    assert stored == '{"blas_threads": 4, "torch_threads": 4}'
