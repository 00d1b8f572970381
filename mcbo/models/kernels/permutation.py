"""Kernels on permutations: Kendall and Mallows (Jiao & Vert, "The Kendall and Mallows kernels for
permutations", ICML 2015; both positive definite).

A permutation parameter over ``k`` items is encoded as ``k`` columns, column ``p`` holding the index
of the item at position ``p``. Two permutations are compared through their ``C = k (k - 1) / 2`` pairs
of items: a pair is concordant when both put the two items in the same order, discordant otherwise.
With the feature map ``phi(s)_{ab} = sign(pos_s(b) - pos_s(a))`` for items ``a < b`` (Jiao & Vert, eq. 2)::

    n_c - n_d = phi(s) . phi(s'),        n_d = (C - phi(s) . phi(s')) / 2

* Kendall: ``k(s, s') = (n_c - n_d) / C = phi(s) . phi(s') / C``, no hyper-parameter, in ``[-1, 1]``.
* Mallows: ``k(s, s') = exp(-lambda n_d)``; the learned parameter is ``rate = lambda C``, so that
  ``k = exp(-rate n_d / C)`` with ``n_d / C`` the normalised Kendall distance in ``[0, 1]``, and one
  ``rate`` per permutation parameter (``lambda = rate / C``).

Every Gram matrix is one matmul of the ``[n, C]`` feature matrices: no loop over pairs of points.
Several permutation parameters multiply; remaining nominal columns (categoricals, booleans,
sequences), if any, contribute Casmopolitan's transformed-overlap kernel, multiplied in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel
from linear_operator import to_dense

from mcbo.models.kernels.categorical import TransformedOverlapKernel
from mcbo.models.kernels.registry import register_nominal_kernel
from mcbo.space import SearchSpace

KINDS = ("kendall", "mallows")


def pair_features(x: torch.Tensor) -> torch.Tensor:
    """Kendall features of permutations ``[..., n, k]`` (items at positions) -> ``[..., n, k (k - 1) / 2]``.

    Entry ``(a, b)``, ``a < b`` in ``torch.triu_indices`` order, is ``+1`` when item ``a`` comes before item
    ``b`` and ``-1`` otherwise.
    """
    k = x.shape[-1]
    pos = torch.argsort(x.round(), dim=-1, stable=True)  # pos[..., item] = position of item
    a, b = torch.triu_indices(k, k, 1, device=x.device)
    return torch.sign(pos[..., b] - pos[..., a]).to(x.dtype)


class PermutationKernel(Kernel):
    """Product of Kendall or Mallows kernels over permutation groups, times transformed overlap on the rest.

    Args:
        groups: for each permutation parameter, its column indices within the active columns.
        kind: ``"kendall"`` or ``"mallows"``.
        active_dims: the encoded columns this kernel sees (all nominal columns).
        other_columns: indices within the active columns of the non-permutation nominal columns.
        other_cardinalities: their numbers of categories.
        rate_init: initial Mallows ``rate`` (``lambda * C``).
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        kind: str,
        active_dims: Sequence[int] | torch.Tensor,
        other_columns: Sequence[int] = (),
        other_cardinalities: Sequence[int] = (),
        rate_init: float = 1.0,
        **kwargs,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown permutation kernel {kind!r}; allowed: {list(KINDS)}")
        if not groups or any(len(g) < 2 for g in groups):
            raise ValueError(f"groups must be a non-empty list of column lists of length >= 2, got {groups!r}")
        if len(other_columns) != len(other_cardinalities):
            raise ValueError(f"other_columns ({len(other_columns)}) and other_cardinalities "
                             f"({len(other_cardinalities)}) must have the same length")
        if not rate_init > 0:
            raise ValueError(f"rate_init must be positive, got {rate_init!r}")
        super().__init__(active_dims=torch.as_tensor(active_dims), **kwargs)
        self.kind = kind
        self.n_groups = len(groups)
        for i, g in enumerate(groups):
            self.register_buffer(f"group_{i}", torch.as_tensor(list(g), dtype=torch.long))
        self.other = None
        if len(other_columns):
            self.other = TransformedOverlapKernel(list(other_cardinalities), active_dims=torch.as_tensor(list(other_columns)))
        if kind == "mallows":
            self.register_parameter("raw_rate", torch.nn.Parameter(torch.zeros(len(groups))))
            self.register_constraint("raw_rate", Interval(0.01, 100.0))
            self.initialize(raw_rate=self.raw_rate_constraint.inverse_transform(torch.full((len(groups),), rate_init)))

    @property
    def rate(self) -> torch.Tensor:
        """Mallows rates, one per group, ``[n_groups]`` (``lambda = rate / C``)."""
        if self.kind != "mallows":
            raise ValueError("only the Mallows kernel has a rate")
        return self.raw_rate_constraint.transform(self.raw_rate)

    @property
    def has_explicit_features(self) -> bool:
        """Kendall on a single permutation and nothing else is linear in :func:`pair_features`."""
        return self.kind == "kendall" and self.n_groups == 1 and self.other is None

    def explicit_features(self, x: torch.Tensor) -> torch.Tensor:
        """``phi`` ``[..., n, C]`` of ``x`` ``[..., n, k]`` with ``k(x, x') = phi(x) . phi(x')`` (Kendall, one group)."""
        if not self.has_explicit_features:
            raise ValueError("only the Kendall kernel on a single permutation has explicit features")
        features = pair_features(x[..., self._group(0)])
        return features / features.shape[-1] ** 0.5

    def _group(self, i: int) -> torch.Tensor:
        return getattr(self, f"group_{i}")

    def _group_kernel(self, i: int, x1: torch.Tensor, x2: torch.Tensor, diag: bool) -> torch.Tensor:
        cols = self._group(i)
        f1, f2 = pair_features(x1[..., cols]), pair_features(x2[..., cols])
        n_pairs = f1.shape[-1]
        dot = (f1 * f2).sum(-1) if diag else f1 @ f2.transpose(-1, -2)
        if self.kind == "kendall":
            return dot / n_pairs
        discordant = (n_pairs - dot) / 2
        return torch.exp(-self.rate[i].to(x1) * discordant / n_pairs)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        out = self._group_kernel(0, x1, x2, diag)
        for i in range(1, self.n_groups):
            out = out * self._group_kernel(i, x1, x2, diag)
        if self.other is not None:
            out = out * to_dense(self.other(x1, x2, diag=diag))
        return out


def _build(space: SearchSpace, cols: torch.Tensor, kind: str) -> PermutationKernel:
    local = {int(c): i for i, c in enumerate(cols)}
    groups = [[local[c] for c in range(start, stop)] for start, stop in space.permutation_groups
              if all(c in local for c in range(start, stop))]
    if not groups:
        raise ValueError(f"nominal_kernel {kind!r} needs at least one Permutation parameter; the space has none")
    in_groups = {c for g in groups for c in g}
    other = [i for i in range(len(cols)) if i not in in_groups]
    return PermutationKernel(groups, kind, active_dims=cols, other_columns=other,
                             other_cardinalities=space.cardinalities[cols[other]].tolist() if other else [])


@register_nominal_kernel("kendall")
def build_kendall(space: SearchSpace, cols: torch.Tensor) -> PermutationKernel:
    """Builder for ``nominal_kernel: kendall`` over ``cols`` (the nominal columns).

    Raises:
        ValueError: when the space has no permutation parameter.
    """
    return _build(space, cols, "kendall")


@register_nominal_kernel("mallows")
def build_mallows(space: SearchSpace, cols: torch.Tensor) -> PermutationKernel:
    """Builder for ``nominal_kernel: mallows`` over ``cols`` (the nominal columns).

    Raises:
        ValueError: when the space has no permutation parameter.
    """
    return _build(space, cols, "mallows")


__all__ = ["PermutationKernel", "build_kendall", "build_mallows", "pair_features"]
