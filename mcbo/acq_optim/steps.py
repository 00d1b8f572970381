"""Search steps shared by the acquisition optimisers, each on an :class:`~mcbo.acq_optim.base.AcqContext`.

* :func:`start_points` -- the best random allowed points plus the incumbent (local search, simulated
  annealing, genetic algorithms);
* :func:`numeric_ascent` -- projected Adam ascent of the acquisition on the numeric columns, all rows in
  one batched backward pass (interleaved search, CoCaBO's bandit optimiser);
* :func:`move_to_best_neighbours` -- each row moves to its best scored neighbour when that improves it
  (interleaved search, local search).
"""

from __future__ import annotations

import torch

from mcbo.acq_optim.base import AcqContext


def start_points(
    ctx: AcqContext, n_raw: int, n_starts: int
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Starting points of a multi-start search: the best ``n_starts - 1`` of ``n_raw`` random allowed
    points plus the incumbent (:func:`incumbent_point`).

    Returns:
        ``(X [s, d], values [s], pool [p, d], pool_values [p])`` -- ``X`` is ``None`` when nothing
        allowed was found; the pool holds the random points (to be considered as results too).
    """
    pool = ctx.random_points(n_raw)
    pool_values = ctx.score(pool) if len(pool) else pool.new_empty(0)
    incumbent = incumbent_point(ctx)
    order = torch.argsort(pool_values, descending=True)[: max(n_starts - (incumbent is not None), 1)]
    X, values = pool[order].clone(), pool_values[order].clone()
    if incumbent is not None:
        X = torch.cat([X, incumbent])
        values = torch.cat([values, ctx.score(incumbent)])
    if len(X) == 0:
        return None, values, pool, pool_values
    return X, values, pool, pool_values


def incumbent_point(ctx: AcqContext) -> torch.Tensor | None:
    """``[1, d]``: the trust-region centre when a region is active, else ``ctx.incumbent`` (the best observed
    point) when given, else the row of ``ctx.X_exclude`` (observed and pending points) with the best score;
    ``None`` when the candidate is not allowed (outside the constraints) or there is none. A starting point
    only, never a result."""
    X_exclude = ctx.X_exclude
    region = ctx.region
    if region is not None:
        centre = region.centre.to(X_exclude).unsqueeze(0)
        return centre if ctx.allowed(centre).all() else None
    if ctx.incumbent is not None:
        incumbent = ctx.incumbent.to(X_exclude).reshape(1, -1)
        return incumbent if ctx.allowed(incumbent).all() else None
    if X_exclude.shape[0] == 0:
        return None
    ok = X_exclude[ctx.allowed(X_exclude)]
    if len(ok) == 0:
        return None
    return ok[int(torch.argmax(ctx.score(ok)))].unsqueeze(0)


def numeric_ascent(
    ctx: AcqContext, X: torch.Tensor, n_steps: int, lr: float, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    """``n_steps`` of Adam on ``sum(acq(X))`` over the numeric columns of ``X`` ``[r, d]``, each step projected
    into ``[lo, hi]`` (``[d_numeric]``); returns ``[r, d]`` snapped to the integer/ordinal grids. Nominal
    columns are held fixed."""
    cols = ctx.space.numeric_columns.to(X.device)
    z = X[:, cols].clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for _ in range(n_steps):
            optimiser.zero_grad()
            full = X.clone()
            full[:, cols] = z
            (-ctx.acq(full).sum()).backward()
            optimiser.step()
            with torch.no_grad():
                z.copy_(torch.maximum(torch.minimum(z, hi), lo))
    out = X.clone()
    out[:, cols] = z.detach()
    return ctx.space.snap(out)


def move_to_best_neighbours(
    X: torch.Tensor, values: torch.Tensor, nbrs: torch.Tensor, owner: torch.Tensor, nbr_values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move each row of ``X`` ``[r, d]`` (scores ``values`` ``[r]``) to its best neighbour when that scores higher.

    Args:
        nbrs: ``[m, d]`` scored neighbours, ``owner`` ``[m]`` the row each belongs to, ``nbr_values`` ``[m]``
            their scores.

    Returns:
        ``(X, values, moved)``: ``X`` updated in place, the new scores ``[r]`` and which rows moved ``[r]``.
    """
    best = torch.full((len(X),), -float("inf"), dtype=nbr_values.dtype, device=X.device)
    best = best.scatter_reduce(0, owner, nbr_values, reduce="amax")
    moved = best > values + 1e-12
    for i in moved.nonzero().squeeze(-1).tolist():
        X[i] = nbrs[(owner == i) & (nbr_values == best[i])][0]
    return X, torch.where(moved, best, values), moved


__all__ = ["incumbent_point", "move_to_best_neighbours", "numeric_ascent", "start_points"]
