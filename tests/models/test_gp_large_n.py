"""GPModel's large-n regime (issue 21): hyper-parameters on a subset, exact posterior on all data,
refits on a schedule, block-row factor updates, the optional float32 feature product, and the cap on
the training set (``max_train_points``)."""

import pytest
import torch

from mcbo.models import GPModel
from mcbo.models.subset import fit_subset, train_subset
from mcbo.solvers import build_solver
from mcbo.space import Categorical, Real, SearchSpace, Sequence


@pytest.fixture
def space():
    return SearchSpace([Real("x", -2, 2), Real("z", 0, 1), Categorical("c", ["a", "b", "c"])])


def _data(space, n, seed=0):
    X = space.sample(n, seed=seed)
    y = (X[:, 0] - 0.3) ** 2 + X[:, 1] + 0.5 * X[:, 2]
    return X, y


def _count_optimise(monkeypatch):
    sizes = []
    original = GPModel._optimise

    def counted(self, gp, jitter):
        sizes.append(int(gp.train_targets.shape[-1]))
        return original(self, gp, jitter)

    monkeypatch.setattr(GPModel, "_optimise", counted)
    return sizes


def test_subset_at_least_n_is_bit_identical_to_the_default(space):
    X, y = _data(space, 60)
    Xt = space.sample(40, seed=1)
    plain, large = GPModel(space), GPModel(space, fit_subset_size=60, refit_every=4)
    plain.fit(X, y)
    large.fit(X, y)
    a, b = plain.posterior(Xt), large.posterior(Xt)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.variance, b.variance)


def test_hyper_parameters_come_from_the_subset_and_the_posterior_from_all_data(space, monkeypatch):
    sizes = _count_optimise(monkeypatch)
    X, y = _data(space, 120)
    model = GPModel(space, fit_subset_size=40, noise_lb=1e-6)
    model.fit(X, y)
    assert sizes == [40]
    assert model.gp.train_targets.shape[-1] == 120
    post = model.posterior(X)  # every observation, not only the subset, pins the posterior down
    assert (post.mean - y).abs().max() < 0.05 * y.std()


def test_refit_every_keeps_hyper_parameters_between_refits(space, monkeypatch):
    sizes = _count_optimise(monkeypatch)
    X, y = _data(space, 70)
    model = GPModel(space, fit_subset_size=50, refit_every=3)
    for n in range(60, 70):
        model.fit(X[:n], y[:n])
    assert sizes == [50] * 4  # at n = 60, 63, 66, 69
    kept = model.gp.covar_module.outputscale.item()
    model.fit(X[:69], y[:69])
    assert model.gp.covar_module.outputscale.item() == kept


def test_small_n_refits_every_time_whatever_refit_every(space, monkeypatch):
    sizes = _count_optimise(monkeypatch)
    X, y = _data(space, 30)
    model = GPModel(space, fit_subset_size=50, refit_every=10)
    for n in range(20, 25):
        model.fit(X[:n], y[:n])
    assert sizes == [20, 21, 22, 23, 24]


def test_saved_state_resumes_the_same_posterior(space):
    X, y = _data(space, 90)
    Xt = space.sample(30, seed=2)
    first = GPModel(space, fit_subset_size=40, refit_every=5)
    first.fit(X[:80], y[:80])
    resumed = GPModel(space, fit_subset_size=40, refit_every=5)
    resumed.load_warm_start(first.state_for_warm_start())
    for model in (first, resumed):
        model.fit(X[:82], y[:82])  # within refit_every: hyper-parameters kept, no optimisation
    assert torch.equal(first.posterior(Xt).mean, resumed.posterior(Xt).mean)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fantasies_extend_the_factor_like_a_rebuild(space, dtype):
    X, y = _data(space, 80)
    model = GPModel(space, fit_subset_size=30, dtype=dtype)
    model.fit(X, y)
    Xt = space.sample(50, seed=3).to(dtype)
    model.posterior(Xt)  # builds the cache that the fantasies extend
    Xf = space.sample(3, seed=4).to(dtype)
    model.condition_on(Xf, model.posterior(Xf).mean)
    extended = model.posterior(Xt)
    model._cache = None
    rebuilt = model.posterior(Xt)
    tol = 1e-8 if dtype == torch.float64 else 1e-3
    assert torch.allclose(extended.mean, rebuilt.mean, atol=tol * y.std().item())
    assert torch.allclose(extended.variance, rebuilt.variance, atol=tol * y.var().item())


def test_fit_subset_takes_the_best_share_and_a_seeded_draw():
    y = torch.arange(100, dtype=torch.float64).flip(0)  # the best values sit at the end
    idx = fit_subset(y, 20, best_fraction=0.5, seed=7)
    assert len(idx) == 20 and len(set(idx.tolist())) == 20
    assert set(range(90, 100)) <= set(idx.tolist())
    assert torch.equal(idx, fit_subset(y, 20, best_fraction=0.5, seed=7))
    assert not torch.equal(idx, fit_subset(y, 20, best_fraction=0.5, seed=8))
    assert torch.equal(fit_subset(y[:10], 20, 0.5, 0), torch.arange(10))


@pytest.mark.parametrize("kwargs", [{"fit_subset_size": 1}, {"fit_subset_size": 2.5}, {"refit_every": 0},
                                    {"fit_subset_best": 1.5}, {"feature_precision": "float16"},
                                    {"max_train_points": 1}, {"max_train_points": 10.0}, {"max_train_best": -0.1}])
def test_bad_large_n_options_are_rejected(space, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        GPModel(space, **kwargs)


def _ssk_models(n=150):
    space = SearchSpace([Sequence("s", list("abcdefg"), 12)])
    X = space.sample(n, seed=0)
    y = (X == 2).sum(-1).to(torch.float64) - 0.5 * (X[:, :6] == 1).sum(-1)
    exact = GPModel(space, nominal_kernel="ssk", fit_maxiter=15)
    exact.fit(X, y)
    low = GPModel(space, nominal_kernel="ssk", feature_precision="float32", fit_maxiter=15)
    low.fit(X, y)
    return space, X, exact, low


def test_float32_feature_product_stays_within_its_error_estimate():
    space, X, exact, low = _ssk_models()
    assert torch.equal(exact.gp.covar_module.outputscale, low.gp.covar_module.outputscale)  # same fit
    neighbours = space.mutate(X.clone(), generator=torch.Generator().manual_seed(1))
    for Z in (space.sample(500, seed=2), neighbours, X):
        a, b = exact.posterior(Z), low.posterior(Z)
        cache = low._cache
        assert cache is not None and cache.low_precision and cache.low_error > 0
        prior = exact._y_std**2 * float(exact.gp.covar_module.outputscale)
        assert (a.variance - b.variance).abs().max() <= cache.low_error * prior
        assert torch.allclose(a.mean, b.mean, rtol=0, atol=1e-9 * exact._y_std)


def test_float32_rows_near_zero_variance_are_recomputed_in_float64(monkeypatch):
    from mcbo.models import gp as gp_module

    _, X, exact, low = _ssk_models()
    a, b = exact.posterior(X), low.posterior(X)
    # rows kept in float32 have a variance of at least _RECHECK_FACTOR error estimates: relative error <= 1/factor
    assert ((a.variance - b.variance).abs() / a.variance).max() <= 1 / gp_module._RECHECK_FACTOR
    monkeypatch.setattr(gp_module, "_RECHECK_FACTOR", 1e12)  # every row counts as near a training point
    low._cache = None
    assert torch.allclose(a.variance, low.posterior(X).variance, rtol=1e-12, atol=0)


# ------------------------------------------------------------------ max_train_points


@pytest.mark.parametrize("extra", [{}, {"fit_subset_size": 30, "refit_every": 3}])
def test_cap_at_least_n_is_bit_identical_to_no_cap(space, extra):
    X, y = _data(space, 60)
    Xt = space.sample(40, seed=1)
    plain, capped = GPModel(space, **extra), GPModel(space, max_train_points=60, **extra)
    for n in (50, 55, 60):  # several fits, so warm starts and kept hyper-parameters are compared too
        plain.fit(X[:n], y[:n])
        capped.fit(X[:n], y[:n])
    a, b = plain.posterior(Xt), capped.posterior(Xt)
    assert capped.train_index is None
    assert torch.equal(a.mean, b.mean) and torch.equal(a.variance, b.variance)


def test_train_subset_takes_the_best_share_and_the_most_recent():
    y = torch.tensor([5.0, 0.0, 7.0, 1.0, 9.0, 8.0, 6.0, 2.0, 4.0, 3.0])
    idx = train_subset(y, 5, best_fraction=0.4)  # best two: positions 1 and 3; then the three most recent others
    assert idx.tolist() == [1, 3, 7, 8, 9]
    assert train_subset(y, 5, best_fraction=0.0).tolist() == [5, 6, 7, 8, 9]
    assert train_subset(y, 5, best_fraction=1.0).tolist() == [1, 3, 7, 8, 9]  # the five lowest
    assert torch.equal(train_subset(y[:4], 5, 0.5), torch.arange(4))


def test_train_subset_depends_only_on_the_data():
    y = torch.randn(500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(1)
    first = train_subset(y, 100, 0.5)
    torch.manual_seed(2)
    torch.rand(10)
    assert torch.equal(first, train_subset(y.clone(), 100, 0.5))
    assert len(first) == 100 and len(set(first.tolist())) == 100


def test_capped_model_is_trained_on_exactly_the_chosen_points(space, monkeypatch):
    sizes = _count_optimise(monkeypatch)
    X, y = _data(space, 120)
    Xt = space.sample(30, seed=2)
    capped = GPModel(space, max_train_points=40, max_train_best=0.25)
    capped.fit(X, y)
    idx = train_subset(y, 40, 0.25)
    assert torch.equal(capped.train_index, idx)
    assert sizes == [40]
    assert torch.equal(capped.gp.train_inputs[0], X[idx])
    reference = GPModel(space)
    reference.fit(X[idx], y[idx])
    a, b = capped.posterior(Xt), reference.posterior(Xt)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.variance, b.variance)


def test_capped_refit_every_counts_every_observation(space, monkeypatch):
    sizes = _count_optimise(monkeypatch)
    X, y = _data(space, 70)
    model = GPModel(space, max_train_points=50, fit_subset_size=30, refit_every=3)
    for n in range(60, 70):
        model.fit(X[:n], y[:n])
        assert model.gp.train_targets.shape[-1] == 50
    assert sizes == [30] * 4  # at n = 60, 63, 66, 69 although the model always holds 50 points


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_capped_fantasies_extend_the_factor_like_a_rebuild(space, dtype):
    X, y = _data(space, 80)
    model = GPModel(space, max_train_points=40, dtype=dtype)
    model.fit(X, y)
    Xt = space.sample(50, seed=3).to(dtype)
    model.posterior(Xt)
    Xf = space.sample(3, seed=4).to(dtype)
    model.condition_on(Xf, model.posterior(Xf).mean)
    assert model._X.shape[0] == 43 and model._cache is not None  # extended, not dropped
    extended = model.posterior(Xt)
    model._cache = None
    rebuilt = model.posterior(Xt)
    # float32: 40 points of a near-noiseless fit factorise with relative errors of a few 1e-3 either way
    tol = 1e-8 if dtype == torch.float64 else 5e-3
    assert torch.allclose(extended.mean, rebuilt.mean, atol=tol * y.std().item())
    assert torch.allclose(extended.variance, rebuilt.variance, atol=tol * y.var().item())


_CAPPED = {"model": {"type": "gp", "max_train_points": 14, "fit_subset_size": 10, "refit_every": 2},
           "acq_optimizer": {"type": "interleaved", "n_restarts": 2, "n_raw": 100, "n_rounds": 2}, "n_init": 5}


def _f(p):
    return (p["x"] - 0.3) ** 2 + p["z"] + 0.5 * (p["c"] != "a")


def test_capped_solver_batches_avoid_pending_points(space):
    solver = build_solver("casmopolitan", space, seed=0, **_CAPPED)
    solver.optimize(_f, 20)
    first = solver.ask(3)
    second = solver.ask(2)  # the first three are pending: fantasies on top of the capped model
    assert len(torch.unique(space.encode(first + second), dim=0)) == 5
    assert solver.model.train_index is not None


def test_capped_solver_save_load_gives_the_same_next_points(space, tmp_path):
    solver = build_solver("casmopolitan", space, seed=3, **_CAPPED)
    solver.optimize(_f, 21)
    solver.save(tmp_path / "capped.json")
    restored = build_solver("casmopolitan", space, seed=3, **_CAPPED)
    restored.load(tmp_path / "capped.json")
    for _ in range(3):  # across a kept-hyper-parameter ask and a refit
        a, b = solver.ask(1), restored.ask(1)
        assert a == b
        solver.tell(a, [_f(a[0])])
        restored.tell(b, [_f(b[0])])
