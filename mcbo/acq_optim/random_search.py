"""Random-candidate search: score a pool of random points of the (trust) region, keep the best."""

from __future__ import annotations

import torch

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, register_acq_optimizer


@register_acq_optimizer("random")
class RandomCandidateSearch(AcqOptimizer):
    """Arg-max of the acquisition over ``n_candidates`` random feasible points, scored in one batch.

    Works with every acquisition, Thompson sampling included (one joint sample over the pool).
    """

    def __init__(self, n_candidates: int = 2000) -> None:
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates!r}")
        self.n_candidates = int(n_candidates)

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        X = ctx.random_points(self.n_candidates)
        if len(X):
            x = ctx.best_new(X, ctx.score(X))
            if x is not None:
                return x
        return ctx.fallback()


__all__ = ["RandomCandidateSearch"]
