"""Analytic acquisition functions on a model's marginal posterior (minimisation convention).

Every acquisition maps candidates ``X`` of shape ``[..., m, d]`` to scores ``[..., m]`` where
**higher is better**; acquisition optimisers maximise them. The improvement-based functions use
``z = (best_f - mean) / std``, the standardised improvement below the incumbent ``best_f``.

* Expected improvement (Jones et al., 1998) and its log form (Ament et al., "Unexpected
  Improvements to Expected Improvement for Bayesian Optimization", NeurIPS 2023).
* Probability of improvement (Kushner, 1964), computed in log space.
* Lower confidence bound (Srinivas et al., GP-UCB, ICML 2010), negated so higher is better.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from mcbo.models.base import Model, Posterior

_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class AcquisitionFunction(ABC):
    """Scores a batch of candidates with a fitted model; higher scores are better.

    Args:
        model: a fitted surrogate.
    """

    #: ``True`` when two calls on the same input give the same scores (required by gradient optimisers).
    deterministic: bool = True

    def __init__(self, model: Model) -> None:
        self.model = model

    @abstractmethod
    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Scores of candidates ``X`` ``[..., m, d]`` -> ``[..., m]``."""


class _ImprovementBased(AcquisitionFunction):
    """Shared code: the incumbent ``best_f`` and the standardised improvement ``z``."""

    def __init__(self, model: Model, best_f: float | torch.Tensor) -> None:
        super().__init__(model)
        self.best_f = torch.as_tensor(best_f)

    def _z(self, posterior: Posterior) -> tuple[torch.Tensor, torch.Tensor]:
        std = posterior.std
        best = self.best_f.to(posterior.mean)
        return (best - posterior.mean) / std, std


class ExpectedImprovement(_ImprovementBased):
    """``EI(x) = E[max(best_f - f(x), 0)] = std * (phi(z) + z Phi(z))``."""

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        z, std = self._z(self.model.posterior(X))
        return std * torch.exp(_log_h(z))


class LogExpectedImprovement(_ImprovementBased):
    """``log EI(x)``, accurate where EI underflows (Ament et al., NeurIPS 2023)."""

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        z, std = self._z(self.model.posterior(X))
        return _log_h(z) + torch.log(std)


class ProbabilityOfImprovement(_ImprovementBased):
    """``log PI(x) = log Phi(z)`` (log space so that tiny probabilities still rank)."""

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        z, _ = self._z(self.model.posterior(X))
        return torch.special.log_ndtr(z)


class LowerConfidenceBound(AcquisitionFunction):
    """``-(mean - sqrt(beta) * std)``: the negated lower confidence bound (GP-UCB for minimisation)."""

    def __init__(self, model: Model, beta: float = 4.0) -> None:
        super().__init__(model)
        if beta < 0:
            raise ValueError(f"lcb beta must be >= 0, got {beta!r}")
        self.beta = float(beta)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        posterior = self.model.posterior(X)
        return -(posterior.mean - math.sqrt(self.beta) * posterior.std)


class ThompsonSampling(AcquisitionFunction):
    """Negated joint posterior sample over the candidate batch (Thompson, 1933).

    For GPs each call draws a fresh joint sample over the given ``[m, d]`` candidates, so it is meant
    for optimisers that score one finite candidate pool; local optimisers reject it. Models with a
    ``thompson_function(generator)`` (BOCS) give one sampled function per acquisition instead, which
    every optimiser can use.
    """

    deterministic = False

    def __init__(self, model: Model, generator: torch.Generator | None = None) -> None:
        super().__init__(model)
        self.generator = generator
        # Parametric models (BOCS) draw one function per acquisition: the same sample at every call.
        self._function = model.thompson_function(generator) if hasattr(model, "thompson_function") else None
        if self._function is not None:
            self.deterministic = True

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        if self._function is not None:
            return -self._function(X)
        flat = X.reshape(-1, X.shape[-1])
        return -self.model.sample(flat, 1, generator=self.generator)[0].reshape(X.shape[:-1])


def _log_h(z: torch.Tensor) -> torch.Tensor:
    """``log(phi(z) + z Phi(z))``, stable for all ``z`` (the log-EI kernel of Ament et al.)."""
    direct = torch.log(torch.clamp(_INV_SQRT_2PI * torch.exp(-0.5 * z**2) + z * torch.special.ndtr(z), min=1e-300))
    # z < -1: phi(z) + z Phi(z) = phi(z) * (1 - sqrt(pi/2) |z| erfcx(|z| / sqrt 2)).
    a = (-z).clamp(min=1.0)
    t = math.sqrt(math.pi / 2) * a * torch.special.erfcx(a / math.sqrt(2))
    mid = -0.5 * a**2 - _LOG_SQRT_2PI + torch.log1p(-t.clamp(max=1 - 1e-16))
    # |z| huge: 1 - t ~ 1 / z^2, so log h ~ -z^2/2 - log sqrt(2 pi) - 2 log|z|.
    far = -0.5 * a**2 - _LOG_SQRT_2PI - 2 * torch.log(a)
    tail = torch.where(a > 1e3, far, mid)
    return torch.where(z > -1.0, direct, tail)
