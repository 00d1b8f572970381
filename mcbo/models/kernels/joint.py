"""One Matérn-5/2 ARD kernel over every column of a mixed space, nominal columns at Hamming distance.

``k(x, x') = (1 + s + s^2 / 3) exp(-s)``, ``s = sqrt(5) r`` with

``r^2 = sum_{numeric i} ((x_i - x'_i) / l_i)^2 + sum_{nominal j} [h_j != h'_j] / l_j^2``

(unit-cube numeric inputs, category-index nominal ones). Numeric and nominal columns share one
distance, so an interaction between a numeric and a nominal variable needs no separate product or
mixture weight; this is the kernel of Optuna's ``GPSampler`` (``optuna/_gp``, 2024-), which there
beat the Casmopolitan mixture on our mixed and categorical benchmarks (docs/sample-efficiency.md).

A nominal column enters as its one-hot row scaled by ``1 / (sqrt(2) l_j)``: two one-hot rows differ
by ``sqrt(2)`` when the categories differ and by 0 when they agree, so the squared distance of the
scaled rows is ``[h_j != h'_j] / l_j^2``. The whole kernel is then one Matérn on scaled inputs, with
the fused Gram computations (and closed-form backward) of :mod:`mcbo.models.kernels.matern`.
"""

from __future__ import annotations

import math

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel

from mcbo.models.kernels.matern import _matern52_no_grad, _Matern52Gram
from mcbo.models.kernels.one_hot import category_columns, one_hot
from mcbo.space import SearchSpace


class JointMaternKernel(Kernel):
    """Matérn-5/2 over all columns with one lengthscale per column (``[d]``); nominal columns by Hamming distance.

    Args:
        space: the search space; its numeric columns are compared in the unit cube, its nominal columns
            (categorical, boolean, sequence and permutation positions) by equality of category index.
        lengthscale_constraint: bounds of every lengthscale (unit-cube units; for a nominal column, a
            lengthscale ``l`` makes a mismatch count as a numeric distance ``l``).
    """

    has_lengthscale = True

    def __init__(self, space: SearchSpace, lengthscale_constraint: Interval | None = None) -> None:
        super().__init__(ard_num_dims=space.d,
                         lengthscale_constraint=lengthscale_constraint or Interval(0.01, 100.0))
        self.register_buffer("numeric_columns", space.numeric_columns.clone())
        self.register_buffer("nominal_columns", space.nominal_columns.clone())
        cards = space.cardinalities[space.nominal_columns].clone()
        self.register_buffer("cardinalities", cards)
        self.register_buffer("offsets", torch.cumsum(cards, 0) - cards)

    def _scaled(self, x: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
        """``[..., n, d_numeric + sum(cardinalities)]``: numeric columns over their lengthscales, then nominal
        one-hot rows over ``sqrt(2)`` times theirs; ``shift`` ``[..., 1, d_numeric]`` is subtracted from the
        numeric part first (for round-off; the kernel does not depend on it)."""
        lengthscale = self.lengthscale.reshape(-1)
        parts = []
        if len(self.numeric_columns):
            numeric = x.index_select(-1, self.numeric_columns)
            if shift is not None:
                numeric = numeric - shift
            parts.append(numeric / lengthscale[self.numeric_columns])
        if len(self.nominal_columns):
            nominal = x.index_select(-1, self.nominal_columns)
            columns = category_columns(nominal, self.cardinalities, self.offsets)
            weights = torch.repeat_interleave(1.0 / (math.sqrt(2.0) * lengthscale[self.nominal_columns]),
                                              self.cardinalities)
            parts.append(one_hot(columns, int(self.cardinalities.sum()), x.dtype) * weights)
        return torch.cat(parts, -1) if len(parts) > 1 else parts[0]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        if diag:
            return torch.ones(torch.broadcast_shapes(x1.shape[:-1], x2.shape[:-1]), dtype=x1.dtype, device=x1.device)
        shift = None
        if len(self.numeric_columns):
            shift = x1.index_select(-1, self.numeric_columns).mean(dim=-2, keepdim=True).detach()
        z1, z2 = self._scaled(x1, shift), self._scaled(x2, shift)
        needs_grad = torch.is_grad_enabled() and (z1.requires_grad or z2.requires_grad)
        if not needs_grad:
            return _matern52_no_grad(z1, z2)
        batch = torch.broadcast_shapes(z1.shape[:-2], z2.shape[:-2])
        z1, z2 = z1.expand(*batch, *z1.shape[-2:]), z2.expand(*batch, *z2.shape[-2:])
        return _Matern52Gram.apply(z1, z2)


__all__ = ["JointMaternKernel"]
