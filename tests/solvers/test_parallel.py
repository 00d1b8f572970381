"""Solver.optimize in worker processes and durable runs: time-outs, crashes, kill -9 and resume, a Dask cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcbo.solvers import RandomSearch, build_solver
from mcbo.solvers.parallel import BlackBoxPicklingError, RunStore
from mcbo.space import Categorical, Integer, Real, SearchSpace

REPO = Path(__file__).resolve().parents[2]
SPACE = SearchSpace([Real("x", -1, 1), Integer("n", 0, 5), Categorical("c", ["a", "b"])])


def objective(p: dict[str, Any]) -> float:
    return p["x"] ** 2 + p["n"] + (p["c"] == "b")


class Once:
    """Misbehaves (``how``: hang, segv, exit) at its first call across every process, then is :func:`objective`.

    The first call is the one that creates ``marker`` (``O_EXCL``), so exactly one evaluation misbehaves
    whichever worker makes it. Module-level, so it pickles by reference for worker processes.
    """

    def __init__(self, marker: Path, how: str, delay: float = 0.0) -> None:
        self.marker, self.how, self.delay = str(marker), how, delay

    def __call__(self, p: dict[str, Any]) -> float:
        time.sleep(self.delay)
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return objective(p)
        if self.how == "hang":
            time.sleep(3600)
        elif self.how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.how == "exit":
            os._exit(3)
        return objective(p)


class Sleepy:
    """:func:`objective` after ``seconds`` of sleep."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, p: dict[str, Any]) -> float:
        time.sleep(self.seconds)
        return objective(p)


class SpyRandomSearch(RandomSearch):
    """Random search noting ``(pending points, points asked)`` at every ask."""

    name = "rs"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asks: list[tuple[int, int]] = []

    def _suggest(self, n: int):
        self.asks.append((len(self._pending), n))
        return super()._suggest(n)


def _distinct(history) -> int:
    return len(history.drop_duplicates(subset=SPACE.names))


# ----------------------------------------------------------------------------- workers
def test_workers_keep_every_slot_busy_with_running_points_pending() -> None:
    solver = SpyRandomSearch(SPACE, seed=0)
    told_at: list[float] = []
    solver.optimize(Sleepy(0.3), 9, n_workers=3, callback=lambda s: told_at.append(time.monotonic()))
    history = solver.history
    assert len(history) == 9 and (history["status"] == "ok").all() and _distinct(history) == 9
    assert solver.asks[0] == (0, 3)  # the first ask fills every worker
    # every later ask refills the workers that finished, with the running points pending
    assert solver.asks[1:] and all(pending + n == 3 and pending > 0 for pending, n in solver.asks[1:])
    assert sum(n for _, n in solver.asks) == 9 and solver.pending == []
    assert (history["eval_seconds"] >= 0.3).all()
    # three waves of three overlapping evaluations: ~0.6 s from the first tell to the last (2.4 s one by one)
    assert told_at[-1] - told_at[0] < 1.5, told_at


@pytest.mark.parametrize("n_workers", [1, 2])
def test_hanging_black_box_is_recorded_as_timeout_and_the_run_finishes(tmp_path: Path, n_workers: int) -> None:
    solver = RandomSearch(SPACE, seed=1)
    told_at: list[float] = []
    start = time.monotonic()
    solver.optimize(Once(tmp_path / "marker", "hang", delay=0.05), 6, n_workers=n_workers, eval_timeout=1.0,
                    callback=lambda s: told_at.append(time.monotonic()))
    history = solver.history
    assert len(history) == 6 and _distinct(history) == 6
    failed = history[history["status"] == "failed"]
    assert len(failed) == 1 and failed["error"].iloc[0].startswith("timeout:")
    assert 1.0 <= failed["eval_seconds"].iloc[0] < 1.5  # stopped within eval_timeout + a small margin
    assert told_at[-1] - start < 30  # the run went on (worker start-up on a loaded machine included)


@pytest.mark.parametrize(("how", "reason"), [("segv", "SIGSEGV"), ("exit", "exit code 3")])
def test_crashing_worker_is_recorded_and_replaced(tmp_path: Path, how: str, reason: str) -> None:
    solver = RandomSearch(SPACE, seed=2)
    solver.optimize(Once(tmp_path / "marker", how, delay=0.02), 6, n_workers=2)
    history = solver.history
    assert len(history) == 6 and _distinct(history) == 6
    failed = history[history["status"] == "failed"]
    assert len(failed) == 1
    assert failed["error"].iloc[0].startswith("crashed:") and reason in failed["error"].iloc[0]
    assert (history["status"] == "ok").sum() == 5


def test_black_box_errors_and_bad_values_are_failures_in_process_and_in_workers() -> None:
    pytest.importorskip("cloudpickle")  # a closure pickles by value with cloudpickle only

    def black_box(p):  # a closure: pickled by value (cloudpickle)
        if p["n"] == 0:
            raise RuntimeError("simulator failed")
        if p["n"] == 1:
            return [1.0, 2.0]
        return np.array([1.0, 2.0]) if p["n"] == 2 else objective(p)

    for n_workers in (1, 2):  # in process, and in workers
        solver = RandomSearch(SPACE, seed=3)
        solver.optimize(black_box, 16, n_workers=n_workers)
        history = solver.history
        assert len(history) == 16
        assert {0, 1, 2} <= set(history["n"])
        assert history.loc[history["n"] == 0, "error"].str.contains("RuntimeError: simulator failed").all()
        assert history.loc[history["n"].isin([1, 2]), "error"].str.startswith("invalid value").all()
        assert (history.loc[history["n"] > 2, "status"] == "ok").all()


def test_unpicklable_black_box_is_refused_before_anything_runs() -> None:
    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __call__(self, p):
            return objective(p)

    solver = RandomSearch(SPACE, seed=0)
    with pytest.raises(BlackBoxPicklingError, match="cannot be sent to worker processes.*picklable"):
        solver.optimize(Holder(), 4, n_workers=2)
    assert solver.n_evaluations == 0 and solver.pending == []
    solver.optimize(Holder(), 3)  # in process it needs no pickling
    assert solver.n_evaluations == 3


def test_bad_arguments_are_refused() -> None:
    solver = RandomSearch(SPACE, seed=0)
    for kwargs, match in [({"n_workers": 0}, "n_workers"), ({"eval_timeout": 0}, "eval_timeout"),
                          ({"eval_timeout": float("nan")}, "eval_timeout"),
                          ({"n_workers": 2, "batch_size": 2}, "batch_size"),
                          ({"executor": object()}, "distributed.Client"),
                          ({"storage": "postgresql://x/y"}, "SQLite")]:
        with pytest.raises(ValueError, match=match):
            solver.optimize(objective, 2, **kwargs)
    with pytest.raises(ValueError, match="callable"):
        solver.optimize(None, 2)  # type: ignore[arg-type]
    assert solver.n_evaluations == 0


# ----------------------------------------------------------------------------- durable runs
class StopAfter(Exception):
    pass


def test_stored_run_resumes_exactly_where_it_stopped(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    reference = RandomSearch(SPACE, seed=4)
    reference.optimize(objective, 10)

    def stop(solver) -> None:
        if solver.n_evaluations == 4:
            raise StopAfter

    with pytest.raises(StopAfter):
        RandomSearch(SPACE, seed=4).optimize(objective, 10, callback=stop, storage=f"sqlite:///{db}")
    resumed = RandomSearch(SPACE, seed=4)
    resumed.optimize(objective, 10, storage=f"sqlite:///{db}")
    cols = [*SPACE.names, "value", "status"]
    assert resumed.history[cols].equals(reference.history[cols])
    again = RandomSearch(SPACE, seed=4)
    again.optimize(objective, 10, storage=db)  # done: loads the run, evaluates nothing
    assert again.history[cols].equals(reference.history[cols])
    more = RandomSearch(SPACE, seed=4)
    more.optimize(objective, 12, storage=db)  # a larger budget continues the same run
    assert len(more.history) == 12 and _distinct(more.history) == 12


def test_stored_casmopolitan_run_in_workers_resumes(tmp_path: Path) -> None:
    db = tmp_path / "bo.db"

    def stop(solver) -> None:
        if solver.n_evaluations == 5:
            raise StopAfter

    first = build_solver("casmopolitan", SPACE, seed=0, n_init=3)
    with pytest.raises(StopAfter):
        first.optimize(Sleepy(0.0), 9, n_workers=2, callback=stop, storage=db)
    assert first.pending == []
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM optimize_evaluations").fetchone()[0]
    inflight = sqlite3.connect(db).execute("SELECT COUNT(*) FROM optimize_inflight").fetchone()[0]
    assert stored == 5 and inflight <= 1  # the other worker's point, if it still ran, is evaluated again on resume
    second = build_solver("casmopolitan", SPACE, seed=0, n_init=3)
    second.optimize(Sleepy(0.0), 9, n_workers=2, storage=db)
    history = second.history
    assert len(history) == 9 and _distinct(history) == 9 and (history["status"] == "ok").all()


class Interrupting:
    """:func:`objective`, but Ctrl-C (KeyboardInterrupt) at the calls numbered in ``at`` (from 0)."""

    def __init__(self, at: set[int]) -> None:
        self.at, self.calls = at, 0

    def __call__(self, p: dict[str, Any]) -> float:
        self.calls += 1
        if self.calls - 1 in self.at:
            raise KeyboardInterrupt
        return objective(p)


def test_point_in_flight_at_two_interruptions_is_recorded_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    with pytest.raises(KeyboardInterrupt):
        RandomSearch(SPACE, seed=5).optimize(Interrupting({3}), 8, storage=db)
    with pytest.raises(KeyboardInterrupt):  # the point in flight is evaluated first on resume: interrupted again
        RandomSearch(SPACE, seed=5).optimize(Interrupting({0}), 8, storage=db)
    solver = RandomSearch(SPACE, seed=5)
    solver.optimize(objective, 8, storage=db)
    history = solver.history
    assert len(history) == 8 and _distinct(history) == 8
    failed = history[history["status"] == "failed"]
    assert list(failed["index"]) == [3] and failed["error"].iloc[0].startswith("interrupted:")


def test_storage_of_another_run_or_program_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    RandomSearch(SPACE, seed=0).optimize(objective, 3, storage=db)
    with pytest.raises(ValueError, match="holds another run.*seed"):
        RandomSearch(SPACE, seed=1).optimize(objective, 3, storage=db)
    other = SearchSpace([Real("x", -1, 1)])
    with pytest.raises(ValueError, match="another search space"):
        RandomSearch(other, seed=0).optimize(lambda p: p["x"], 3, storage=db)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE runs (x)").connection.commit()
    with pytest.raises(ValueError, match="another program"):
        RandomSearch(SPACE, seed=0).optimize(objective, 3, storage=foreign)
    (tmp_path / "text.db").write_text("not a database")
    with pytest.raises(ValueError, match="not an SQLite file"):
        RandomSearch(SPACE, seed=0).optimize(objective, 3, storage=tmp_path / "text.db")
    with RunStore(db), pytest.raises(ValueError, match="in use by another running optimize"):
        RandomSearch(SPACE, seed=0).optimize(objective, 3, storage=db)


class Logged:
    """:func:`objective` after ``seconds`` of sleep; each call appends its process id and point to ``log``."""

    def __init__(self, log: Path, seconds: float) -> None:
        self.log, self.seconds = str(log), seconds

    def __call__(self, p: dict[str, Any]) -> float:
        with open(self.log, "a") as log:
            log.write(json.dumps({"pid": os.getpid(), "point": p}, sort_keys=True) + "\n")
        time.sleep(self.seconds)
        return objective(p)


def _durable_run(db: Path, log: Path) -> RandomSearch:
    """The durable run the kill -9 test stops and resumes (the same call in the subprocess and here)."""
    solver = RandomSearch(SPACE, seed=7)
    solver.optimize(Logged(log, 0.4), 12, n_workers=2, storage=db)
    return solver


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path

    from tests.solvers.test_parallel import _durable_run

    if __name__ == "__main__":
        _durable_run(Path(sys.argv[1]), Path(sys.argv[2]))
""")


def _rows(db: Path) -> list[tuple]:
    try:
        conn = sqlite3.connect(db, timeout=1.0)
        try:
            return conn.execute("SELECT idx, point, value, status FROM optimize_evaluations ORDER BY idx").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_kill_9_of_a_durable_run_then_resume_gives_exactly_the_budget(tmp_path: Path) -> None:
    script, db, log = tmp_path / "run.py", tmp_path / "run.db", tmp_path / "calls.log"
    script.write_text(_KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(script), str(db), str(log)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and len(_rows(db)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        os.kill(proc.pid, signal.SIGKILL)  # the optimising process only: its workers must end by themselves
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    workers = {json.loads(line)["pid"] for line in log.read_text().splitlines()}
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in workers), "worker processes outlived the killed run"
    before = _rows(db)
    assert 4 <= len(before) < 12

    resumed = _durable_run(db, log)  # the same call again, here
    assert len(resumed.history) == 12
    after = _rows(db)
    assert [r[0] for r in after] == list(range(12))
    assert after[:len(before)] == before  # nothing stored was lost or rewritten
    points = [json.dumps(json.loads(r[1]), sort_keys=True) for r in after]
    assert len(set(points)) == 12  # exactly the budget, all distinct
    calls: dict[str, int] = {}
    for line in log.read_text().splitlines():
        key = json.dumps(json.loads(line)["point"], sort_keys=True)
        calls[key] = calls.get(key, 0) + 1
    for r in before:  # a point stored before the kill was never evaluated again
        assert calls[json.dumps(json.loads(r[1]), sort_keys=True)] == 1
    assert sum(calls.values()) <= 12 + 2  # at most the two points in flight at the kill ran twice


# ----------------------------------------------------------------------------- Dask
def _dask_cli() -> str | None:
    found = Path(sys.executable).with_name("dask")
    return str(found) if found.exists() else shutil.which("dask")


@pytest.mark.slow
def test_optimize_on_a_dask_cluster_of_separate_processes(tmp_path: Path) -> None:
    """`dask scheduler` and `dask worker` started as separate processes on 127.0.0.1; a hang and a crash."""
    distributed = pytest.importorskip("distributed")
    cli = _dask_cli()
    if cli is None:
        pytest.skip("no `dask` command")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([cli, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(scheduler_file)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "scheduler.log").open("w"))]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.exists(), (tmp_path / "scheduler.log").read_text()
        procs.append(subprocess.Popen([cli, "worker", "--scheduler-file", str(scheduler_file), "--nworkers", "2",
                                       "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], env=env, cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=(tmp_path / "worker.log").open("w")))
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            solver = build_solver("casmopolitan", SPACE, seed=0, n_init=3)
            hang = Once(tmp_path / "hang", "hang", delay=0.1)
            solver.optimize(hang, 8, executor=client, eval_timeout=2.0, storage=tmp_path / "dask.db")
            history = solver.history
            assert len(history) == 8 and _distinct(history) == 8
            failed = history[history["status"] == "failed"]
            assert len(failed) == 1 and failed["error"].iloc[0].startswith("timeout:")
            assert "restarted" in failed["error"].iloc[0]
            client.wait_for_workers(2, timeout=60)
            crash = RandomSearch(SPACE, seed=1)
            crash.optimize(Once(tmp_path / "segv", "segv", delay=0.1), 5, executor=client, n_workers=2)
            failed = crash.history[crash.history["status"] == "failed"]
            assert len(crash.history) == 5 and len(failed) == 1 and failed["error"].iloc[0].startswith("crashed:")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
