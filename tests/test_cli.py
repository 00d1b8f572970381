"""The mcbo command: demo writes a CSV and a PNG; solvers and tasks list what exists."""

import pandas as pd

from mcbo.cli import main


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
