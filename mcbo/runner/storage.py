"""The results database of benchmark suites: stdlib ``sqlite3`` in WAL mode.

Tables:

* ``suites``  -- one row per suite config run against this database (name, config as JSON).
* ``runs``    -- one row per run (= job: solver x task x seed), unique on ``(solver, task, seed)``,
  with its identity (recipe, task kwargs, ``n_init``) as JSON, budget, batch size, status
  (``pending``, ``running``, ``done``, ``failed``), the last error, and the latest solver
  checkpoint (:meth:`mcbo.solvers.Solver.state_dict` as JSON, with the number of evaluations it covers).
* ``evaluations`` -- one row per evaluation, primary key ``(run_id, idx)`` so nothing is stored
  twice: the point as JSON, its value (NULL when it failed), the error, the batch it was asked in,
  the fit / acquisition seconds of that batch's ``ask`` and the evaluation's seconds.
* view ``results`` -- evaluations joined with their run's solver, task and seed.

Only the process that owns the suite (the client) writes; every evaluation is committed on its own,
so a killed suite loses at most the evaluations in flight.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Self

import pandas as pd

from mcbo.runner.config import JobSpec

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suites (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY,
    solver TEXT NOT NULL,
    task TEXT NOT NULL,
    seed INTEGER NOT NULL,
    identity TEXT NOT NULL,
    budget INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    state TEXT,
    state_n INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (solver, task, seed)
);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id INTEGER NOT NULL REFERENCES runs (run_id),
    idx INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    point TEXT NOT NULL,
    value REAL,
    error TEXT,
    fit_seconds REAL,
    acq_seconds REAL,
    eval_seconds REAL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE VIEW IF NOT EXISTS results AS
    SELECT r.run_id, r.solver, r.task, r.seed, e.idx, e.batch, e.point, e.value, e.error,
           e.fit_seconds, e.acq_seconds, e.eval_seconds, e.created_at
    FROM evaluations e JOIN runs r ON r.run_id = e.run_id;
"""

_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_sqlite_file(path: Path) -> None:
    """Raise ``ValueError`` when ``path`` exists but is a folder or a non-empty file that is not SQLite."""
    if path.is_dir():
        raise ValueError(f"results database {str(path)!r} is a folder; expected a database written by `mcbo bench`")
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
        if header != _SQLITE_HEADER:
            raise ValueError(f"{str(path)!r} is not an mcbo results database (not an SQLite file); expected a "
                             f"database written by `mcbo bench`")


_EVAL_FIELDS = ("run_id", "index", "batch", "point", "value", "error", "fit_seconds", "acq_seconds", "eval_seconds")


class ResultsDB:
    """A suite results database at ``path`` (created on first use).

    Args:
        path: the SQLite file; its folder is created if missing.
        readonly: open an existing database without creating or changing its schema (for reports).
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise ValueError(f"results database {str(self.path)!r} does not exist")
        _check_sqlite_file(self.path)
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            if readonly or self._table_names():  # never add tables to another program's database
                self._check_tables()
            if not readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a committed transaction survives a killed process (only power loss can drop it).
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                self.conn.executescript(_SCHEMA)
                self._check_version()
        except sqlite3.DatabaseError as err:
            self.conn.close()
            raise ValueError(f"results database {str(self.path)!r} cannot be read: {err}") from None
        except ValueError:
            self.conn.close()
            raise
        self.conn.row_factory = sqlite3.Row

    def _table_names(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master")}

    def _check_tables(self) -> None:
        missing = sorted({"runs", "evaluations", "results"} - self._table_names())
        if missing:
            raise ValueError(f"{str(self.path)!r} is not an mcbo results database (an SQLite file without the "
                             f"tables {missing}); expected a database written by `mcbo bench`")

    def _check_version(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self.conn.commit()
        elif int(row[0]) != SCHEMA_VERSION:
            raise ValueError(f"results database {str(self.path)!r} has schema version {row[0]}; "
                             f"this mcbo reads version {SCHEMA_VERSION}")

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])

    # ---------------------------------------------------------------- suites/runs
    def register_suite(self, name: str, config: Mapping[str, Any]) -> None:
        """Record (or refresh) the config of suite ``name``."""
        now = time.time()
        self.conn.execute(
            "INSERT INTO suites (name, config, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
            (name, json.dumps(config, sort_keys=True, default=str), now, now),
        )
        self.conn.commit()

    def ensure_run(self, job: JobSpec) -> int:
        """The ``run_id`` of ``job``, inserting it if new.

        Raises:
            ValueError: the database already holds this (solver, task, seed) built differently
                (another recipe, task kwargs or ``n_init``); resuming it would mix two experiments.
        """
        solver, task, seed = job.key
        identity = job.identity_json()
        row = self.conn.execute("SELECT run_id, identity FROM runs WHERE solver = ? AND task = ? AND seed = ?",
                                (solver, task, seed)).fetchone()
        now = time.time()
        if row is None:
            cur = self.conn.execute(
                "INSERT INTO runs (solver, task, seed, identity, budget, batch_size, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (solver, task, seed, identity, job.budget, job.batch_size, now, now),
            )
            self.conn.commit()
            return int(cur.lastrowid)
        if row["identity"] != identity:
            raise ValueError(
                f"run (solver={solver!r}, task={task!r}, seed={seed}) in {str(self.path)!r} was made with "
                f"{row['identity']}, but the config now says {identity}; use another --db or another solver/task name"
            )
        self.conn.execute("UPDATE runs SET budget = ?, batch_size = ?, updated_at = ? WHERE run_id = ?",
                          (job.budget, job.batch_size, now, row["run_id"]))
        self.conn.commit()
        return int(row["run_id"])

    def set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        """Set a run's status (one of :data:`STATUSES`) and last error."""
        if status not in STATUSES:
            raise ValueError(f"run status must be one of {STATUSES}, got {status!r}")
        self.conn.execute("UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
                          (status, error, time.time(), run_id))
        self.conn.commit()

    def status(self, run_id: int) -> str:
        return str(self.conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])

    def save_state(self, run_id: int, n_evaluations: int, state: str) -> None:
        """Store a solver checkpoint covering the run's first ``n_evaluations``; an older one never wins."""
        self.conn.execute(
            "UPDATE runs SET state = ?, state_n = ?, updated_at = ? WHERE run_id = ? "
            "AND (state_n IS NULL OR state_n <= ?)",
            (state, n_evaluations, time.time(), run_id, n_evaluations),
        )
        self.conn.commit()

    def load_state(self, run_id: int) -> str | None:
        """The latest solver checkpoint of a run (JSON) or ``None``."""
        row = self.conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    # ---------------------------------------------------------------- evaluations
    def add_evaluation(self, record: Mapping[str, Any]) -> bool:
        """Insert and commit one evaluation (keys: :data:`_EVAL_FIELDS`); ``False`` if it was stored already."""
        missing = [k for k in _EVAL_FIELDS if k not in record]
        if missing:
            raise ValueError(f"evaluation record misses field(s) {missing}")
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO evaluations (run_id, idx, batch, point, value, error, fit_seconds, acq_seconds, "
            "eval_seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record["run_id"], record["index"], record["batch"], record["point"], record["value"],
             record["error"] or None, record["fit_seconds"], record["acq_seconds"], record["eval_seconds"],
             time.time()),
        )
        self.conn.commit()
        if cur.rowcount == 0:
            logger.debug("evaluation %s of run %s was already stored; kept the first", record["index"],
                         record["run_id"])
        return cur.rowcount == 1

    def count(self, run_id: int) -> int:
        """Number of stored evaluations of a run."""
        return int(self.conn.execute("SELECT COUNT(*) FROM evaluations WHERE run_id = ?", (run_id,)).fetchone()[0])

    def history(self, run_id: int) -> list[dict[str, Any]]:
        """A run's stored evaluations in order (dicts with the :data:`_EVAL_FIELDS` keys).

        Raises:
            ValueError: the stored indices are not ``0..n-1`` (the database was edited by hand).
        """
        rows = self.conn.execute(
            "SELECT run_id, idx, batch, point, value, error, fit_seconds, acq_seconds, eval_seconds "
            "FROM evaluations WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
        out = []
        for i, row in enumerate(rows):
            if row["idx"] != i:
                raise ValueError(f"run {run_id} in {str(self.path)!r} has evaluation index {row['idx']} at position "
                                 f"{i}; stored indices must be 0..n-1")
            record = dict(row)
            record["index"] = record.pop("idx")
            out.append(record)
        return out

    def iter_runs(self) -> Iterator[sqlite3.Row]:
        yield from self.conn.execute("SELECT * FROM runs ORDER BY run_id")

    # --------------------------------------------------------------------- frames
    def runs_frame(self) -> pd.DataFrame:
        """One row per run: run_id, solver, task, seed, budget, batch_size, status, error, n_evaluations,
        n_failed, best_value."""
        query = (
            "SELECT r.run_id, r.solver, r.task, r.seed, r.budget, r.batch_size, r.status, r.error, "
            "COUNT(e.idx) AS n_evaluations, "
            "COALESCE(SUM(CASE WHEN e.idx IS NOT NULL AND e.value IS NULL THEN 1 ELSE 0 END), 0) AS n_failed, "
            "MIN(e.value) AS best_value "
            "FROM runs r LEFT JOIN evaluations e ON e.run_id = r.run_id GROUP BY r.run_id ORDER BY r.run_id"
        )
        return pd.read_sql_query(query, self.conn)

    def evaluations_frame(self) -> pd.DataFrame:
        """Every stored evaluation with its run's solver, task and seed (the ``results`` view)."""
        frame = pd.read_sql_query("SELECT * FROM results ORDER BY run_id, idx", self.conn)
        return frame.rename(columns={"idx": "index"})
