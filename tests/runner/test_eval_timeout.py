"""``eval_timeout`` of suites: a hung evaluation is stopped and stored as failed, in-process and on Dask workers."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec, parse_config
from mcbo.runner.executor import run_suite
from mcbo.runner.jobs import IsolatedEvaluator, evaluate_point, job_evaluator
from mcbo.solvers.parallel import BlackBoxPicklingError, dump_black_box
from mcbo.tasks import build_task
from tests.runner.hanging_task import HANG_TASK, UNPICKLABLE_TASK
from tests.runner.suite_faults import bench_argv, kill_group, subprocess_env

MODULE = "tests.runner.hanging_task"
#: Seconds a timed-out evaluation may run past its limit before it is stored (the limit is kept within ~50 ms).
MARGIN = 0.5


def _suite() -> dict[str, Any]:
    """rs on every point of :data:`HANG_TASK` (4 evaluations: a, b, hang, crash) with a suite limit of 1.5 s and
    a task of its own limit, 0.5 s."""
    return {"name": "timeouts", "budget": 4, "seeds": [0], "solvers": ["rs"], "eval_timeout": 1.5,
            "tasks": [HANG_TASK, {"task": HANG_TASK, "name": "short", "eval_timeout": 0.5}], "imports": [MODULE]}


def _rows(db: Path) -> dict[tuple, tuple]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT task, idx, point, value, error, eval_seconds FROM results").fetchall()
    finally:
        conn.close()
    return {r[:2]: r[2:] for r in rows}


def _check_timeouts(db: Path) -> None:
    rows = _rows(db)
    assert len(rows) == 8
    for task, limit in ((HANG_TASK, 1.5), ("short", 0.5)):
        by_point = {point: (value, error, seconds) for (t, _), (point, value, error, seconds) in rows.items()
                    if t == task}
        value, error, seconds = by_point['{"x": "hang"}']
        assert value is None and error.startswith(f"timeout: the evaluation ran longer than eval_timeout={limit:g} s")
        assert limit <= seconds <= limit + MARGIN
        value, error, _ = by_point['{"x": "crash"}']
        assert value is None and error.startswith("crashed: ") and "SIGSEGV" in error
        assert (by_point['{"x": "a"}'][:2], by_point['{"x": "b"}'][:2]) == ((1.0, None), (2.0, None))


def test_a_hung_evaluation_is_stopped_in_process_and_the_run_goes_on(tmp_path: Path) -> None:
    start = time.monotonic()
    runs = run_suite(parse_config(_suite()), tmp_path / "r.db", progress=False)
    assert time.monotonic() - start < 30
    assert (runs["status"] == "done").all() and (runs["n_evaluations"] == 4).all()
    assert (runs["n_failed"] == 2).all() and (runs["best_value"] == 1.0).all()
    _check_timeouts(tmp_path / "r.db")


def test_a_hung_evaluation_is_stopped_on_dask_workers(tmp_path: Path) -> None:
    """Each job starts its evaluation worker on a (daemonic) Dask worker process; ~15 s, most of it the cluster."""
    pytest.importorskip("distributed")
    runs = run_suite(parse_config(_suite()), tmp_path / "w.db", workers=2, progress=False)
    assert (runs["status"] == "done").all() and (runs["n_evaluations"] == 4).all()
    _check_timeouts(tmp_path / "w.db")


def test_a_hung_suite_resumes_with_an_eval_timeout_added(tmp_path: Path, write_config,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """The way out of a suite stuck in an evaluation: stop it, add ``eval_timeout``, run the same command again."""
    unlimited = _suite()
    del unlimited["eval_timeout"], unlimited["tasks"][1]["eval_timeout"]
    db = tmp_path / "r.db"
    proc = subprocess.Popen(bench_argv(write_config(unlimited), db), env=subprocess_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not _running(db):
            time.sleep(0.1)
        assert proc.poll() is None and _running(db)  # stuck in its first evaluation
    finally:
        kill_group(proc)
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.executor"):
        runs = run_suite(parse_config(_suite()), db, progress=False)
    assert "eval_timeout: (none) -> 1.5" in caplog.text
    assert (runs["status"] == "done").all() and (runs["n_evaluations"] == 4).all()
    _check_timeouts(db)


def _running(db: Path) -> bool:
    """Whether ``db`` has a run being evaluated."""
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] > 0
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet
        return False


def test_eval_timeout_changes_where_evaluations_run_not_what_is_stored(tmp_path: Path) -> None:
    """A task that never hangs (crash_cat raises at some points) stores the same rows with and without a limit."""
    config = {"name": "same", "budget": 5, "batch_size": 2, "seeds": [0], "solvers": ["rs"], "tasks": ["crash_cat"]}
    run_suite(parse_config(config), tmp_path / "plain.db", progress=False)
    run_suite(parse_config({**config, "eval_timeout": 30}), tmp_path / "limited.db", progress=False)
    plain, limited = _rows(tmp_path / "plain.db"), _rows(tmp_path / "limited.db")
    assert len(plain) == 5
    assert {k: v[:3] for k, v in plain.items()} == {k: v[:3] for k, v in limited.items()}


def _job(task: str, eval_timeout: float | None) -> JobSpec:
    return JobSpec(solver=SolverSpec("rs", "rs"), task=TaskSpec(task, task), seed=0, budget=4, imports=(MODULE,),
                   eval_timeout=eval_timeout)


def test_without_eval_timeout_a_job_evaluates_in_its_own_process() -> None:
    task = build_task("crash_cat")
    points = [{"c0": "a", "c1": "a", "c2": "b", "c3": "c", "c4": "d", "c5": "e"},  # raises
              {"c0": "b", "c1": "a", "c2": "b", "c3": "c", "c4": "d", "c5": "e"}]
    with job_evaluator(task, _job("crash_cat", None)) as evaluate:
        assert not isinstance(evaluate, IsolatedEvaluator)
        in_process = [evaluate(p) for p in points]
    with job_evaluator(task, _job("crash_cat", 30)) as evaluate:
        assert isinstance(evaluate, IsolatedEvaluator)
        isolated = [evaluate(p) for p in points]
    assert [r[:2] for r in in_process] == [r[:2] for r in isolated] == [r[:2] for r in
                                                                        (evaluate_point(task, p) for p in points)]
    assert in_process[0][1] == "EvaluationCrashed: c0 == c1 == 'a' crashes" and in_process[1][:2] == (1.0, None)


def test_a_task_that_does_not_pickle_is_built_in_the_worker_process(caplog: pytest.LogCaptureFixture) -> None:
    task = build_task(UNPICKLABLE_TASK)
    with pytest.raises(BlackBoxPicklingError):
        dump_black_box(task)
    with caplog.at_level(logging.INFO, logger="mcbo.runner.jobs"), \
            IsolatedEvaluator(task, _job(UNPICKLABLE_TASK, 30), 30) as evaluate:
        assert [evaluate({"x": x})[:2] for x in ("a", "b")] == [(1.0, None), (2.0, None)]
    assert f"task {UNPICKLABLE_TASK!r} does not pickle" in caplog.text
