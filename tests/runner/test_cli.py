"""The `bench` and `report` commands through an argparse harness, as mcbo.cli wires them."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mcbo.runner.cli import add_commands
from mcbo.runner.executor import SuiteError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mcbo")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_bench_then_report(tmp_path: Path, suite_dict, write_config, capsys: pytest.CaptureFixture) -> None:
    config = write_config(suite_dict)
    args = _parse(["bench", str(config), "--db", str(tmp_path / "r.db"), "--no-progress"])
    assert (args.workers, args.scheduler, args.scheduler_timeout) == (None, None, 10.0)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.count(" done ") == 8 and f"results: {tmp_path / 'r.db'}" in out
    args = _parse(["report", str(tmp_path / "r.db")])
    assert args.func(args) == 0
    assert (tmp_path / "r_report" / "report.md").is_file()
    assert "| solver | ackley_cat | pest_control | average |" in capsys.readouterr().out


def test_bench_default_db_is_named_after_the_suite(tmp_path: Path, suite_dict, write_config,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    suite_dict.update(budget=2, seeds=1, solvers=["rs"], tasks=["ackley_cat"])
    config = write_config(suite_dict)
    monkeypatch.chdir(tmp_path)
    args = _parse(["bench", str(config), "--no-progress"])
    assert args.func(args) == 0
    assert (tmp_path / "results" / "small.db").is_file()


def test_bench_raises_on_missing_recipes_and_unbuildable_tasks(tmp_path: Path, suite_dict, write_config) -> None:
    suite_dict["solvers"] = ["rs", "casmopolitan_v9"]
    args = _parse(["bench", str(write_config(suite_dict)), "--db", str(tmp_path / "r.db"), "--no-progress"])
    with pytest.raises(SuiteError, match="solver 'casmopolitan_v9': no recipe named 'casmopolitan_v9'"):
        args.func(args)
    assert not (tmp_path / "r.db").exists()

    suite_dict["solvers"] = ["rs"]
    suite_dict["tasks"] = [{"name": "pest_control", "kwargs": {"n_stages": 0}}]
    args = _parse(["bench", str(write_config(suite_dict)), "--db", str(tmp_path / "r.db"), "--no-progress"])
    with pytest.raises(SuiteError, match="task 'pest_control': cannot be built"):
        args.func(args)


def test_workers_and_scheduler_exclude_each_other(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        _parse(["bench", "c.yaml", "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"])
    assert "not allowed with argument" in capsys.readouterr().err
    args = _parse(["bench", "c.yaml", "--workers", "3"])
    assert args.workers == 3 and callable(args.func)


def test_what_bench_says_as_it_starts_and_the_command_that_resumes(tmp_path: Path) -> None:
    from mcbo.runner.cli import describe_start, resume_command
    from mcbo.runner.executor import SuiteProgress

    db = tmp_path / "q.db"
    assert describe_start(SuiteProgress("quick", db, 4, 0, 0, 0, 120)) is None  # a new suite: nothing to say
    assert describe_start(SuiteProgress("quick", db, 4, 1, 1, 37, 120)) == (
        f"resuming suite 'quick' from {db}: 37 of 120 evaluations stored (1 of 4 runs done, 1 part-way); "
        f"continuing from there")
    assert describe_start(SuiteProgress("quick", db, 4, 4, 0, 120, 120)) == (
        f"suite 'quick' in {db} is complete (4 runs, 120 evaluations): nothing left to do")
    args = _parse(["bench", "my configs/q.yaml", "--workers", "2", "--torch-threads", "2"])
    assert resume_command(args, db) == f"mcbo bench 'my configs/q.yaml' --db {db} --workers 2 --torch-threads 2"
    args = _parse(["bench", "q.yaml", "--scheduler", "tcp://h:8786", "--no-progress"])
    assert resume_command(args, db) == (f"mcbo bench q.yaml --db {db} --scheduler tcp://h:8786 --scheduler-timeout 10 "
                                        f"--no-progress")
    args = _parse(["bench", "q.yaml", "--torch-threads", "0"])
    with pytest.raises(ValueError, match="--torch-threads: got 0; expected an integer >= 1"):
        args.func(args)
