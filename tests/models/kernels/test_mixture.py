"""MixtureKernel (Casmopolitan): values and the closed-form backward of its combination node."""

import pytest
import torch
from gpytorch.kernels import MaternKernel

from mcbo.models.kernels import Matern52Kernel
from mcbo.models.kernels.categorical import TransformedOverlapKernel
from mcbo.models.kernels.mixture import MixtureKernel


def _inputs(n: int = 30, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    reals = torch.rand(n, 2, generator=g, dtype=torch.float64)
    cats = torch.randint(0, 3, (n, 4), generator=g).double()
    return torch.cat([reals, cats], -1)


def _mixture(numeric=None, mix: float = 0.3) -> MixtureKernel:
    numeric = numeric if numeric is not None else Matern52Kernel(ard_num_dims=2, active_dims=torch.tensor([0, 1]))
    nominal = TransformedOverlapKernel([3, 3, 3, 3], active_dims=torch.tensor([2, 3, 4, 5]))
    kernel = MixtureKernel(numeric, nominal, mix_init=mix).double()
    kernel.numeric.lengthscale = torch.tensor([[0.4, 1.5]], dtype=torch.float64)
    kernel.nominal.lengthscale = torch.tensor([[0.5, 1.0, 2.0, 0.7]], dtype=torch.float64)
    return kernel


def test_value_is_the_casmopolitan_mixture_with_unit_diagonal():
    kernel, X = _mixture(), _inputs()
    with torch.no_grad():
        k_num, k_nom = kernel.numeric(X).to_dense(), kernel.nominal(X).to_dense()
        expected = 0.7 * 0.5 * (k_num + k_nom) + 0.3 * k_num * k_nom
        assert torch.allclose(kernel(X).to_dense(), expected, atol=1e-14)
        assert torch.allclose(kernel(X).to_dense().diagonal(), torch.ones(len(X), dtype=torch.float64))
    assert torch.allclose(kernel(X).to_dense(), expected, atol=1e-14)  # gradient path, same value


@pytest.mark.parametrize("mix", [0.05, 0.5, 0.95])
def test_closed_form_backward_matches_autograd(mix):
    kernel, X = _mixture(mix=mix), _inputs()
    weights = torch.randn(len(X), len(X), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    params = [kernel.raw_mix, kernel.numeric.raw_lengthscale, kernel.nominal.raw_lengthscale]
    fused = torch.autograd.grad((kernel(X).to_dense() * weights).sum(), params)
    k_num, k_nom, lam = kernel.numeric(X).to_dense(), kernel.nominal(X).to_dense(), kernel.mix.squeeze()
    plain = torch.autograd.grad((((1 - lam) * 0.5 * (k_num + k_nom) + lam * k_num * k_nom) * weights).sum(), params)
    for a, b in zip(fused, plain):
        assert torch.allclose(a, b, atol=1e-12) and a.abs().sum() > 0


def test_gradcheck_in_inputs_and_mix():
    kernel = _mixture(numeric=MaternKernel(nu=2.5, ard_num_dims=2, active_dims=torch.tensor([0, 1])))
    X = _inputs(8)
    k_num = kernel.numeric(X).to_dense().detach().requires_grad_(True)
    k_nom = kernel.nominal(X).to_dense().detach().requires_grad_(True)
    lam = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    from mcbo.models.kernels.mixture import _MixtureCombine

    assert torch.autograd.gradcheck(lambda a, b, c: _MixtureCombine.apply(a, b, c), (k_num, k_nom, lam))


def test_broadcast_batch_blocks_keep_their_gradients():
    """A batch of x1 against one x2: the combination node sees broadcast blocks; gradients match the loop."""
    kernel, X = _mixture(), _inputs(12)
    batched = kernel(X.reshape(2, 6, 6), X[:5]).to_dense()
    assert batched.shape == (2, 6, 5)
    (grad_batched,) = torch.autograd.grad(batched.sum(), kernel.raw_mix)
    (grad_loop,) = torch.autograd.grad(sum(kernel(X[i:i + 6], X[:5]).to_dense().sum() for i in (0, 6)), kernel.raw_mix)
    assert torch.allclose(grad_batched, grad_loop, atol=1e-12)
