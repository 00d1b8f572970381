"""Reports from a small hand-made database whose ranks, means and standard errors are checked by hand."""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from mcbo.runner.cli import add_commands
from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec
from mcbo.runner.report import build_report, load_evaluations, write_report
from mcbo.runner.storage import ResultsDB

INF = math.inf
#: (solver, task, seed) -> values per evaluation (None = failed); batches of one except where noted.
VALUES = {
    ("a", "t1", 0): [3, 2, 2],       # best so far 3 2 2
    ("b", "t1", 0): [4, 1, 5],       #             4 1 1     ranks a|b: 1|2  2|1  2|1
    ("a", "t1", 1): [1, 1, 0.2],     #             1 1 .2
    ("b", "t1", 1): [None, 2, 0.5],  #           inf 2 .5    ranks a|b: 1|2  1|2  1|2
    ("a", "t2", 0): [5, 5],          #             5 5
    ("b", "t2", 0): [5, 5],          #             5 5       ranks a|b: 1.5|1.5  1.5|1.5
    ("a", "t2", 1): [2, 1],          #             2 1
    ("b", "t2", 1): [1, 3, 0],       #             1 1 (0)   ranks a|b: 2|1  1.5|1.5 (3rd cut: t2 horizon is 2)
}
#: fit / acquisition seconds per batch of each solver; a's first run asks its first two points at once.
TIMING = {"a": (0.1, 0.2), "b": (0.0, 0.5)}


def _build_db(path: Path) -> Path:
    with ResultsDB(path) as db:
        for (solver, task, seed), values in VALUES.items():
            job = JobSpec(SolverSpec(solver, "rs"), TaskSpec(task, "ackley_cat"), seed=seed, budget=len(values))
            run = db.ensure_run(job)
            batches = [0, 0, 1] if (solver, task, seed) == ("a", "t1", 0) else list(range(len(values)))
            for i, value in enumerate(values):
                db.add_evaluation({
                    "run_id": run, "index": i, "batch": batches[i], "point": json.dumps({"x": i}), "value": value,
                    "error": "RuntimeError: crashed" if value is None else None, "fit_seconds": TIMING[solver][0],
                    "acq_seconds": TIMING[solver][1], "eval_seconds": 1.0 + i})
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return _build_db(tmp_path / "fixture.db")


def test_average_ranks_follow_the_mcbo_protocol(db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.report"):
        report = build_report(db_path)
    assert caplog.text.count("task 't2': runs have 2 to 3 evaluations; comparing the first 2") == 1
    ranks = report.ranks
    assert ranks.loc["a", "t1"] == pytest.approx(8 / 6) and ranks.loc["b", "t1"] == pytest.approx(10 / 6)
    assert ranks.loc["a", "t2"] == pytest.approx(6.5 / 4) and ranks.loc["b", "t2"] == pytest.approx(5.5 / 4)
    assert ranks.loc["a", "average"] == pytest.approx((8 / 6 + 6.5 / 4) / 2)
    assert ranks.loc["b", "average"] == pytest.approx((10 / 6 + 5.5 / 4) / 2)
    assert list(ranks.index) == ["a", "b"]  # best average rank first
    curve = report.rank_curve
    assert curve.loc[1, "a"] == pytest.approx((1.0 + 1.75) / 2) and curve.loc[1, "b"] == pytest.approx((2 + 1.25) / 2)
    assert curve.loc[2, "a"] == pytest.approx((1.5 + 1.5) / 2) and curve.loc[2, "b"] == pytest.approx((1.5 + 1.5) / 2)
    assert curve.loc[3, "a"] == pytest.approx(1.5) and curve.loc[3, "b"] == pytest.approx(1.5)  # only t1 reaches 3


def test_best_values_mean_and_standard_error(db_path: Path) -> None:
    best = build_report(db_path).best_values.set_index(["solver", "task"])
    assert best.loc[("a", "t1"), ["mean", "se", "n_runs", "n_evaluations"]].tolist() == pytest.approx([1.1, 0.9, 2, 3])
    assert best.loc[("b", "t1"), ["mean", "se"]].tolist() == pytest.approx([0.75, 0.25])
    assert best.loc[("b", "t2"), ["mean", "se", "n_evaluations"]].tolist() == pytest.approx([3.0, 2.0, 2])


def test_convergence_leaves_out_runs_without_a_success(db_path: Path) -> None:
    conv = build_report(db_path).convergence.set_index(["task", "solver", "n_evaluations"])
    assert conv.loc[("t1", "a", 1), ["mean", "se", "n_runs"]].tolist() == pytest.approx([2.0, 1.0, 2])
    first_b = conv.loc[("t1", "b", 1)]
    assert first_b["mean"] == 4.0 and first_b["n_runs"] == 1 and math.isnan(first_b["se"])
    assert conv.loc[("t1", "b", 3), ["mean", "se"]].tolist() == pytest.approx([0.75, 0.25])
    assert conv.xs("t2", level="task").index.get_level_values("n_evaluations").max() == 2


def test_seconds_per_iteration_counts_each_ask_once(db_path: Path) -> None:
    timings = build_report(db_path).timings.set_index(["solver", "task"])
    assert timings.loc[("a", "t1"), "n_iterations"] == 2 + 3  # the first run asked two points at once
    assert timings.loc[("a", "t1"), "seconds_per_iteration"] == pytest.approx(0.3)
    assert timings.loc[("b", "t2"), "seconds_per_iteration"] == pytest.approx(0.5)
    assert timings.loc[("b", "t2"), "eval_seconds"] == pytest.approx((1 + 2 + 1 + 2 + 3) / 5)


def test_failed_evaluations_are_marked(db_path: Path) -> None:
    evals = load_evaluations(db_path)
    failed = evals[evals["failed"]]
    assert failed[["solver", "task", "seed", "index"]].values.tolist() == [["b", "t1", 1, 0]]
    assert failed["error"].tolist() == ["RuntimeError: crashed"]


def test_write_report_exports_csv_markdown_and_plots(db_path: Path, tmp_path: Path) -> None:
    files = write_report(db_path, tmp_path / "out")
    ranks = pd.read_csv(files["ranks"], index_col="solver")
    assert ranks.loc["a", "t1"] == pytest.approx(8 / 6)
    assert len(pd.read_csv(files["best_values"])) == 4
    for key in ("rank_plot", "convergence:t1", "convergence:t2"):
        assert files[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = files["markdown"].read_text()
    assert "| solver | t1 | t2 | average |" in text
    assert "1.1 ± 0.9" in text and "![t1](convergence_t1.png)" in text


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mcbo")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_report_command(db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = _cli(["report", str(db_path), "--out", str(tmp_path / "rep")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| a | 1.33 | 1.62 | 1.48 |" in out
    assert (tmp_path / "rep" / "report.md").is_file()
    args = _cli(["report", str(tmp_path / "missing.db")])
    with pytest.raises(ValueError, match="does not exist"):
        args.func(args)
    (tmp_path / "notes.txt").write_text("not a database\n")
    args = _cli(["report", str(tmp_path / "notes.txt")])
    with pytest.raises(ValueError, match="'.*notes.txt' is not an mcbo results database"):
        args.func(args)
    assert not (tmp_path / "notes_report").exists()


def test_the_report_states_the_seeds_behind_every_table_and_band(db_path: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    labels = []
    original = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda self, *a, **k: labels.append(k.get("label")) or original(self, *a, **k))
    report = build_report(db_path)
    assert report.rank_seeds.to_dict() == {"t1": 2, "t2": 2}
    assert report.best_values_table().loc["a", "t1"] == "1.1 ± 0.9 (n=2)"
    text = write_report(report, tmp_path / "out")["markdown"].read_text()
    assert "Ranks per task use the seeds every solver of the task has: 2 seeds on every task." in text
    assert "The average is over every task." in text and "1.1 ± 0.9 (n=2)" in text
    assert {"a (2 seeds)", "b (2 seeds)"} <= set(labels)


def test_the_average_rank_is_over_the_tasks_every_solver_ran(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    path = _build_db(tmp_path / "more.db")
    with ResultsDB(path) as db:  # solver c ran only t1, with one seed
        run = db.ensure_run(JobSpec(SolverSpec("c", "rs"), TaskSpec("t1", "ackley_cat"), seed=0, budget=3))
        for i, value in enumerate([9, 9, 9]):
            db.add_evaluation({"run_id": run, "index": i, "batch": i, "point": json.dumps({"x": i}), "value": value,
                               "error": None, "fit_seconds": 0.0, "acq_seconds": 0.0, "eval_seconds": 1.0})
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.report"):
        report = build_report(path)
    assert "tasks ['t2'] were not run by every solver" in caplog.text
    assert report.tasks_not_averaged == ["t2"]
    assert report.ranks["average"].to_dict() == pytest.approx(report.ranks["t1"].to_dict())  # t1 only
    assert report.rank_seeds.to_dict() == {"t1": 1, "t2": 2}  # seed 1 of t1 lacks solver c
    text = write_report(report, tmp_path / "out")["markdown"].read_text()
    assert "t1: 1 seed, t2: 2 seeds" in text and "left out: t2." in text


def test_tasks_whose_names_differ_only_in_odd_characters_get_their_own_plots(tmp_path: Path) -> None:
    from mcbo.runner.report import plot_names

    names = plot_names(["ack/1", "ack_1", "ack 1", "t2"])
    assert names["ack_1"] == "ack_1" and names["t2"] == "t2"
    assert len(set(names.values())) == 4 and names["ack/1"].startswith("ack_1-")
    path = tmp_path / "odd.db"
    with ResultsDB(path) as db:
        for task in ("ack/1", "ack_1"):
            run = db.ensure_run(JobSpec(SolverSpec("a", "rs"), TaskSpec(task, "ackley_cat"), seed=0, budget=2))
            for i in range(2):
                db.add_evaluation({"run_id": run, "index": i, "batch": i, "point": json.dumps({"x": i}), "value": i,
                                   "error": None, "fit_seconds": 0.0, "acq_seconds": 0.0, "eval_seconds": 1.0})
    files = write_report(path, tmp_path / "out")
    assert files["convergence:ack/1"] != files["convergence:ack_1"]
    assert files["convergence:ack/1"].is_file() and files["convergence:ack_1"].is_file()
    assert f"]({files['convergence:ack/1'].name})" in files["markdown"].read_text()


def test_a_database_holding_two_suites_is_reported_with_a_warning(db_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with ResultsDB(db_path) as db:  # as an older mcbo let two configs share one database
        db.register_suite("quick", {"name": "quick"}, "configs/quick.yaml")
        db.register_suite("other", {"name": "other"}, "other.yaml")
    with caplog.at_level(logging.WARNING, logger="mcbo.runner.report"):
        report = build_report(db_path)
    assert "holds 2 suites ('quick' (from configs/quick.yaml), 'other' (from other.yaml))" in caplog.text
    assert [s["name"] for s in report.suites] == ["quick", "other"]
