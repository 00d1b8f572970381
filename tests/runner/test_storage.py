"""The results database: WAL mode, one row per (run, index), run identity checks, checkpoints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec
from mcbo.runner.storage import ResultsDB
from tests.runner.suite_faults import read_only_folder


def _job(seed: int = 0, kwargs: dict | None = None, budget: int = 4) -> JobSpec:
    return JobSpec(solver=SolverSpec("rs", "rs"), task=TaskSpec("ackley_cat", "ackley_cat", kwargs or {}), seed=seed,
                   budget=budget)


def _record(run_id: int, index: int, value: float | None = 1.0, error: str | None = None) -> dict:
    return {"run_id": run_id, "index": index, "batch": index, "point": '{"x": 1}', "value": value, "error": error,
            "fit_seconds": 0.0, "acq_seconds": 0.1, "eval_seconds": 0.2}


def test_database_is_in_wal_mode_and_readable_while_open(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "sub" / "r.db") as db:
        assert db.journal_mode == "wal"
        run = db.ensure_run(_job())
        db.add_evaluation(_record(run, 0))
        other = sqlite3.connect(tmp_path / "sub" / "r.db")  # a second reader sees the committed row
        assert other.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 1
        other.close()


def test_an_evaluation_is_stored_once(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "r.db") as db:
        run = db.ensure_run(_job())
        assert db.add_evaluation(_record(run, 0, value=3.0))
        assert not db.add_evaluation(_record(run, 0, value=99.0))
        assert db.add_evaluation(_record(run, 1, value=None, error="ValueError: boom"))
        history = db.history(run)
        assert [(r["index"], r["value"], r["error"]) for r in history] == [(0, 3.0, None),
                                                                          (1, None, "ValueError: boom")]
        frame = db.runs_frame()
        assert frame.loc[0, ["n_evaluations", "n_failed", "best_value"]].tolist() == [2, 1, 3.0]
        results = db.evaluations_frame()
        assert results[["solver", "task", "seed", "index"]].values.tolist() == [["rs", "ackley_cat", 0, 0],
                                                                               ["rs", "ackley_cat", 0, 1]]


def test_runs_are_unique_and_keep_their_identity(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "r.db") as db:
        first = db.ensure_run(_job(seed=0))
        assert db.ensure_run(_job(seed=0, budget=10)) == first  # a larger budget continues the same run
        assert db.ensure_run(_job(seed=1)) != first
        with pytest.raises(ValueError, match="was made with .* but the config now says"):
            db.ensure_run(_job(seed=0, kwargs={"n_dims": 5}))
        assert db.runs_frame().loc[0, "budget"] == 10


def test_checkpoints_never_go_back(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "r.db") as db:
        run = db.ensure_run(_job())
        assert db.load_state(run) is None
        db.save_state(run, 4, "four")
        db.save_state(run, 2, "two")  # a late, older checkpoint does not replace a newer one
        assert db.load_state(run) == "four"
        db.save_state(run, 6, "six")
        assert db.load_state(run) == "six"


def test_status_values_are_checked_and_gaps_rejected(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "r.db") as db:
        run = db.ensure_run(_job())
        with pytest.raises(ValueError, match="run status must be one of"):
            db.set_status(run, "finished")
        db.add_evaluation(_record(run, 0))
        db.add_evaluation(_record(run, 2))
        with pytest.raises(ValueError, match="stored indices must be 0..n-1"):
            db.history(run)
    with pytest.raises(ValueError, match="does not exist"):
        ResultsDB(tmp_path / "missing.db", readonly=True)


def test_files_that_are_not_results_databases_are_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    text = tmp_path / "README.md"
    text.write_text("# not a database\n")
    for readonly in (True, False):
        with pytest.raises(ValueError, match="is not an mcbo results database \\(not an SQLite file\\)"):
            ResultsDB(text, readonly=readonly)
    assert text.read_text() == "# not a database\n"
    other = tmp_path / "cache.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE responses (key TEXT)")
    conn.close()
    for readonly in (True, False):
        with pytest.raises(ValueError, match="not an mcbo results database \\(an SQLite file without the tables"):
            ResultsDB(other, readonly=readonly)
    with sqlite3.connect(other) as conn:
        assert [row[0] for row in conn.execute("SELECT name FROM sqlite_master")] == ["responses"]
    conn.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(ValueError, match="not an mcbo results database"):
        ResultsDB(empty, readonly=True)
    with pytest.raises(ValueError, match="is a folder"):
        ResultsDB(tmp_path, readonly=False)


def test_a_database_has_one_writer_and_a_dead_writers_lock_is_taken_over(tmp_path: Path) -> None:
    import json
    import os

    from mcbo.runner.lock import DatabaseBusy, lock_path

    path = tmp_path / "r.db"
    with ResultsDB(path):
        assert lock_path(path).is_file()
        holder = json.loads(lock_path(path).read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(DatabaseBusy, match=rf"'.*r.db' is being written by another mcbo process \(pid "
                                               rf"{os.getpid()} on host .* since .*\); wait for it to finish, or "
                                               rf"stop it .*use another --db"):
            ResultsDB(path)
        with ResultsDB(path, readonly=True) as reader:  # readers come and go
            assert reader.count(1) == 0
    assert not lock_path(path).exists()
    # a lock file left by a killed writer (nobody holds its lock) is simply taken over
    lock_path(path).write_text(json.dumps({"pid": 999999, "host": "elsewhere", "started_at": 0}))
    with ResultsDB(path):
        assert json.loads(lock_path(path).read_text())["pid"] == os.getpid()


def test_without_flock_a_lock_is_checked_for_liveness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import json
    import os
    import socket

    from mcbo.runner import lock
    from mcbo.runner.lock import DatabaseBusy, lock_path, process_start_time

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", no_flock)
    path = tmp_path / "r.db"
    with ResultsDB(path):
        with pytest.raises(DatabaseBusy, match=f"pid {os.getpid()} on host"):
            ResultsDB(path)
    assert not lock_path(path).exists()
    here = socket.gethostname()
    dead = {"pid": 2**22 + 12345, "host": here, "started_at": 0, "process_start": 1}
    lock_path(path).write_text(json.dumps(dead))
    with ResultsDB(path):  # its process is gone: taken over
        with pytest.raises(DatabaseBusy, match=f"pid {os.getpid()} on host"):
            ResultsDB(path)  # this one is alive
    assert not lock_path(path).exists()
    reused = {"pid": os.getpid(), "host": here, "started_at": 0, "process_start": (process_start_time(os.getpid()) or 0) + 1}
    lock_path(path).write_text(json.dumps(reused))  # a live pid, but another process start: the id was reused
    with ResultsDB(path):
        pass
    remote = {"pid": 1, "host": "another-host", "started_at": 0}
    lock_path(path).write_text(json.dumps(remote))
    with pytest.raises(DatabaseBusy, match=r"pid 1 on host another-host .*If that process no longer runs, remove "
                                           r"'.*r.db.lock'"):
        ResultsDB(path)


def test_sqlite_failures_become_one_storage_error_saying_what_to_do(tmp_path: Path) -> None:
    from mcbo.runner.storage import StorageError

    path = tmp_path / "r.db"
    with ResultsDB(path) as db:
        run = db.ensure_run(_job())
        page_count = db.conn.execute("PRAGMA page_count").fetchone()[0]
        db.conn.execute(f"PRAGMA max_page_count = {page_count}")  # the disk is full from here on
        with pytest.raises(StorageError, match=r"cannot store an evaluation in results database '.*r.db': the disk "
                                               r"is full; free some space, then run the same command again"):
            for i in range(200):
                db.add_evaluation({**_record(run, i), "point": '{"x": "' + "y" * 500 + '"}'}, state=(i + 1, "s" * 900))
        stored = db.count(run)
        assert db.load_state(run) is None or db.conn.execute("SELECT state_n FROM runs").fetchone()[0] == stored
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    for readonly in (True, False):
        with pytest.raises(StorageError, match=r"results database '.*damaged.db' is damaged \(file is not a database\); "
                                               r"move it aside"):
            ResultsDB(damaged, readonly=readonly)
    assert not (tmp_path / "damaged.db.lock").exists()


def test_a_closed_wal_database_is_read_from_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    import shutil

    from mcbo.runner.storage import StorageError

    folder = tmp_path / "media"
    folder.mkdir()
    with ResultsDB(folder / "r.db") as db:
        run = db.ensure_run(_job())
        db.add_evaluation(_record(run, 0))
        assert db.journal_mode == "wal"
    with read_only_folder(folder):
        with ResultsDB(folder / "r.db", readonly=True) as db:
            assert db.count(run) == 1
    # with changes still in its -wal file, it says how to read it instead
    live = tmp_path / "live"
    live.mkdir()
    writer = ResultsDB(live / "r.db")
    try:
        writer.add_evaluation(_record(writer.ensure_run(_job()), 0))
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in ("r.db", "r.db-wal"):
            shutil.copy(live / name, copy / name)
    finally:
        writer.close()
    with read_only_folder(copy):
        with pytest.raises(StorageError, match=r"its folder cannot be written and it has changes not yet merged from "
                                               r"'.*r.db-wal'; copy the database with its -wal file"):
            ResultsDB(copy / "r.db", readonly=True)
