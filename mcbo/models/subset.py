"""Which observations a GP uses when there are many (issue 21).

Above a few hundred observations the marginal-likelihood fit dominates an ask: each L-BFGS-B step
factorises the ``[n, n]`` covariance and forms its inverse, ``O(n^3)``. Hyper-parameters are few and
settle long before ``n`` is large, so :class:`~mcbo.models.gp.GPModel` can fit them on at most ``m``
observations (:func:`fit_subset`) and then condition the exact posterior on all ``n`` (one factorisation).
This is the subset-of-data estimator of hyper-parameters (Chalupka, Williams & Murray, "A Framework for
Evaluating Approximation Methods for Gaussian Process Regression", JMLR 2013, sec. 2 and 5: SoD
hyper-parameters with a full-data predictor).

Above a few thousand observations the posterior itself (the ``[n, n]`` factor, and a triangular solve per
candidate inside the acquisition optimiser) costs seconds per ask, so the model can also be conditioned on
at most ``M`` of them (:func:`train_subset`): the best ones and the most recent ones. In a trust-region solver
the recent proposals cluster around the current centre, so the most recent points stand in for "the points
near where the optimiser is searching" without the model knowing the trust region (TuRBO and Casmopolitan fit
on the points of the region; MCBO's reference ``ExactGPModel`` caps its training set at
``max_training_dataset_size = 1000``).
"""

from __future__ import annotations

import torch


def fit_subset(y: torch.Tensor, size: int, best_fraction: float, seed: int, stream: int | None = None) -> torch.Tensor:
    """Indices ``[size]`` (sorted) of the observations ``y`` ``[n]`` to fit hyper-parameters on.

    ``round(best_fraction * size)`` of them are the lowest values (minimisation), the rest drawn uniformly
    without replacement from the others. The draw depends only on ``seed`` and ``stream`` (default ``n``),
    so a resumed run picks the same subset. Returns all indices when ``n <= size``.
    """
    n = y.shape[-1]
    if n <= size:
        return torch.arange(n, device=y.device)
    n_best = min(size, max(0, round(best_fraction * size)))
    best = torch.argsort(y, stable=True)[:n_best]
    rest_mask = torch.ones(n, dtype=torch.bool, device=y.device)
    rest_mask[best] = False
    rest = torch.nonzero(rest_mask).reshape(-1)
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + (n if stream is None else int(stream)))
    pick = rest[torch.randperm(len(rest), generator=gen)[: size - n_best].to(y.device)]
    return torch.sort(torch.cat([best, pick])).values


def train_subset(y: torch.Tensor, size: int, best_fraction: float) -> torch.Tensor:
    """Indices ``[min(n, size)]`` (sorted) of the observations ``y`` ``[n]`` (in the order they were made) that a
    capped GP is conditioned on.

    ``round(best_fraction * size)`` of them are the lowest values (minimisation; ties broken by position), the
    rest the most recent of the others. Deterministic: depends only on ``y`` and its order, so a resumed run
    makes the same choice. Returns all indices when ``n <= size``.
    """
    n = y.shape[-1]
    if n <= size:
        return torch.arange(n, device=y.device)
    n_best = min(size, max(0, round(best_fraction * size)))
    keep = torch.zeros(n, dtype=torch.bool, device=y.device)
    keep[torch.argsort(y, stable=True)[:n_best]] = True
    others = torch.nonzero(~keep).reshape(-1)
    keep[others[len(others) - (size - n_best):]] = True
    return torch.nonzero(keep).reshape(-1)
