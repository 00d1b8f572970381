"""The results database: WAL mode, one row per (run, index), run identity checks, checkpoints."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec
from mcbo.runner.storage import ResultsDB


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
