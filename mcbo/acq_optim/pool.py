"""Pool arg-max: score every not-yet-tried point of a finite space in one batched pass.

Meant for small finite spaces such as a pool of candidate instructions (one categorical with a
category per candidate, as in INSTINCT, Lin et al., ICML 2024) where exhaustive scoring is cheap and
exact. The space's points are enumerated once (per space) as the Cartesian product of each
parameter's values, built by index arithmetic on per-parameter encoded blocks (no Python loop over
points), then filtered by the trust region, the input constraints and the excluded rows, and scored
in chunks of :data:`~mcbo.acq_optim.base.SCORE_CHUNK`.
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import torch

from mcbo.acq_optim.base import AcqOptimizer, allowed, fallback_point, is_new, score
from mcbo.acquisition import AcquisitionFunction
from mcbo.space import SearchSpace
from mcbo.space.params import Boolean, Categorical, Integer, Ordinal, Param, Permutation, Sequence
from mcbo.trust_region import CasmopolitanTrustRegion

logger = logging.getLogger(__name__)


class PoolArgMax(AcqOptimizer):
    """Exact arg-max of the acquisition over every point of a finite space.

    Args:
        max_pool_size: refuse spaces with more points than this (they need a search, not a pool).
    """

    def __init__(self, max_pool_size: int = 200_000) -> None:
        if not isinstance(max_pool_size, int) or isinstance(max_pool_size, bool) or max_pool_size < 1:
            raise ValueError(f"pool max_pool_size must be a positive integer, got {max_pool_size!r}")
        self.max_pool_size = max_pool_size
        self._cache: tuple[str, torch.Tensor] | None = None

    def pool(self, space: SearchSpace, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Every encoded point ``[N, d]`` of ``space`` (cached for the last space seen)."""
        key = space.signature()
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, enumerate_space(space, self.max_pool_size))
        return self._cache[1].to(device=device, dtype=dtype)

    def _optimize(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X_exclude: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None,
        generator: torch.Generator | None,
        np_rng: np.random.Generator,
    ) -> torch.Tensor:
        X = self.pool(space, X_exclude.dtype, X_exclude.device)
        X = X[allowed(space, X, trust_region)]
        fresh = X[is_new(X, X_exclude)]
        if len(fresh) == 0:
            logger.warning("pool: every allowed point of the space was already tried; proposing a repeat")
            if len(X) == 0:
                        return fallback_point(space, X_exclude, np_rng, X_exclude.dtype, X_exclude.device)
            fresh = X
        values = score(acq, fresh)
        values = torch.where(torch.isfinite(values), values, torch.full_like(values, -float("inf")))
        i = int(torch.argmax(values))
        return fresh[i:i + 1]


def _param_block(param: Param) -> torch.Tensor:
    """Encoded columns ``[k, n_columns]`` of every value of one finite parameter (built from indices)."""
    if isinstance(param, Ordinal):
        k = len(param.values)
        return (torch.arange(k, dtype=torch.float64) / max(k - 1, 1)).unsqueeze(-1)
    if isinstance(param, (Categorical, Boolean)):
        return torch.arange(len(param.values), dtype=torch.float64).unsqueeze(-1)
    if isinstance(param, Integer):
        values = range(int(param.lb), int(param.ub) + 1, int(param.step))
        return torch.tensor([param.encode(v) for v in values], dtype=torch.float64).reshape(len(values), 1)
    if isinstance(param, Sequence):
        k, n = len(param.alphabet), param.length
        index = torch.arange(k**n).unsqueeze(-1)
        powers = k ** torch.arange(n - 1, -1, -1)
        return ((index // powers) % k).to(torch.float64)
    if isinstance(param, Permutation):
        return torch.tensor(list(itertools.permutations(range(len(param.items)))), dtype=torch.float64)
    raise ValueError(f"pool: parameter {param.name!r} of type {type(param).__name__} has infinitely many "
                     f"values; the pool optimiser needs a finite space (categorical, boolean, ordinal, "
                     f"integer, sequence, permutation)")


def _n_values(param: Param) -> int:
    if isinstance(param, (Categorical, Boolean, Ordinal)):
        return len(param.values)
    if isinstance(param, Integer):
        return len(range(int(param.lb), int(param.ub) + 1, int(param.step)))
    if isinstance(param, Sequence):
        return len(param.alphabet) ** param.length
    if isinstance(param, Permutation):
        return math.factorial(len(param.items))
    return -1


def enumerate_space(space: SearchSpace, max_points: int) -> torch.Tensor:
    """All encoded points ``[N, d]`` of a finite space, in lexicographic order of value indices.

    Raises:
        ValueError: for a parameter with infinitely many values or more than ``max_points`` points.
    """
    sizes = [_n_values(p) for p in space.params]
    for p, k in zip(space.params, sizes):
        if k < 0:
            _param_block(p)  # raises the message naming the parameter
    total = math.prod(sizes)
    if total > max_points:
        raise ValueError(f"pool: the space has {total} points, more than max_pool_size={max_points}; "
                         f"raise max_pool_size or use a search optimiser (e.g. 'local_search')")
    blocks = [_param_block(p) for p in space.params]
    index = torch.arange(total)
    out = torch.empty(total, space.d, dtype=torch.float64)
    stride = total
    for block, sl in zip(blocks, space.param_slices):
        stride //= block.shape[0]
        out[:, sl] = block[(index // stride) % block.shape[0]]
    return out


__all__ = ["PoolArgMax", "enumerate_space"]
