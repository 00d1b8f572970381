"""Interleaved search (Wan et al., Casmopolitan, ICML 2021): alternate nominal hill-climbing with
gradient steps on the numeric columns, from several restarts at once.

Each round, every restart (1) moves to its best single-move neighbour (one nominal column changed,
an integer/ordinal step, or a permutation swap) if that beats it, all neighbours of all restarts
scored in one batched call, and (2) takes ``n_grad_steps`` Adam steps on its numeric columns, all
restarts in one batched backward pass, projected into the trust-region box and snapped to the
integer grids. Rounds stop when no restart moves.
"""

from __future__ import annotations

import numpy as np
import torch

from mcbo.acq_optim.base import (
    AcqOptimizer,
    allowed,
    best_new,
    candidate_pool,
    fallback_point,
    score,
)
from mcbo.acquisition import AcquisitionFunction
from mcbo.space import SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


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
        raw = candidate_pool(space, self.n_raw, trust_region, np_rng, generator, dtype, device)
        if trust_region is not None and trust_region.centre is not None:
            centre = trust_region.centre.to(device=device, dtype=dtype).unsqueeze(0)
            raw = torch.cat([raw, centre]) if allowed(space, centre, trust_region).all() else raw
        if len(raw) == 0:
            return fallback_point(space, X_exclude, np_rng, dtype, device)
        raw_values = score(acq, raw)
        order = torch.argsort(raw_values, descending=True)[: self.n_restarts]
        X, values = raw[order].clone(), raw_values[order].clone()
        visited, visited_values = [raw], [raw_values]
        for _ in range(self.n_rounds):
            moved = torch.zeros(len(X), dtype=torch.bool, device=device)
            if len(space.nominal_columns) or space._integer_mask.any() or space._ordinal_mask.any():
                X, values, moved_nom, nbrs, nbr_values = self._neighbour_step(acq, space, X, values, trust_region)
                moved |= moved_nom
                visited.append(nbrs)
                visited_values.append(nbr_values)
            if len(space.numeric_columns) and self.n_grad_steps:
                X_new = self._gradient_step(acq, space, X, trust_region)
                ok = allowed(space, X_new, trust_region)
                new_values = score(acq, X_new)
                better = ok & (new_values > values + 1e-12)
                X[better], values[better] = X_new[better], new_values[better]
                moved |= better
                visited.append(X_new[ok])
                visited_values.append(new_values[ok])
            if not moved.any():
                break
        pool = torch.cat([X, *visited])
        pool_values = torch.cat([values, *visited_values])
        x, _ = best_new(pool, pool_values, X_exclude)
        if x is None:
            return fallback_point(space, X_exclude, np_rng, dtype, device)
        return x

    def _neighbour_step(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X: torch.Tensor,
        values: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Move each restart to its best allowed neighbour if that improves; returns the new
        restarts, their values, which moved, and all scored neighbours with their values."""
        nbrs, owner = space.batch_neighbours(X)
        keep = allowed(space, nbrs, trust_region)
        nbrs, owner = nbrs[keep], owner[keep]
        if len(nbrs) == 0:
            return X, values, torch.zeros(len(X), dtype=torch.bool, device=X.device), nbrs, nbrs.new_empty(0)
        nbr_values = score(acq, nbrs)
        best = torch.full((len(X),), -float("inf"), dtype=nbr_values.dtype, device=X.device)
        best = best.scatter_reduce(0, owner, nbr_values, reduce="amax")
        moved = best > values + 1e-12
        for i in moved.nonzero().squeeze(-1).tolist():
            X[i] = nbrs[(owner == i) & (nbr_values == best[i])][0]
        values = torch.where(moved, best, values)
        return X, values, moved, nbrs, nbr_values

    def _gradient_step(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None,
    ) -> torch.Tensor:
        """``n_grad_steps`` of Adam on the numeric columns of all restarts ``[r, d]`` at once."""
        cols = space.numeric_columns.to(X.device)
        if trust_region is not None and trust_region.centre is not None:
            lo, hi = (b.to(X) for b in trust_region.bounds())
        else:
            lo, hi = torch.zeros(len(cols), dtype=X.dtype, device=X.device), torch.ones(
                len(cols), dtype=X.dtype, device=X.device
            )
        z = X[:, cols].clone().requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.n_grad_steps):
                optimiser.zero_grad()
                full = X.clone()
                full[:, cols] = z
                loss = -acq(full).sum()
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    z.copy_(torch.maximum(torch.minimum(z, hi), lo))
        out = X.clone()
        out[:, cols] = z.detach()
        return space.snap(out)


__all__ = ["InterleavedSearch"]
