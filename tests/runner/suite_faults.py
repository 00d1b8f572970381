"""Faults a suite meets, as reusable cases: kills at random points, a second writer, Ctrl-C, bad databases.

Used by ``tests/reliability/test_suite_faults.py`` and ``benchmarks/reliability.py``. Importing this module
registers :data:`SLOW_TASK`, a deterministic task that takes ``delay`` seconds per evaluation, so that a
process can be stopped part-way through a suite; a config lists this module under ``imports`` so that
``mcbo bench`` subprocesses register it too.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mcbo.space import Categorical, SearchSpace
from mcbo.tasks import TASKS, Task, register_task

REPO_ROOT = Path(__file__).resolve().parents[2]
SLOW_TASK = "suite_fault_slow"
#: When set, the slow task appends one line per evaluation to this file (to count evaluations made again).
LOG_ENV = "MCBO_SUITE_FAULT_LOG"

if SLOW_TASK not in TASKS:

    @register_task(SLOW_TASK)
    class SlowTask(Task):
        """Four categorical variables with six levels; ``sum((level - 2)^2)`` after ``delay`` seconds."""

        name = SLOW_TASK

        def __init__(self, seed: int = 0, delay: float = 0.02) -> None:
            super().__init__(seed)
            self.delay = float(delay)
            self._space = SearchSpace([Categorical(f"x{i}", list(range(6))) for i in range(4)])

        @property
        def space(self) -> SearchSpace:
            return self._space

        def _evaluate(self, points):
            time.sleep(self.delay * len(points))
            log = os.environ.get(LOG_ENV)
            if log:
                with open(log, "a") as handle:
                    handle.write("".join(f"{sorted(p.items())}\n" for p in points))
            return np.array([float(sum((p[f"x{i}"] - 2) ** 2 for i in range(4))) + 0.5 for p in points])


def write_config(folder: Path, name: str = "faults", budget: int = 24, batch_size: int = 3, seeds: int = 2,
                 delay: float = 0.02, solvers: Sequence[Any] = ("rs",)) -> Path:
    """A suite config of ``solvers`` on :data:`SLOW_TASK`, written to ``folder/<name>.yaml``."""
    config = {"name": name, "budget": budget, "batch_size": batch_size, "seeds": seeds, "solvers": list(solvers),
              "tasks": [{"name": SLOW_TASK, "kwargs": {"delay": delay}}], "imports": [__name__]}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def bench_argv(config: Path, db: Path, *extra: str) -> list[str]:
    """``python -m mcbo bench CONFIG --db DB --no-progress EXTRA...``."""
    return [sys.executable, "-m", "mcbo", "bench", str(config), "--db", str(db), "--no-progress", *extra]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of an ``mcbo`` subprocess: this checkout importable, one OpenMP thread."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **extra}


def stored_rows(db: Path) -> list[tuple]:
    """Every stored evaluation: (solver, task, seed, index, batch, point, value, error), in order."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT solver, task, seed, idx, batch, point, value, error FROM results "
                            "ORDER BY solver, task, seed, idx").fetchall()
    finally:
        conn.close()


def count_rows(db: Path) -> int:
    """Stored evaluations (0 while the database is not there yet)."""
    if not db.is_file():
        return 0
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet
        return 0


def wait_for_rows(db: Path, proc: subprocess.Popen, at_least: int, timeout: float = 240.0) -> int:
    """Poll until ``db`` holds ``at_least`` evaluations or ``proc`` ends; the count then."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        n = count_rows(db)
        if n >= at_least:
            return n
        time.sleep(0.005)
    return count_rows(db)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 60.0) -> None:
    """Send ``sig`` to ``proc``'s process group (it was started with ``start_new_session=True``) and reap it."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # workers of a local cluster leave with their group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def repeated_points(rows: Sequence[tuple]) -> int:
    """Rows whose point was stored before in the same run."""
    seen: set[tuple] = set()
    repeated = 0
    for solver, task, seed, _idx, _batch, point, *_ in rows:
        key = (solver, task, seed, point)
        repeated += key in seen
        seen.add(key)
    return repeated


@dataclass
class KillOutcome:
    """What ``kills`` SIGKILLs at random points of a ``mcbo bench`` did, against the uninterrupted run.

    Attributes:
        kills: processes killed while running (a process that finished first is not counted).
        stored_at_kills: evaluations stored when each kill landed.
        lost: evaluations stored before a kill that are missing or changed once the suite finished.
        repeated: evaluations of a point the same run had already stored.
        diverged: runs whose final evaluations differ from the uninterrupted run's (points, order, values).
        missing, extra: evaluations of the uninterrupted run not stored, and rows it does not have.
        redone: evaluations made in a killed process and not stored (made again after the resume).
        final_status: exit status of the last, uninterrupted ``mcbo bench``.
    """

    kills: int = 0
    stored_at_kills: list[int] = field(default_factory=list)
    lost: int = 0
    repeated: int = 0
    diverged: int = 0
    missing: int = 0
    extra: int = 0
    redone: int = 0
    final_status: int | None = None
    final_output: str = ""

    @property
    def ok(self) -> bool:
        return (self.final_status == 0 and self.lost == 0 and self.repeated == 0 and self.diverged == 0
                and self.missing == 0 and self.extra == 0)


def straight_rows(config: Path, folder: Path) -> list[tuple]:
    """The evaluations of an uninterrupted in-process run of ``config`` (into ``folder/straight.db``)."""
    from mcbo.runner.executor import run_suite

    db = folder / "straight.db"
    run_suite(config, db, progress=False)
    return stored_rows(db)


def kill_and_resume(folder: Path, kills: int = 4, seed: int = 0, budget: int = 24, batch_size: int = 3,
                    seeds: int = 2, delay: float = 0.02, solvers: Sequence[Any] = ("rs",),
                    extra_args: Sequence[str] = ()) -> KillOutcome:
    """Run a suite, SIGKILL its ``mcbo bench`` at ``kills`` random points (seeded), run it to the end.

    Each kill lands once a random number of evaluations more is stored, a random fraction of a batch later
    (often mid-batch). The result is compared with an uninterrupted in-process run of the same config.
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = write_config(folder, budget=budget, batch_size=batch_size, seeds=seeds, delay=delay, solvers=solvers)
    straight = straight_rows(config, folder)
    db = folder / "killed.db"
    log = folder / "evaluations.log"
    env = subprocess_env(**{LOG_ENV: str(log)})
    argv = bench_argv(config, db, *extra_args)
    outcome = KillOutcome()
    before: dict[tuple, tuple] = {}
    total = len(straight)
    for k in range(kills):
        stored = count_rows(db)
        left = total - stored
        if left <= batch_size:
            break
        target = stored + rng.randint(1, max(1, left // (kills - k + 1)))
        output = (folder / f"kill{k}.log").open("w")
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_for_rows(db, proc, target)
            time.sleep(rng.uniform(0.0, delay * batch_size))
            landed = proc.poll() is None
            kill_group(proc)
        finally:
            if proc.poll() is None:
                kill_group(proc)
            output.close()
        if landed:
            outcome.kills += 1
            rows = stored_rows(db)
            outcome.stored_at_kills.append(len(rows))
            before.update({row[:4]: row[4:] for row in rows})
    done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    outcome.final_status = done.returncode
    outcome.final_output = (done.stdout + done.stderr)[-4000:]
    final = stored_rows(db)
    after = {row[:4]: row[4:] for row in final}
    outcome.lost = sum(after.get(key) != value for key, value in before.items())
    outcome.repeated = repeated_points(final)
    straight_keys = {row[:4]: row[4:] for row in straight}
    outcome.missing = sum(key not in after for key in straight_keys)
    outcome.extra = sum(key not in straight_keys for key in after)
    runs = {row[:3] for row in straight} | {row[:3] for row in final}
    outcome.diverged = sum([r for r in straight if r[:3] == run] != [r for r in final if r[:3] == run] for run in runs)
    made = len(log.read_text().splitlines()) if log.is_file() else 0
    outcome.redone = max(0, made - len(final))
    return outcome


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """A folder nobody can write to while inside: ``chmod 555``, or ``chattr +i`` as root (whom permissions do not
    bind); skips the test where neither is possible."""
    import pytest

    as_root = os.geteuid() == 0
    if as_root:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a folder read-only as root here: {done.stderr.strip()}")
    else:
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


class Killed(BaseException):
    """A simulated SIGKILL: raised from inside the writer, caught by nothing in mcbo."""


def crash_after_writes(monkeypatch: Any, writes: int, before_commit: bool = False) -> None:
    """Make ``ResultsDB.add_evaluation`` raise :class:`Killed` at its ``writes``-th call.

    With ``before_commit`` the call raises before writing (the evaluation is lost, as in flight); otherwise
    after its commit (the next one never comes). Either is what a kill at that moment leaves on disk.
    """
    from mcbo.runner.storage import ResultsDB

    original = ResultsDB.add_evaluation
    calls = {"n": 0}

    def add_evaluation(self, record, state=None):
        calls["n"] += 1
        if calls["n"] == writes and before_commit:
            raise Killed(f"killed before write {writes}")
        stored = original(self, record, state=state)
        if calls["n"] == writes:
            raise Killed(f"killed after write {writes}")
        return stored

    monkeypatch.setattr(ResultsDB, "add_evaluation", add_evaluation)


# ------------------------------------------------------------------------------- errors a user can cause
def _bench(config: Path, db: Path, *extra: str) -> list[str]:
    return ["bench", str(config), "--db", str(db), "--no-progress", *extra]


def _finished_db(folder: Path, config: Path, name: str = "done.db") -> Path:
    """A database holding the finished suite of ``config`` (written in this process)."""
    from mcbo.runner.executor import run_suite

    db = folder / name
    run_suite(config, db, progress=False)
    return db


def _damage(db: Path, keep: int = 4096) -> Path:
    data = bytearray(db.read_bytes())
    data[keep:] = bytes(len(data) - keep)
    db.write_bytes(bytes(data))
    return db


def _rewrite(config: Path, **changes: Any) -> Path:
    raw = yaml.safe_load(config.read_text())
    raw.update(changes)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def _case_db_folder(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    return _bench(write_config(folder, budget=3, delay=0.0), folder), "is a folder; expected a database written by"


def _case_db_under_a_file(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = write_config(folder, budget=3, delay=0.0)
    return _bench(config, config / "r.db"), f"{str(config)!r} is a file, not a folder"


def _case_damaged_header(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    db = folder / "damaged.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    return _bench(write_config(folder, budget=3, delay=0.0), db), "is damaged (file is not a database); move it aside"


def _case_damaged_pages(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = write_config(folder, budget=3, delay=0.0)
    return _bench(config, _damage(_finished_db(folder, config))), "is damaged ("


def _case_report_damaged(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    db = _damage(_finished_db(folder, write_config(folder, budget=3, delay=0.0)))
    return ["report", str(db), "--out", str(folder / "report")], "is damaged ("


def _case_another_suite(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    db = _finished_db(folder, write_config(folder, budget=3, delay=0.0))
    other = write_config(folder, name="other", budget=3, delay=0.0)
    return _bench(other, db), "holds suite 'faults' (from"


def _case_changed_run(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = write_config(folder, budget=3, delay=0.0)
    db = _finished_db(folder, config)
    _rewrite(config, tasks=[{"name": SLOW_TASK, "kwargs": {"delay": 0.5}}])
    return _bench(config, db), "but the config now says"


def _case_budget_int(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = _rewrite(write_config(folder, delay=0.0), budget=10**23)
    return _bench(config, folder / "r.db"), "budget: got 100000000000000000000000; expected an integer from 1 to"


def _case_budget_text(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = _rewrite(write_config(folder, delay=0.0), budget="10^23")
    return _bench(config, folder / "r.db"), "budget: got '10^23'; expected an integer from 1 to"


def _case_name_escapes(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = _rewrite(write_config(folder, delay=0.0), name="../../../x")
    return ["bench", str(config), "--no-progress"], "name: got '../../../x'; expected a file name"


def _case_report_out_file(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = write_config(folder, budget=3, delay=0.0)
    db = _finished_db(folder, config)
    return ["report", str(db), "--out", str(config)], "--out: got"


def _case_report_folder(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    return ["report", str(folder)], "is a folder"


def _case_read_only_new(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = write_config(folder, budget=3, delay=0.0)
    media = folder / "media"
    media.mkdir()
    stack.enter_context(read_only_folder(media))
    return _bench(config, media / "r.db"), "cannot create its lock file"


def _case_read_only_existing(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    config = _rewrite(write_config(folder, budget=3, delay=0.0))
    media = folder / "media"
    media.mkdir()
    db = _finished_db(media, config)
    _rewrite(config, budget=6)  # more to do: it must write
    stack.enter_context(read_only_folder(media))
    return _bench(config, db), "the database's folder must be writable"


def _case_report_read_only_default_out(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    media = folder / "media"
    media.mkdir()
    db = _finished_db(media, write_config(folder, budget=3, delay=0.0))
    stack.enter_context(read_only_folder(media))
    return ["report", str(db)], "cannot write the report to"


def _case_report_unmerged_wal(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    import shutil

    from mcbo.runner.storage import ResultsDB

    config = write_config(folder, budget=3, delay=0.0)
    db = _finished_db(folder, config)
    media = folder / "media"
    media.mkdir()
    writer = ResultsDB(db)  # a writer still open: its last changes are in the -wal file
    try:
        writer.set_status(1, "done")
        for suffix in ("", "-wal"):
            shutil.copy(db.with_name(db.name + suffix), media / (db.name + suffix))
    finally:
        writer.close()
    stack.enter_context(read_only_folder(media))
    return ["report", str(media / db.name), "--out", str(folder / "report")], "has changes not yet merged from"


def _case_disk_full(folder: Path, stack: contextlib.ExitStack) -> tuple[list[str], str]:
    from mcbo.runner.storage import ResultsDB

    config = write_config(folder, budget=30, delay=0.0)
    register = ResultsDB.register_suite

    def register_then_fill_the_disk(self: ResultsDB, *args: Any, **kwargs: Any) -> None:
        register(self, *args, **kwargs)
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        self.conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    ResultsDB.register_suite = register_then_fill_the_disk  # type: ignore[method-assign]
    stack.callback(setattr, ResultsDB, "register_suite", register)
    return _bench(config, folder / "r.db"), "the disk is full; free some space, then run the same command again"


#: name -> set-up ``(folder, exit stack) -> (mcbo argv, text its error line must hold)``.
CLI_FAULTS = {
    "--db is a folder": _case_db_folder,
    "--db under a file": _case_db_under_a_file,
    "damaged database (header)": _case_damaged_header,
    "damaged database (pages)": _case_damaged_pages,
    "report of a damaged database": _case_report_damaged,
    "another suite on the database": _case_another_suite,
    "a changed run on the database": _case_changed_run,
    "budget: 10**23": _case_budget_int,
    "budget: 10^23": _case_budget_text,
    "name: ../../../x": _case_name_escapes,
    "report --out is a file": _case_report_out_file,
    "report of a folder": _case_report_folder,
    "read-only folder, new database": _case_read_only_new,
    "read-only folder, existing database": _case_read_only_existing,
    "report into a read-only folder": _case_report_read_only_default_out,
    "report of un-merged WAL on read-only media": _case_report_unmerged_wal,
    "disk full mid-run": _case_disk_full,
}


@dataclass
class CliOutcome:
    """What ``mcbo`` did with one bad input: exit status, stderr, and a raw traceback if one escaped."""

    case: str
    status: int | None
    err: str
    must_contain: str
    raw: str = ""

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    @property
    def clean(self) -> bool:
        """Exit status 2, one ``error:`` line holding the expected text, no traceback."""
        return (not self.raw and self.status == 2 and len(self.lines) == 1 and self.lines[0].startswith("error: ")
                and self.must_contain in self.lines[0] and "Traceback" not in self.err)


def run_cli_fault(name: str, folder: Path) -> CliOutcome:
    """Set up case ``name`` of :data:`CLI_FAULTS` in ``folder`` and run its ``mcbo`` command in this process."""
    import io
    import traceback

    from mcbo.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        argv, must_contain = CLI_FAULTS[name](folder, stack)
        err = io.StringIO()
        status, raw = None, ""
        cwd = os.getcwd()
        os.chdir(folder)  # a default path (results/<name>.db) lands in the case's folder
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                status = main(argv)
        except SystemExit as exit_info:
            status = exit_info.code if isinstance(exit_info.code, int) else 1
        except Exception:  # noqa: BLE001 -- a raw traceback is what this counts
            raw = traceback.format_exc()
        finally:
            os.chdir(cwd)
    return CliOutcome(name, status, err.getvalue(), must_contain, raw)


# ------------------------------------------------------------------------------- Ctrl-C and a second writer
def _default_sigint() -> None:
    """In the child before ``exec``: SIGINT back to its default disposition (an ignored signal is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(config: Path, db: Path, *extra: str, at_rows: int = 6) -> tuple[int, str, str]:
    """Start ``mcbo bench``, send SIGINT to its process group (as Ctrl-C at a terminal does) once ``at_rows``
    evaluations are stored; its exit status, stdout and stderr."""
    proc = subprocess.Popen(bench_argv(config, db, *extra), cwd=REPO_ROOT, env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)  # as at a terminal, whatever the test process ignores
    try:
        wait_for_rows(db, proc, at_rows)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    return proc.returncode, out, err


@dataclass
class StopOutcome:
    """A suite stopped (Ctrl-C, or a second writer refused while the first ran), then run to the end.

    Attributes:
        status, lines: exit status and stderr lines of the stopped (or refused) command.
        tracebacks: stderr lines of tracebacks and Dask's messages.
        stored: evaluations stored when it stopped; lost: those missing or changed at the end.
        repeated, diverged: as in :class:`KillOutcome`; final_status: the run to the end.
    """

    status: int | None = None
    lines: list[str] = field(default_factory=list)
    tracebacks: int = 0
    stored: int = 0
    lost: int = 0
    repeated: int = 0
    diverged: int = 0
    final_status: int | None = None


def _compare(outcome: StopOutcome, before: list[tuple], final: list[tuple], straight: list[tuple]) -> None:
    after = {row[:4]: row[4:] for row in final}
    outcome.lost = sum(after.get(row[:4]) != row[4:] for row in before)
    outcome.repeated = repeated_points(final)
    runs = {row[:3] for row in straight} | {row[:3] for row in final}
    outcome.diverged = sum([r for r in straight if r[:3] == run] != [r for r in final if r[:3] == run] for run in runs)


def _noise(err: str) -> int:
    return sum(("Traceback" in line or "distributed." in line or "Error" in line) and not line.startswith("error: ")
               for line in err.splitlines())


def ctrl_c_and_resume(folder: Path, *extra: str, budget: int = 30, delay: float = 0.05) -> StopOutcome:
    """Ctrl-C a ``mcbo bench`` (``extra``: e.g. ``--workers 2``), then run the same command to the end."""
    (folder / "straight").mkdir(parents=True, exist_ok=True)
    straight = straight_rows(write_config(folder / "straight", budget=budget, batch_size=3, seeds=2, delay=0.0),
                             folder / "straight")
    config = write_config(folder, budget=budget, batch_size=3, seeds=2, delay=delay)
    db = folder / "r.db"
    status, _, err = interrupt(config, db, *extra)
    outcome = StopOutcome(status=status, lines=[line for line in err.splitlines() if line.strip()],
                          tracebacks=_noise(err))
    before = stored_rows(db)
    outcome.stored = len(before)
    done = subprocess.run(bench_argv(config, db, *extra), cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
                          text=True, timeout=600)
    outcome.final_status = done.returncode
    _compare(outcome, before, stored_rows(db), straight)
    return outcome


def second_writer(folder: Path, budget: int = 30, delay: float = 0.2) -> StopOutcome:
    """A second ``mcbo bench`` (in this process) on a database a first one (a subprocess) writes: refused? Then
    the first is SIGKILLed part-way and a third run goes to the end: its stale lock taken over, nothing lost?"""
    import io

    from mcbo.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "straight").mkdir(exist_ok=True)
    straight = straight_rows(write_config(folder / "straight", budget=budget, batch_size=3, seeds=2, delay=0.0),
                             folder / "straight")
    config = write_config(folder, budget=budget, batch_size=3, seeds=2, delay=delay)
    db = folder / "r.db"
    first = subprocess.Popen(bench_argv(config, db), cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    outcome = StopOutcome()
    try:
        wait_for_rows(db, first, 3)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            outcome.status = main(bench_argv(config, db)[3:])
        outcome.lines = [line for line in err.getvalue().splitlines() if line.strip()]
        outcome.tracebacks = _noise(err.getvalue())
    finally:
        kill_group(first)
    before = stored_rows(db)
    outcome.stored = len(before)
    done = subprocess.run(bench_argv(config, db), cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True,
                          timeout=600)
    outcome.final_status = done.returncode
    _compare(outcome, before, stored_rows(db), straight)
    return outcome
