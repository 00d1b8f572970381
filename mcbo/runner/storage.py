"""The results database of benchmark suites: stdlib ``sqlite3`` in WAL mode.

Tables:

* ``suites``  -- one row per suite config run against this database (name, config as JSON, the file it
  came from). A database holds one suite (:func:`mcbo.runner.executor.run_suite` refuses another).
* ``runs``    -- one row per run (= job: solver x task x seed), unique on ``(solver, task, seed)``,
  with its identity (recipe, task kwargs, ``n_init``) as JSON, budget, batch size, status
  (``pending``, ``running``, ``done``, ``failed``), the last error, the latest solver checkpoint
  (:meth:`mcbo.solvers.Solver.state_dict` as JSON, with the number of evaluations it covers) and the
  settings the run's jobs pinned (``environment``: torch and BLAS threads, as JSON).
* ``evaluations`` -- one row per evaluation, primary key ``(run_id, idx)`` so nothing is stored
  twice: the point as JSON, its value (NULL when it failed), the error, the batch it was asked in,
  the fit / acquisition seconds of that batch's ``ask`` and the evaluation's seconds.
* view ``results`` -- evaluations joined with their run's solver, task and seed.

One process writes a database at a time (:class:`mcbo.runner.lock.WriterLock`, taken when it is opened
for writing); readers (reports) may come and go while it runs. Every evaluation is committed as it
arrives, and the last evaluation of a batch in the same transaction as the checkpoint taken after that
batch, so the checkpoint never lags the batches stored before it: a killed suite loses only the
evaluations in flight, and a resumed run repeats at most the ``ask`` of a batch it had started.

Every SQLite failure (a full disk, a read-only folder, a damaged file) is raised as one
:class:`StorageError` naming the database, what was being done and what to do.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

import pandas as pd

from mcbo.runner.config import JobSpec
from mcbo.runner.lock import WriterLock

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
STATUSES = ("pending", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS suites (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    source TEXT
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
    environment TEXT,
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

#: Columns added after schema version 1 was released: (table, column, type); added in place when missing.
_ADDED_COLUMNS = (("suites", "source", "TEXT"), ("runs", "environment", "TEXT"))

_SQLITE_HEADER = b"SQLite format 3\x00"


class StorageError(ValueError):
    """The results database cannot be opened, read or written; the message says why and what to do."""


def storage_error(path: Path, doing: str, err: sqlite3.Error) -> StorageError:
    """A :class:`StorageError` for an SQLite failure while ``doing`` something with the database at ``path``."""
    name = str(getattr(err, "sqlite_errorname", "") or "")
    text = " ".join(str(err).split()) or type(err).__name__
    where = f"results database {str(path)!r}"
    lowered = text.lower()
    if name == "SQLITE_FULL" or "disk is full" in lowered:
        return StorageError(f"cannot {doing} in {where}: the disk is full; free some space, then run the same "
                            f"command again (it resumes from what is stored)")
    if name.startswith("SQLITE_READONLY") or "readonly" in lowered or "read-only" in lowered:
        return StorageError(f"cannot {doing} in {where}: the database or its folder is read-only ({text}); make "
                            f"them writable, or copy the database to a writable folder and pass that path")
    if name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in lowered or "not a database" in lowered:
        return StorageError(f"{where} is damaged ({text}); move it aside and run again (a new database starts "
                            f"from scratch), or pass another database")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in lowered:
        return StorageError(f"cannot open {where} ({text}); check that its folder exists and is readable and "
                            f"writable")
    if name.startswith("SQLITE_BUSY") or "locked" in lowered:
        return StorageError(f"cannot {doing} in {where}: another program holds it locked ({text}); close that "
                            f"program and run again")
    if name.startswith("SQLITE_IOERR"):
        return StorageError(f"cannot {doing} in {where}: input/output error ({text}); check the disk, then run "
                            f"the same command again")
    return StorageError(f"cannot {doing} in {where}: {text}")


_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(doing: str) -> Callable[[_F], _F]:
    """Method decorator: an ``sqlite3.Error`` is rolled back and raised as :class:`StorageError`."""

    def wrap(method: _F) -> _F:
        @functools.wraps(method)
        def guarded(self: ResultsDB, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as err:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.rollback()
                raise storage_error(self.path, doing, err) from None

        return guarded  # type: ignore[return-value]

    return wrap


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

    Opened for writing, it holds the database's writer lock (:class:`mcbo.runner.lock.WriterLock`) until
    :meth:`close`; a second writer gets :class:`mcbo.runner.lock.DatabaseBusy` naming the first.

    Args:
        path: the SQLite file; its folder is created if missing.
        readonly: open an existing database without creating or changing anything (for reports); this also
            reads a database on read-only media.

    Raises:
        ValueError: ``path`` is a folder, not an mcbo results database, or (``readonly``) missing;
            :class:`StorageError` when SQLite cannot open or read it.
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        _check_sqlite_file(self.path)
        if readonly and not self.path.is_file():
            raise ValueError(f"results database {str(self.path)!r} does not exist")
        self._lock: WriterLock | None = None
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise ValueError(f"results database {str(self.path)!r}: {str(self.path.parent)!r} is a file, "
                                 f"not a folder") from None
            self._lock = WriterLock(self.path)
            self._acquire_lock()
        try:
            self.conn = self._connect()
        except BaseException:
            self._release_lock()
            raise
        try:
            if readonly or self._table_names():  # never add tables to another program's database
                self._check_tables()
            if not readonly:
                self.conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: a committed transaction survives a killed process (only power loss can drop it).
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                self.conn.executescript(_SCHEMA)
                self._add_missing_columns()
                self._check_version()
        except sqlite3.DatabaseError as err:
            self._close_quietly()
            raise self._open_error(err) from None
        except BaseException:
            self._close_quietly()
            raise
        self.conn.row_factory = sqlite3.Row

    def _acquire_lock(self) -> None:
        assert self._lock is not None
        try:
            self._lock.acquire()
        except OSError as err:
            reason = err.strerror or str(err)
            raise StorageError(f"cannot write results database {str(self.path)!r}: cannot create its lock file "
                               f"{str(self._lock.path)!r} ({reason}); the database's folder must be writable, or "
                               f"pass another database") from None

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def _connect(self) -> sqlite3.Connection:
        """A connection; read-only ones use ``mode=ro``, and ``immutable=1`` where the folder cannot be written."""
        if not self.readonly:
            try:
                return sqlite3.connect(self.path, timeout=30.0)
            except sqlite3.Error as err:
                raise self._open_error(err) from None
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = None
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30.0)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # a WAL database needs its -shm here
            return conn
        except sqlite3.OperationalError as err:
            if conn is not None:
                conn.close()
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.is_file() and wal.stat().st_size > 0:
                raise StorageError(
                    f"cannot read results database {str(self.path)!r} ({err}): its folder cannot be written and it "
                    f"has changes not yet merged from {str(wal)!r}; copy the database with its -wal file to a "
                    f"writable folder and read the copy") from None
            logger.debug("opening %s as immutable (%s)", self.path, err)
        except sqlite3.Error as err:
            if conn is not None:
                conn.close()
            raise self._open_error(err) from None
        try:  # read-only media: no -shm can be made, and without a -wal file there is nothing else to read
            conn = sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30.0)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.Error as err:
            raise self._open_error(err) from None

    def _open_error(self, err: sqlite3.Error) -> StorageError:
        return storage_error(self.path, "open" if self.readonly else "open for writing", err)

    def _close_quietly(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        self._release_lock()

    def _table_names(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master")}

    def _check_tables(self) -> None:
        missing = sorted({"runs", "evaluations", "results"} - self._table_names())
        if missing:
            raise ValueError(f"{str(self.path)!r} is not an mcbo results database (an SQLite file without the "
                             f"tables {missing}); expected a database written by `mcbo bench`")

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}

    def _add_missing_columns(self) -> None:
        for table, column, kind in _ADDED_COLUMNS:
            if column not in self._columns(table):
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        self.conn.commit()

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
        """Close the connection and let the writer lock go."""
        try:
            self.conn.close()
        finally:
            self._release_lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])

    # ---------------------------------------------------------------- suites/runs
    @_guarded("record the suite")
    def register_suite(self, name: str, config: Mapping[str, Any], source: str | None = None) -> None:
        """Record (or refresh) the config of suite ``name``, read from ``source`` (a file, if any)."""
        now = time.time()
        self.conn.execute(
            "INSERT INTO suites (name, config, created_at, updated_at, source) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at, "
            "source = excluded.source",
            (name, json.dumps(config, sort_keys=True, default=str), now, now, source),
        )
        self.conn.commit()

    @_guarded("read the suites")
    def suites(self) -> list[dict[str, Any]]:
        """The suites recorded, oldest first: dicts with ``name``, ``config`` (parsed), ``source`` (or None)."""
        has_source = "source" in self._columns("suites")
        rows = self.conn.execute(
            f"SELECT name, config, {'source' if has_source else 'NULL AS source'} FROM suites "
            f"ORDER BY created_at, name").fetchall()
        out = []
        for row in rows:
            try:
                config = json.loads(row["config"])
            except ValueError:
                config = None
            out.append({"name": row["name"], "config": config, "source": row["source"]})
        return out

    @_guarded("read the runs")
    def check_run(self, job: JobSpec) -> int | None:
        """The ``run_id`` of ``job`` if stored (``None`` if new), writing nothing.

        Raises:
            ValueError: the database already holds this (solver, task, seed) built differently
                (another recipe, task kwargs or ``n_init``); resuming it would mix two experiments.
        """
        solver, task, seed = job.key
        identity = job.identity_json()
        row = self.conn.execute("SELECT run_id, identity FROM runs WHERE solver = ? AND task = ? AND seed = ?",
                                (solver, task, seed)).fetchone()
        if row is None:
            return None
        if row["identity"] != identity:
            raise ValueError(
                f"run (solver={solver!r}, task={task!r}, seed={seed}) in {str(self.path)!r} was made with "
                f"{row['identity']}, but the config now says {identity}; use another --db or another solver/task name"
            )
        return int(row["run_id"])

    @_guarded("record the run")
    def ensure_run(self, job: JobSpec) -> int:
        """The ``run_id`` of ``job``, inserting it if new (its budget and batch size updated if not).

        Raises:
            ValueError: as :meth:`check_run`.
        """
        run_id = self.check_run(job)
        now = time.time()
        if run_id is None:
            solver, task, seed = job.key
            cur = self.conn.execute(
                "INSERT INTO runs (solver, task, seed, identity, budget, batch_size, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (solver, task, seed, job.identity_json(), job.budget, job.batch_size, now, now),
            )
            self.conn.commit()
            return int(cur.lastrowid)
        self.conn.execute("UPDATE runs SET budget = ?, batch_size = ?, updated_at = ? WHERE run_id = ?",
                          (job.budget, job.batch_size, now, run_id))
        self.conn.commit()
        return run_id

    @_guarded("record a run's status")
    def set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        """Set a run's status (one of :data:`STATUSES`) and last error."""
        if status not in STATUSES:
            raise ValueError(f"run status must be one of {STATUSES}, got {status!r}")
        self.conn.execute("UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
                          (status, error, time.time(), run_id))
        self.conn.commit()

    @_guarded("read a run's status")
    def status(self, run_id: int) -> str:
        return str(self.conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0])

    @_guarded("record a run's settings")
    def set_environment(self, run_id: int, environment: Mapping[str, Any]) -> dict[str, Any] | None:
        """Record the settings a run's job pinned (threads, ...); returns the ones recorded before, if any."""
        row = self.conn.execute("SELECT environment FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        previous = None
        if row is not None and row[0]:
            with contextlib.suppress(ValueError):
                previous = json.loads(row[0])
        self.conn.execute("UPDATE runs SET environment = ?, updated_at = ? WHERE run_id = ?",
                          (json.dumps(dict(environment), sort_keys=True), time.time(), run_id))
        self.conn.commit()
        return previous if isinstance(previous, dict) else None

    def _save_state(self, run_id: int, n_evaluations: int, state: str) -> None:
        self.conn.execute(
            "UPDATE runs SET state = ?, state_n = ?, updated_at = ? WHERE run_id = ? "
            "AND (state_n IS NULL OR state_n <= ?)",
            (state, n_evaluations, time.time(), run_id, n_evaluations),
        )

    @_guarded("store a solver checkpoint")
    def save_state(self, run_id: int, n_evaluations: int, state: str) -> None:
        """Store a solver checkpoint covering the run's first ``n_evaluations``; an older one never wins."""
        self._save_state(run_id, n_evaluations, state)
        self.conn.commit()

    @_guarded("read a solver checkpoint")
    def load_state(self, run_id: int) -> str | None:
        """The latest solver checkpoint of a run (JSON) or ``None``."""
        row = self.conn.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    # ---------------------------------------------------------------- evaluations
    @_guarded("store an evaluation")
    def add_evaluation(self, record: Mapping[str, Any], state: tuple[int, str] | None = None) -> bool:
        """Insert and commit one evaluation (keys: :data:`_EVAL_FIELDS`); ``False`` if it was stored already.

        ``state``, ``(n_evaluations, checkpoint JSON)``, is the solver checkpoint taken once this evaluation's
        batch was told: it is stored in the same transaction, so the two are kept or lost together.
        """
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
        if state is not None:
            self._save_state(int(record["run_id"]), int(state[0]), state[1])
        self.conn.commit()
        if cur.rowcount == 0:
            logger.debug("evaluation %s of run %s was already stored; kept the first", record["index"],
                         record["run_id"])
        return cur.rowcount == 1

    @_guarded("count evaluations")
    def count(self, run_id: int) -> int:
        """Number of stored evaluations of a run."""
        return int(self.conn.execute("SELECT COUNT(*) FROM evaluations WHERE run_id = ?", (run_id,)).fetchone()[0])

    @_guarded("read evaluations")
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

    @_guarded("read the runs")
    def iter_runs(self) -> Iterator[sqlite3.Row]:
        """Every run row, in ``run_id`` order (read at once, so a failure is raised here)."""
        return iter(self.conn.execute("SELECT * FROM runs ORDER BY run_id").fetchall())

    # --------------------------------------------------------------------- frames
    @_guarded("read the runs")
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
        return self._frame(query)

    @_guarded("read evaluations")
    def evaluations_frame(self) -> pd.DataFrame:
        """Every stored evaluation with its run's solver, task and seed (the ``results`` view)."""
        frame = self._frame("SELECT * FROM results ORDER BY run_id, idx")
        return frame.rename(columns={"idx": "index"})

    def _frame(self, query: str) -> pd.DataFrame:
        """A query's rows as a DataFrame (through ``sqlite3``, so its errors stay ``sqlite3.Error``)."""
        cursor = self.conn.execute(query)
        columns = [d[0] for d in cursor.description]
        return pd.DataFrame.from_records([tuple(row) for row in cursor.fetchall()], columns=columns)
