"""The acquisition-optimiser contract, the context of one call, and the helpers every optimiser shares.

An optimiser maximises an acquisition function over the search space, inside an optional trust
region and under the space's input constraints, and returns one new point that is neither
observed nor pending. Everything one call needs travels in an :class:`AcqContext`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mcbo.acquisition import AcquisitionFunction
from mcbo.registry import Registry
from mcbo.space import SearchSpace
from mcbo.trust_region import TrustRegion

#: Rows scored per acquisition call when scoring large pools without gradients.
SCORE_CHUNK = 8192


@dataclass
class AcqContext:
    """One acquisition-optimisation call: what to maximise, where, and what to avoid.

    Args:
        acq: the acquisition to maximise.
        space: the search space.
        X_exclude: ``[k, d]`` observed and pending points, never to be returned when avoidable; its dtype
            and device are those of the search.
        trust_region: region to stay inside (``None``, or a region without a centre: the whole space).
        generator: torch random generator of the search.
        np_rng: numpy random generator (space sampling); a fresh ``default_rng(0)`` when not given.
        incumbent: ``[1, d]`` the best point observed so far, where local searches start when no trust region
            is active (Optuna's GPSampler warm-starts its search there); ``None``: the observed or pending point
            the acquisition ranks highest.
    """

    acq: AcquisitionFunction
    space: SearchSpace
    X_exclude: torch.Tensor
    trust_region: TrustRegion | None = None
    generator: torch.Generator | None = None
    np_rng: np.random.Generator | None = None
    incumbent: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.np_rng is None:
            self.np_rng = np.random.default_rng(0)

    @property
    def dtype(self) -> torch.dtype:
        return self.X_exclude.dtype

    @property
    def device(self) -> torch.device:
        return self.X_exclude.device

    @property
    def region(self) -> TrustRegion | None:
        """The trust region when it restricts the search (it has a centre), else ``None``."""
        tr = self.trust_region
        return tr if tr is not None and tr.centre is not None else None

    def score(self, X: torch.Tensor) -> torch.Tensor:
        """Acquisition values ``[n]`` of ``X`` ``[n, d]``, without gradients (see :func:`score`)."""
        return score(self.acq, X)

    def allowed(self, X: torch.Tensor) -> torch.Tensor:
        """Mask ``[n]``: rows of ``X`` inside the trust region and satisfying the input constraints."""
        return allowed(self.space, X, self.trust_region)

    def random_points(self, n: int) -> torch.Tensor:
        """Up to ``n`` random allowed points ``[<=n, d]`` (see :func:`candidate_pool`)."""
        return candidate_pool(self.space, n, self.trust_region, self.np_rng, self.generator, self.dtype, self.device)

    def best_new(self, X: torch.Tensor, values: torch.Tensor) -> torch.Tensor | None:
        """The highest-scoring row ``[1, d]`` of ``X`` that is not excluded (``None`` if none)."""
        return best_new(X, values, self.X_exclude)[0]

    def fallback(self) -> torch.Tensor:
        """A random feasible point ``[1, d]`` not excluded, for when a search finds nothing new."""
        return fallback_point(self.space, self.X_exclude, self.np_rng, self.dtype, self.device)

    def numeric_box(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds ``[d_numeric]`` of the numeric columns, on ``like``'s dtype and device: the trust-region
        box, or the unit cube."""
        region = self.region
        if region is not None and len(self.space.numeric_columns):
            lo, hi = region.bounds()
            return lo.to(like), hi.to(like)
        n = len(self.space.numeric_columns)
        return torch.zeros(n, dtype=like.dtype, device=like.device), torch.ones(n, dtype=like.dtype, device=like.device)


class AcqOptimizer(ABC):
    """Maximises an acquisition function over a (trust-region restricted) mixed space.

    Subclasses implement :meth:`_optimize`. Optimisers that learn across calls override the hooks
    :meth:`observe`, :meth:`state_dict` and :meth:`load_state_dict` (by default they do nothing).
    """

    #: Whether the optimiser needs a deterministic acquisition (e.g. it takes gradient steps).
    needs_deterministic_acquisition = False
    #: Why it does, for the error message (e.g. "local search compares scores across calls").
    deterministic_reason = "this optimiser compares scores across calls"

    def check_acquisition(self, acq: AcquisitionFunction) -> None:
        """Raise ``ValueError`` when this optimiser needs a deterministic acquisition and ``acq`` is not."""
        if self.needs_deterministic_acquisition and not acq.deterministic:
            raise ValueError(
                f"{self.deterministic_reason} and needs a deterministic acquisition; "
                f"{type(acq).__name__} draws a new sample per call: use acq_optimizer 'random'"
            )

    def optimize(self, ctx: AcqContext) -> torch.Tensor:
        """Best new point ``[1, d]`` found; never a row of ``ctx.X_exclude`` when avoidable.

        Checks the acquisition against :attr:`needs_deterministic_acquisition`, then runs :meth:`_optimize`.
        """
        self.check_acquisition(ctx.acq)
        return self._optimize(ctx)

    @abstractmethod
    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        """The search itself (the acquisition already checked); same contract as :meth:`optimize`."""

    # --------------------------------------------------------------- hooks
    def observe(self, space: SearchSpace, X: torch.Tensor, y: torch.Tensor) -> None:
        """Learn from observations ``X`` ``[m, d]`` with values ``y`` ``[m]`` (minimised); default: nothing."""

    def state_dict(self) -> dict[str, Any] | None:
        """What the optimiser learnt, as plain JSON data (saved with the solver); ``None``: nothing."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the default has nothing to restore)."""


#: Recipe name -> optimiser class (constructed as ``cls(**settings)``).
ACQ_OPTIMIZERS: Registry[type[AcqOptimizer]] = Registry("acq_optimizer")
#: Class decorator registering an optimiser under a recipe name: ``@register_acq_optimizer("interleaved")``.
register_acq_optimizer = ACQ_OPTIMIZERS.register


def score(acq: AcquisitionFunction, X: torch.Tensor) -> torch.Tensor:
    """Acquisition values of ``X`` ``[n, d]`` -> ``[n]``, scored in chunks without gradients."""
    with torch.no_grad():
        if X.shape[0] <= SCORE_CHUNK:
            return acq(X)
        return torch.cat([acq(X[i:i + SCORE_CHUNK]) for i in range(0, X.shape[0], SCORE_CHUNK)])


def is_new(X: torch.Tensor, X_exclude: torch.Tensor) -> torch.Tensor:
    """Mask ``[n]``: rows of ``X`` equal to no row of ``X_exclude`` (up to 1e-9)."""
    if X_exclude.shape[0] == 0 or X.shape[0] == 0:
        return torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
    Xe = X_exclude.to(X)
    out = torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
    for i in range(0, X.shape[0], 1024):
        block = X[i:i + 1024]
        same = torch.cdist(block, Xe, p=1.0) < 1e-9
        out[i:i + 1024] = ~same.any(-1)
    return out


def candidate_pool(
    space: SearchSpace,
    n: int,
    trust_region: TrustRegion | None,
    np_rng: np.random.Generator,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """``n`` random feasible points ``[<=n, d]`` of the trust region (or of the whole space)."""
    if trust_region is not None and trust_region.centre is not None:
        X = trust_region.sample(n, generator=generator).to(device=device, dtype=dtype)
        if space.constraints and len(X):
            X = X[space.is_feasible(X)]
        return X
    return space.sample(n, generator=np_rng, dtype=dtype).to(device)


def allowed(space: SearchSpace, X: torch.Tensor, trust_region: TrustRegion | None) -> torch.Tensor:
    """Mask ``[n]``: rows inside the trust region and satisfying the input constraints."""
    mask = torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
    if trust_region is not None and trust_region.centre is not None:
        mask &= trust_region.contains(X)
    if space.constraints and mask.any():
        mask[mask.clone()] = space.is_feasible(X[mask])
    return mask


def fallback_point(
    space: SearchSpace,
    X_exclude: torch.Tensor,
    np_rng: np.random.Generator,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """A random feasible point not in ``X_exclude`` (``[1, d]``), used when a search finds nothing new."""
    for _ in range(20):
        X = space.sample(64, generator=np_rng, dtype=dtype).to(device)
        X = X[is_new(X, X_exclude)]
        if len(X):
            return X[:1]
    return space.sample(1, generator=np_rng, dtype=dtype).to(device)


def best_new(
    X: torch.Tensor, values: torch.Tensor, X_exclude: torch.Tensor
) -> tuple[torch.Tensor | None, float]:
    """The highest-scoring row of ``X`` that is not excluded, with its score (``None`` if none)."""
    mask = is_new(X, X_exclude) & torch.isfinite(values)
    if not mask.any():
        return None, -float("inf")
    i = int(torch.argmax(torch.where(mask, values, torch.full_like(values, -float("inf")))))
    return X[i:i + 1], float(values[i])


__all__ = [
    "ACQ_OPTIMIZERS", "AcqContext", "AcqOptimizer", "SCORE_CHUNK", "allowed", "best_new", "candidate_pool",
    "fallback_point", "is_new", "register_acq_optimizer", "score",
]
