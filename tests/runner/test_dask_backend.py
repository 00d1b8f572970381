"""Suites on Dask: a LocalCluster of 2 workers killed mid-run and resumed, and an existing scheduler."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mcbo.runner.config import parse_config
from mcbo.runner.executor import run_suite

pytest.importorskip("distributed")


def _count(db: Path) -> int:
    try:
        conn = sqlite3.connect(db, timeout=1.0)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def _rows(db: Path) -> dict[tuple, tuple]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT solver, task, seed, idx, point, value, error FROM results").fetchall()
    conn.close()
    return {r[:4]: r[4:] for r in rows}


def _wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def test_killed_suite_resumes_without_losing_or_duplicating(tmp_path: Path, repo_root: Path, suite_dict,
                                                            write_config) -> None:
    suite_dict["budget"] = 100
    config = write_config(suite_dict)
    db = tmp_path / "suite.db"
    total = 8 * 100
    cmd = [sys.executable, "-m", "mcbo.runner.cli", "bench", str(config), "--workers", "2", "--db", str(db),
           "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo_root)}
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: the Dask workers die with it
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and _count(db) < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the suite ended before it was killed:\n" + (tmp_path / "first.log").read_text()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _wait_group_gone(proc.pid)
        log.close()
    before = _rows(db)
    assert 40 <= len(before) < total
    per_run = {}
    for solver, task, seed, idx in before:
        per_run.setdefault((solver, task, seed), []).append(idx)
    assert all(sorted(ix) == list(range(len(ix))) for ix in per_run.values())  # stored as a prefix, no gaps
    assert any(0 < len(ix) < 100 for ix in per_run.values())  # some run was cut mid-way and must continue

    again = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=400,
                           check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    after = _rows(db)
    assert len(after) == total
    for key, row in before.items():  # nothing stored before the kill was lost or rewritten
        assert after[key] == row
    runs = sqlite3.connect(db).execute("SELECT solver, task, seed, status FROM runs").fetchall()
    assert len(runs) == 8 and {r[3] for r in runs} == {"done"}
    for solver, task, seed, _ in runs:
        assert sorted(k[3] for k in after if k[:3] == (solver, task, seed)) == list(range(100))


def test_existing_scheduler_gives_the_in_process_results(tmp_path: Path, suite_dict) -> None:
    from distributed import LocalCluster

    suite_dict["solvers"].append({"solver": "rs", "name": "broken", "method": "halton"})  # fails on the worker
    config = parse_config(suite_dict)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        remote = run_suite(config, tmp_path / "remote.db", scheduler=cluster.scheduler_address, progress=False,
                           torch_threads=1, check_build=False)
    local = run_suite(config, tmp_path / "local.db", progress=False, check_build=False)
    ok = remote["solver"] != "broken"
    assert (remote.loc[ok, "status"] == "done").all() and (remote.loc[ok, "n_evaluations"] == 6).all()
    assert (remote.loc[~ok, "status"] == "failed").all()
    assert remote.loc[~ok, "error"].str.contains("random search method must be 'uniform' or 'sobol'").all()
    assert remote["status"].tolist() == local["status"].tolist()
    assert _rows(tmp_path / "remote.db") == _rows(tmp_path / "local.db")  # same seeds, same runs, any backend


@pytest.mark.slow
def test_bench_on_workers_without_progress_prints_no_logs_or_bars(tmp_path: Path, write_config) -> None:
    """`mcbo bench --workers 2 --no-progress`: the runs table on stdout, no Dask INFO logs nor bars on stderr."""
    config = write_config({"name": "tiny", "budget": 2, "seeds": 2, "solvers": ["rs"], "tasks": ["crash_cat"]})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "mcbo", "bench", str(config), "--workers", "2", "--no-progress",
                           "--db", str(tmp_path / "tiny.db")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(" done ") == 2
    for noise in ("INFO", "distributed.", "%|", "evaluations:", "runs:"):
        assert noise not in done.stderr, done.stderr


def test_in_process_and_two_workers_store_the_same_values(tmp_path: Path) -> None:
    """A model-based run does not depend on the executor: each job pins torch to one thread wherever it runs."""
    import torch

    config = parse_config({
        "name": "same", "budget": 6, "batch_size": 2, "seeds": [0], "tasks": [{"name": "ackley_cat", "kwargs": {"n_dims": 6}}],
        "solvers": [{"recipe": "casmopolitan", "name": "casmo", "n_init": 2}, "rs"]})
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what an unpinned in-process run would have used here
    try:
        run_suite(config, tmp_path / "local.db", progress=False)
        assert torch.get_num_threads() == 2  # the caller's setting comes back
    finally:
        torch.set_num_threads(before)
    run_suite(config, tmp_path / "workers.db", workers=2, progress=False)
    local, workers = _rows(tmp_path / "local.db"), _rows(tmp_path / "workers.db")
    assert len(local) == 12 and local == workers
    environments = sqlite3.connect(tmp_path / "workers.db").execute("SELECT environment FROM runs").fetchall()
    assert {e[0] for e in environments} == {
        '{"blas_threads": 1, "global_rngs": "seeded per batch", "torch_threads": 1}'}
