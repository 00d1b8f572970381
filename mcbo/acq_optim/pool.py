"""Pool arg-max: score every not-yet-tried point of a finite space in one batched pass.

Meant for small finite spaces such as a pool of candidate instructions (one categorical with a
category per candidate, as in INSTINCT, Lin et al., ICML 2024) where exhaustive scoring is cheap and
exact. The space's points are enumerated once (per space) by :func:`mcbo.space.enumerate_space`,
then filtered by the trust region, the input constraints and the excluded rows, and scored in chunks
of :data:`~mcbo.acq_optim.base.SCORE_CHUNK`.
"""

from __future__ import annotations

import logging

import torch

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, is_new, register_acq_optimizer
from mcbo.space import SearchSpace, enumerate_space

logger = logging.getLogger(__name__)


@register_acq_optimizer("pool")
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
        """Every encoded point ``[N, d]`` of ``space`` (cached for the last space seen).

        Raises:
            ValueError: for a space with an infinite parameter or more than ``max_pool_size`` points.
        """
        key = space.signature()
        if self._cache is None or self._cache[0] != key:
            try:
                X = enumerate_space(space, self.max_pool_size)
            except ValueError as err:
                raise ValueError(f"pool: {err}; the pool optimiser needs a finite space of at most max_pool_size="
                                 f"{self.max_pool_size} points: raise max_pool_size or use a search optimiser "
                                 f"(e.g. 'local_search')") from None
            self._cache = (key, X)
        return self._cache[1].to(device=device, dtype=dtype)

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        X = self.pool(ctx.space, ctx.dtype, ctx.device)
        X = X[ctx.allowed(X)]
        fresh = X[is_new(X, ctx.X_exclude)]
        if len(fresh) == 0:
            logger.warning("pool: every allowed point of the space was already tried; proposing a repeat")
            if len(X) == 0:
                return ctx.fallback()
            fresh = X
        values = ctx.score(fresh)
        values = torch.where(torch.isfinite(values), values, torch.full_like(values, -float("inf")))
        i = int(torch.argmax(values))
        return fresh[i:i + 1]


__all__ = ["PoolArgMax"]
