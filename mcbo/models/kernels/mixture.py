"""Mixture of a numeric and a nominal kernel (Wan et al., Casmopolitan, ICML 2021, eq. 4).

``k(x, x') = (1 - lambda) (k_num + k_nom) / 2 + lambda k_num k_nom`` with ``lambda in [0, 1]``
learned. Both parts see only their own columns (through their ``active_dims``). The sum is halved
so that the mixture of two unit-diagonal kernels keeps a unit diagonal; the outputscale lives
in an enclosing ``ScaleKernel``.
"""

from __future__ import annotations

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel
from linear_operator import to_dense


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
            return (1.0 - lam) * 0.5 * (k_num + k_nom) + lam * k_num * k_nom
        product = k_num * k_nom  # prediction: reuse the buffers (no autograd graph to keep)
        return k_num.add_(k_nom).mul_((1.0 - lam) * 0.5).add_(product.mul_(lam))
