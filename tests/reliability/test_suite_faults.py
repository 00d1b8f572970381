"""Suites under faults: ``mcbo bench`` killed (SIGKILL, Ctrl-C) at random points and resumed gives exactly the
uninterrupted run; a second writer is refused naming the first, and a killed writer's lock is taken over; every
failure a user can cause (a damaged, read-only, full, busy or foreign database, a folder or a file in the wrong
place, a bad config) ends with one ``error:`` line and exit status 2.

The suites run :data:`tests.runner.suite_faults.SLOW_TASK`, which takes a set time per evaluation so that a
process can be stopped part-way; its uninterrupted runs are made in-process without the delay (the values do
not depend on it).
"""

from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

import pytest

from mcbo.cli import main
from mcbo.runner.executor import run_suite
from mcbo.runner.lock import lock_path
from tests.runner import suite_faults as sf


def _straight(folder: Path, **config) -> list[tuple]:
    """The rows of an uninterrupted in-process run of the config written with ``config`` (no delay)."""
    folder.mkdir(parents=True, exist_ok=True)
    return sf.straight_rows(sf.write_config(folder, **{**config, "delay": 0.0}), folder)


def _one_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run ``mcbo ARGV``; check it ends with exit status 2 and one ``error:`` line; return that line."""
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- kills, then resume
@pytest.mark.parametrize("solvers", [["rs"], [{"recipe": "casmopolitan", "name": "casmo", "n_init": 3}]],
                         ids=["rs", "casmopolitan"])
def test_crashes_at_any_write_resume_to_exactly_the_uninterrupted_run(tmp_path: Path, monkeypatch, solvers) -> None:
    """A crash before or after any database write (what SIGKILL leaves on disk), five times in a row."""
    config = sf.write_config(tmp_path, budget=9, batch_size=3, seeds=1, delay=0.0, solvers=solvers)
    straight = sf.straight_rows(config, tmp_path)
    db = tmp_path / "crashed.db"
    crashes = [(2, False), (2, True), (1, False), (2, True), (1, True)]  # (write, before its commit)
    for writes, before_commit in crashes:
        with monkeypatch.context() as patch:
            sf.crash_after_writes(patch, writes, before_commit)
            with pytest.raises(sf.Killed):
                run_suite(config, db, progress=False)
        rows = sf.stored_rows(db)
        assert rows == straight[:len(rows)]  # what is stored is always a prefix of the uninterrupted run
    run_suite(config, db, progress=False)
    assert sf.stored_rows(db) == straight  # same points, same order, same values, no row twice


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL of a `mcbo bench` subprocess at 4 random points (seeded) of rs, batch size 3, then run to the end."""
    outcome = sf.kill_and_resume(tmp_path, kills=4, seed=0, budget=24, batch_size=3, seeds=2, delay=0.03)
    assert outcome.kills >= 3, outcome
    assert outcome.ok, outcome
    assert (outcome.lost, outcome.repeated, outcome.diverged, outcome.missing, outcome.extra) == (0, 0, 0, 0, 0)


# --------------------------------------------------------------------------- one writer
def test_a_second_writer_is_refused_naming_the_first_and_a_killed_writers_lock_is_taken_over(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = sf.write_config(tmp_path, budget=30, batch_size=3, seeds=2, delay=0.1)
    db = tmp_path / "r.db"
    argv = ["bench", str(config), "--db", str(db), "--no-progress"]
    proc = subprocess.Popen(sf.bench_argv(config, db), cwd=sf.REPO_ROOT, env=sf.subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert sf.wait_for_rows(db, proc, 3) >= 3 and proc.poll() is None
        line = _one_error(argv, capsys)
        assert line.startswith(f"error: results database {str(db)!r} is being written by another mcbo process "
                               f"(pid {proc.pid} on host ")
        assert f", running `mcbo bench {config} --db {db} --no-progress`); wait for it to finish, or stop it" in line
    finally:
        sf.kill_group(proc)  # SIGKILL: its lock file stays behind, its lock goes with it
    stored = sf.stored_rows(db)
    assert lock_path(db).is_file() and 3 <= len(stored) < 60
    assert main(argv + ["-q"]) == 0
    capsys.readouterr()
    assert not lock_path(db).exists()
    assert sf.stored_rows(db) == _straight(tmp_path / "straight", budget=30, batch_size=3, seeds=2)


# --------------------------------------------------------------------------- Ctrl-C
def _check_interrupted(status: int, err: str, config: Path, db: Path, extra: str = "") -> list[str]:
    """One line on stderr saying what is stored and the command that resumes; exit 130; the argv that resumes."""
    assert status == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "distributed" not in err
    stored = sf.count_rows(db)
    match = re.fullmatch(rf"interrupted: {stored} of 60 evaluations of suite 'faults' are stored in {re.escape(str(db))} "
                         rf"\((\d) of 2 runs done\); resume with: (.*)", lines[0])
    assert match, lines[0]
    assert match.group(2) == f"mcbo bench {config} --db {db}{extra} --no-progress"
    assert not lock_path(db).exists()
    return shlex.split(match.group(2))[1:]


def test_ctrl_c_stops_cleanly_and_the_rerun_resumes_from_where_it_stopped(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    config = sf.write_config(tmp_path, budget=30, batch_size=3, seeds=2, delay=0.05)
    db = tmp_path / "r.db"
    status, out, err = sf.interrupt(config, db)
    resume = _check_interrupted(status, err, config, db)
    stored = sf.count_rows(db)
    statuses = sqlite3.connect(db).execute("SELECT status FROM runs").fetchall()
    assert "running" not in {s[0] for s in statuses}  # the stopped run is pending again
    assert main(resume) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"resuming suite 'faults' from {db}: {stored} of 60 evaluations stored (")
    assert "; continuing from there\n" in out.splitlines(keepends=True)[0]
    assert main(resume) == 0
    assert out != (out := capsys.readouterr().out)
    assert out.startswith(f"suite 'faults' in {db} is complete (2 runs, 60 evaluations): nothing left to do\n")
    assert sf.stored_rows(db) == _straight(tmp_path / "straight", budget=30, batch_size=3, seeds=2)


@pytest.mark.slow
def test_ctrl_c_with_workers_stops_cleanly_and_resumes_exactly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("distributed")
    config = sf.write_config(tmp_path, budget=30, batch_size=3, seeds=2, delay=0.05)
    db = tmp_path / "r.db"
    status, out, err = sf.interrupt(config, db, "--workers", "2")
    resume = _check_interrupted(status, err, config, db, extra=" --workers 2")
    assert main(resume) == 0
    assert capsys.readouterr().out.startswith("resuming suite 'faults'")
    assert sf.stored_rows(db) == _straight(tmp_path / "straight", budget=30, batch_size=3, seeds=2)


# --------------------------------------------------------------------------- errors a user can cause
def test_a_full_disk_stops_the_suite_with_one_line_and_the_rerun_resumes_exactly(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcbo.runner.storage import ResultsDB

    config = sf.write_config(tmp_path, budget=30, batch_size=3, seeds=2, delay=0.0)
    db = tmp_path / "r.db"
    register = ResultsDB.register_suite

    def register_then_fill_the_disk(self, *args, **kwargs):
        register(self, *args, **kwargs)
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        self.conn.execute(f"PRAGMA max_page_count = {pages + 2}")

    with monkeypatch.context() as patch:
        patch.setattr(ResultsDB, "register_suite", register_then_fill_the_disk)
        line = _one_error(["bench", str(config), "--db", str(db), "--no-progress"], capsys)
    assert re.fullmatch(rf"error: cannot [a-z ]+ in results database {re.escape(repr(str(db)))}: the disk is full; free "
                        r"some space, then run the same command again \(it resumes from what is stored\)", line), line
    stored = sf.stored_rows(db)
    assert 0 < len(stored) < 60 and not lock_path(db).exists()
    assert main(["bench", str(config), "--db", str(db), "--no-progress"]) == 0
    assert sf.stored_rows(db) == sf.straight_rows(config, tmp_path)


@pytest.mark.parametrize("case", list(sf.CLI_FAULTS))
def test_every_failure_a_user_can_cause_is_one_error_line_with_status_2(case: str, tmp_path: Path) -> None:
    outcome = sf.run_cli_fault(case, tmp_path)
    assert outcome.clean, (outcome.status, outcome.err, outcome.raw)


def test_the_error_lines_name_the_problem_and_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = sf.write_config(tmp_path, budget=3, batch_size=3, seeds=1, delay=0.0)
    line = _one_error(["bench", str(config), "--db", str(tmp_path)], capsys)
    assert line == f"error: results database {str(tmp_path)!r} is a folder; expected a database written by `mcbo bench`"
    db = tmp_path / "s.db"
    assert main(["bench", str(config), "--db", str(db), "-q"]) == 0
    capsys.readouterr()
    other = sf.write_config(tmp_path, name="other", budget=3, batch_size=3, seeds=1, delay=0.0)
    line = _one_error(["bench", str(other), "--db", str(db)], capsys)
    assert line == (f"error: results database {str(db)!r} holds suite 'faults' (from {config}), not suite 'other' "
                    f"(from {other}); a database holds one suite, so that its report compares runs of one config. "
                    f"Pass another --db (without --db each suite gets results/<name>.db), or give this config "
                    f"`name: faults` to add its runs to that suite")
    line = _one_error(["report", str(db), "--out", str(config)], capsys)
    assert line == f"error: --out: got {str(config)!r}, an existing file; expected a folder (created if missing)"
    media = tmp_path / "media"
    media.mkdir()
    with sf.read_only_folder(media):
        line = _one_error(["bench", str(config), "--db", str(media / "new.db"), "--no-progress"], capsys)
        assert line.startswith(f"error: cannot write results database {str(media / 'new.db')!r}: cannot create its "
                               f"lock file {str(media / 'new.db') + '.lock'!r} (")
        assert line.endswith("); the database's folder must be writable, or pass another database")
    assert not list(media.iterdir())


def test_a_report_reads_a_database_on_read_only_media(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = sf.write_config(tmp_path, budget=3, batch_size=3, seeds=1, delay=0.0)
    media = tmp_path / "media"
    media.mkdir()
    assert main(["bench", str(config), "--db", str(media / "r.db"), "-q"]) == 0
    capsys.readouterr()
    with sf.read_only_folder(media):
        assert main(["report", str(media / "r.db"), "--out", str(tmp_path / "rep")]) == 0
        assert "| solver |" in capsys.readouterr().out
    assert sorted(p.name for p in media.iterdir()) == ["r.db"]
