"""GPModel: fits and predicts on mixed spaces, robust to degenerate data, chunked and batched."""

import math
import gpytorch
import numpy as np
import pytest
import torch

from mcbo.models import GPModel, build_model
from mcbo.space import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", -2, 2), Integer("n", 0, 10), Categorical("c", ["a", "b", "c"])])


def _f(space, X):
    pts = space.decode(X)
    return torch.tensor([p["x"] ** 2 + 0.1 * p["n"] + {"a": 0.0, "b": 1.0, "c": 2.0}[p["c"]] for p in pts],
                        dtype=torch.float64)


@pytest.mark.parametrize("nominal", ["overlap", "transformed_overlap"])
@pytest.mark.parametrize("combine", ["mixture", "sum", "product"])
def test_fit_predicts_held_out_points(space, nominal, combine):
    X, Xt = space.sample(40, seed=0), space.sample(200, seed=1)
    model = GPModel(space, nominal_kernel=nominal, combine=combine)
    model.fit(X, _f(space, X))
    post = model.posterior(Xt)
    assert post.mean.shape == post.variance.shape == (200,)
    assert torch.corrcoef(torch.stack([post.mean, _f(space, Xt)]))[0, 1] > 0.9
    assert (post.variance > 0).all()


def test_posterior_matches_gpytorch_prediction(space):
    X = space.sample(30, seed=0)
    model = GPModel(space)
    model.fit(X, _f(space, X))
    Xt = space.sample(50, seed=2)
    post = model.posterior(Xt)
    with torch.no_grad(), gpytorch.settings.max_cholesky_size(10**6):
        ref = model.gp(Xt)
    assert torch.allclose(post.mean, ref.mean * model._y_std + model._y_mean, atol=1e-6)
    assert torch.allclose(post.variance, ref.variance * model._y_std**2, atol=1e-6)


def test_chunked_and_batched_posterior_agree(space):
    X = space.sample(30, seed=0)
    model = GPModel(space, memory_budget_mb=0.001)  # forces the smallest chunks
    model.fit(X, _f(space, X))
    Xt = space.sample(300, seed=3)
    flat = model.posterior(Xt)
    batched = model.posterior(Xt.reshape(3, 100, -1))
    assert torch.allclose(batched.mean.reshape(-1), flat.mean)


def test_degenerate_data_is_handled(space):
    X = space.sample(10, seed=0)
    model = GPModel(space)
    model.fit(X[:0], torch.empty(0, dtype=torch.float64))  # no data: the prior
    assert torch.allclose(model.posterior(X).mean, torch.zeros(10, dtype=torch.float64))
    model.fit(X[:1], torch.tensor([3.0], dtype=torch.float64))  # one point
    assert model.posterior(X[:1]).mean.item() == pytest.approx(3.0, abs=1e-3)
    model.fit(X, torch.full((10,), 5.0, dtype=torch.float64))  # constant outputs
    assert torch.allclose(model.posterior(X).mean, torch.full((10,), 5.0, dtype=torch.float64), atol=1e-6)
    dup = torch.cat([X, X])
    model.fit(dup, torch.cat([_f(space, X), _f(space, X) + 0.01]))  # duplicated inputs
    assert torch.isfinite(model.posterior(X).mean).all()


def test_gradients_flow_to_numeric_columns(space):
    X = space.sample(20, seed=0)
    model = GPModel(space)
    model.fit(X, _f(space, X))
    Xt = space.sample(5, seed=1).requires_grad_(True)
    model.posterior(Xt).mean.sum().backward()
    assert torch.isfinite(Xt.grad).all() and Xt.grad[:, 0].abs().sum() > 0


def test_joint_samples_and_conditioning(space):
    X = space.sample(20, seed=0)
    model = GPModel(space)
    model.fit(X, _f(space, X))
    Xt = space.sample(30, seed=1)
    s1 = model.sample(Xt, 4, generator=torch.Generator().manual_seed(0))
    s2 = model.sample(Xt, 4, generator=torch.Generator().manual_seed(0))
    assert s1.shape == (4, 30) and torch.equal(s1, s2)
    model.condition_on(Xt[:1], torch.tensor([-10.0], dtype=torch.float64))
    assert model.posterior(Xt[:1]).mean.item() < -5


def test_float32_model(space):
    X = space.sample(20, seed=0)
    model = GPModel(space, dtype=torch.float32)
    model.fit(X, _f(space, X))
    assert model.posterior(X).mean.dtype == torch.float32


def test_bad_settings_raise():
    space = SearchSpace([Real("x", 0, 1)])
    with pytest.raises(ValueError, match="unknown nominal_kernel 'hamming'"):
        GPModel(space, nominal_kernel="hamming")
    with pytest.raises(ValueError, match="unknown model type 'rf'"):
        build_model({"type": "rf"}, space, torch.device("cpu"), torch.float64)


def test_dense_marginal_likelihood_matches_gpytorch_value_and_gradients(space):
    """The fitting loss (closed-form gradient) equals gpytorch's exact MLL and its autograd gradients."""
    from mcbo.models.gp import _negative_log_marginal_likelihood

    X = space.sample(25, seed=0)
    model = GPModel(space)
    model.fit(X, _f(space, X))
    gp = model.gp
    gp.train()
    gp.requires_grad_(True)
    params = [p for p in gp.parameters()]
    ours = _negative_log_marginal_likelihood(gp, jitter=0.0)
    grads = torch.autograd.grad(ours, params)
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
    with gpytorch.settings.max_cholesky_size(10**6):
        ref = -mll(gp(*gp.train_inputs), gp.train_targets)
    ref_grads = torch.autograd.grad(ref, params)
    assert torch.allclose(ours, ref, atol=1e-8)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-6)


@pytest.mark.parametrize("case", ["overlap", "kendall", "ssk"])
def test_feature_space_posterior_matches_cross_covariance_path(case):
    """Kernels that are explicit inner products predict in feature space; same posterior as the general path."""
    from mcbo.space import Permutation, Sequence

    if case == "overlap":
        space = SearchSpace([Categorical(f"c{i}", list("abcdefg")) for i in range(6)])
    elif case == "kendall":
        space = SearchSpace([Permutation("p", 6)])
    else:
        space = SearchSpace([Sequence("s", length=8, alphabet=list("abcd"))])
    X, Xt = space.sample(60, seed=0), space.sample(300, seed=1)
    y = torch.sin(X.sum(-1)) + 0.1 * X[:, 0]
    model = GPModel(space, nominal_kernel=case)
    model.fit(X, y)
    fast = model.posterior(Xt)
    assert model._prediction_cache().phi is not None
    model._prediction_cache().phi = None  # force the cross-covariance + triangular-solve path
    slow = model.posterior(Xt)
    assert torch.allclose(fast.mean, slow.mean, atol=1e-8)
    assert torch.allclose(fast.variance, slow.variance, atol=1e-8)


def test_dim_scaled_hyper_priors_are_used_in_the_fit_and_bad_names_rejected():
    space = SearchSpace([Real("x", 0, 1), Real("z", 0, 1), Categorical("c", ["a", "b", "c"])])
    X = space.sample(12, generator=np.random.default_rng(0), dtype=torch.float64)
    y = (X[:, 0] - 0.3) ** 2 + X[:, 2]
    with_priors, plain = GPModel(space, hyper_priors="dim_scaled"), GPModel(space)
    with_priors.fit(X, y)
    plain.fit(X, y)
    names = [name for name, *_ in with_priors.gp.named_priors()]
    assert any("lengthscale_prior" in n for n in names) and any("noise_prior" in n for n in names)
    assert not list(plain.gp.named_priors())
    assert float(with_priors.gp.likelihood.noise) > float(plain.gp.likelihood.noise)  # the prior keeps noise up
    with pytest.raises(ValueError, match="hyper_priors"):
        GPModel(space, hyper_priors="vague")


def test_optuna_dim_scaled_priors_put_the_dimension_scaled_lengthscale_prior_on_the_joint_kernel():
    space = SearchSpace([Real("x", 0, 1)] + [Categorical(f"c{i}", ["a", "b"]) for i in range(15)])
    X = space.sample(20, generator=np.random.default_rng(0), dtype=torch.float64)
    y = X[:, 0] + X[:, 1:4].sum(1)
    model = GPModel(space, combine="joint", hyper_priors="optuna_dim_scaled", prior_mean="zero")
    model.fit(X, y)
    priors = {name: prior for name, _, prior, *_ in model.gp.named_priors()}
    (lengthscale_prior,) = [p for n, p in priors.items() if "lengthscale_prior" in n]
    assert float(lengthscale_prior.loc) == pytest.approx(math.sqrt(2) + math.log(16) / 2)
    assert any("outputscale_prior" in n for n in priors) and any("noise_prior" in n for n in priors)
    # a wider prior than Optuna's: the fitted lengthscales are longer on the same data
    optuna = GPModel(space, combine="joint", hyper_priors="optuna", prior_mean="zero")
    optuna.fit(X, y)
    lengthscales = [m.gp.covar_module.base_kernel.lengthscale.median() for m in (model, optuna)]
    assert float(lengthscales[0]) > float(lengthscales[1])


def test_zero_prior_mean_reverts_to_the_data_average_far_from_the_data_and_bad_names_are_rejected():
    space = SearchSpace([Real("x", 0, 1), Categorical("c", ["a", "b", "c", "d"])])
    X = space.encode([{"x": 0.05 * i, "c": "a"} for i in range(8)])  # data clustered in one corner
    y = torch.tensor([5.0, 4.0, 3.5, 3.2, 3.0, 3.1, 3.3, 3.6], dtype=torch.float64)
    zero = GPModel(space, combine="joint", hyper_priors="optuna", prior_mean="zero")
    zero.fit(X, y)
    far = space.encode([{"x": 1.0, "c": "d"}])
    assert float(zero.gp.prior_mean()) == 0.0
    assert float(zero.posterior(far).mean) == pytest.approx(float(y.mean()), abs=0.05 * float(y.std()))
    constant = GPModel(space, combine="joint", hyper_priors="optuna")
    constant.fit(X, y)
    assert float(constant.gp.prior_mean()) != 0.0
    with pytest.raises(ValueError, match="prior_mean"):
        GPModel(space, prior_mean="linear")
