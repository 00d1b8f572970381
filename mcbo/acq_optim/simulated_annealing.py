"""Simulated annealing of the acquisition (Kirkpatrick et al., Science 1983), batched chains.

BOCS (Baptista & Poloczek, ICML 2018) optimises its acquisition by simulated annealing; here
``n_chains`` chains run together, one batched acquisition call per step. Each step proposes one
random move per chain (:func:`mcbo.space.moves.random_move`: a new category or a permutation
swap/insert, or a Gaussian move of the numeric columns), rejects proposals outside the trust
region or the input constraints, and accepts with the Metropolis rule
``P = min(1, exp((a_new - a_old) / T))`` (higher acquisition is better). The temperature cools
geometrically from ``T0 = init_temp * std(acquisition over the start pool)`` to
``T0 * final_temp_ratio`` over ``n_steps`` steps. The result is the best new point any chain
visited.
"""

from __future__ import annotations

import math

import torch

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, register_acq_optimizer
from mcbo.acq_optim.steps import start_points
from mcbo.space.moves import random_move


@register_acq_optimizer("sa")
class SimulatedAnnealing(AcqOptimizer):
    """Batched simulated annealing over mixed spaces.

    Args:
        n_chains: chains run together (started at the best random points and the incumbent).
        n_steps: moves per chain.
        n_raw: random points scored to pick the starts.
        init_temp: initial temperature, relative to the spread of acquisition values of the pool.
        final_temp_ratio: final temperature / initial temperature (sets the geometric cooling rate).
        numeric_sigma: std of Gaussian numeric moves, relative to the width of the (trust-region) box.
        p_insert: probability that a permutation move is an insert rather than a swap.
    """

    needs_deterministic_acquisition = True
    deterministic_reason = "simulated annealing compares scores across calls"

    def __init__(
        self,
        n_chains: int = 10,
        n_steps: int = 200,
        n_raw: int = 500,
        init_temp: float = 1.0,
        final_temp_ratio: float = 1e-3,
        numeric_sigma: float = 0.1,
        p_insert: float = 0.5,
    ) -> None:
        for name, value in (("n_chains", n_chains), ("n_steps", n_steps), ("n_raw", n_raw)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"simulated annealing: {name} must be an integer >= 1, got {value!r}")
        if not init_temp > 0:
            raise ValueError(f"simulated annealing: init_temp must be > 0, got {init_temp!r}")
        if not 0 < final_temp_ratio <= 1:
            raise ValueError(f"simulated annealing: final_temp_ratio must be in (0, 1], got {final_temp_ratio!r}")
        if not numeric_sigma > 0:
            raise ValueError(f"simulated annealing: numeric_sigma must be > 0, got {numeric_sigma!r}")
        if not 0 <= p_insert <= 1:
            raise ValueError(f"simulated annealing: p_insert must be in [0, 1], got {p_insert!r}")
        self.n_chains, self.n_steps, self.n_raw = n_chains, n_steps, n_raw
        self.init_temp, self.final_temp_ratio = float(init_temp), float(final_temp_ratio)
        self.numeric_sigma, self.p_insert = float(numeric_sigma), float(p_insert)

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        X, values, pool, pool_values = start_points(ctx, self.n_raw, self.n_chains)
        if X is None:
            return ctx.fallback()
        lo, hi = ctx.numeric_box(X)
        finite = pool_values[torch.isfinite(pool_values)]
        spread = float(finite.std()) if len(finite) > 1 else 0.0
        t0 = self.init_temp * (spread if spread > 0 and math.isfinite(spread) else 1.0)
        rate = self.final_temp_ratio ** (1.0 / max(self.n_steps - 1, 1))
        visited, visited_values = [pool, X.clone()], [pool_values, values.clone()]
        for step in range(self.n_steps):
            temp = t0 * rate**step
            proposal = random_move(ctx.space, X, ctx.generator, self.numeric_sigma, self.p_insert, lo, hi)
            ok = ctx.allowed(proposal) & (proposal != X).any(-1)
            if not ok.any():
                continue
            new_values = torch.full_like(values, -float("inf"))
            new_values[ok] = ctx.score(proposal[ok])
            visited.append(proposal[ok])
            visited_values.append(new_values[ok])
            u = torch.rand(len(X), generator=ctx.generator, dtype=values.dtype).to(ctx.device)
            gain = torch.nan_to_num(new_values - values, nan=-float("inf"))
            accept = ok & ((gain >= 0) | (torch.log(u.clamp(min=1e-300)) < gain / temp))
            X[accept], values[accept] = proposal[accept], new_values[accept]
        x = ctx.best_new(torch.cat(visited), torch.cat(visited_values))
        return x if x is not None else ctx.fallback()


__all__ = ["SimulatedAnnealing"]
