"""`mcbo export-optuna`: a suite database written as Optuna studies, read back with Optuna itself."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from mcbo.cli import main
from mcbo.integrations.optuna import OptunaBridge
from mcbo.integrations.optuna.export import ExportError, export_studies, export_suite
from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec, parse_config
from mcbo.runner.executor import run_suite
from mcbo.runner.storage import ResultsDB
from mcbo.space import Categorical, Permutation, Real, SearchSpace
from mcbo.tasks import TASKS, Task, build_task, register_task

optuna.logging.set_verbosity(optuna.logging.WARNING)

PERM = "export_test_tour"

if PERM not in TASKS:

    @register_task(PERM)
    class _TourTask(Task):
        """A real, a categorical and a permutation; crashes where c == "a"."""

        name = PERM

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed)
            self._space = SearchSpace([Real("x", 0.0, 1.0), Categorical("c", ["a", "b", "c"]), Permutation("tour", 4)])

        @property
        def space(self) -> SearchSpace:
            return self._space

        def _evaluate(self, points):
            if any(p["c"] == "a" for p in points):
                raise RuntimeError("c == 'a' crashes")
            return np.array([p["x"] + p["tour"][0] for p in points])


SUITE = {"name": "tiny", "budget": 8, "n_init": 4, "seeds": [0, 1], "solvers": ["rs", "casmopolitan"],
         "tasks": ["crash_mixed", PERM]}


@pytest.fixture(scope="module")
def suite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 solvers x 2 tasks (both crash on part of their space, one has a Permutation) x 2 seeds, 8 evaluations."""
    db = tmp_path_factory.mktemp("suite") / "tiny.db"
    runs = run_suite(parse_config(SUITE), db, progress=False)
    assert (runs["status"] == "done").all() and (runs["n_evaluations"] == 8).all()
    for task in ("crash_mixed", PERM):
        assert runs.loc[runs["task"] == task, "n_failed"].sum() > 0  # failed evaluations to export
    return db


def _copy(db: Path, to: Path) -> Path:
    """A private copy of the module's database (run_suite closed it, so the file holds everything)."""
    to.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, to / db.name)
    return to / db.name


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _database(db: Path) -> tuple[list[dict], dict[int, list[dict]], dict[int, float]]:
    with ResultsDB(db, readonly=True) as opened:
        runs = [dict(r) for r in opened.iter_runs()]
        history = {r["run_id"]: opened.history(r["run_id"]) for r in runs}
        created = {(row[0], row[1]): row[2] for row in opened.conn.execute(
            "SELECT run_id, idx, created_at FROM evaluations")}
        best = dict(zip(opened.runs_frame()["run_id"], opened.runs_frame()["best_value"]))
    for run_id, records in history.items():
        for record in records:
            record["created_at"] = created[(run_id, record["index"])]
    return runs, history, best


def test_every_run_becomes_a_study_with_its_evaluations(suite_db: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    url = _url(tmp_path / "optuna.db")
    with caplog.at_level(logging.WARNING, logger="mcbo.integrations.optuna.export"):
        names = export_suite(suite_db, url)
    runs, history, best = _database(suite_db)
    assert len(names) == len(runs) == 8
    assert sorted(optuna.get_all_study_names(url)) == sorted(names)
    # one warning per study with a Permutation, none for the others
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 4 and all(PERM in m and "'tour'" in m and "Permutation" in m for m in warned)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mcbo.integrations.optuna.export"):
        assert export_suite(suite_db, url) == names  # nothing written: nothing to warn about
    assert not caplog.records

    bridges = {"crash_mixed": OptunaBridge.from_space(build_task("crash_mixed").space),
               PERM: OptunaBridge.from_space(SearchSpace(build_task(PERM).space.params[:2]))}
    n_failed = 0
    for run in runs:
        name = f"tiny/{run['task']}/{run['solver']}/seed{run['seed']}"
        assert name in names
        study = optuna.load_study(study_name=name, storage=url)
        assert study.direction == optuna.study.StudyDirection.MINIMIZE
        attrs = study.user_attrs
        assert {k: attrs[k] for k in ("suite", "solver", "task", "seed", "budget", "status")} == {
            "suite": "tiny", "solver": run["solver"], "task": run["task"], "seed": run["seed"], "budget": 8,
            "status": "done"}
        trials = study.trials
        stored = history[run["run_id"]]
        assert [t.number for t in trials] == list(range(len(stored))) == list(range(8))
        bridge = bridges[run["task"]]
        for trial, record in zip(trials, stored):
            point = json.loads(record["point"])
            back = bridge.to_point(trial.params)
            if run["task"] == PERM:
                assert "tour" not in trial.params
                back["tour"] = json.loads(trial.user_attrs["param:tour"])
            assert back == point
            assert trial.user_attrs["index"] == record["index"] and trial.user_attrs["batch"] == record["batch"]
            assert trial.user_attrs["fit_seconds"] == record["fit_seconds"]
            assert trial.user_attrs["acq_seconds"] == record["acq_seconds"]
            assert trial.datetime_complete.timestamp() == pytest.approx(record["created_at"], abs=1e-5)
            assert trial.duration.total_seconds() == pytest.approx(record["eval_seconds"], abs=1e-5)
            if record["value"] is None:
                n_failed += 1
                assert trial.state == TrialState.FAIL and trial.value is None
                assert trial.user_attrs["error"] == record["error"] and record["error"]
            else:
                assert trial.state == TrialState.COMPLETE and trial.value == record["value"]
                assert "error" not in trial.user_attrs
        assert study.best_value == best[run["run_id"]]
    assert n_failed > 0


def test_exporting_again_adds_nothing_then_only_new_evaluations(suite_db: Path, tmp_path: Path) -> None:
    db = _copy(suite_db, tmp_path / "db")
    url = _url(tmp_path / "optuna.db")
    first = export_studies(db, url)
    assert {s.action for s in first} == {"created"} and all(s.n_added == 8 for s in first)
    again = export_studies(db, url)
    assert [s.name for s in again] == [s.name for s in first]
    assert {s.action for s in again} == {"unchanged"} and all(s.n_added == 0 for s in again)
    assert all(len(optuna.load_study(study_name=s.name, storage=url).trials) == 8 for s in again)

    # the suite resumed with a bigger budget: only the new evaluations are appended
    grown = dict(SUITE, budget=10, solvers=["rs"], seeds=[0])
    run_suite(parse_config(grown), db, progress=False)
    third = {s.name: s for s in export_studies(db, url)}
    for task in ("crash_mixed", PERM):
        extended = third[f"tiny/{task}/rs/seed0"]
        assert (extended.action, extended.n_added, extended.n_trials) == ("extended", 2, 10)
        trials = optuna.load_study(study_name=extended.name, storage=url).trials
        assert [t.user_attrs["index"] for t in trials] == list(range(10))
    assert sum(s.action == "unchanged" for s in third.values()) == 6


def test_a_changed_database_replaces_its_studies_and_foreign_studies_are_kept(suite_db: Path, tmp_path: Path) -> None:
    db = _copy(suite_db, tmp_path / "db")
    url = _url(tmp_path / "optuna.db")
    export_suite(db, url)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE evaluations SET value = -1.0, error = NULL WHERE run_id = 1 AND idx = 0")
    conn.commit()
    conn.close()
    actions = {s.name: s.action for s in export_studies(db, url)}
    assert actions.pop("tiny/crash_mixed/rs/seed0") == "replaced"
    assert set(actions.values()) == {"unchanged"}
    study = optuna.load_study(study_name="tiny/crash_mixed/rs/seed0", storage=url)
    assert len(study.trials) == 8 and study.trials[0].value == -1.0 and study.best_value == -1.0

    # a study of the same name that the export did not write: nothing is written, nothing is deleted
    other = _url(tmp_path / "other.db")
    optuna.create_study(study_name="tiny/crash_mixed/rs/seed0", storage=other).add_trial(
        optuna.trial.create_trial(value=3.0))
    with pytest.raises(ExportError, match="did not write"):
        export_suite(db, other)
    assert optuna.get_all_study_names(other) == ["tiny/crash_mixed/rs/seed0"]
    assert export_suite(db, other, study_prefix="mine/")[0] == "mine/crash_mixed/rs/seed0"


def test_hand_made_run_of_a_task_that_cannot_be_built(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """No suite recorded, a task unknown here, a failed evaluation inserted through the storage API."""
    db = tmp_path / "handmade.db"
    job = JobSpec(solver=SolverSpec("rs", "rs"), task=TaskSpec("gone", "no_such_task", {"n": 3}), seed=4, budget=3)
    with ResultsDB(db) as opened:
        run_id = opened.ensure_run(job)
        for index, (value, error) in enumerate([(2.5, None), (None, "RuntimeError: boom"), (1.5, None)]):
            opened.add_evaluation({"run_id": run_id, "index": index, "batch": index,
                                   "point": json.dumps({"tour": [2, 0, 1], "k": index}), "value": value,
                                   "error": error, "fit_seconds": 0.0, "acq_seconds": 0.1, "eval_seconds": 0.5})
        opened.set_status(run_id, "running")
    url = _url(tmp_path / "optuna.db")
    with caplog.at_level(logging.WARNING, logger="mcbo.integrations.optuna.export"):
        assert export_suite(db, url) == ["handmade/gone/rs/seed4"]
    assert len(caplog.records) == 1 and "cannot be built" in caplog.records[0].getMessage()
    study = optuna.load_study(study_name="handmade/gone/rs/seed4", storage=url)
    assert study.user_attrs["status"] == "running" and study.user_attrs["task_name"] == "no_such_task"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert study.trials[1].user_attrs["error"] == "RuntimeError: boom"
    assert all(t.params == {} and json.loads(t.user_attrs["param:tour"]) == [2, 0, 1] for t in study.trials)
    assert study.best_value == 1.5


def test_command_line(suite_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = _url(tmp_path / "out" / "optuna.db")  # its folder is created
    assert main(["export-optuna", str(suite_db), url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 9
    assert "tiny/crash_mixed/rs/seed0: 8 trials (created)" in lines
    assert lines[-1] == f"view them with: optuna-dashboard {url}"
    assert main(["export-optuna", str(suite_db), url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all(line.endswith("8 trials (unchanged, nothing added)") for line in lines[:-1])
    assert main(["export-optuna", str(suite_db), url, "--prefix", "v2"]) == 0
    assert capsys.readouterr().out.startswith("v2/crash_mixed/rs/seed0: 8 trials (created)")
    assert len(optuna.get_all_study_names(url)) == 16


@pytest.mark.parametrize("case", ["missing", "text", "optuna_db", "bad_url", "same_file"])
def test_command_line_user_errors(case: str, suite_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db, url = tmp_path / "results.db", _url(tmp_path / "optuna.db")
    if case == "text":
        db.write_text("solver,task\nrs,ackley\n")
    elif case == "optuna_db":  # the arguments swapped: an Optuna storage is not a results database
        optuna.create_study(study_name="s", storage=_url(db))
    elif case == "bad_url":
        db, url = suite_db, "nosuchdialect://nowhere"
    elif case == "same_file":  # the results database as the Optuna storage: refused before Optuna touches it
        db = _copy(suite_db, tmp_path / "db")
        url = _url(db)
    assert main(["export-optuna", str(db), url]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err
    assert captured.out == ""
    message = {"missing": "does not exist", "text": "not an mcbo results database",
               "optuna_db": "not an mcbo results database", "bad_url": "cannot open Optuna storage",
               "same_file": "is the results database itself"}[case]
    assert message in lines[0]
    assert not (tmp_path / "optuna.db").exists()
    if case == "same_file":
        with sqlite3.connect(db) as conn:
            assert "studies" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
