"""Matérn-5/2 ARD kernel with fused Gram computations for training and prediction.

``k(x, x') = (1 + s + s^2 / 3) exp(-s)`` with ``s = sqrt(5) r``, ``r = ||(x - x') / lengthscale||``
(Rasmussen & Williams, GPML, eq. 4.17). :meth:`Matern52Kernel.forward` builds the ``[n1, n2]`` block
from one matrix product of the scaled inputs and element-wise passes:

* without gradients (scoring candidates), in place (:func:`_matern52_no_grad`): the squared distances
  come straight out of one product of augmented rows, then two buffers and five element-wise passes;
* with gradients (fitting, or acquisition gradients in ``x``), through :class:`_Matern52Gram`, whose
  backward is closed form: with ``H = G * (5/3) (1 + s) exp(-s)`` for the upstream gradient ``G``,
  ``dL/dz1 = -(z1 * rowsum(H) - H z2)`` and ``dL/dz2 = H^T z1 - z2 * colsum(H)``: two ``[n1, n2] x [n, d]``
  products instead of autograd's pass through every element-wise step of gpytorch's version.
  ``diag`` and ``last_dim_is_batch`` calls still use gpytorch's implementation.
"""

from __future__ import annotations

import math

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel, MaternKernel, RBFKernel

from mcbo.models.kernels.registry import register_numeric_kernel
from mcbo.space import SearchSpace

_SQRT5 = math.sqrt(5.0)


def _scaled_distance_and_decay(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``s = sqrt(5) r`` and ``exp(-s)`` ``[..., n1, n2]`` for scaled inputs ``z1`` ``[..., n1, d]``, ``z2`` ``[..., n2, d]``.

    ``s^2 = 5 r^2`` comes straight from one product (:func:`_squared_distances` of the inputs scaled by
    ``sqrt(5)``), then ``s`` and ``exp(-s)`` take two element-wise passes.
    """
    s = _squared_distances(z1 * _SQRT5, z2 * _SQRT5).sqrt_()
    return s, torch.neg(s).exp_()


def _matern52_with_parts(z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Matérn-5/2 of scaled inputs ``z1`` ``[..., n1, d]`` and ``z2`` ``[..., n2, d]``, with ``s = sqrt(5) r`` and
    ``exp(-s)`` (kept for the backward pass): three ``[..., n1, n2]`` tensors."""
    s, decay = _scaled_distance_and_decay(z1, z2)
    return torch.addcmul(s, s, s, value=1.0 / 3.0).add_(1.0).mul_(decay), s, decay


def _matern52_no_grad(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Matérn-5/2 of scaled inputs ``z1`` ``[..., n1, d]`` and ``z2`` ``[..., n2, d]``: ``[..., n1, n2]``.

    As :func:`_matern52_with_parts`, with ``(s + s^2 / 3 + 1) exp(-s)`` written over ``s``: two
    ``[n1, n2]`` buffers. At ``[1000, d] x [1000, d]`` blocks, 1.7-2.1x faster than ``addmm`` plus
    separate passes for ``d`` = 3 and 10, 1.2x for ``d`` = 128 (one thread, development machine).
    """
    s, decay = _scaled_distance_and_decay(z1, z2)
    return s.addcmul_(s, s, value=1.0 / 3.0).add_(1.0).mul_(decay)


def _squared_distances(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """``||z1_i - z2_j||^2`` ``[..., n1, n2]``, clamped at 0; ``z`` ``[..., n, d]``.

    Without gradients, for 2-D inputs, one product of the augmented rows ``[-2 z1, |z1|^2, 1]`` and
    ``[z2, 1, |z2|^2]`` gives the whole matrix (no broadcast sums to add); otherwise one (batched) ``addmm``.
    """
    sq1 = (z1 * z1).sum(-1, keepdim=True)
    sq2 = (z2 * z2).sum(-1, keepdim=True)
    if z1.dim() == 2 and z2.dim() == 2:
        if not (torch.is_grad_enabled() and (z1.requires_grad or z2.requires_grad)):
            left = torch.cat([z1 * -2.0, sq1, torch.ones_like(sq1)], -1)
            right = torch.cat([z2, torch.ones_like(sq2), sq2], -1)
            return (left @ right.transpose(-1, -2)).clamp_min_(0.0)
        return torch.addmm(sq1 + sq2.transpose(-1, -2), z1, z2.transpose(-1, -2), alpha=-2.0).clamp_min_(0.0)
    sq2 = sq2.transpose(-1, -2)
    if z1.dim() == 3 and z1.shape[0] == z2.shape[0]:
        return torch.baddbmm(sq1 + sq2, z1, z2.transpose(-1, -2), alpha=-2.0).clamp_min_(0.0)
    return (z1 @ z2.transpose(-1, -2)).mul_(-2.0).add_(sq1).add_(sq2).clamp_min_(0.0)  # other batch shapes


class _Matern52Gram(torch.autograd.Function):
    """Matérn-5/2 ``[..., n1, n2]`` of scaled inputs ``z1`` ``[..., n1, d]``, ``z2`` ``[..., n2, d]`` (same batch
    shape), with the closed-form backward of the module docstring (first derivatives only)."""

    @staticmethod
    def forward(ctx, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        k, s, decay = _matern52_with_parts(z1, z2)
        ctx.save_for_backward(z1, z2, s, decay)
        return k

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        z1, z2, s, decay = ctx.saved_tensors
        h = (s + 1.0).mul_(decay).mul_(grad).mul_(5.0 / 3.0)  # H = G * (5/3) (1 + s) exp(-s)
        grad_z1 = grad_z2 = None
        if ctx.needs_input_grad[0]:
            grad_z1 = h @ z2 - z1 * h.sum(-1, keepdim=True)
        if ctx.needs_input_grad[1]:
            grad_z2 = h.transpose(-1, -2) @ z1 - z2 * h.sum(-2).unsqueeze(-1)
        return grad_z1, grad_z2


class Matern52Kernel(MaternKernel):
    """gpytorch's ``MaternKernel(nu=2.5)`` with the fused paths of :func:`_matern52_no_grad` (no gradients)
    and :class:`_Matern52Gram` (gradients)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(nu=2.5, **kwargs)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (
            x1.requires_grad or x2.requires_grad or self.raw_lengthscale.requires_grad)
        if diag or params.get("last_dim_is_batch", False):
            return super().forward(x1, x2, diag=diag, **params)
        mean = x1.mean(dim=-2, keepdim=True).detach()  # a shift: the kernel does not depend on it
        lengthscale = self.lengthscale
        z1, z2 = (x1 - mean) / lengthscale, (x2 - mean) / lengthscale
        if not needs_grad:
            return _matern52_no_grad(z1, z2)
        batch = torch.broadcast_shapes(z1.shape[:-2], z2.shape[:-2])
        z1, z2 = z1.expand(*batch, *z1.shape[-2:]), z2.expand(*batch, *z2.shape[-2:])
        return _Matern52Gram.apply(z1, z2)


@register_numeric_kernel("matern52")
def build_matern52(space: SearchSpace, cols: torch.Tensor) -> Kernel:
    """Matérn-5/2 ARD on numeric columns ``cols``, lengthscales in ``[0.01, 20]`` (unit-cube inputs)."""
    return Matern52Kernel(ard_num_dims=len(cols), active_dims=cols,
                          lengthscale_constraint=Interval(0.01, 20.0))


@register_numeric_kernel("rbf")
def build_rbf(space: SearchSpace, cols: torch.Tensor) -> Kernel:
    """gpytorch's squared-exponential ARD kernel on numeric columns ``cols``, lengthscales in ``[0.01, 20]``."""
    return RBFKernel(ard_num_dims=len(cols), active_dims=cols, lengthscale_constraint=Interval(0.01, 20.0))


__all__ = ["Matern52Kernel", "build_matern52", "build_rbf"]
