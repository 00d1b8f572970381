"""Move operators on encoded points, shared by the local searches, annealers and genetic algorithms.

:class:`~mcbo.space.SearchSpace` provides the single-move neighbourhood (:meth:`SearchSpace.batch_neighbours`:
a new category, an integer/ordinal grid step, a permutation swap) and one random nominal move
(:meth:`SearchSpace.mutate`). This module adds what the search heuristics need on top:

* permutation *insert* moves (take the item at position ``a`` and re-insert it at ``b``), the
  second classic neighbourhood of permutation local search (Schiavinotto & Stützle, "A review of
  metrics on permutations for search landscape analysis", 2007), as a full neighbourhood and as
  one random move per row;
* Gaussian moves on the numeric columns, scaled to a box and snapped to the integer/ordinal grids;
* one random move per row mixing the above, and a projection into a Hamming ball (trust region).

All functions are vectorised over rows: ``X`` is ``[n, d]`` and nothing loops over candidates.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import torch

from mcbo.space.search_space import SearchSpace


@lru_cache(maxsize=64)
def _insert_maps(length: int) -> torch.Tensor:
    """Position maps ``[m, length]`` of every insert move with ``|a - b| >= 2`` (``|a - b| = 1`` is a swap).

    Row ``k`` holds, for each new position, the old position whose item lands there.
    """
    maps = []
    for a in range(length):
        for b in range(length):
            if abs(a - b) < 2:
                continue
            order = list(range(length))
            order.insert(b, order.pop(a))
            maps.append(order)
    return torch.tensor(maps, dtype=torch.long).reshape(-1, length)


def insert_neighbours(space: SearchSpace, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every insert-move neighbour of each row of ``X`` ``[r, d]`` in each permutation group.

    Returns:
        ``(N, owner)``: neighbours ``[m, d]`` and the row of ``X`` each came from ``[m]``.
    """
    r, device = X.shape[0], X.device
    blocks, owners = [], []
    for start, stop in space.permutation_groups:
        maps = _insert_maps(stop - start).to(device)
        if len(maps) == 0 or r == 0:
            continue
        owner = torch.arange(r, device=device).repeat_interleave(len(maps))
        N = X.repeat_interleave(len(maps), 0)
        N[:, start:stop] = torch.gather(X[owner, start:stop], 1, maps.repeat(r, 1))
        blocks.append(N)
        owners.append(owner)
    if not blocks:
        return X.new_empty(0, space.d), torch.empty(0, dtype=torch.long, device=device)
    return torch.cat(blocks), torch.cat(owners)


def all_neighbours(space: SearchSpace, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``space.batch_neighbours(X)`` plus the permutation insert moves: ``(N [m, d], owner [m])``."""
    N, owner = space.batch_neighbours(X)
    if not space.permutation_groups:
        return N, owner
    N_ins, owner_ins = insert_neighbours(space, X)
    return torch.cat([N, N_ins]), torch.cat([owner, owner_ins])


def random_insert(
    space: SearchSpace,
    X: torch.Tensor,
    generator: torch.Generator | None = None,
    groups: list[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """One random insert move per row of ``X`` ``[n, d]`` in a random permutation group (``[n, d]``).

    ``groups`` restricts the choice to some ``(start, stop)`` groups (default: all). Rows are
    returned unchanged when the space has no permutation parameter.
    """
    groups = space.permutation_groups if groups is None else list(groups)
    X = X.clone()
    for rows, start, stop, a, b in _random_position_pairs(groups, X.shape[0], generator, X.device):
        length = stop - start
        k = torch.arange(length, device=X.device).unsqueeze(0)
        a_, b_ = a.unsqueeze(1), b.unsqueeze(1)
        # New position k takes old position: a if k == b; k + 1 between a and b when moving right;
        # k - 1 between b and a when moving left; k elsewhere.
        src = torch.where((a_ < b_) & (k >= a_) & (k < b_), k + 1, k)
        src = torch.where((a_ > b_) & (k > b_) & (k <= a_), k - 1, src)
        src = torch.where(k == b_, a_, src)
        block = X[rows, start:stop]
        X[rows, start:stop] = torch.gather(block, 1, src)
    return X


def random_swap(
    space: SearchSpace,
    X: torch.Tensor,
    generator: torch.Generator | None = None,
    groups: list[tuple[int, int]] | None = None,
) -> torch.Tensor:
    """Swap two random distinct positions of a random permutation group in every row of ``X`` ``[n, d]``."""
    groups = space.permutation_groups if groups is None else list(groups)
    X = X.clone()
    for rows, start, _, a, b in _random_position_pairs(groups, X.shape[0], generator, X.device):
        va, vb = X[rows, start + a].clone(), X[rows, start + b].clone()
        X[rows, start + a], X[rows, start + b] = vb, va
    return X


def random_permutation_move(
    space: SearchSpace,
    X: torch.Tensor,
    generator: torch.Generator | None = None,
    groups: list[tuple[int, int]] | None = None,
    p_insert: float = 0.5,
) -> torch.Tensor:
    """Per row of ``X`` ``[n, d]``: an insert move with probability ``p_insert``, else a swap (``[n, d]``)."""
    insert = (torch.rand(X.shape[0], generator=generator) < p_insert).to(X.device).unsqueeze(-1)
    return torch.where(insert, random_insert(space, X, generator, groups), random_swap(space, X, generator, groups))


def gaussian_move(
    space: SearchSpace,
    X: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> torch.Tensor:
    """Perturb the numeric columns of ``X`` ``[n, d]`` by Gaussian noise and snap (``[n, d]``).

    The standard deviation is ``sigma * (hi - lo)`` per column (``lo``/``hi`` ``[d_numeric]`` default
    to the unit cube), at least 0.6 grid steps on integer/ordinal columns so that a move usually
    changes the value; results are clamped into ``[lo, hi]`` and snapped to the grids.
    """
    cols = space.numeric_columns.to(X.device)
    if len(cols) == 0 or X.shape[0] == 0:
        return X.clone()
    lo = torch.zeros(len(cols), dtype=X.dtype, device=X.device) if lo is None else lo.to(X)
    hi = torch.ones(len(cols), dtype=X.dtype, device=X.device) if hi is None else hi.to(X)
    scale = torch.maximum(sigma * (hi - lo), 0.6 * space.numeric_grid_steps().to(X))
    noise = torch.randn(X.shape[0], len(cols), generator=generator, dtype=X.dtype).to(X.device)
    X = X.clone()
    X[:, cols] = torch.maximum(torch.minimum(X[:, cols] + noise * scale, hi), lo)
    return space.snap(X)


def random_move(
    space: SearchSpace,
    X: torch.Tensor,
    generator: torch.Generator | None = None,
    sigma: float = 0.1,
    p_insert: float = 0.5,
    lo: torch.Tensor | None = None,
    hi: torch.Tensor | None = None,
) -> torch.Tensor:
    """One random move per row of ``X`` ``[n, d]`` (``[n, d]``).

    Each row draws its move type with probability proportional to the number of columns of each
    kind: a Gaussian move of the numeric columns (:func:`gaussian_move`), or a nominal move — with
    probability ``p_insert`` an insert move when the chosen column is a permutation, otherwise
    :meth:`SearchSpace.mutate` (a new category, or a swap in a permutation).
    """
    n = X.shape[0]
    n_num, n_nom = len(space.numeric_columns), len(space.nominal_columns)
    if n == 0 or n_num + n_nom == 0:
        return X.clone()
    numeric = torch.rand(n, generator=generator) < n_num / (n_num + n_nom)
    out = X.clone()
    rows_num = numeric.nonzero().squeeze(-1).to(X.device)
    if len(rows_num):
        out[rows_num] = gaussian_move(space, X[rows_num], sigma, generator, lo, hi)
    rows_nom = (~numeric).nonzero().squeeze(-1).to(X.device)
    if len(rows_nom):
        moved = space.mutate(X[rows_nom], generator=generator)
        if space.permutation_groups and p_insert > 0:
            perm_moved = _changed_permutation(space, X[rows_nom], moved)
            use_insert = perm_moved & (torch.rand(len(rows_nom), generator=generator) < p_insert).to(X.device)
            if use_insert.any():
                moved[use_insert] = random_insert(space, X[rows_nom][use_insert], generator)
        out[rows_nom] = moved
    return out


def _changed_permutation(space: SearchSpace, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Rows ``[n]`` whose move changed a permutation group."""
    changed = torch.zeros(before.shape[0], dtype=torch.bool, device=before.device)
    for start, stop in space.permutation_groups:
        changed |= (before[:, start:stop] != after[:, start:stop]).any(-1)
    return changed


def project_hamming(
    space: SearchSpace,
    X: torch.Tensor,
    centre: torch.Tensor,
    radius: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Move rows of ``X`` ``[n, d]`` into the Hamming ball of ``radius`` around ``centre`` ``[d]``.

    Rows outside get randomly chosen differing nominal columns reset to the centre's values; a
    permutation group is reset as a whole (so it stays a permutation) when it alone exceeds the
    radius. Rows already inside are unchanged. Returns ``[n, d]``.
    """
    if X.shape[0] == 0 or len(space.nominal_columns) == 0:
        return X.clone()
    X = X.clone()
    centre = centre.to(X).reshape(1, -1)
    perm_cols = torch.zeros(space.d, dtype=torch.bool, device=X.device)
    for start, stop in space.permutation_groups:
        perm_cols[start:stop] = True
    nominal = torch.zeros(space.d, dtype=torch.bool, device=X.device)
    nominal[space.nominal_columns.to(X.device)] = True
    plain = nominal & ~perm_cols
    perm_diff = ((X != centre) & perm_cols).sum(-1)
    too_far = perm_diff > radius
    if too_far.any():
        X[too_far.nonzero().squeeze(-1).unsqueeze(-1), perm_cols.nonzero().squeeze(-1)] = centre[0, perm_cols]
        perm_diff = ((X != centre) & perm_cols).sum(-1)
    diff = (X != centre) & plain
    budget = (radius - perm_diff).clamp(min=0)
    keys = torch.rand(X.shape, generator=generator, dtype=torch.float64).to(X.device)
    keys[~diff] = float("inf")
    rank = torch.argsort(torch.argsort(keys, dim=-1), dim=-1)
    revert = diff & (rank >= budget.unsqueeze(-1))
    return torch.where(revert, centre.expand_as(X), X)


__all__ = [
    "all_neighbours", "gaussian_move", "insert_neighbours", "project_hamming", "random_insert", "random_move",
    "random_permutation_move", "random_swap",
]


def _random_position_pairs(
    groups: list[tuple[int, int]], n: int, generator: torch.Generator | None, device: torch.device
) -> Iterator[tuple[torch.Tensor, int, int, torch.Tensor, torch.Tensor]]:
    """For ``n`` rows, pick a random permutation group each and two distinct random positions in it.

    Yields ``(rows, start, stop, a, b)`` per group that was picked: the row indices, the group's
    column range and the two positions (relative to ``start``), each ``[len(rows)]``.
    """
    if not groups or n == 0:
        return
    which = torch.randint(len(groups), (n,), generator=generator)
    for g, (start, stop) in enumerate(groups):
        rows = (which == g).nonzero().squeeze(-1).to(device)
        if len(rows) == 0:
            continue
        length = stop - start
        a = torch.randint(length, (len(rows),), generator=generator).to(device)
        offset = torch.randint(max(length - 1, 1), (len(rows),), generator=generator).to(device)
        yield rows, start, stop, a, torch.remainder(a + 1 + offset, length)
