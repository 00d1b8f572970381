"""The BO loop: initial design, batches with pending points, invalid combinations, save/load."""

import pytest
import torch

from mcbo.solvers import build_solver
from mcbo.solvers.bo import BOSolver
from mcbo.space import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", -1, 1), Integer("n", 0, 5)] + [Categorical(f"c{i}", ["a", "b", "c"])
                                                                   for i in range(4)])


def f(p):
    return p["x"] ** 2 + 0.3 * p["n"] + sum(p[f"c{i}"] != "a" for i in range(4))


FAST = {"acq_optimizer": {"type": "interleaved", "n_restarts": 2, "n_raw": 100, "n_rounds": 2}, "n_init": 5}


def test_batch_asks_are_distinct_and_avoid_pending(space):
    solver = build_solver("casmopolitan", space, seed=0, **FAST)
    solver.optimize(f, 8)
    first = solver.ask(3)
    second = solver.ask(2)  # the first three are still pending
    encoded = space.encode(first + second)
    assert len(torch.unique(encoded, dim=0)) == 5
    assert not any(p in [r for r in solver.history.to_dict("records")] for p in first)
    solver.tell(first + second, [f(p) for p in first + second])
    assert solver.pending == [] and solver.n_evaluations == 13


def test_bo_improves_on_its_initial_design(space):
    solver = build_solver("casmopolitan", space, seed=1, **FAST)
    solver.optimize(f, 25)
    h = solver.history
    assert h["value"].iloc[5:].min() < h["value"].iloc[:5].min()
    assert solver.last_timings["fit_seconds"] > 0


@pytest.mark.parametrize("acq", ["ei", "log_ei", "pi", "lcb"])
def test_every_acquisition_runs_with_interleaved_search(space, acq):
    solver = build_solver("casmopolitan", space, seed=0, acquisition={"type": acq}, **FAST)
    solver.optimize(f, 8)
    assert solver.history["status"].eq("ok").all()


def test_thompson_sampling_needs_a_pool_optimizer(space):
    with pytest.raises(ValueError, match="use acq_optimizer type 'random'"):
        build_solver("casmopolitan", space, acquisition={"type": "ts"})
    solver = build_solver("casmopolitan", space, seed=0, acquisition={"type": "ts"}, n_init=4,
                          acq_optimizer={"type": "random", "n_candidates": 200})
    solver.optimize(f, 7)
    assert len(solver.history) == 7


def test_failed_initial_points_do_not_stop_the_loop(space):
    solver = build_solver("casmopolitan", space, seed=0, **FAST)
    solver.optimize(lambda p: float("nan") if solver.n_evaluations < 6 else f(p), 10)
    assert (solver.history["status"] == "failed").sum() == 6


def test_save_load_gives_the_same_next_point(space, tmp_path):
    solver = build_solver("casmopolitan", space, seed=2, **FAST)
    solver.optimize(f, 9)
    solver.save(tmp_path / "bo.json")
    restored = build_solver("casmopolitan", space, seed=2, **FAST)
    restored.load(tmp_path / "bo.json")
    assert restored.trust_region.state_dict() == solver.trust_region.state_dict()
    assert restored.ask(1) == solver.ask(1)


def test_bad_settings_raise(space):
    with pytest.raises(ValueError, match="n_init must be a positive integer"):
        BOSolver(space, n_init=0)
    with pytest.raises(ValueError, match="unknown model type"):
        build_solver("casmopolitan", space, model={"type": "forest"})


def test_numeric_only_and_nominal_only_spaces():
    for sp in (SearchSpace([Real("a", 0, 1), Real("b", 0, 1)]),
               SearchSpace([Categorical(f"c{i}", [0, 1, 2]) for i in range(5)])):
        solver = build_solver("casmopolitan", sp, seed=0, **FAST)
        solver.optimize(lambda p: sum(float(v) for v in p.values()), 9)
        assert solver.history["status"].eq("ok").all()


def test_told_points_count_toward_the_initial_design(space):
    solver = build_solver("casmopolitan", space, seed=0, **FAST)
    prior = space.sample_points(6, seed=1)
    solver.tell(prior, [f(p) for p in prior])
    solver.ask(1)
    assert solver.last_timings["fit_seconds"] > 0  # a model was fitted: no design point spent


def test_output_warping_fits_the_model_and_sets_the_incumbent_on_the_warped_scale(space, monkeypatch):
    import mcbo.solvers.bo as bo_module
    from mcbo.models.output_warping import YeoJohnsonWarping

    solver = build_solver("casmopolitan", space, seed=0, output_warping={"type": "yeo_johnson"}, **FAST)
    solver.optimize(lambda p: 10.0 ** (2 * f(p)), 8)  # a long tail of bad values
    seen: dict[str, object] = {}
    fit = solver.model.fit
    monkeypatch.setattr(solver.model, "fit", lambda X, y: (seen.setdefault("y", y.clone()), fit(X, y))[1])
    build = bo_module.build_acquisition
    monkeypatch.setattr(bo_module, "build_acquisition",
                        lambda spec, model, best_f, generator: (seen.setdefault("best_f", best_f),
                                                                build(spec, model, best_f, generator))[1])
    solver.ask(1)
    expected = YeoJohnsonWarping()(solver.y)
    assert torch.allclose(seen["y"], expected) and not torch.allclose(seen["y"], solver.y)
    assert seen["best_f"] == pytest.approx(float(expected.min()))
    with pytest.raises(ValueError, match="output_warping"):
        build_solver("casmopolitan", space, seed=0, output_warping={"type": "logit"})
