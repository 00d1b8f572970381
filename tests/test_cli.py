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
    assert out.count(" = ") == 20 and "... and 5 more (see the history CSV)" in out
    assert "  stage_01 = " in out and "stage_21 = " not in out


def test_format_point_short_and_empty():
    assert format_point({"x": 0.123456789, "kind": "b", "n": 3}).splitlines() == [
        "best point (3 parameters):", "  x    = 0.123457", "  kind = 'b'", "  n    = 3"]
    assert "every evaluation failed" in format_point(None)


@pytest.mark.parametrize("argv, message", [
    (["run", "--solver", "nope", "--task", "pest_control", "--evals", "3"], "unknown solver recipe 'nope'"),
    (["run", "--solver", "rs", "--task", "nope", "--evals", "3"], "unknown task 'nope'"),
    (["run", "--solver", "rs", "--task", "pest_control", "--evals", "-3"], "--evals must be >= 0, got -3"),
    (["demo", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["-v", "run", "--solver", "rs", "--task", "pest_control", "--evals", "-3"], "--evals must be >= 0"),
    (["bench", "no/such/config.yaml"], "no/such/config.yaml"),
    (["report", "no/such/results.db"], "does not exist"),
])
def test_bad_input_gives_one_error_line_and_status_2(argv, message, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path)] if argv[0] in ("run", "demo") else argv) == 2
    captured = capsys.readouterr()
    error_lines = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and error_lines[0].startswith("error: ") and message in error_lines[0]
    assert "Traceback" not in captured.err
    assert not list(tmp_path.iterdir())


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
