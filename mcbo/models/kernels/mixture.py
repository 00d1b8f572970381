"""Mixture of a numeric and a nominal kernel (Wan et al., Casmopolitan, ICML 2021, eq. 4).

``k(x, x') = (1 - lambda) (k_num + k_nom) / 2 + lambda k_num k_nom`` with ``lambda in [0, 1]``
learned. Both parts see only their own columns (through their ``active_dims``). The sum is halved
so that the mixture of two unit-diagonal kernels keeps a unit diagonal; the outputscale lives
in an enclosing ``ScaleKernel``. With gradients the combination is one autograd node
(:class:`_MixtureCombine`) whose backward is closed form, instead of five element-wise nodes.
"""

from __future__ import annotations

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel
from linear_operator import to_dense


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sum(a * b)`` for same-shape tensors, without the ``a * b`` temporary when both are contiguous."""
    if a.is_contiguous() and b.is_contiguous():
        return torch.dot(a.reshape(-1), b.reshape(-1))
    return (a * b).sum()


class _MixtureCombine(torch.autograd.Function):
    """``(1 - lam) (k_num + k_nom) / 2 + lam k_num k_nom`` for Gram blocks ``[..., n1, n2]`` and a scalar ``lam``.

    Backward, for the upstream gradient ``G``: ``dk_num = G ((1 - lam) / 2 + lam k_nom)``,
    ``dk_nom = G ((1 - lam) / 2 + lam k_num)`` and ``dlam = sum(G (k_num k_nom - (k_num + k_nom) / 2))``.
    """

    @staticmethod
    def forward(ctx, k_num: torch.Tensor, k_nom: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(k_num, k_nom, lam)
        half_rest = 0.5 * (1.0 - lam)
        return torch.addcmul((k_num + k_nom).mul_(half_rest), k_num, k_nom, value=float(lam))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        k_num, k_nom, lam = ctx.saved_tensors
        half_rest, lam_f = 0.5 * (1.0 - float(lam)), float(lam)
        grad_num = grad_nom = grad_lam = None
        g_num = grad * k_num  # also G k_num, the start of dk_nom
        if ctx.needs_input_grad[2]:
            paired = _dot(g_num, k_nom) - 0.5 * (g_num.sum() + _dot(grad, k_nom))
            grad_lam = paired.reshape(lam.shape)
        if ctx.needs_input_grad[0]:
            grad_num = torch.addcmul(grad * half_rest, grad, k_nom, value=lam_f)
        if ctx.needs_input_grad[1]:
            grad_nom = g_num.mul_(lam_f).add_(grad, alpha=half_rest)
        return grad_num, grad_nom, grad_lam


class MixtureKernel(Kernel):
    """Sum-and-product mixture of ``numeric`` and ``nominal`` kernels with a learned weight."""

    def __init__(self, numeric: Kernel, nominal: Kernel, mix_init: float = 0.5) -> None:
        super().__init__()
        self.numeric = numeric
        self.nominal = nominal
        self.register_parameter("raw_mix", torch.nn.Parameter(torch.zeros(1)))
        self.register_constraint("raw_mix", Interval(0.0, 1.0))
        self.mix = mix_init

    @property
    def mix(self) -> torch.Tensor:
        return self.raw_mix_constraint.transform(self.raw_mix)

    @mix.setter
    def mix(self, value: float) -> None:
        value = torch.as_tensor(value, dtype=self.raw_mix.dtype).clamp(1e-4, 1 - 1e-4)
        self.initialize(raw_mix=self.raw_mix_constraint.inverse_transform(value.reshape(1)))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        k_num = to_dense(self.numeric(x1, x2, diag=diag))
        k_nom = to_dense(self.nominal(x1, x2, diag=diag))
        lam = self.mix.squeeze()
        if k_num.requires_grad or k_nom.requires_grad or self.raw_mix.requires_grad:
            return _MixtureCombine.apply(*torch.broadcast_tensors(k_num, k_nom), lam)
        product = k_num * k_nom  # prediction: reuse the buffers (no autograd graph to keep)
        return k_num.add_(k_nom).mul_((1.0 - lam) * 0.5).add_(product.mul_(lam))
