"""McboSampler inside Optuna studies: what Optuna's conformance suite does not check."""

import math
import pickle

import optuna
import pytest
from optuna.trial import TrialState

from mcbo.integrations.optuna import McboSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def mixed_objective(trial):
    x = trial.suggest_float("x", -5.0, 5.0)
    n = trial.suggest_int("n", 0, 10)
    c = trial.suggest_categorical("c", ["a", "b", "c", "d"])
    return (x - 1.0) ** 2 + (n - 3) ** 2 + 2.0 * (c != "b")


def test_finds_better_points_than_random_search_on_a_mixed_quadratic():
    mcbo = optuna.create_study(sampler=McboSampler("casmopolitan", seed=0, n_startup_trials=8))
    mcbo.optimize(mixed_objective, n_trials=30)
    rand = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    rand.optimize(mixed_objective, n_trials=30)
    assert mcbo.best_value < rand.best_value


def test_same_seed_gives_the_same_trials():
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=McboSampler("casmopolitan", seed=3, n_startup_trials=4))
        study.optimize(mixed_objective, n_trials=8)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_failed_and_nan_trials_are_failed_evaluations_of_the_solver():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        c = trial.suggest_categorical("c", ["ok", "crash", "nan"])
        if c == "crash":
            raise RuntimeError("boom")
        return float("nan") if c == "nan" else x

    sampler = McboSampler("casmopolitan", seed=0, n_startup_trials=4)
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=15, catch=(RuntimeError,))
    history = sampler.solver.history
    finished = [t for t in study.trials[:-1] if set(t.params) == {"x", "c"}]  # told before the last ask
    failed = [t for t in finished if t.state == TrialState.FAIL]
    assert failed, "the objective should have failed at least once"
    assert (history["status"] == "failed").sum() == len(failed)
    assert set(history.loc[history["status"] == "failed", "c"]) <= {"crash", "nan"}
    assert (history.loc[history["status"] == "ok", "c"] == "ok").all()


def test_running_trials_are_pending_points():
    sampler = McboSampler("casmopolitan", seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(mixed_objective, n_trials=4)
    running = study.ask()
    mixed_objective(running)  # suggests its params, stays RUNNING
    nxt = study.ask()
    nxt.suggest_float("x", -5.0, 5.0)  # triggers the relative sample of the next trial
    assert running.params in sampler.solver.pending
    study.tell(running, 1.0)
    study.tell(nxt, state=TrialState.FAIL)
    study.optimize(mixed_objective, n_trials=1)
    assert running.params not in sampler.solver.pending
    assert len(sampler.solver.history) == 5  # the failed trial never got its other params: not a point


def test_maximisation_is_minimised_negated():
    sampler = McboSampler("casmopolitan", seed=0, n_startup_trials=4)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: -mixed_objective(t), n_trials=10)
    assert sampler.solver.best[1] == pytest.approx(-max(t.value for t in study.trials[:-1]))


def test_a_smaller_search_space_mid_study_rebuilds_the_solver_without_crashing():
    sampler = McboSampler("casmopolitan", seed=0, n_startup_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("k", 0, 4), n_trials=5)
    assert sampler.solver.space.names == ["k", "x"]
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=6)  # the intersection shrinks to {x}
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sampler.solver.space.names == ["x"]
    assert len(sampler.solver.history) == 10  # rebuilt from every trial that has x, before the last ask


def test_a_restarted_process_rebuilds_the_solver_from_the_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, sampler=McboSampler("casmopolitan", seed=0,
                                                                                     n_startup_trials=5))
    study.optimize(mixed_objective, n_trials=12)
    fresh = McboSampler("casmopolitan", seed=0, n_startup_trials=5)
    again = optuna.load_study(study_name="s", storage=storage, sampler=pickle.loads(pickle.dumps(fresh)))
    again.optimize(mixed_objective, n_trials=1)
    solver = again.sampler.solver
    assert len(solver.history) == 12
    assert solver.last_timings["fit_seconds"] > 0  # told trials count as the design: the model was used


def test_reseed_rng_changes_the_samples_and_keeps_working():
    a = McboSampler("casmopolitan", seed=0, n_startup_trials=3)
    b = McboSampler("casmopolitan", seed=0, n_startup_trials=3)
    b.reseed_rng()
    studies = [optuna.create_study(sampler=s) for s in (a, b)]
    for study in studies:
        study.enqueue_trial({"x": 0.0, "n": 0, "c": "a"})
        study.optimize(mixed_objective, n_trials=5)
    assert [t.params for t in studies[0].trials] != [t.params for t in studies[1].trials]


def test_n_jobs_two_completes_every_trial():
    study = optuna.create_study(sampler=McboSampler("casmopolitan", seed=0, n_startup_trials=4))
    study.optimize(mixed_objective, n_trials=12, n_jobs=2)
    assert len(study.trials) == 12 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert math.isfinite(study.best_value)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown solver recipe 'casmopolitn'"):
        McboSampler("casmopolitn")
    with pytest.raises(ValueError, match="no initial design"):
        McboSampler("rs", n_startup_trials=5)
    with pytest.raises(ValueError, match="n_startup_trials"):
        McboSampler("casmopolitan", n_startup_trials=0)
    with pytest.raises(ValueError, match="seed"):
        McboSampler("casmopolitan", seed="zero")
    with pytest.raises(ValueError, match="recipe"):
        McboSampler(42)


def test_a_fully_tried_space_falls_back_to_the_independent_sampler():
    study = optuna.create_study(sampler=McboSampler("casmopolitan", seed=0, n_startup_trials=2))
    study.optimize(lambda t: t.suggest_categorical("x", [0, 1, 2]), n_trials=6)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {t.params["x"] for t in study.trials[:4]} == {0, 1, 2}  # the three points before any repeat
