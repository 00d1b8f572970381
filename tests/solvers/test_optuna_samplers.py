"""The ``optuna`` solver kind: Optuna's samplers driven through mcbo's ask/tell (recipes ``optuna-*``)."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from optuna.trial import TrialState

from mcbo.solvers import build_solver, load_recipe
from mcbo.space import Boolean, Categorical, Integer, Ordinal, Permutation, Real, SearchSpace, Sequence

RECIPES = ["optuna-tpe", "optuna-gp", "optuna-cmaes", "optuna-random"]


def mixed_space(constraints=()) -> SearchSpace:
    return SearchSpace([Real("lr", 1e-4, 1.0, log=True), Integer("width", 2, 20, step=2),
                        Categorical("act", ["relu", "tanh", "gelu"]), Boolean("norm"), Sequence("ops", list("abc"), 3)],
                       constraints=constraints)


def numeric_space() -> SearchSpace:
    return SearchSpace([Real("lr", 1e-4, 1.0, log=True), Integer("width", 2, 20, step=2),
                        Ordinal("depth", [1, 2, 4, 8])])


def objective(point: dict) -> float:
    value = point["width"] / 10 + abs(point["lr"] - 0.01) + point.get("depth", 1)
    if "act" in point:
        value += (point["act"] != "gelu") + point["norm"] + sum(c != "b" for c in point["ops"])
    return float(value)


def space_for(recipe: str) -> SearchSpace:
    return numeric_space() if recipe == "optuna-cmaes" else mixed_space()


def build(recipe: str, space: SearchSpace, seed: int = 0, **overrides):
    if recipe == "optuna-cmaes":
        pytest.importorskip("cmaes")
    if "n_init" in load_recipe(recipe) and "n_init" not in overrides:
        overrides["n_init"] = 4  # past the start-up trials within the test's few evaluations
    return build_solver(recipe, space, seed=seed, **overrides)


def run(solver, n_batches: int, batch_size: int = 1) -> list[dict]:
    asked = []
    for _ in range(n_batches):
        points = solver.ask(batch_size)
        asked += points
        solver.tell(points, [objective(p) for p in points])
    return asked


def same_points(space: SearchSpace, a: list[dict], b: list[dict]) -> bool:
    """Equal up to float noise (a real value's round trip through the encoding)."""
    return len(a) == len(b) and torch.allclose(space.encode(a), space.encode(b), rtol=0.0, atol=1e-9)


def states(solver) -> list[TrialState]:
    return [t.state for t in solver.study.trials]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_proposes_valid_points_and_completes_its_trials(recipe):
    space = space_for(recipe)
    solver = build(recipe, space)
    assert solver.name == recipe and solver.sampler_name == load_recipe(recipe)["sampler"]
    asked = run(solver, 8)
    assert all(space.validate(p) == p for p in asked)
    assert states(solver) == [TrialState.COMPLETE] * 8
    # each trial holds the point handed out and the value told
    assert [t.value for t in solver.study.trials] == [objective(p) for p in asked]
    assert same_points(space, [solver.bridge.to_point(t.params) for t in solver.study.trials], asked)
    assert solver.best[1] == min(objective(p) for p in asked)


@pytest.mark.parametrize("recipe", ["optuna-tpe", "optuna-gp", "optuna-random"])
def test_same_seed_same_points(recipe):
    first = run(build(recipe, mixed_space(), seed=3), 6)
    again = run(build(recipe, mixed_space(), seed=3), 6)
    other = run(build(recipe, mixed_space(), seed=4), 6)
    assert first == again
    assert first != other


def test_failed_evaluations_are_fail_trials():
    solver = build("optuna-tpe", mixed_space())
    points = solver.ask(3)
    solver.tell(points, [1.0, None, float("nan")])
    points = solver.ask(2)
    solver.tell(points, [2.0, 3.0], errors=["licence server down", None])
    assert states(solver) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL,
                              TrialState.FAIL, TrialState.COMPLETE]
    assert solver.history["status"].tolist() == ["ok", "failed", "failed", "failed", "ok"]
    run(solver, 2)  # goes on
    assert len(solver.study.trials) == 7


def test_points_never_asked_become_finished_trials():
    space = mixed_space()
    solver = build("optuna-tpe", space)
    told = space.sample_points(3, seed=1)
    solver.tell(told, [2.0, None, 1.0])
    trials = solver.study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert [t.params for t in trials] == [solver.bridge.to_params(p) for p in told]
    assert [t.value for t in trials] == [2.0, None, 1.0]
    # a told point that was asked completes its trial; another is added beside the RUNNING one
    asked = solver.ask(1)[0]
    solver.tell([space.sample_points(1, seed=2)[0]], [5.0])
    assert states(solver)[3:] == [TrialState.RUNNING, TrialState.COMPLETE]
    solver.tell([asked], [0.5])
    assert states(solver)[3] == TrialState.COMPLETE and solver.study.trials[3].value == 0.5


@pytest.mark.parametrize("recipe", ["optuna-tpe", "optuna-gp"])
def test_batch_ask_gives_running_trials(recipe):
    solver = build(recipe, mixed_space())
    run(solver, 5)
    points = solver.ask(3)
    assert len(points) == 3 and solver.pending == points
    running = [t for t in solver.study.trials if t.state == TrialState.RUNNING]
    assert len(running) == 3
    assert same_points(solver.space, [solver.bridge.to_point(t.params) for t in running], points)
    solver.tell(points[::-1], [objective(p) for p in points[::-1]])  # told in another order
    assert states(solver) == [TrialState.COMPLETE] * 8 and not solver.pending
    for trial, point in zip(solver.study.trials[5:], points):
        assert trial.value == pytest.approx(objective(point))


def test_constraints_are_respected():
    def allowed(p):
        return p["width"] <= 6 and p["act"] != "relu"

    space = mixed_space(constraints=[allowed])
    solver = build("optuna-tpe", space)
    asked = run(solver, 12)
    assert all(allowed(p) for p in asked)
    told = [t for t in solver.study.trials if t.state == TrialState.COMPLETE]
    refused = [t for t in solver.study.trials if t.state == TrialState.FAIL]
    assert len(told) == 12 and refused  # a 2/9-feasible space: some proposals were refused and failed
    assert all(not allowed(solver.bridge.to_point(t.params)) for t in refused)
    assert len(solver.history) == 12 and solver.history["status"].eq("ok").all()


def test_constraints_fall_back_to_random_feasible_points():
    def allowed(p):
        return p["width"] == 2 and p["act"] == "gelu" and not p["norm"]

    solver = build("optuna-random", mixed_space(constraints=[allowed]), max_constraint_tries=2)
    asked = run(solver, 6)
    assert all(allowed(p) for p in asked)
    assert len(solver.study.trials) <= 6 * 3
    # 1 point in 60 is feasible: most points are the random feasible ones, handed out as enqueued trials
    fallback = [t for t in solver.study.trials if "fixed_params" in t.system_attrs]
    assert fallback and all(t.state == TrialState.COMPLETE for t in fallback)


def test_cmaes_refuses_a_non_numeric_parameter():
    space = SearchSpace([Real("x", 0, 1), Categorical("colour", ["red", "blue"]), Boolean("flag")])
    with pytest.raises(ValueError, match=r"'colour' is a Categorical.*optuna-tpe"):
        build_solver("optuna-cmaes", space)


def test_cmaes_without_its_package_says_what_to_install(monkeypatch):
    import mcbo.solvers.optuna_samplers as module

    monkeypatch.setattr(module, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install cmaes"):
        build_solver("optuna-cmaes", numeric_space())


@pytest.mark.parametrize("recipe", RECIPES)
def test_permutation_spaces_are_refused(recipe):
    space = SearchSpace([Real("x", 0, 1), Permutation("tour", 5)])
    with pytest.raises(ValueError, match="'tour'"):
        build_solver(recipe, space)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown sampler 'nsga'.*'cmaes', 'gp', 'qmc', 'random', 'tpe'"):
        build_solver({"name": "x", "solver": "optuna", "sampler": "nsga"}, mixed_space())
    with pytest.raises(ValueError, match="rejected by TPESampler"):
        build_solver("optuna-tpe", mixed_space(), sampler_options={"n_candidates": 3})
    with pytest.raises(ValueError, match="solver's seed"):
        build_solver("optuna-tpe", mixed_space(), sampler_options={"seed": 3})
    with pytest.raises(ValueError, match="disagree"):
        build_solver("optuna-tpe", mixed_space(), n_init=5, sampler_options={"n_startup_trials": 7})


def test_n_init_is_the_start_up_trials_where_the_sampler_has_them():
    assert build("optuna-tpe", mixed_space(), n_init=7).sampler_options["n_startup_trials"] == 7
    assert build("optuna-gp", mixed_space(), n_init=0).sampler_options["n_startup_trials"] == 0
    random = build_solver("optuna-random", mixed_space(), n_init=7)  # accepted and ignored
    assert "n_startup_trials" not in random.sampler_options
    run(random, 2)


def test_optuna_info_logging_is_silenced_and_the_level_restored():
    logger = logging.getLogger("optuna")
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        run(build("optuna-tpe", mixed_space()), 3)
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(old)
        logger.removeHandler(handler)
    assert not [r for r in seen if r.levelno < logging.WARNING]


@pytest.mark.parametrize("recipe", ["optuna-tpe", "optuna-cmaes"])
def test_save_and_load_continue_the_run(recipe, tmp_path):
    space = space_for(recipe)
    solver = build(recipe, space)
    run(solver, 5)
    points = solver.ask(1)
    solver.tell(points, [None])
    pending = solver.ask(2)
    solver.save(tmp_path / "state.json")

    loaded = build(recipe, space)
    loaded.load(tmp_path / "state.json")
    assert states(loaded) == [TrialState.COMPLETE] * 5 + [TrialState.FAIL] + [TrialState.RUNNING] * 2
    assert [t.params for t in loaded.study.trials[:6]] == [t.params for t in solver.study.trials[:6]]
    assert loaded.pending == pending
    loaded.tell(pending, [objective(p) for p in pending])
    assert states(loaded)[6:] == [TrialState.COMPLETE] * 2
    asked = run(loaded, 3, batch_size=2)
    assert all(space.validate(p) == p for p in asked)
    numbers = [t.number for t in loaded.study.trials]
    assert numbers == list(range(len(numbers))) and len(numbers) == 14
    assert len(loaded.history) == 14 and loaded.history["index"].tolist() == list(range(14))


def test_loaded_qmc_goes_on_along_its_sequence():
    recipe = {"name": "optuna-qmc", "solver": "optuna", "sampler": "qmc", "sampler_options": {"scramble": True}}
    space = numeric_space()
    solver = build_solver(recipe, space, seed=0)
    run(solver, 4)
    loaded = build_solver(recipe, space, seed=0)
    loaded.load_state_dict(json.loads(json.dumps(solver.state_dict())))
    assert loaded.ask(3) == solver.ask(3)


def test_load_refuses_another_sampler():
    space = mixed_space()
    solver = build("optuna-tpe", space)
    run(solver, 2)
    state = solver.state_dict()
    other = build_solver({"name": "optuna-tpe", "solver": "optuna", "sampler": "random"}, space)
    with pytest.raises(ValueError, match="sampler 'tpe'"):
        other.load_state_dict(state)
