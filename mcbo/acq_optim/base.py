"""The acquisition-optimiser contract and the helpers every optimiser shares.

An optimiser maximises an acquisition function over the search space, inside an optional trust
region and under the space's input constraints, and returns one new point that is neither
observed nor pending.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from mcbo.acquisition import AcquisitionFunction
from mcbo.space import SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion

#: Rows scored per acquisition call when scoring large pools without gradients.
SCORE_CHUNK = 8192


class AcqOptimizer(ABC):
    """Maximises an acquisition function over a (trust-region restricted) mixed space."""

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

    def optimize(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X_exclude: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None = None,
        generator: torch.Generator | None = None,
        np_rng: np.random.Generator | None = None,
    ) -> torch.Tensor:
        """Best new point ``[1, d]`` found; never a row of ``X_exclude`` ``[k, d]`` when avoidable.

        Checks the acquisition against :attr:`needs_deterministic_acquisition`, defaults ``np_rng`` to a
        generator seeded 0, and runs the optimiser's :meth:`_optimize`.
        """
        self.check_acquisition(acq)
        np_rng = np_rng if np_rng is not None else np.random.default_rng(0)
        return self._optimize(acq, space, X_exclude, trust_region, generator, np_rng)

    @abstractmethod
    def _optimize(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X_exclude: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None,
        generator: torch.Generator | None,
        np_rng: np.random.Generator,
    ) -> torch.Tensor:
        """The search itself (the acquisition already checked, ``np_rng`` set); same contract as :meth:`optimize`."""


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
    trust_region: CasmopolitanTrustRegion | None,
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


def allowed(space: SearchSpace, X: torch.Tensor, trust_region: CasmopolitanTrustRegion | None) -> torch.Tensor:
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
