"""Which observations a GP fits its hyper-parameters on when there are many (issue 21).

Above a few hundred observations the marginal-likelihood fit dominates an ask: each L-BFGS-B step
factorises the ``[n, n]`` covariance and forms its inverse, ``O(n^3)``. Hyper-parameters are few and
settle long before ``n`` is large, so :class:`~mcbo.models.gp.GPModel` can fit them on at most ``m``
observations and then condition the exact posterior on all ``n`` (one factorisation). This is the
subset-of-data estimator of hyper-parameters (Chalupka, Williams & Murray, "A Framework for Evaluating
Approximation Methods for Gaussian Process Regression", JMLR 2013, sec. 2 and 5: SoD hyper-parameters
with a full-data predictor).
"""

from __future__ import annotations

import torch


def fit_subset(y: torch.Tensor, size: int, best_fraction: float, seed: int) -> torch.Tensor:
    """Indices ``[size]`` (sorted) of the observations ``y`` ``[n]`` to fit hyper-parameters on.

    ``round(best_fraction * size)`` of them are the lowest values (minimisation), the rest drawn uniformly
    without replacement from the others. The draw depends only on ``seed`` and ``n``, so a resumed run
    picks the same subset. Returns all indices when ``n <= size``.
    """
    n = y.shape[-1]
    if n <= size:
        return torch.arange(n, device=y.device)
    n_best = min(size, max(0, round(best_fraction * size)))
    best = torch.argsort(y, stable=True)[:n_best]
    rest_mask = torch.ones(n, dtype=torch.bool, device=y.device)
    rest_mask[best] = False
    rest = torch.nonzero(rest_mask).reshape(-1)
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + n)
    pick = rest[torch.randperm(len(rest), generator=gen)[: size - n_best].to(y.device)]
    return torch.sort(torch.cat([best, pick])).values
