"""Overlap and transformed-overlap kernels: match a direct per-pair reference, PSD, batched shapes."""

import pytest
import torch

from mcbo.models.kernels import MixtureKernel, OverlapKernel, TransformedOverlapKernel
from gpytorch.kernels import MaternKernel

CARDS = [3, 5, 2, 4]


def _random_points(n, seed, cards=CARDS):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, k, (n,), generator=g) for k in cards], -1).double()


def _reference(x1, x2, lengthscale, transformed):
    w = 1.0 / lengthscale
    K = torch.empty(len(x1), len(x2), dtype=torch.float64)
    for i in range(len(x1)):
        for j in range(len(x2)):
            match = (x1[i] == x2[j]).double()
            K[i, j] = torch.exp(-(w * (1 - match)).mean()) if transformed else (w * match).mean()
    return K


def _kernel(cls):
    k = cls(CARDS, active_dims=torch.arange(4)).double()
    k.lengthscale = torch.tensor([[0.5, 1.0, 2.0, 3.0]], dtype=torch.float64)
    return k


def test_kernels_match_direct_reference():
    x1, x2 = _random_points(7, 0), _random_points(5, 1)
    for cls, transformed in ((OverlapKernel, False), (TransformedOverlapKernel, True)):
        k = _kernel(cls)
        ref = _reference(x1, x2, k.lengthscale.reshape(-1).detach(), transformed)
        assert torch.allclose(k(x1, x2).to_dense(), ref, atol=1e-12)
        with torch.no_grad():  # prediction path (in-place element-wise passes)
            assert torch.allclose(k(x1, x2).to_dense(), ref, atol=1e-12)
        assert torch.allclose(k(x1, x1, diag=True), _reference(x1, x1, k.lengthscale.reshape(-1).detach(),
                                                               transformed).diagonal(), atol=1e-12)


def test_kernels_are_positive_semidefinite_and_batched():
    X = _random_points(60, 2)
    for cls in (OverlapKernel, TransformedOverlapKernel):
        K = _kernel(cls)(X).to_dense()
        assert torch.linalg.eigvalsh(K).min() > -1e-9
        batched = _kernel(cls)(X.reshape(3, 20, 4)).to_dense()
        assert batched.shape == (3, 20, 20)
        assert torch.allclose(batched[1], K[20:40, 20:40])


def test_mixture_is_psd_with_unit_diagonal():
    g = torch.Generator().manual_seed(0)
    X = torch.cat([torch.rand(40, 2, generator=g, dtype=torch.float64), _random_points(40, 3)], -1)
    mix = MixtureKernel(MaternKernel(nu=2.5, ard_num_dims=2, active_dims=torch.arange(2)),
                        TransformedOverlapKernel(CARDS, active_dims=torch.arange(2, 6))).double()
    for lam in (0.0, 0.3, 1.0):
        mix.mix = lam
        K = mix(X).to_dense()
        assert torch.allclose(K.diagonal(), torch.ones(40, dtype=torch.float64), atol=1e-6)
        assert torch.linalg.eigvalsh(K).min() > -1e-9


@pytest.mark.parametrize("cls, transformed", [(OverlapKernel, False), (TransformedOverlapKernel, True)])
def test_many_category_columns_match_reference_with_gradients(cls, transformed):
    """Columns with many categories take the gathered-rows path; values and lengthscale gradients agree."""
    cards = [11, 7, 5]
    x1, x2 = _random_points(9, 4, cards), _random_points(6, 5, cards)
    k = cls(cards, active_dims=torch.arange(3)).double()
    k.lengthscale = torch.tensor([[0.5, 1.5, 3.0]], dtype=torch.float64)
    ref = _reference(x1, x2, k.lengthscale.reshape(-1).detach(), transformed)
    K = k(x1, x2).to_dense()
    assert torch.allclose(K, ref, atol=1e-12)
    (grad,) = torch.autograd.grad(K.sum(), k.raw_lengthscale)
    ls = k.lengthscale.detach().clone().requires_grad_(True)
    w = 1.0 / ls.reshape(-1)
    match = (x1.unsqueeze(1) == x2.unsqueeze(0)).double()
    direct = torch.exp(-(w * (1 - match)).mean(-1)) if transformed else (w * match).mean(-1)
    (grad_ls,) = torch.autograd.grad(direct.sum(), ls)
    assert torch.allclose(grad, grad_ls * _dlengthscale_draw(k), atol=1e-10)


def _dlengthscale_draw(kernel):
    """d lengthscale / d raw_lengthscale for the kernel's constraint, by autograd."""
    raw = kernel.raw_lengthscale.detach().clone().requires_grad_(True)
    (d,) = torch.autograd.grad(kernel.raw_lengthscale_constraint.transform(raw).sum(), raw)
    return d
