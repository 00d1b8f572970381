"""Hamming embedding via dictionaries (HED; Deshwal et al., "Bayesian optimization over
high-dimensional combinatorial spaces via dictionary-based embeddings", BODi, AISTATS 2023).

A point ``x`` of the nominal columns is embedded by its Hamming distances to ``m`` fixed dictionary
elements ``a_1 .. a_m`` of the same space::

    phi(x)_i = (1/d) sum_c [x_c != a_ic]        (normalised categorical Hamming distance)

and a Matérn-5/2 kernel with one ARD lengthscale per dictionary element acts on ``phi`` (BODi's
choice). The embedding is computed for all points at once as ``1 - onehot(x) onehot(A)^T / d``.

The dictionary is "diverse random" (BODi, section 4): for binary columns each element has its own
density of ones, so the dictionary spans all Hamming weights instead of concentrating at ``d/2``.
For categorical columns each element draws a category distribution ``theta`` uniformly from the
simplex over ``max_c k_c`` categories; column ``c`` takes a random subset of ``k_c`` entries of
``theta`` (all of them, in order, when ``k_c`` is the maximum), renormalised, and draws its value
from it (the generalisation used for categoricals by the MCBO benchmark of Dreczkowski et al.,
NeurIPS 2023). Sampling is seeded, so the same space and seed give the same dictionary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel

from mcbo.models.kernels.matern import Matern52Kernel
from mcbo.models.kernels.one_hot import category_columns, weighted_matches
from mcbo.models.kernels.registry import register_nominal_kernel
from mcbo.space import SearchSpace


def diverse_dictionary(cardinalities: Sequence[int], n_elements: int, seed: int = 0) -> np.ndarray:
    """Diverse random dictionary ``[m, d]`` of category indices (see the module docstring).

    Args:
        cardinalities: number of categories of each column, ``[d]``.
        n_elements: ``m``, the dictionary size.
        seed: seed of the draw.
    """
    cards = np.asarray(list(cardinalities), dtype=np.int64)
    if cards.ndim != 1 or len(cards) == 0 or (cards < 1).any():
        raise ValueError(f"cardinalities must be a non-empty list of positive integers, got {list(cardinalities)!r}")
    if n_elements < 1:
        raise ValueError(f"n_elements must be >= 1, got {n_elements!r}")
    rng = np.random.default_rng(seed)
    k_max, d = int(cards.max()), len(cards)
    theta = rng.dirichlet(np.ones(k_max), size=n_elements)  # [m, K]
    order = np.argsort(rng.random((n_elements, d, k_max)), axis=-1)  # a random subset per element and column
    order = np.where((cards == k_max)[:, None], np.arange(k_max), order)  # full columns keep theta as drawn
    probs = np.take_along_axis(np.broadcast_to(theta[:, None, :], order.shape), order, axis=-1)
    probs = np.where(np.arange(k_max) < cards[:, None], probs, 0.0)  # keep the first k_c entries
    probs = probs / probs.sum(-1, keepdims=True)
    u = rng.random((n_elements, d, 1))
    values = (np.cumsum(probs, -1) < u).sum(-1)
    return np.minimum(values, cards - 1)


class HEDKernel(Kernel):
    """Matérn-5/2 ARD kernel on the dictionary embedding of the active (nominal) columns.

    Args:
        cardinalities: number of categories of each active column, ``[d]``.
        active_dims: indices of those columns in the encoded input.
        n_elements: dictionary size ``m`` (BODi's default is 128).
        seed: seed of the dictionary.
    """

    def __init__(self, cardinalities: Sequence[int], active_dims: Sequence[int] | torch.Tensor,
                 n_elements: int = 128, seed: int = 0, **kwargs) -> None:
        cards = torch.as_tensor(list(cardinalities), dtype=torch.long)
        super().__init__(active_dims=torch.as_tensor(active_dims), **kwargs)
        dictionary = torch.as_tensor(diverse_dictionary(cards.tolist(), n_elements, seed), dtype=torch.long)
        self.register_buffer("cardinalities", cards)
        self.register_buffer("offsets", torch.cumsum(cards, 0) - cards)
        self.register_buffer("dictionary", dictionary)
        self.n_elements, self.seed = int(n_elements), int(seed)
        self.base = Matern52Kernel(ard_num_dims=n_elements, lengthscale_constraint=Interval(0.01, 20.0))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised Hamming distances to the dictionary: ``[..., n, d]`` -> ``[..., n, m]``."""
        ones = torch.ones(int(self.cardinalities.sum()), dtype=x.dtype, device=x.device)
        matches = weighted_matches(category_columns(x, self.cardinalities, self.offsets),
                                   category_columns(self.dictionary, self.cardinalities, self.offsets), ones)
        return 1.0 - matches / len(self.cardinalities)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        if diag and x1.shape == x2.shape and torch.equal(x1, x2):  # Matérn of a point with itself
            return torch.ones(x1.shape[:-1], dtype=x1.dtype, device=x1.device)
        return self.base.forward(self.embed(x1), self.embed(x2), diag=diag)


@register_nominal_kernel("hed")
def build_hed(space: SearchSpace, cols: torch.Tensor) -> HEDKernel:
    """Builder for ``nominal_kernel: hed`` over ``cols`` (the nominal columns, permutation columns
    included: their Hamming distance is the number of positions holding different items)."""
    return HEDKernel(space.cardinalities[cols].tolist(), active_dims=cols)


__all__ = ["HEDKernel", "build_hed", "diverse_dictionary"]
