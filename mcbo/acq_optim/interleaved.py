"""Interleaved search (Wan et al., Casmopolitan, ICML 2021): alternate nominal hill-climbing with
gradient steps on the numeric columns, from several restarts at once.

Each round, every restart (1) moves to its best single-move neighbour (one nominal column changed,
an integer/ordinal step, or a permutation swap) if that beats it, all neighbours of all restarts
scored in one batched call, and (2) takes ``n_grad_steps`` Adam steps on its numeric columns, all
restarts in one batched backward pass, projected into the trust-region box and snapped to the
integer grids. Rounds stop when no restart moves.
"""

from __future__ import annotations

import torch

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, register_acq_optimizer
from mcbo.acq_optim.steps import move_to_best_neighbours, numeric_ascent


@register_acq_optimizer("interleaved")
class InterleavedSearch(AcqOptimizer):
    """Multi-start interleaved local search over mixed spaces.

    Args:
        n_restarts: number of local searches run together.
        n_raw: random points scored to pick the starts (the best ``n_restarts`` of them).
        n_rounds: maximum alternations of nominal moves and numeric gradient steps.
        n_grad_steps: Adam steps on numeric columns per round.
        lr: Adam step size, in unit-cube coordinates.
    """

    needs_deterministic_acquisition = True
    deterministic_reason = "interleaved search takes gradient and hill-climbing steps"

    def __init__(
        self,
        n_restarts: int = 5,
        n_raw: int = 500,
        n_rounds: int = 5,
        n_grad_steps: int = 10,
        lr: float = 0.025,
    ) -> None:
        for name, value in (("n_restarts", n_restarts), ("n_raw", n_raw), ("n_rounds", n_rounds)):
            if value < 1:
                raise ValueError(f"interleaved search: {name} must be >= 1, got {value!r}")
        if n_grad_steps < 0 or lr <= 0:
            raise ValueError(f"interleaved search: need n_grad_steps >= 0 and lr > 0, got {n_grad_steps}, {lr}")
        self.n_restarts, self.n_raw, self.n_rounds = int(n_restarts), int(n_raw), int(n_rounds)
        self.n_grad_steps, self.lr = int(n_grad_steps), float(lr)

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        space, device = ctx.space, ctx.device
        raw = ctx.random_points(self.n_raw)
        if ctx.region is not None:
            centre = ctx.region.centre.to(device=device, dtype=ctx.dtype).unsqueeze(0)
            raw = torch.cat([raw, centre]) if ctx.allowed(centre).all() else raw
        if len(raw) == 0:
            return ctx.fallback()
        raw_values = ctx.score(raw)
        order = torch.argsort(raw_values, descending=True)[: self.n_restarts]
        X, values = raw[order].clone(), raw_values[order].clone()
        visited, visited_values = [raw], [raw_values]
        for _ in range(self.n_rounds):
            moved = torch.zeros(len(X), dtype=torch.bool, device=device)
            if len(space.nominal_columns) or len(space.grid_columns):
                X, values, moved_nom, nbrs, nbr_values = self._neighbour_step(ctx, X, values)
                moved |= moved_nom
                visited.append(nbrs)
                visited_values.append(nbr_values)
            if len(space.numeric_columns) and self.n_grad_steps:
                X_new = numeric_ascent(ctx, X, self.n_grad_steps, self.lr, *ctx.numeric_box(X))
                ok = ctx.allowed(X_new)
                new_values = ctx.score(X_new)
                better = ok & (new_values > values + 1e-12)
                X[better], values[better] = X_new[better], new_values[better]
                moved |= better
                visited.append(X_new[ok])
                visited_values.append(new_values[ok])
            if not moved.any():
                break
        x = ctx.best_new(torch.cat([X, *visited]), torch.cat([values, *visited_values]))
        return x if x is not None else ctx.fallback()

    @staticmethod
    def _neighbour_step(
        ctx: AcqContext, X: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Move each restart to its best allowed single-move neighbour if that improves; returns the new
        restarts, their values, which moved, and all scored neighbours with their values."""
        nbrs, owner = ctx.space.batch_neighbours(X)
        keep = ctx.allowed(nbrs)
        nbrs, owner = nbrs[keep], owner[keep]
        if len(nbrs) == 0:
            return X, values, torch.zeros(len(X), dtype=torch.bool, device=X.device), nbrs, nbrs.new_empty(0)
        nbr_values = ctx.score(nbrs)
        X, values, moved = move_to_best_neighbours(X, values, nbrs, owner, nbr_values)
        return X, values, moved, nbrs, nbr_values


__all__ = ["InterleavedSearch"]
