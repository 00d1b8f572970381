"""Casmopolitan mixed trust region (Wan et al., "Think Global and Act Local", ICML 2021).

Around a centre ``x_c`` the region holds the points whose numeric columns lie in a box of side
``length * w`` (``w`` the numeric lengthscales normalised to geometric mean one, as in TuRBO,
Eriksson et al. 2019) and whose nominal columns differ from ``x_c`` in at most ``radius``
positions (a Hamming ball). After ``success_tolerance`` consecutive improving batches the region
expands (length and radius times ``multiplier``); after ``failure_tolerance`` consecutive
non-improving ones it shrinks (divided by ``multiplier``). When it collapses
(``length < length_min`` or ``radius < radius_min``) it must be restarted at a new centre, chosen
by the solver. Defaults follow the MCBO reference implementation (Dreczkowski et al., 2023).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from mcbo.space import SearchSpace
from mcbo.space.moves import project_hamming
from mcbo.trust_region.base import TrustRegion, register_trust_region

logger = logging.getLogger(__name__)


@register_trust_region("casmopolitan")
class CasmopolitanTrustRegion(TrustRegion):
    """Box (numeric columns) x Hamming ball (nominal columns) around the incumbent.

    Args:
        space: the search space.
        length_init, length_min, length_max: side of the numeric box in the unit cube.
        radius_init, radius_min, radius_max: Hamming radius over nominal columns; ``None`` picks
            ``ceil(0.8 * n_nominal)``, ``1`` and ``n_nominal``.
        success_tolerance: consecutive successes before expanding.
        failure_tolerance: consecutive failures before shrinking.
        multiplier: factor by which the region expands or shrinks (> 1).
        improvement_threshold: relative improvement over the region's best counting as success.
    """

    def __init__(
        self,
        space: SearchSpace,
        length_init: float = 0.8,
        length_min: float = 2.0**-5,
        length_max: float = 1.0,
        radius_init: int | None = None,
        radius_min: int | None = None,
        radius_max: int | None = None,
        success_tolerance: int = 3,
        failure_tolerance: int = 40,
        multiplier: float = 1.5,
        improvement_threshold: float = 1e-3,
    ) -> None:
        super().__init__(space)
        n_nom = len(space.nominal_columns)
        self.has_numeric = len(space.numeric_columns) > 0
        self.has_nominal = n_nom > 0
        self.length_init, self.length_min, self.length_max = float(length_init), float(length_min), float(length_max)
        self.radius_max = int(radius_max) if radius_max is not None else n_nom
        self.radius_min = int(radius_min) if radius_min is not None else min(1, n_nom)
        self.radius_init = int(radius_init) if radius_init is not None else max(self.radius_min, math.ceil(0.8 * n_nom))
        self.success_tolerance = int(success_tolerance)
        self.failure_tolerance = int(failure_tolerance)
        self.multiplier = float(multiplier)
        self.improvement_threshold = float(improvement_threshold)
        self._check()
        self.lengthscales: torch.Tensor | None = None
        self.reset()

    def _check(self) -> None:
        if not (0 < self.length_min <= self.length_init <= self.length_max):
            raise ValueError(
                f"trust region needs 0 < length_min <= length_init <= length_max, got "
                f"{self.length_min}, {self.length_init}, {self.length_max}"
            )
        if self.has_nominal and not (0 <= self.radius_min <= self.radius_init <= self.radius_max):
            raise ValueError(
                f"trust region needs 0 <= radius_min <= radius_init <= radius_max, got "
                f"{self.radius_min}, {self.radius_init}, {self.radius_max}"
            )
        if self.success_tolerance < 1 or self.failure_tolerance < 1:
            raise ValueError("trust region success_tolerance and failure_tolerance must be >= 1")
        if self.multiplier <= 1:
            raise ValueError(f"trust region multiplier must be > 1, got {self.multiplier!r}")

    # ------------------------------------------------------------- state
    def reset(self) -> None:
        """Initial size and counters (the centre is kept)."""
        self.length = self.length_init
        self.radius = self.radius_init
        self.n_successes = 0
        self.n_failures = 0
        self.best_value = math.inf

    def restart(self, centre: torch.Tensor) -> None:
        """Start a fresh region of initial size around ``centre`` ``[d]``."""
        self.reset()
        self.centre = centre.detach().clone().reshape(-1)
        self.n_restarts += 1
        logger.info("trust region restart %d", self.n_restarts)

    @property
    def collapsed(self) -> bool:
        """Whether the region shrank below its minimum size and needs a restart."""
        return (self.has_numeric and self.length < self.length_min) or (
            self.has_nominal and self.radius < self.radius_min
        )

    def set_lengthscales(self, lengthscales: torch.Tensor | None) -> None:
        """Numeric lengthscales ``[d_numeric]`` that shape the box (``None``: a cube)."""
        self.lengthscales = None if lengthscales is None else lengthscales.detach().reshape(-1).clone()

    def update(self, X_new: torch.Tensor, y_new: torch.Tensor) -> None:
        """Count a batch of observations ``[m, d]``, ``[m]``: move the centre, expand or shrink."""
        if len(y_new) == 0:
            return
        i = int(torch.argmin(y_new))
        value = float(y_new[i])
        first = not math.isfinite(self.best_value)
        if first or value < self.best_value - self.improvement_threshold * abs(self.best_value):
            if not first:
                self.n_successes += 1
            self.n_failures = 0
            self.best_value = value
            self.centre = X_new[i].detach().clone()
        else:
            self.n_successes = 0
            self.n_failures += 1
        if self.n_successes >= self.success_tolerance:
            self.length = min(self.multiplier * self.length, self.length_max)
            self.radius = min(max(round(self.multiplier * self.radius), self.radius + 1), self.radius_max)
            self.n_successes = 0
        elif self.n_failures >= self.failure_tolerance:
            self.length /= self.multiplier
            self.radius = min(int(self.radius / self.multiplier), self.radius - 1)
            self.n_failures = 0

    # ---------------------------------------------------------- geometry
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds of the numeric box, each ``[d_numeric]``."""
        assert self.centre is not None, "trust region has no centre yet"
        c = self.centre[self.space.numeric_columns.to(self.centre.device)]
        if self.lengthscales is not None and len(self.lengthscales) == len(c):
            w = self.lengthscales.to(c)
            w = w / torch.exp(torch.log(w).mean())
        else:
            w = torch.ones_like(c)
        half = 0.5 * self.length * w
        return (c - half).clamp(0.0, 1.0), (c + half).clamp(0.0, 1.0)

    def contains(self, X: torch.Tensor) -> torch.Tensor:
        """Mask ``[n]`` of points inside the region (numeric box and Hamming ball)."""
        if self.centre is None:
            return torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
        mask = torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
        if self.has_numeric:
            lo, hi = self.bounds()
            num = X[:, self.space.numeric_columns.to(X.device)]
            mask &= ((num >= lo.to(X) - 1e-9) & (num <= hi.to(X) + 1e-9)).all(-1)
        if self.has_nominal:
            mask &= self.space.hamming(X, self.centre.to(X).unsqueeze(0)).squeeze(-1) <= self.radius
        return mask

    def project(self, X: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``X`` ``[n, d]`` moved into the region: numeric columns clamped into the box, and rows outside the
        Hamming ball brought into it by resetting random differing nominal columns to the centre's
        (:func:`~mcbo.space.moves.project_hamming`, drawing from ``generator``). Rows inside are unchanged."""
        if self.centre is None:
            return X
        if self.has_numeric:
            lo, hi = self.bounds()
            cols = self.space.numeric_columns.to(X.device)
            X = X.clone()
            X[..., cols] = torch.maximum(torch.minimum(X[..., cols], hi.to(X)), lo.to(X))
        if self.has_nominal:
            X = project_hamming(self.space, X, self.centre.to(X), self.radius, generator)
        return X

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Up to ``n`` random points of the region ``[<=n, d]``: uniform in the box, the centre with a
        random number (up to ``radius``) of random nominal moves (draws a swap pushes outside are dropped)."""
        assert self.centre is not None, "trust region has no centre yet"
        X = self.centre.unsqueeze(0).repeat(n, 1)
        if self.has_numeric:
            lo, hi = self.bounds()
            U = torch.rand(n, len(lo), generator=generator, dtype=X.dtype).to(X.device)
            X[:, self.space.numeric_columns.to(X.device)] = lo.to(X) + U * (hi - lo).to(X)
        if self.has_nominal and self.radius > 0:
            n_moves = torch.randint(1, self.radius + 1, (n,), generator=generator)
            for step in range(int(n_moves.max())):
                active = (n_moves > step).to(X.device)
                X[active] = self.space.mutate(X[active], generator=generator)
        X = self.space.snap(X)
        return X[self.contains(X)]

    # -------------------------------------------------------- save / load
    def state_dict(self) -> dict[str, Any]:
        return {
            "length": self.length, "radius": self.radius, "n_successes": self.n_successes,
            "n_failures": self.n_failures, "best_value": self.best_value, "n_restarts": self.n_restarts,
            "centre": None if self.centre is None else self.centre.tolist(),
            "lengthscales": None if self.lengthscales is None else self.lengthscales.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any], dtype: torch.dtype, device: torch.device) -> None:
        self.length, self.radius = float(state["length"]), int(state["radius"])
        self.n_successes, self.n_failures = int(state["n_successes"]), int(state["n_failures"])
        self.best_value, self.n_restarts = float(state["best_value"]), int(state["n_restarts"])
        self.centre = None if state["centre"] is None else torch.tensor(state["centre"], dtype=dtype, device=device)
        ls = state["lengthscales"]
        self.lengthscales = None if ls is None else torch.tensor(ls, dtype=dtype, device=device)
