"""configs/optuna-peers.yaml: Optuna's samplers run beside Casmopolitan in a suite, resume, and are reported."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from mcbo.runner.config import parse_config
from mcbo.runner.executor import run_suite
from mcbo.runner.jobs import build_job_solver
from mcbo.runner.report import build_report, write_report
from mcbo.tasks import build_task

SOLVERS = {"casmopolitan", "optuna-tpe", "optuna-gp"}


@pytest.fixture
def tiny_suite(repo_root: Path) -> dict:
    """The shipped config with a tiny budget: 1 seed, 10 evaluations (4 of them the initial design)."""
    raw = yaml.safe_load((repo_root / "configs" / "optuna-peers.yaml").read_text())
    assert set(raw["solvers"]) == SOLVERS and raw["n_init"] == 10
    raw.update(budget=10, n_init=4, seeds=1)
    return raw


def test_suite_n_init_is_optunas_start_up_trials(tiny_suite) -> None:
    config = parse_config(tiny_suite)
    space = build_task("ackley_cat").space
    jobs = [job for job in config.jobs() if job.task.label == "ackley_cat"]
    solvers = {job.solver.label: build_job_solver(job, space) for job in jobs}
    assert solvers["optuna-tpe"].sampler_options == {"multivariate": True, "n_startup_trials": 4}
    assert solvers["optuna-gp"].sampler_options == {"n_startup_trials": 4}
    assert solvers["casmopolitan"].n_init == 4


def test_optuna_peers_suite_runs_resumes_and_reports(tmp_path: Path, tiny_suite,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "r.db"
    runs = run_suite(parse_config(tiny_suite), db, progress=False)
    assert len(runs) == 6 and (runs["status"] == "done").all() and (runs["n_evaluations"] == 10).all()
    # a bigger budget resumes every run from its stored checkpoint (the Optuna study is rebuilt from it)
    tiny_suite["budget"] = 12
    with caplog.at_level(logging.WARNING, logger="mcbo.runner"):
        runs = run_suite(parse_config(tiny_suite), db, progress=False)
    assert (runs["status"] == "done").all() and (runs["n_evaluations"] == 12).all()
    assert not [r for r in caplog.records if "checkpoint" in r.getMessage()]

    report = build_report(db)
    assert set(report.ranks.index) == SOLVERS
    assert set(report.best_values["solver"]) == SOLVERS
    assert set(report.best_values["task"]) == {"ackley_cat", "pest_control"}
    markdown = write_report(report, tmp_path / "report")["markdown"].read_text()
    for solver in SOLVERS:
        assert f"| {solver} |" in markdown
