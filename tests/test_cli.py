"""The mcbo command: run/demo write a CSV and a PNG; solvers and tasks list what exists; --version;
-v/-q anywhere; bad input gives one ``error:`` line and exit status 2."""

import logging

import pandas as pd
import pytest

from mcbo import cli
from mcbo.cli import format_point, main


def test_demo_writes_history_and_plot(tmp_path, capsys):
    assert main(["demo", "--solver", "rs", "--task", "pest_control", "--evals", "6", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "best value after 6 evaluations" in out
    history = pd.read_csv(tmp_path / "rs_pest_control_seed0.csv")
    assert len(history) == 6 and history["best_value"].is_monotonic_decreasing
    png = (tmp_path / "rs_pest_control_seed0.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_solvers_and_tasks_listings(capsys):
    assert main(["solvers"]) == 0
    listing = capsys.readouterr().out
    for name in ("casmopolitan", "boils", "combo", "bodi", "bocs", "boss", "cocabo", "rs", "hc", "sa", "ga"):
        assert name in listing
    assert "nominal_kernel" not in listing and "model=gp" in listing
    assert main(["tasks"]) == 0
    assert "ackley53" in capsys.readouterr().out


def test_version(capsys):
    import mcbo

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mcbo {mcbo.__version__}"


def test_run_writes_the_history_and_prints_the_best_point(tmp_path, capsys):
    argv = ["run", "--solver", "rs", "--task", "pest_control", "--evals", "5", "--seed", "1", "--out", str(tmp_path)]
    assert main(argv + ["-q"]) == 0
    out = capsys.readouterr().out
    history = pd.read_csv(tmp_path / "rs_pest_control_seed1.csv")
    assert len(history) == 5
    assert f"best value after 5 evaluations (0 failed): {history['value'].min():.6g}" in out
    assert "best point (25 parameters):" in out
    assert out.count(" = ") == 25 and "stage_01 = " in out and "stage_25 = " in out
    point_lines = out.split("best point (25 parameters):\n")[1].split("history:")[0].splitlines()
    assert len(point_lines) == 9 and all(len(line) <= 100 for line in point_lines)  # 3 cells a line


def test_format_point_in_columns_long_values_alone_and_empty():
    assert format_point({"x": 0.123456789, "kind": "b", "n": 3}).splitlines() == [
        "best point (3 parameters):", "  x    = 0.123457   kind = 'b'        n    = 3"]
    many = format_point({f"b{i:02d}": bool(i % 2) for i in range(53)}, width=100).splitlines()
    assert many[0] == "best point (53 parameters):" and len(many) == 1 + 8
    assert all(len(line) <= 100 for line in many) and sum(line.count(" = ") for line in many) == 53
    with_sequence = format_point({"seq": list(range(30)), "flag": True}).splitlines()
    assert len(with_sequence) == 3 and with_sequence[1].startswith("  seq  = [0, 1, 2")
    assert format_point({f"p{i}": i for i in range(130)}).splitlines()[-1] == "  ... and 10 more (see the history CSV)"
    assert "every evaluation failed" in format_point(None)


def _status(argv):
    """main's exit status, whether it returns it or argparse raises SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.mark.parametrize("argv, message", [
    (["demo", "--solver", "casmopolitn"],
     "error: --solver: unknown solver recipe 'casmopolitn' (did you mean 'casmopolitan'?); expected one of: bocs,"),
    (["demo", "--task", "ackly"], "error: --task: unknown task 'ackly' (did you mean 'ackley53'?); expected one of:"),
    (["run", "--solver", "rs", "--task", "nope", "--evals", "3"], "error: --task: unknown task 'nope'; expected"),
    (["demo", "--evals", "-3"],
     "error: --evals: got -3; expected an integer from 1 to 1000000000 (the number of evaluations)"),
    (["demo", "--evals", "0"], "error: --evals: got 0; expected an integer from 1 to 1000000000 (the number of evaluations)"),
    (["demo", "--batch-size", "0"], "error: --batch-size: got 0; expected an integer >= 1"),
    (["demo", "--seed", "-1"], "error: --seed: got -1; expected an integer >= 0"),
    (["-v", "run", "--solver", "rs", "--task", "pest_control", "--evals", "-3"], "error: --evals: got -3"),
    (["demo", "--evals", "abc"],
     "error: mcbo demo: argument --evals: invalid int value: 'abc' (see `mcbo demo --help`)"),
    (["run", "--solver", "rs"], "error: mcbo run: the following arguments are required: --task, --evals"),
    (["frobnicate"], "error: mcbo: argument COMMAND: invalid choice: 'frobnicate'"),
    (["bench", "no/such/config.yaml"], "error: config file 'no/such/config.yaml' does not exist; expected the path"),
    (["report", "no/such/results.db"], "error: results database 'no/such/results.db' does not exist"),
])
def test_bad_input_gives_one_error_line_and_status_2(argv, message, tmp_path, capsys):
    assert _status(argv + ["--out", str(tmp_path / "out")] if argv[0] in ("run", "demo") else argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and len(captured.err.splitlines()) == 1, captured.err
    assert "Traceback" not in captured.err and "error:" not in captured.out
    assert not list(tmp_path.iterdir())


def test_files_that_are_not_what_the_command_needs_give_one_error_line(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# notes\n")
    assert main(["report", str(readme)]) == 2
    assert capsys.readouterr().err == (f"error: {str(readme)!r} is not an mcbo results database (not an SQLite file); "
                                       f"expected a database written by `mcbo bench`\n")
    assert main(["demo", "--out", str(readme)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out: got {str(readme)!r}, an existing file; expected a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_unreachable_scheduler_fails_fast_without_creating_the_database(tmp_path, capsys):
    import time

    import yaml

    pytest.importorskip("distributed")
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "budget": 2, "seeds": 1, "solvers": ["rs"],
                                      "tasks": ["crash_cat"]}))
    start = time.monotonic()
    assert main(["bench", str(config), "--scheduler", "tcp://127.0.0.1:1", "--scheduler-timeout", "0.5",
                 "--db", str(tmp_path / "r.db")]) == 2
    assert time.monotonic() - start < 20
    err = capsys.readouterr().err
    assert err.startswith("error: scheduler: cannot connect to a Dask scheduler at 'tcp://127.0.0.1:1'")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_closed_pipe_ends_quietly_with_status_141():
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as with `mcbo -v solvers | head -0`
    try:
        done = subprocess.run([sys.executable, "-m", "mcbo", "-v", "solvers"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    for noise in ("Traceback", "BrokenPipeError", "Exception ignored"):
        assert noise not in done.stderr, done.stderr


def test_help_shows_defaults(capsys):
    import re

    for argv, expected in ((["demo", "--help"], ["(default: default)", "(default: ackley53)", "(default: 60)",
                                                   "(default: 0)", "(default: 1)", "(default: results/demo)"]),
                           (["bench", "--help"], ["(default: 10.0)", "(default: results/<suite name>.db)"])):
        assert _status(argv) == 0
        text = re.sub(r"\s+", " ", capsys.readouterr().out)
        for default in expected:
            assert default in text, (argv, default)
        assert "(default: None)" not in text and "(default: False)" not in text


def test_tasks_lists_variables_and_a_description(capsys):
    assert main(["tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("ackley53 ")))
    assert lines[at].split(None, 1)[1] == "53 variables: 50 boolean, 3 real"
    assert lines[at + 1].strip().startswith("Ackley-53: 50 binary + 3 continuous variables")
    pest = next(line for line in lines if line.startswith("pest_control "))
    assert pest.endswith("25 variables: 25 categorical")
    assert any(line.startswith("botorch ") and line.endswith("variables set by its arguments") for line in lines)


def test_demo_says_what_it_will_do_and_marks_the_initial_design(tmp_path, capsys, monkeypatch):
    import matplotlib.axes

    spans = []
    original = matplotlib.axes.Axes.axvspan
    monkeypatch.setattr(matplotlib.axes.Axes, "axvspan",
                        lambda self, *args, **kwargs: spans.append((args, kwargs)) or original(self, *args, **kwargs))
    assert main(["demo", "--evals", "4", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    plan = out.split("best value after")[0]
    assert plan.startswith("default on ackley53: 4 evaluations, one point at a time, seed 0\n")
    assert "53 variables: 50 boolean, 3 real" in plan and "the first 4 evaluations are its initial design" in plan
    assert "default_ackley53_seed0.csv" in plan
    ((args, kwargs),) = spans
    assert args == (0.5, 4.5) and kwargs["label"] == "initial design (10 evaluations)"
    assert (tmp_path / "default_ackley53_seed0.png").is_file()


def test_logs_of_other_libraries_need_verbose(monkeypatch, capsys):
    chatty = logging.getLogger("distributed.test_chatter")
    chatty.setLevel(logging.INFO)  # as distributed sets its own loggers

    def log_some(args):
        chatty.info("worker started")
        logging.getLogger("mcbo.test").info("mcbo info")
        chatty.warning("worker lost")
        return 0

    monkeypatch.setattr(cli, "_tasks", log_some)
    try:
        assert main(["tasks"]) == 0
        err = capsys.readouterr().err
        assert "worker lost" in err and "worker started" not in err and "mcbo info" not in err
        assert main(["tasks", "-v"]) == 0
        err = capsys.readouterr().err
        assert "worker started" in err and "mcbo info" in err
        assert main(["tasks", "-q"]) == 0
        assert capsys.readouterr().err == ""
    finally:
        chatty.setLevel(logging.NOTSET)


def test_dask_loggers_are_quiet_unless_mcbo_logs_info():
    pytest.importorskip("distributed")
    from mcbo.runner.dask_backend import quiet_dask_logs

    dask_logger = logging.getLogger("distributed")
    before = dask_logger.level
    mcbo_logger = logging.getLogger("mcbo")
    try:
        dask_logger.setLevel(logging.INFO)
        with quiet_dask_logs() as quiet:
            assert quiet and dask_logger.level == logging.WARNING
        assert dask_logger.level == logging.INFO
        mcbo_logger.setLevel(logging.INFO)
        with quiet_dask_logs() as quiet:
            assert not quiet and dask_logger.level == logging.INFO
    finally:
        dask_logger.setLevel(before)
        mcbo_logger.setLevel(logging.NOTSET)


def test_bench_no_progress_and_quiet_hide_every_bar(tmp_path, capsys):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"name": "tiny", "budget": 2, "seeds": 1, "solvers": ["rs"],
                                      "tasks": ["crash_cat"]}))
    for flag in ("--no-progress", "-q"):
        assert main(["bench", str(config), "--db", str(tmp_path / f"r{flag}.db"), flag]) == 0
        captured = capsys.readouterr()
        assert captured.err == "" and " done " in captured.out


def test_verbose_and_quiet_go_before_or_after_the_command(monkeypatch):
    seen = {}

    def fake_tasks(args):
        seen.update(verbose=args.verbose, quiet=args.quiet, level=logging.getLogger().level)
        return 0

    monkeypatch.setattr(cli, "_tasks", fake_tasks)
    for argv, expected in ((["tasks"], (0, False, logging.WARNING)),
                           (["-v", "tasks"], (1, False, logging.INFO)),
                           (["tasks", "-v"], (1, False, logging.INFO)),
                           (["tasks", "-vv"], (2, False, logging.DEBUG)),
                           (["-q", "tasks"], (0, True, logging.ERROR)),
                           (["tasks", "--quiet"], (0, True, logging.ERROR))):
        assert main(argv) == 0
        assert (seen["verbose"], seen["quiet"], seen["level"]) == expected, argv
    with pytest.raises(SystemExit):
        main(["tasks", "-v", "-q"])


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_tasks", interrupted)
    assert main(["tasks"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


def test_a_bug_still_raises(monkeypatch):
    def buggy(args):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(cli, "_tasks", buggy)
    with pytest.raises(KeyError):
        main(["tasks"])


def test_python_dash_m_entry_points_are_the_mcbo_command():
    import subprocess
    import sys

    for module in ("mcbo", "mcbo.runner.cli"):
        done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("mcbo "), (module, done.stderr)
