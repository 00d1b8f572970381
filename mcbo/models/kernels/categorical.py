"""Kernels on nominal (category-index) columns, computed as one-hot matrix products.

Both kernels compare two points column by column through the indicator ``delta_i = [h_i == h'_i]``
and weight column ``i`` by ``w_i = 1 / lengthscale_i`` (ARD). Writing the weighted indicator sum as
``onehot(h) diag(w) onehot(h')^T`` turns the kernel matrix into one batched product
(:func:`mcbo.models.kernels.one_hot.weighted_matches`): no loop over pairs and memory
``O(n * sum(cardinalities))`` instead of ``O(n1 * n2 * d)``.

* :class:`OverlapKernel` (Hamming / overlap kernel; Ru et al., CoCaBO, ICML 2020):
  ``k(h, h') = (1/d) sum_i w_i delta_i``.
* :class:`TransformedOverlapKernel` (Wan et al., Casmopolitan, ICML 2021):
  ``k(h, h') = exp(-(1/d) sum_i w_i (1 - delta_i))``, equal to 1 on the diagonal.
"""

from __future__ import annotations

from typing import Sequence

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel

from mcbo.models.kernels.one_hot import category_columns, one_hot, weighted_matches
from mcbo.models.kernels.registry import register_nominal_kernel
from mcbo.space import SearchSpace

class _OneHotKernel(Kernel):
    """Shared machinery: ARD weights per nominal column and the weighted one-hot product.

    Args:
        cardinalities: number of categories of each active column, ``[d]``.
        active_dims: indices of the nominal columns in the encoded input.
    """

    has_lengthscale = True

    def __init__(self, cardinalities: Sequence[int], active_dims: Sequence[int] | torch.Tensor, **kwargs) -> None:
        cards = torch.as_tensor(list(cardinalities), dtype=torch.long)
        kwargs.setdefault("lengthscale_constraint", Interval(0.01, 100.0))
        super().__init__(ard_num_dims=len(cards), active_dims=torch.as_tensor(active_dims), **kwargs)
        self.register_buffer("cardinalities", cards)
        self.register_buffer("offsets", torch.cumsum(cards, 0) - cards)
        self.n_columns = len(cards)

    def _one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., n, d]`` category indices -> ``[..., n, sum(cardinalities)]`` one-hot rows."""
        return one_hot(category_columns(x, self.cardinalities, self.offsets), int(self.cardinalities.sum()), x.dtype)

    def _weights(self) -> torch.Tensor:
        """Per-column weights ``1 / lengthscale``, ``[d]``."""
        return 1.0 / self.lengthscale.reshape(-1)

    def _weighted_matches(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool) -> torch.Tensor:
        """``sum_i w_i delta_i`` for every pair, ``[..., n1, n2]`` (or ``[..., n]`` when ``diag``)."""
        w = self._weights()
        if diag:
            return ((x1.round() == x2.round()).to(x1.dtype) * w).sum(-1)
        columns1 = category_columns(x1, self.cardinalities, self.offsets)
        columns2 = category_columns(x2, self.cardinalities, self.offsets)
        return weighted_matches(columns1, columns2, torch.repeat_interleave(w, self.cardinalities).to(x1.dtype))


class OverlapKernel(_OneHotKernel):
    """Overlap kernel ``(1/d) sum_i w_i [h_i == h'_i]`` on nominal columns (CoCaBO, Ru et al. 2020).

    A linear kernel on weighted one-hot rows, so it exposes them as :meth:`explicit_features`
    (``GPModel`` then predicts in the ``sum(cardinalities)``-dimensional feature space).
    """

    has_explicit_features = True

    def explicit_features(self, x: torch.Tensor) -> torch.Tensor:
        """``phi`` ``[..., n, sum(cardinalities)]`` of ``x`` ``[..., n, d]`` with ``k(x, x') = phi(x) . phi(x')``."""
        w_full = torch.repeat_interleave(self._weights(), self.cardinalities)
        return self._one_hot(x) * (w_full / self.n_columns).sqrt()

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        return self._weighted_matches(x1, x2, diag) / self.n_columns


class TransformedOverlapKernel(_OneHotKernel):
    """Transformed overlap ``exp(-(1/d) sum_i w_i [h_i != h'_i])`` (Casmopolitan, Wan et al. 2021)."""

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        total = self._weights().sum()
        matches = self._weighted_matches(x1, x2, diag)
        if matches.requires_grad:
            return torch.exp((matches - total) / self.n_columns)
        return matches.sub_(total).div_(self.n_columns).exp_()


@register_nominal_kernel("overlap")
def build_overlap(space: SearchSpace, cols: torch.Tensor) -> OverlapKernel:
    """:class:`OverlapKernel` on nominal columns ``cols`` of ``space``."""
    return OverlapKernel(space.cardinalities[cols].tolist(), active_dims=cols)


@register_nominal_kernel("transformed_overlap")
def build_transformed_overlap(space: SearchSpace, cols: torch.Tensor) -> TransformedOverlapKernel:
    """:class:`TransformedOverlapKernel` on nominal columns ``cols`` of ``space``."""
    return TransformedOverlapKernel(space.cardinalities[cols].tolist(), active_dims=cols)
