"""CoCaBO's acquisition optimiser (Ru et al., "Bayesian Optimisation over Multiple Continuous and
Categorical Inputs", ICML 2020): EXP3 bandits choose the categories, gradient ascent the numbers.

One EXP3 bandit (Auer et al., "The Nonstochastic Multiarmed Bandit Problem", SIAM J. Comput. 2002)
per nominal column has one arm per category. Each :meth:`MultiArmedBandit.optimize` draws the
categorical part ``h`` from the bandits' distributions ``p = (1 - gamma) w / sum(w) + gamma / K``,
then maximises the acquisition over the numeric columns with ``h`` fixed (the best of random
starts, then Adam steps projected into the trust-region box and snapped to the grids).

The bandit weights persist across asks: the optimiser lives as long as its solver, and the solver
reports every successful observation through :meth:`MultiArmedBandit.observe`. The reward of an
observation is its value normalised to ``[0, 1]`` over the values seen so far (1 = the lowest, since
values are minimised); each column's pulled arm gets the importance-weighted update
``w_k <- w_k * exp(gamma * (r / p_k) / K)``. :meth:`state_dict` / :meth:`load_state_dict` save them.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, is_new, register_acq_optimizer
from mcbo.acq_optim.steps import numeric_ascent
from mcbo.space import SearchSpace


@register_acq_optimizer("mab")
class MultiArmedBandit(AcqOptimizer):
    """EXP3 over each nominal column's categories + gradient steps on the numeric columns.

    Args:
        gamma: EXP3 exploration rate in ``(0, 1]``; ``None`` uses Auer et al.'s choice
            ``min(1, sqrt(K ln K / ((e - 1) horizon)))`` per column.
        horizon: expected number of observations (sets the default ``gamma``).
        n_raw: random numeric starts scored for the drawn categories.
        n_restarts: best starts refined by gradient steps.
        n_grad_steps: Adam steps on the numeric columns.
        lr: Adam step size in unit-cube coordinates.
        max_draws: categorical draws tried before giving up on finding an allowed, new point.
    """

    needs_deterministic_acquisition = True
    deterministic_reason = "the multi-armed bandit optimiser takes gradient steps"

    def __init__(
        self,
        gamma: float | None = None,
        horizon: int = 200,
        n_raw: int = 200,
        n_restarts: int = 5,
        n_grad_steps: int = 30,
        lr: float = 0.025,
        max_draws: int = 20,
    ) -> None:
        if gamma is not None and not 0 < gamma <= 1:
            raise ValueError(f"multi-armed bandit: gamma must be in (0, 1], got {gamma!r}")
        for name, value in (("horizon", horizon), ("n_raw", n_raw), ("n_restarts", n_restarts),
                            ("max_draws", max_draws)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"multi-armed bandit: {name} must be an integer >= 1, got {value!r}")
        if not isinstance(n_grad_steps, int) or n_grad_steps < 0 or not lr > 0:
            raise ValueError(f"multi-armed bandit: need n_grad_steps >= 0 and lr > 0, got {n_grad_steps!r}, {lr!r}")
        self.gamma, self.horizon = gamma, horizon
        self.n_raw, self.n_restarts, self.n_grad_steps, self.lr = n_raw, n_restarts, n_grad_steps, float(lr)
        self.max_draws = max_draws
        self.log_weights: list[torch.Tensor] | None = None  # one [K_c] tensor per nominal column
        self.y_min, self.y_max = math.inf, -math.inf
        self.n_observed = 0

    # ------------------------------------------------------------- bandits
    def _ensure(self, space: SearchSpace) -> None:
        if space.permutation_groups:
            raise ValueError("multi-armed bandit (CoCaBO) draws each nominal column independently and does not "
                             "support permutation parameters; use acq_optimizer 'local_search' or 'sa'")
        cards = space.cardinalities[space.nominal_columns].tolist()
        if self.log_weights is None or [len(w) for w in self.log_weights] != cards:
            self.log_weights = [torch.zeros(int(k), dtype=torch.float64) for k in cards]

    def _gammas(self) -> list[float]:
        assert self.log_weights is not None
        if self.gamma is not None:
            return [self.gamma] * len(self.log_weights)
        out = []
        for w in self.log_weights:
            k = len(w)
            out.append(min(1.0, math.sqrt(k * math.log(k) / ((math.e - 1) * self.horizon))) if k > 1 else 1.0)
        return out

    def probabilities(self, space: SearchSpace) -> list[torch.Tensor]:
        """Current EXP3 distribution over the categories of each nominal column (``[K_c]`` each)."""
        self._ensure(space)
        assert self.log_weights is not None
        return [(1 - g) * torch.softmax(w, 0) + g / len(w) for w, g in zip(self.log_weights, self._gammas())]

    def observe(self, space: SearchSpace, X: torch.Tensor, y: torch.Tensor) -> None:
        """Update the bandits with observations ``X`` ``[m, d]`` and their values ``y`` ``[m]`` (minimised)."""
        self._ensure(space)
        assert self.log_weights is not None
        y = y.detach().reshape(-1).double().cpu()
        X = X.detach().cpu()
        finite = torch.isfinite(y)
        X, y = X[finite], y[finite]
        if len(y) == 0:
            return
        self.y_min, self.y_max = min(self.y_min, float(y.min())), max(self.y_max, float(y.max()))
        span = self.y_max - self.y_min
        rewards = (self.y_max - y) / span if span > 0 else torch.full_like(y, 0.5)
        probs = self.probabilities(space)
        gammas = self._gammas()
        for c, col in enumerate(space.nominal_columns.tolist()):
            arms = X[:, col].round().long().clamp(0, len(probs[c]) - 1)
            gain = torch.zeros_like(probs[c]).index_add_(0, arms, rewards / probs[c][arms])
            self.log_weights[c] = self.log_weights[c] + gammas[c] * gain / len(probs[c])
            self.log_weights[c] -= self.log_weights[c].max()  # keep them bounded; the distribution is unchanged
        self.n_observed += len(y)

    def state_dict(self) -> dict[str, Any]:
        """Bandit state as plain JSON data."""
        return {
            "log_weights": None if self.log_weights is None else [w.tolist() for w in self.log_weights],
            "y_min": self.y_min, "y_max": self.y_max, "n_observed": self.n_observed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        weights = state.get("log_weights")
        self.log_weights = None if weights is None else [torch.tensor(w, dtype=torch.float64) for w in weights]
        self.y_min, self.y_max = float(state["y_min"]), float(state["y_max"])
        self.n_observed = int(state["n_observed"])

    # ------------------------------------------------------------ optimise
    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        self._ensure(ctx.space)
        probs = self.probabilities(ctx.space)
        nominal = ctx.space.nominal_columns.to(ctx.device)
        for _ in range(self.max_draws):
            draws = [torch.multinomial(p, 1, generator=ctx.generator)[0] for p in probs]
            h = (torch.stack(draws) if draws else torch.empty(0)).to(device=ctx.device, dtype=ctx.dtype)
            x = self._numeric_part(ctx, h, nominal)
            if x is not None and is_new(x, ctx.X_exclude).all():
                return x
        return ctx.fallback()

    def _numeric_part(self, ctx: AcqContext, h: torch.Tensor, nominal: torch.Tensor) -> torch.Tensor | None:
        """Best allowed point ``[1, d]`` with nominal part ``h`` ``[d_nominal]``, or ``None``."""
        space, dtype, device, region = ctx.space, ctx.dtype, ctx.device, ctx.region
        base = region.centre.to(device=device, dtype=dtype).clone() if region is not None else \
            torch.zeros(space.d, dtype=dtype, device=device)
        base[nominal] = h
        base = base.unsqueeze(0)
        if region is not None:
            base = region.project(base, ctx.generator)
        cols = space.numeric_columns.to(device)
        if len(cols) == 0:
            return base if ctx.allowed(base).all() else None
        lo, hi = ctx.numeric_box(base)
        X = base.repeat(self.n_raw, 1)
        U = torch.rand(self.n_raw, len(cols), generator=ctx.generator, dtype=dtype).to(device)
        X[:, cols] = lo + U * (hi - lo)
        X = space.snap(X)
        ok = ctx.allowed(X)
        if not ok.any():
            return None
        X = X[ok]
        values = ctx.score(X)
        order = torch.argsort(values, descending=True)[: self.n_restarts]
        X, values = X[order], values[order]
        if self.n_grad_steps:
            refined = numeric_ascent(ctx, X, self.n_grad_steps, self.lr, lo, hi)
            keep = ctx.allowed(refined)
            if keep.any():
                new_values = ctx.score(refined)
                better = keep & (new_values > values)
                X = torch.where(better.unsqueeze(-1), refined, X)
                values = torch.where(better, new_values, values)
        i = int(torch.argmax(values))
        return X[i:i + 1]


__all__ = ["MultiArmedBandit"]
