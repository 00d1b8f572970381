"""Diffusion kernel: equals exp(-beta L) from numpy's eigendecomposition, PSD, horseshoe prior in the fit."""

import math

import gpytorch
import numpy as np
import pytest
import torch

from mcbo.models import GPModel
from mcbo.models.kernels import COMBOHorseshoePrior, DiffusionKernel, build_diffusion
from mcbo.space import Categorical, Real, SearchSpace

CARDS = [2, 3, 5, 4]
BETA = [0.3, 1.1, 0.05, 2.0]


def _points(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, k, (n,), generator=g) for k in CARDS], -1).double()


def _eigen_reference(x1, x2, beta):
    """prod_i [U_i diag(exp(-beta_i lambda_i)) U_i^T][x1_i, x2_i] with (lambda_i, U_i) = eigh(Laplacian of K_k)."""
    K = np.ones((len(x1), len(x2)))
    for i, k in enumerate(CARDS):
        laplacian = k * np.eye(k) - np.ones((k, k))
        lam, U = np.linalg.eigh(laplacian)
        gram = U @ np.diag(np.exp(-beta[i] * lam)) @ U.T
        K *= gram[np.ix_(x1[:, i].astype(int), x2[:, i].astype(int))]
    return K


def _kernel(normalise):
    k = DiffusionKernel(CARDS, active_dims=torch.arange(4), normalise=normalise).double()
    k.beta = torch.tensor(BETA, dtype=torch.float64)
    return k


def test_matches_eigendecomposition_of_graph_laplacians():
    x1, x2 = _points(9, 0), _points(6, 1)
    ref = _eigen_reference(x1.numpy(), x2.numpy(), BETA)
    raw = _kernel(normalise=False)
    assert np.allclose(raw(x1, x2).to_dense().detach().numpy(), ref, atol=1e-12)
    assert np.allclose(raw(x1[:6], x2, diag=True).detach().numpy(), np.diag(ref[:6]), atol=1e-12)
    # normalised: each factor divided by its constant diagonal, so k(x, x) = 1
    diag = np.prod([_eigen_reference(np.zeros((1, 4)), np.zeros((1, 4)), BETA)])
    norm = _kernel(normalise=True)
    assert np.allclose(norm(x1, x2).to_dense().detach().numpy(), ref / diag, atol=1e-12)
    assert torch.allclose(norm(x1, x1, diag=True), torch.ones(9, dtype=torch.float64))


def test_limits_and_psd():
    X = _points(60, 2)
    k = _kernel(normalise=True)
    assert torch.linalg.eigvalsh(k(X).to_dense()).min() > -1e-9
    batched = k(X.reshape(3, 20, 4)).to_dense()
    assert batched.shape == (3, 20, 20) and torch.allclose(batched[0], k(X[:20]).to_dense())
    k.beta = torch.full((4,), 1e-6, dtype=torch.float64)  # no diffusion: the indicator of equal points
    x = _points(5, 3)
    same = (x.unsqueeze(1) == x.unsqueeze(0)).all(-1).double()
    assert torch.allclose(k(x).to_dense(), same, atol=1e-4)
    k.beta = torch.full((4,), 50.0, dtype=torch.float64)  # full diffusion: every column ignored
    assert torch.allclose(k(x).to_dense(), torch.ones(5, 5, dtype=torch.float64), atol=1e-6)


def test_horseshoe_prior_density():
    prior = COMBOHorseshoePrior(scale=5.0)
    beta = torch.tensor([0.01, 0.5, 2.0, 20.0], dtype=torch.float64)
    expected = [math.log(1 / math.sqrt(2 * math.pi**3)) + math.log(math.log(1 + 2 * (5 / b) ** 2)) - math.log(5)
                for b in beta.tolist()]
    assert torch.allclose(prior.log_prob(beta), torch.tensor(expected, dtype=torch.float64))
    assert (prior.log_prob(beta).diff() < 0).all()  # shrinks towards 0
    # within Carvalho et al.'s bounds K/2 log(1 + 4/t^2) < p(t) < K log(1 + 2/t^2): the upper one, scaled by 1/tau
    upper = torch.log(torch.log1p(2 * (5 / beta) ** 2) / math.sqrt(2 * math.pi**3) / 5)
    assert torch.allclose(prior.log_prob(beta), upper)
    samples = prior.rsample(torch.Size([1000]))
    assert (samples >= 0).all()


def test_prior_enters_the_marginal_likelihood():
    space = SearchSpace([Categorical(f"c{i}", list("abc")) for i in range(5)])
    kern = build_diffusion(space, space.nominal_columns)
    assert [name for name, *_ in kern.named_priors()] == ["beta_prior"]
    X = space.sample(20, seed=0)
    y = (X == 0).sum(-1).double()
    model = GPModel(space, nominal_kernel="diffusion", fit_maxiter=50)
    model.fit(X, y)
    gp = model.gp
    gp.train()
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
    yy = (y - model._y_mean) / model._y_std
    with torch.no_grad():
        diffusion = gp.covar_module.base_kernel
        log_prior = diffusion.beta_prior.log_prob(diffusion.beta).sum()
        log_lik = gp.likelihood(gp(X)).log_prob(yy)
        assert mll(gp(X), yy).item() == pytest.approx(((log_lik + log_prior) / 20).item(), rel=1e-9)
        assert log_prior.abs() > 0.1
    gp.eval()
    Xt = space.sample(60, seed=1)
    post = model.posterior(Xt)
    assert torch.corrcoef(torch.stack([post.mean, (Xt == 0).sum(-1).double()]))[0, 1] > 0.8


def test_builder_on_mixed_space():
    space = SearchSpace([Real("x", 0, 1), Categorical("c", ["a", "b", "c"]), Categorical("one", ["only"])])
    k = build_diffusion(space, space.nominal_columns).double()
    X = space.sample(10, seed=0)
    K = k(X).to_dense()
    assert torch.allclose(K.diagonal(), torch.ones(10, dtype=torch.float64))
    assert torch.linalg.eigvalsh(K).min() > -1e-9


def test_casmopolitan_runs_with_diffusion(casmopolitan_run):
    space = SearchSpace([Categorical(f"c{i}", ["a", "b", "c"]) for i in range(10)] + [Real("x", 0, 1)])
    solver = casmopolitan_run(space, lambda p: sum(p[f"c{i}"] == "b" for i in range(10)) + p["x"],
                              {"nominal_kernel": "diffusion"})
    assert isinstance(solver.model.gp.covar_module.base_kernel.nominal, DiffusionKernel)
