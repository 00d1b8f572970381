"""Joint Matérn kernel: one Matérn-5/2 over numeric columns and nominal columns at Hamming distance."""

import math

import torch

from mcbo.models import GPModel
from mcbo.models.gp import build_kernel
from mcbo.models.kernels.joint import JointMaternKernel
from mcbo.space import Boolean, Categorical, Integer, Real, SearchSpace


def _space():
    return SearchSpace([Real("x", 0, 1), Categorical("c", ["a", "b", "c"]), Integer("n", 0, 4), Boolean("b")])


def _reference(space, lengthscale, X1, X2):
    """Matérn-5/2 of ``r^2 = sum_num ((x - x') / l)^2 + sum_nom [h != h'] / l^2``, pair by pair."""
    out = torch.zeros(len(X1), len(X2), dtype=torch.float64)
    for i, a in enumerate(X1):
        for j, b in enumerate(X2):
            r2 = 0.0
            for col in range(space.d):
                if col in space.numeric_columns.tolist():
                    r2 += float((a[col] - b[col]) / lengthscale[col]) ** 2
                else:
                    r2 += float(a[col] != b[col]) / float(lengthscale[col]) ** 2
            s = math.sqrt(5 * r2)
            out[i, j] = (1 + s + s * s / 3) * math.exp(-s)
    return out


def test_matches_the_pairwise_definition_with_and_without_gradients():
    space = _space()
    kernel = JointMaternKernel(space).double()
    kernel.lengthscale = torch.tensor([0.3, 0.7, 1.5, 2.0], dtype=torch.float64)
    X1, X2 = space.sample(5, seed=0), space.sample(4, seed=1)
    expected = _reference(space, kernel.lengthscale.detach().reshape(-1), X1, X2)
    with torch.no_grad():
        assert torch.allclose(kernel(X1, X2).to_dense(), expected, atol=1e-10)
    X1g = X1.clone().requires_grad_(True)
    assert torch.allclose(kernel(X1g, X2).to_dense().detach(), expected, atol=1e-10)
    assert torch.allclose(kernel(X1, X1, diag=True), torch.ones(5, dtype=torch.float64))


def test_gradients_in_the_lengthscales_and_the_numeric_inputs_are_exact():
    space = _space()
    kernel = JointMaternKernel(space).double()
    X1, X2 = space.sample(4, seed=2), space.sample(3, seed=3)
    weights = torch.linspace(0.5, 1.5, 12, dtype=torch.float64).reshape(4, 3)

    def f(numeric):
        x = X1.clone()
        x[:, space.numeric_columns] = numeric
        return kernel(x, X2).to_dense()

    numeric = X1[:, space.numeric_columns].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (numeric,))

    (kernel(X1, X2).to_dense() * weights).sum().backward()
    analytic = kernel.raw_lengthscale.grad.clone()
    raw = kernel.raw_lengthscale.detach().clone()
    for i in range(space.d):
        values = []
        for h in (1e-6, -1e-6):
            shifted = raw.clone()
            shifted[..., i] += h
            kernel.raw_lengthscale.data.copy_(shifted)
            with torch.no_grad():
                values.append(float((kernel(X1, X2).to_dense() * weights).sum()))
        assert abs((values[0] - values[1]) / 2e-6 - float(analytic[..., i])) < 1e-6


def test_gp_with_the_joint_kernel_and_optuna_priors_fits_and_interpolates():
    space = _space()
    X = space.sample(24, seed=0)
    y = (X[:, 0] - 0.3) ** 2 + (X[:, 1] == 2).double() + 0.5 * X[:, 2]
    model = GPModel(space, combine="joint", hyper_priors="optuna")
    model.fit(X, y)
    post = model.posterior(X)
    assert torch.allclose(post.mean, y, atol=0.1)
    assert isinstance(build_kernel(space, "matern52", "overlap", "joint"), JointMaternKernel)
    lengthscales = model.numeric_lengthscales()
    assert lengthscales is not None and lengthscales.shape == (len(space.numeric_columns),)
    noise = float(model.gp.likelihood.noise)
    assert 1e-6 <= noise < 0.05  # the Gamma(1.1, 30) prior keeps a noiseless fit's noise small
