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

import numpy as np
import torch

from mcbo.acq_optim.base import AcqOptimizer, allowed, best_new, candidate_pool, fallback_point, score
from mcbo.acq_optim.moves import all_neighbours, gaussian_move
from mcbo.acquisition import AcquisitionFunction
from mcbo.space import SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


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

    def _optimize(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X_exclude: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None,
        generator: torch.Generator | None,
        np_rng: np.random.Generator,
    ) -> torch.Tensor:
        dtype, device = X_exclude.dtype, X_exclude.device
        X, values, pool, pool_values = start_points(
            acq, space, X_exclude, trust_region, self.n_raw, self.n_restarts, np_rng, generator
        )
        if X is None:
            return fallback_point(space, X_exclude, np_rng, dtype, device)
        visited, visited_values = [pool], [pool_values]
        lo, hi = box(space, trust_region, X)
        active = torch.ones(len(X), dtype=torch.bool, device=device)
        for _ in range(self.max_rounds):
            idx = active.nonzero().squeeze(-1)
            nbrs, owner = all_neighbours(space, X[idx])
            if self.n_numeric_moves and len(space.numeric_columns):
                reps = X[idx].repeat_interleave(self.n_numeric_moves, 0)
                moved = gaussian_move(space, reps, self.numeric_sigma, generator, lo, hi)
                nbrs = torch.cat([nbrs, moved])
                owner = torch.cat([owner, torch.arange(len(idx), device=device).repeat_interleave(self.n_numeric_moves)])
            keep = allowed(space, nbrs, trust_region)
            nbrs, owner = nbrs[keep], idx[owner[keep]]
            if len(nbrs) == 0:
                break
            nbr_values = score(acq, nbrs)
            visited.append(nbrs)
            visited_values.append(nbr_values)
            best = torch.full((len(X),), -float("inf"), dtype=nbr_values.dtype, device=device)
            best = best.scatter_reduce(0, owner, nbr_values, reduce="amax")
            moved_rows = active & (best > values + 1e-12)
            if not moved_rows.any():
                break
            for i in moved_rows.nonzero().squeeze(-1).tolist():
                X[i] = nbrs[(owner == i) & (nbr_values == best[i])][0]
            values = torch.where(moved_rows, best, values)
            active = moved_rows
        x, _ = best_new(torch.cat([X, *visited]), torch.cat([values, *visited_values]), X_exclude)
        return x if x is not None else fallback_point(space, X_exclude, np_rng, dtype, device)


def start_points(
    acq: AcquisitionFunction,
    space: SearchSpace,
    X_exclude: torch.Tensor,
    trust_region: CasmopolitanTrustRegion | None,
    n_raw: int,
    n_starts: int,
    np_rng: np.random.Generator,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Starting points of a multi-start search: the best ``n_starts - 1`` of ``n_raw`` random allowed
    points plus the incumbent (see the module docstring).

    Returns:
        ``(X [s, d], values [s], pool [p, d], pool_values [p])`` — ``X`` is ``None`` when nothing
        allowed was found; the pool holds the random points (to be considered as results too).
    """
    dtype, device = X_exclude.dtype, X_exclude.device
    pool = candidate_pool(space, n_raw, trust_region, np_rng, generator, dtype, device)
    pool_values = score(acq, pool) if len(pool) else pool.new_empty(0)
    incumbent = incumbent_point(acq, space, X_exclude, trust_region)
    order = torch.argsort(pool_values, descending=True)[: max(n_starts - (incumbent is not None), 1)]
    X, values = pool[order].clone(), pool_values[order].clone()
    if incumbent is not None:
        X = torch.cat([X, incumbent])
        values = torch.cat([values, score(acq, incumbent)])
    if len(X) == 0:
        return None, values, pool, pool_values
    return X, values, pool, pool_values


def incumbent_point(
    acq: AcquisitionFunction,
    space: SearchSpace,
    X_exclude: torch.Tensor,
    trust_region: CasmopolitanTrustRegion | None,
) -> torch.Tensor | None:
    """The trust-region centre, or the allowed row of ``X_exclude`` with the best score (``[1, d]``)."""
    if trust_region is not None and trust_region.centre is not None:
        centre = trust_region.centre.to(X_exclude).unsqueeze(0)
        return centre if allowed(space, centre, trust_region).all() else None
    if X_exclude.shape[0] == 0:
        return None
    ok = X_exclude[allowed(space, X_exclude, trust_region)]
    if len(ok) == 0:
        return None
    return ok[int(torch.argmax(score(acq, ok)))].unsqueeze(0)


def box(
    space: SearchSpace, trust_region: CasmopolitanTrustRegion | None, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds ``[d_numeric]`` of the numeric columns: the trust-region box or the unit cube."""
    if trust_region is not None and trust_region.centre is not None and len(space.numeric_columns):
        lo, hi = trust_region.bounds()
        return lo.to(like), hi.to(like)
    n = len(space.numeric_columns)
    return torch.zeros(n, dtype=like.dtype, device=like.device), torch.ones(n, dtype=like.dtype, device=like.device)


__all__ = ["LocalSearch", "box", "incumbent_point", "start_points"]
