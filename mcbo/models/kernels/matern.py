"""Matérn-5/2 ARD kernel with a fused, allocation-light path for prediction.

``k(x, x') = (1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)``, ``r = ||(x - x') / lengthscale||``
(Rasmussen & Williams, GPML, eq. 4.17). Training (gradients on) uses gpytorch's implementation
unchanged; when no gradient is needed (scoring candidates), :meth:`Matern52Kernel.forward` builds
the ``[n1, n2]`` block with one ``addmm`` and in-place element-wise passes, which halves the time of
the cross-covariance in the posterior hot path.
"""

from __future__ import annotations

import math

import torch
from gpytorch.kernels import MaternKernel

_SQRT5 = math.sqrt(5.0)


def _matern52_no_grad(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Matérn-5/2 of scaled inputs ``z1`` ``[..., n1, d]`` and ``z2`` ``[..., n2, d]``: ``[..., n1, n2]``."""
    sq1 = (z1 * z1).sum(-1, keepdim=True)
    sq2 = (z2 * z2).sum(-1).unsqueeze(-2)
    r = torch.baddbmm(sq1 + sq2, z1, z2.transpose(-1, -2), alpha=-2.0) if z1.dim() > 2 else \
        torch.addmm(sq1 + sq2, z1, z2.transpose(-1, -2), alpha=-2.0)
    r.clamp_min_(0.0).sqrt_().mul_(_SQRT5)  # sqrt(5) * distance
    decay = torch.neg(r).exp_()
    return r.mul(r).div_(3.0).add_(r).add_(1.0).mul_(decay)


class Matern52Kernel(MaternKernel):
    """gpytorch's ``MaternKernel(nu=2.5)`` with the fused no-gradient path of :func:`_matern52_no_grad`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(nu=2.5, **kwargs)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (
            x1.requires_grad or x2.requires_grad or self.raw_lengthscale.requires_grad)
        if diag or needs_grad or params.get("last_dim_is_batch", False):
            return super().forward(x1, x2, diag=diag, **params)
        mean = x1.mean(dim=-2, keepdim=True)
        lengthscale = self.lengthscale
        return _matern52_no_grad((x1 - mean) / lengthscale, (x2 - mean) / lengthscale)


__all__ = ["Matern52Kernel"]
