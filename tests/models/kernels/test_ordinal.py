"""Ordinal kernel: AR(1) form on ranks, PSD, gradients, builder rules, GP fit on an ordinal space."""

import pytest
import torch
from gpytorch.kernels import MaternKernel, ProductKernel

from mcbo.models import GPModel
from mcbo.models.kernels import OrdinalKernel, build_ordinal
from mcbo.space import Integer, Ordinal, Real, SearchSpace

SIZES = [5, 3, 9]


def _ranks(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, k, (n,), generator=g) for k in SIZES], -1).double()


def _kernel():
    k = OrdinalKernel(active_dims=torch.arange(3)).double()
    k.lengthscale = torch.tensor([[0.3, 1.0, 0.1]], dtype=torch.float64)
    return k


def test_is_product_of_ar1_correlations_on_ranks():
    k = _kernel()
    r1, r2 = _ranks(6, 0), _ranks(4, 1)
    steps = torch.tensor(SIZES, dtype=torch.float64) - 1
    rho = k.adjacent_correlation(SIZES).detach()
    ref = torch.tensor([[float(torch.prod(rho ** (a - b).abs())) for b in r2] for a in r1], dtype=torch.float64)
    assert torch.allclose(k(r1 / steps, r2 / steps).to_dense(), ref)
    assert torch.allclose(k(r1[:4] / steps, r2 / steps, diag=True), ref.diagonal())
    assert rho[1].item() == pytest.approx(torch.exp(torch.tensor(-1 / (2 * 1.0))).item())


def test_psd_batched_and_differentiable():
    k = _kernel()
    X = _ranks(50, 2) / (torch.tensor(SIZES, dtype=torch.float64) - 1)
    K = k(X).to_dense()
    assert torch.linalg.eigvalsh(K).min() > -1e-9
    batched = k(X[:40].reshape(2, 20, 3)).to_dense()
    assert batched.shape == (2, 20, 20) and torch.allclose(batched[1], K[20:40, 20:40])
    Xg = X[:5].clone().requires_grad_(True)
    k(Xg, X[5:]).to_dense().sum().backward()
    assert torch.isfinite(Xg.grad).all() and Xg.grad.abs().sum() > 0


def test_builder_restricts_to_ordinal_columns():
    only = SearchSpace([Ordinal("o1", [1, 2, 4, 8]), Ordinal("o2", ["lo", "mid", "hi"])])
    assert isinstance(build_ordinal(only, only.numeric_columns), OrdinalKernel)
    mixed = SearchSpace([Real("x", 0, 1), Ordinal("o", [1, 2, 3]), Integer("n", 0, 5)])
    kern = build_ordinal(mixed, mixed.numeric_columns)
    assert isinstance(kern, ProductKernel)
    matern, ordinal = kern.kernels
    assert isinstance(matern, MaternKernel) and matern.active_dims.tolist() == [0, 2]
    assert ordinal.active_dims.tolist() == [1]
    with pytest.raises(ValueError, match="needs at least one Ordinal parameter.*\\['x', 'n'\\]"):
        GPModel(SearchSpace([Real("x", 0, 1), Integer("n", 0, 5)]), numeric_kernel="ordinal")


def test_gp_fit_on_ordinal_space():
    space = SearchSpace([Ordinal(f"o{i}", list(range(10))) for i in range(3)] + [Real("x", 0, 1)])
    X, Xt = space.sample(40, seed=0), space.sample(100, seed=1)

    def f(X):
        return (X[:, 0] - 0.3).abs() * 3 + X[:, 1] + X[:, 3] ** 2

    model = GPModel(space, numeric_kernel="ordinal", fit_maxiter=50)
    model.fit(X, f(X))
    post = model.posterior(Xt)
    assert torch.corrcoef(torch.stack([post.mean, f(Xt)]))[0, 1] > 0.9


def test_casmopolitan_runs_with_ordinal(casmopolitan_run):
    space = SearchSpace([Ordinal("o1", list(range(8))), Ordinal("o2", [1, 2, 4, 8, 16]), Real("x", 0, 1)])
    solver = casmopolitan_run(space, lambda p: (p["o1"] - 3) ** 2 + p["o2"] + p["x"], {"numeric_kernel": "ordinal"})
    assert isinstance(solver.model.gp.covar_module.base_kernel, ProductKernel)
