"""Matern52Kernel: the fused prediction path equals gpytorch's Matérn-5/2, with and without gradients."""

import torch
from gpytorch.kernels import MaternKernel

from mcbo.models.kernels import Matern52Kernel


def _pair():
    g = torch.Generator().manual_seed(0)
    fast = Matern52Kernel(ard_num_dims=3).double()
    ref = MaternKernel(nu=2.5, ard_num_dims=3).double()
    ls = torch.tensor([[0.3, 1.0, 4.0]], dtype=torch.float64)
    fast.lengthscale, ref.lengthscale = ls, ls
    return fast, ref, torch.rand(40, 3, generator=g, dtype=torch.float64), torch.rand(25, 3, generator=g,
                                                                                       dtype=torch.float64)


def test_fused_path_matches_gpytorch():
    fast, ref, x1, x2 = _pair()
    with torch.no_grad():
        expected = ref(x1, x2).to_dense()
        assert torch.allclose(fast(x1, x2).to_dense(), expected, atol=1e-12)
        assert torch.allclose(fast(x1, x1).to_dense().diagonal(), torch.ones(40, dtype=torch.float64), atol=1e-7)
        batched = fast(x1.reshape(2, 20, 3), x2.expand(2, 25, 3)).to_dense()
        assert torch.allclose(batched.reshape(40, 25), expected, atol=1e-12)


def test_gradients_still_flow_when_needed():
    fast, ref, x1, x2 = _pair()
    x = x1.clone().requires_grad_(True)
    (g_fast,) = torch.autograd.grad(fast(x, x2).to_dense().sum(), x)
    (g_ref,) = torch.autograd.grad(ref(x, x2).to_dense().sum(), x)
    assert torch.allclose(g_fast, g_ref, atol=1e-10)
    (g_ls,) = torch.autograd.grad(fast(x1, x2).to_dense().sum(), fast.raw_lengthscale)
    assert g_ls.abs().sum() > 0
