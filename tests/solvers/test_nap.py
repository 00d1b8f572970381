"""The ``nap`` solver: arg-max of the acquisition head over untried candidates, recipes, save/resume."""

import math

import numpy as np
import pytest
import torch

from mcbo.meta.checkpoint import save_checkpoint, shipped_checkpoints
from mcbo.meta.data import krr_space
from mcbo.models.tnp import Featuriser, TNPNetwork
from mcbo.solvers import build_solver, load_recipe
from mcbo.space import Categorical, Ordinal, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Categorical("c", list("abcd")), Ordinal("o", [1, 2, 3])])


def _checkpoint(space, path, seed=0):
    torch.manual_seed(seed)
    net = TNPNetwork(Featuriser(space).n_features, torch.linspace(-3, 3, 17), d_model=16, n_heads=2, n_layers=1,
                     d_ff=32)
    return str(save_checkpoint(path, net, space))


def _objective(point):
    return "abcd".index(point["c"]) + 0.5 * point["o"]


def test_nap_never_repeats_a_point_until_the_space_is_exhausted(space, tmp_path):
    solver = build_solver("nap", space, seed=0, checkpoint=_checkpoint(space, tmp_path / "m.pt"))
    solver.optimize(_objective, 12)
    tried = {(r["c"], r["o"]) for _, r in solver.history.iterrows()}
    assert len(tried) == 12
    assert solver.best[1] == pytest.approx(0.5)


def test_failed_points_are_masked_too(space, tmp_path):
    solver = build_solver("nap", space, seed=0, checkpoint=_checkpoint(space, tmp_path / "m.pt"))

    def flaky(point):
        if point["c"] == "a":
            raise RuntimeError("crashed")
        return _objective(point)

    solver.optimize(flaky, 12)
    history = solver.history
    assert len({(r["c"], r["o"]) for _, r in history.iterrows()}) == 12
    assert (history["status"] == "failed").sum() == 3


def test_nap_proposes_the_best_untried_candidate_by_the_acquisition_head(space, tmp_path):
    solver = build_solver("nap", space, seed=0, checkpoint=_checkpoint(space, tmp_path / "m.pt", seed=4))
    solver.optimize(_objective, 4)
    pool = solver.pool
    solver.model.fit(solver.X, solver.y)
    with torch.no_grad():
        scores = solver.model.acquisition(pool)
    untried = torch.cdist(pool, solver.X).min(-1).values > 1e-9
    expected = pool[untried][int(torch.argmax(scores[untried]))]
    point = solver.ask(1)[0]
    assert torch.equal(space.encode([point])[0], expected)


def test_batches_are_distinct_and_avoid_pending_points(space, tmp_path):
    solver = build_solver("nap", space, seed=0, checkpoint=_checkpoint(space, tmp_path / "m.pt"))
    solver.optimize(_objective, 3)
    first = solver.ask(3)
    second = solver.ask(2)
    keys = [(p["c"], p["o"]) for p in first + second]
    assert len(set(keys)) == 5
    assert not set(keys) & {(r["c"], r["o"]) for _, r in solver.history.iterrows()}


def test_continuous_spaces_use_a_sampled_candidate_set(tmp_path):
    space = SearchSpace([Real("x", 0, 1), Real("y", 0, 1)])
    path = _checkpoint(space, tmp_path / "m.pt")
    runs = []
    for _ in range(2):
        solver = build_solver("nap", space, seed=3, checkpoint=path, n_candidates=64)
        solver.optimize(lambda p: (p["x"] - 0.3) ** 2 + (p["y"] - 0.6) ** 2, 6)
        runs.append(solver.history["value"].tolist())
    assert solver.pool is None
    assert runs[0] == runs[1] and all(math.isfinite(v) for v in runs[0])


def test_a_checkpoint_of_another_space_is_refused(space, tmp_path):
    other = SearchSpace([Categorical("c", list("abc")), Ordinal("o", [1, 2, 3])])
    with pytest.raises(ValueError, match="different search space"):
        build_solver("nap", other, checkpoint=_checkpoint(space, tmp_path / "m.pt"))


def test_save_and_resume_continue_the_same_run(space, tmp_path):
    path = _checkpoint(space, tmp_path / "m.pt")
    solver = build_solver("nap", space, seed=1, checkpoint=path)
    solver.optimize(_objective, 5)
    solver.save(tmp_path / "state.json")
    resumed = build_solver("nap", space, seed=1, checkpoint=path)
    resumed.load(tmp_path / "state.json")
    assert resumed.ask(2) == solver.ask(2)


def test_bad_settings_name_the_field(space, tmp_path):
    path = _checkpoint(space, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="nap n_candidates must be a positive integer, got 0"):
        build_solver("nap", space, checkpoint=path, n_candidates=0)
    with pytest.raises(ValueError, match="nap greedy must be true or false"):
        build_solver("nap", space, checkpoint=path, greedy="yes")


def test_recipes_name_the_paper_and_their_checkpoints():
    assert load_recipe("nap")["solver"] == "nap" and "Maraval" in load_recipe("nap")["paper"]
    tnp_ei = load_recipe("tnp-ei")
    assert tnp_ei["model"]["type"] == "tnp" and tnp_ei["acquisition"]["type"] == "ei"


@pytest.mark.skipif(not {"hpo_krr", "hpo_krr-likelihood"} <= set(shipped_checkpoints()),
                    reason="no shipped hpo_krr checkpoints")
@pytest.mark.parametrize("recipe", ["nap", "tnp-ei"])
def test_shipped_recipes_run_on_the_hpo_space(recipe):
    space = krr_space()
    rng = np.random.default_rng(0)
    weights = rng.standard_normal(space.d)

    def black_box(point):
        return float(space.encode([point])[0].numpy() @ weights)

    solver = build_solver(recipe, space, seed=0)
    solver.optimize(black_box, 5)
    assert len(solver.history) == 5 and solver.history["status"].eq("ok").all()
