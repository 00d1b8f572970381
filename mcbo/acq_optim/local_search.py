"""Multi-start best-neighbour local search (COMBO, Oh et al., NeurIPS 2019).

COMBO maximises its acquisition by greedy ascent: starting points are the best of many random
points plus the incumbent, and each start repeatedly moves to its best single-move neighbour
until none improves. Here all restarts move together: the neighbours of every restart (from
:meth:`SearchSpace.batch_neighbours`, plus permutation insert moves and ``n_numeric_moves``
Gaussian moves of the numeric columns) are scored in one batched call per round.

The *incumbent* is the trust-region centre when a region is given, otherwise the row of
``X_exclude`` (observed and pending points) the acquisition ranks highest; it is a starting point
only, never a result.
"""

from __future__ import annotations

import torch

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, register_acq_optimizer
from mcbo.acq_optim.steps import move_to_best_neighbours, start_points
from mcbo.space.moves import all_neighbours, gaussian_move


@register_acq_optimizer("local_search")
class LocalSearch(AcqOptimizer):
    """COMBO-style multi-start greedy ascent over single moves.

    Args:
        n_restarts: local searches run together (the best random points, plus the incumbent).
        n_raw: random points scored to pick the starts.
        max_rounds: maximum best-neighbour moves per restart.
        n_numeric_moves: Gaussian moves of the numeric columns added to each neighbourhood.
        numeric_sigma: their standard deviation, relative to the width of the (trust-region) box.
    """

    needs_deterministic_acquisition = True
    deterministic_reason = "local search compares scores across calls"

    def __init__(
        self,
        n_restarts: int = 10,
        n_raw: int = 1000,
        max_rounds: int = 50,
        n_numeric_moves: int = 20,
        numeric_sigma: float = 0.1,
    ) -> None:
        for name, value in (("n_restarts", n_restarts), ("n_raw", n_raw), ("max_rounds", max_rounds)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"local search: {name} must be an integer >= 1, got {value!r}")
        if not isinstance(n_numeric_moves, int) or n_numeric_moves < 0:
            raise ValueError(f"local search: n_numeric_moves must be an integer >= 0, got {n_numeric_moves!r}")
        if not numeric_sigma > 0:
            raise ValueError(f"local search: numeric_sigma must be > 0, got {numeric_sigma!r}")
        self.n_restarts, self.n_raw, self.max_rounds = n_restarts, n_raw, max_rounds
        self.n_numeric_moves, self.numeric_sigma = n_numeric_moves, float(numeric_sigma)

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        space, device = ctx.space, ctx.device
        X, values, pool, pool_values = start_points(ctx, self.n_raw, self.n_restarts)
        if X is None:
            return ctx.fallback()
        visited, visited_values = [pool], [pool_values]
        lo, hi = ctx.numeric_box(X)
        active = torch.ones(len(X), dtype=torch.bool, device=device)
        for _ in range(self.max_rounds):
            idx = active.nonzero().squeeze(-1)
            nbrs, owner = all_neighbours(space, X[idx])
            if self.n_numeric_moves and len(space.numeric_columns):
                reps = X[idx].repeat_interleave(self.n_numeric_moves, 0)
                moved = gaussian_move(space, reps, self.numeric_sigma, ctx.generator, lo, hi)
                nbrs = torch.cat([nbrs, moved])
                own = torch.arange(len(idx), device=device).repeat_interleave(self.n_numeric_moves)
                owner = torch.cat([owner, own])
            keep = ctx.allowed(nbrs)
            nbrs, owner = nbrs[keep], idx[owner[keep]]
            if len(nbrs) == 0:
                break
            nbr_values = ctx.score(nbrs)
            visited.append(nbrs)
            visited_values.append(nbr_values)
            X, values, active = move_to_best_neighbours(X, values, nbrs, owner, nbr_values)
            if not active.any():
                break
        x = ctx.best_new(torch.cat([X, *visited]), torch.cat([values, *visited_values]))
        return x if x is not None else ctx.fallback()


__all__ = ["LocalSearch"]
