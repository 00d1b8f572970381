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


def test_closed_form_gradients_match_gpytorch_for_fitting_and_acquisition():
    """Training (x1 is x2, gradients in the lengthscales) and acquisition (gradients in the candidates)."""
    fast, ref, x1, x2 = _pair()
    for kernel in (fast, ref):
        kernel.raw_lengthscale.grad = None
    weights = torch.rand(40, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (fast(x1).to_dense() * weights).sum().backward()
    (ref(x1).to_dense() * weights).sum().backward()
    assert torch.allclose(fast.raw_lengthscale.grad, ref.raw_lengthscale.grad, atol=1e-10)
    assert fast.raw_lengthscale.grad.abs().min() > 0
    xa, xb = x1.clone().requires_grad_(True), x1.clone().requires_grad_(True)
    ya, yb = x2.clone().requires_grad_(True), x2.clone().requires_grad_(True)
    ga = torch.autograd.grad((fast(xa, ya).to_dense() * weights[:, :25]).sum(), (xa, ya))
    gb = torch.autograd.grad((ref(xb, yb).to_dense() * weights[:, :25]).sum(), (xb, yb))
    for a, b in zip(ga, gb):
        assert torch.allclose(a, b, atol=1e-10)


def test_closed_form_backward_passes_gradcheck_batched():
    fast, _, x1, x2 = _pair()
    x = x1[:12].reshape(2, 6, 3).clone().requires_grad_(True)
    y = x2[:8].clone().requires_grad_(True)  # broadcast over the batch
    assert torch.autograd.gradcheck(lambda a, b: fast(a, b).to_dense(), (x, y))
    z = x1[:8].reshape(2, 1, 4, 3).expand(2, 3, 4, 3).clone().requires_grad_(True)  # two batch dimensions
    assert torch.autograd.gradcheck(lambda a: fast(a, a).to_dense(), (z,))
