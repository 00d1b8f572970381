"""Random-candidate search: score a pool of random points of the (trust) region, keep the best."""

from __future__ import annotations

import numpy as np
import torch

from mcbo.acq_optim.base import AcqOptimizer, best_new, candidate_pool, fallback_point, score
from mcbo.acquisition import AcquisitionFunction
from mcbo.space import SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


class RandomCandidateSearch(AcqOptimizer):
    """Arg-max of the acquisition over ``n_candidates`` random feasible points, scored in one batch.

    Works with every acquisition, Thompson sampling included (one joint sample over the pool).
    """

    def __init__(self, n_candidates: int = 2000) -> None:
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates!r}")
        self.n_candidates = int(n_candidates)

    def _optimize(
        self,
        acq: AcquisitionFunction,
        space: SearchSpace,
        X_exclude: torch.Tensor,
        trust_region: CasmopolitanTrustRegion | None,
        generator: torch.Generator | None,
        np_rng: np.random.Generator,
    ) -> torch.Tensor:
        X = candidate_pool(space, self.n_candidates, trust_region, np_rng, generator, X_exclude.dtype,
                           X_exclude.device)
        if len(X):
            x, _ = best_new(X, score(acq, X), X_exclude)
            if x is not None:
                return x
        return fallback_point(space, X_exclude, np_rng, X_exclude.dtype, X_exclude.device)
