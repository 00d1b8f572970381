"""Mixed coordinate search: L-BFGS-B on the real columns, exhaustive search along each discrete column.

The acquisition optimiser of Optuna's ``GPSampler`` (``optuna/_gp/optim_mixed.py``, 2024-), which finds
better points than our interleaved search on mixed and categorical benchmarks
(docs/sample-efficiency.md), rebuilt on :class:`~mcbo.acq_optim.base.AcqContext`:

* **starts**: ``n_raw`` random allowed points are scored; the best one, ``n_starts - 1 - k`` more drawn
  without replacement with probability proportional to ``exp(acq - max acq)`` (a roulette that keeps
  several basins of a log-acquisition in play), and the ``k`` incumbents (the trust-region centre, or the
  best observed points) start the local searches;
* **sweeps**, all starts together: (1) projected L-BFGS-B on the real columns (scipy, on the sum of the
  starts' acquisitions: the starts do not interact, so the Hessian is block diagonal), inside the
  trust-region box, once no start's discrete columns move any more, for the starts moved since their last
  numeric optimisation;
  (2) every single-column move of every start is scored in one batched call (every
  other category of each nominal column, integer and ordinal columns over up to ``max_grid_values``
  values of their grid plus steps of 1, 2 and 4, every swap and insert of a permutation) and each start
  takes its best move if that improves it. A start stops when neither step moves it.

Optuna sweeps the discrete columns one at a time, each start taking the first improving column; taking
the best move over all columns instead scores the same neighbourhood in one call per sweep instead of one
per column (50 calls per sweep on Ackley-53's binary columns), 10-20x less time for the same kind of
local optimum.

Every scored point is a candidate result; the best one not yet observed or pending is returned.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, register_acq_optimizer
from mcbo.acq_optim.steps import incumbent_point, move_to_best_neighbours
from mcbo.space import SearchSpace
from mcbo.space.moves import all_neighbours
from mcbo.space.params import ColumnKind


#: Smallest acquisition gain that counts as a move (log-acquisition units): smaller ones are round-off.
_MIN_GAIN = 1e-7
#: L-BFGS-B stops when every projected gradient entry is below this (log-acquisition per unit-cube unit);
#: Optuna stops at 1e-2 in lengthscale-scaled units. Finer stops cost iterations and change no proposal.
_PGTOL = 1e-3


@register_acq_optimizer("coordinate")
class CoordinateSearch(AcqOptimizer):
    """Multi-start mixed coordinate search (Optuna GPSampler's acquisition optimiser).

    Args:
        n_raw: random points scored to choose the starts (Optuna: 2,048).
        n_starts: local searches run together, incumbent included (Optuna: 10).
        max_sweeps: maximum sweeps (L-BFGS-B then one best move) per call.
        max_grid_values: integer/ordinal values tried per column and sweep, evenly spread over the grid
            (all of them when the grid is smaller), besides steps of 1, 2 and 4 from the current value
            (columns of up to 3 values move by single steps only).
        lbfgs_maxiter: L-BFGS-B iterations on the real columns per sweep.
    """

    needs_deterministic_acquisition = True
    deterministic_reason = "coordinate search takes gradient steps and compares scores across calls"

    def __init__(
        self,
        n_raw: int = 2048,
        n_starts: int = 10,
        max_sweeps: int = 50,
        max_grid_values: int = 32,
        lbfgs_maxiter: int = 100,
    ) -> None:
        for name, value in (("n_raw", n_raw), ("n_starts", n_starts), ("max_sweeps", max_sweeps),
                            ("max_grid_values", max_grid_values), ("lbfgs_maxiter", lbfgs_maxiter)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"coordinate search: {name} must be an integer >= 1, got {value!r}")
        if max_grid_values < 2:
            raise ValueError(f"coordinate search: max_grid_values must be >= 2, got {max_grid_values!r}")
        self.n_raw, self.n_starts, self.max_sweeps = n_raw, n_starts, max_sweeps
        self.max_grid_values, self.lbfgs_maxiter = max_grid_values, lbfgs_maxiter

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        X, values, pool, pool_values = self._starts(ctx)
        if X is None:
            return ctx.fallback()
        visited, visited_values = [pool, X.clone()], [pool_values, values.clone()]
        space = ctx.space
        real_cols = _columns_of(space, ColumnKind.REAL).to(ctx.device)
        wide_grid_cols = [c for c in space.grid_columns.tolist() if _grid_size(space, c) > 3]
        stale = torch.ones(len(X), dtype=torch.bool, device=ctx.device)  # real columns not optimised since a move
        stepping = torch.zeros(len(X), dtype=torch.bool, device=ctx.device)  # took a discrete move last sweep
        active = torch.ones(len(X), dtype=torch.bool, device=ctx.device)
        for _ in range(self.max_sweeps):
            moved = torch.zeros(len(X), dtype=torch.bool, device=ctx.device)
            # real columns once the discrete moves of every start have settled: one L-BFGS-B call for all
            rows = (stale & active).nonzero().squeeze(-1) if not stepping.any() else stale[:0].nonzero().squeeze(-1)
            if len(real_cols) and len(rows):
                X_new, new_values = _lbfgsb_real_columns(ctx, X[rows], real_cols, self.lbfgs_maxiter)
                better = ctx.allowed(X_new) & (new_values > values[rows] + _MIN_GAIN)
                X[rows[better]], values[rows[better]] = X_new[better], new_values[better]
                moved[rows[better]] = True
                stale[rows] = False
                visited.append(X_new)
                visited_values.append(new_values)
            rows = active.nonzero().squeeze(-1)
            X_rows, values_rows = X[rows], values[rows]
            blocks = [all_neighbours(space, X_rows)] + [self._grid_moves(space, X_rows, c) for c in wide_grid_cols]
            nbrs, owner = torch.cat([b[0] for b in blocks]), torch.cat([b[1] for b in blocks])
            stepping[:] = False
            if len(nbrs):
                stepped = self._take_best(ctx, X_rows, values_rows, nbrs, owner, visited, visited_values)
                X[rows], values[rows] = X_rows, values_rows
                stepping[rows[stepped]] = True
                stale[rows[stepped]] = True
            active &= moved | stepping | (stale & bool(len(real_cols)))
            stepping &= active
            if not active.any():
                break
        x = ctx.best_new(torch.cat(visited), torch.cat(visited_values))
        return x if x is not None else ctx.fallback()

    def _starts(self, ctx: AcqContext) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Starts ``[s, d]`` with their scores ``[s]``, and the scored random pool (see the module docstring)."""
        pool = ctx.random_points(self.n_raw)
        pool_values = ctx.score(pool) if len(pool) else pool.new_empty(0)
        incumbent = incumbent_point(ctx)
        chosen: list[int] = []
        finite = torch.isfinite(pool_values)
        if finite.any():
            best = int(torch.argmax(torch.where(finite, pool_values, torch.full_like(pool_values, -torch.inf))))
            chosen.append(best)
            weights = torch.exp(pool_values - pool_values[best]).nan_to_num(0.0)
            weights[best] = 0.0
            n_more = min(self.n_starts - 1 - (incumbent is not None), int((weights > 0).sum()))
            if n_more > 0:
                probs = (weights / weights.sum()).cpu().numpy()
                chosen += ctx.np_rng.choice(len(pool), size=n_more, replace=False, p=probs).tolist()
        X, values = pool[chosen].clone(), pool_values[chosen].clone()
        if incumbent is not None:
            X, values = torch.cat([X, incumbent]), torch.cat([values, ctx.score(incumbent)])
        if len(X) == 0:
            return None, values, pool, pool_values
        return X, values, pool, pool_values

    def _grid_moves(self, space: SearchSpace, X: torch.Tensor, col: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every start ``X`` ``[s, d]`` with integer/ordinal column ``col`` set to each of its candidate values
        (:meth:`_grid_values`): ``(neighbours [m, d], owner [m])``."""
        candidates = self._grid_values(space, X, col)
        s, m = candidates.shape
        nbrs = X.repeat_interleave(m, 0)
        nbrs[:, col] = candidates.reshape(-1)
        owner = torch.arange(s, device=X.device).repeat_interleave(m)
        changed = nbrs[:, col] != X[owner, col]
        return nbrs[changed], owner[changed]

    def _grid_values(self, space: SearchSpace, X: torch.Tensor, col: int) -> torch.Tensor:
        """``[s, m]`` unit-cube values of integer/ordinal column ``col`` to try from each start."""
        spread = torch.linspace(0.0, 1.0, self.max_grid_values, dtype=X.dtype, device=X.device)
        step = float(space.numeric_grid_steps()[space.numeric_columns.tolist().index(col)])
        offsets = torch.tensor([-4.0, -2.0, -1.0, 1.0, 2.0, 4.0], dtype=X.dtype, device=X.device) * step
        values = torch.cat([spread.unsqueeze(0).expand(len(X), -1), X[:, col:col + 1] + offsets], 1).clamp(0.0, 1.0)
        rows = X.repeat_interleave(values.shape[1], 0)
        rows[:, col] = values.reshape(-1)
        return space.snap(rows)[:, col].reshape(len(X), -1)

    @staticmethod
    def _take_best(
        ctx: AcqContext, X: torch.Tensor, values: torch.Tensor, nbrs: torch.Tensor, owner: torch.Tensor,
        visited: list[torch.Tensor], visited_values: list[torch.Tensor],
    ) -> torch.Tensor:
        """Score the allowed ``nbrs`` ``[m, d]``, move each start to its best when that improves it (in place);
        returns which starts moved ``[s]``."""
        keep = ctx.allowed(nbrs)
        nbrs, owner = nbrs[keep], owner[keep]
        if len(nbrs) == 0:
            return torch.zeros(len(X), dtype=torch.bool, device=X.device)
        nbr_values = ctx.score(nbrs)
        visited.append(nbrs)
        visited_values.append(nbr_values)
        _, values_moved, moved = move_to_best_neighbours(X, values, nbrs, owner, nbr_values)
        moved &= values_moved > values + _MIN_GAIN
        values.copy_(values_moved)
        return moved


def _grid_size(space: SearchSpace, col: int) -> int:
    """Number of values of integer/ordinal column ``col``."""
    step = float(space.numeric_grid_steps()[space.numeric_columns.tolist().index(col)])
    return int(round(1.0 / step)) + 1 if step > 0 else 1


def _columns_of(space: SearchSpace, kind: ColumnKind) -> torch.Tensor:
    """Indices ``[k]`` of the columns of ``space`` of one kind."""
    return torch.tensor([i for i, k in enumerate(space.column_kinds) if k is kind], dtype=torch.long)


def _lbfgsb_real_columns(
    ctx: AcqContext, X: torch.Tensor, cols: torch.Tensor, maxiter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximise the acquisition over real columns ``cols`` of every row of ``X`` ``[s, d]`` by projected L-BFGS-B
    (scipy) inside the numeric box; returns the moved rows ``[s, d]`` and their scores ``[s]``."""
    numeric = ctx.space.numeric_columns.tolist()
    lo, hi = ctx.numeric_box(X)
    positions = [numeric.index(c) for c in cols.tolist()]
    lo, hi = lo[positions], hi[positions]
    bounds = list(zip(lo.repeat(len(X)).tolist(), hi.repeat(len(X)).tolist()))
    base = X.clone()

    def negative_acq(z: np.ndarray) -> tuple[float, np.ndarray]:
        zt = torch.as_tensor(z, dtype=X.dtype, device=X.device).reshape(len(X), len(cols)).requires_grad_(True)
        with torch.enable_grad():
            full = base.clone()
            full[:, cols] = zt
            total = ctx.acq(full).sum()
            (grad,) = torch.autograd.grad(total, zt)
        return -float(total.detach()), -grad.reshape(-1).double().cpu().numpy()

    z0 = X[:, cols].reshape(-1).double().cpu().numpy()
    result = minimize(negative_acq, z0, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": maxiter, "gtol": _PGTOL})
    out = base.clone()
    out[:, cols] = torch.as_tensor(result.x, dtype=X.dtype, device=X.device).reshape(len(X), len(cols))
    out = ctx.space.snap(out)
    return out, ctx.score(out)


__all__ = ["CoordinateSearch"]
