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

import torch

from mcbo.acquisition.base import AcquisitionFunction, register_acquisition
from mcbo.models.base import Model, Posterior

_INV_SQRT_2PI = 1.0 / math.sqrt(2 * math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class _ImprovementBased(AcquisitionFunction):
    """Shared code: the incumbent ``best_f`` and the standardised improvement ``z``."""

    def __init__(self, model: Model, best_f: float | torch.Tensor) -> None:
        super().__init__(model)
        self.best_f = torch.as_tensor(best_f)

    def _z(self, posterior: Posterior) -> tuple[torch.Tensor, torch.Tensor]:
        std = posterior.std
        best = self.best_f.to(posterior.mean)
        return (best - posterior.mean) / std, std


@register_acquisition("plain_ei")
class ExpectedImprovement(_ImprovementBased):
    """``EI(x) = E[max(best_f - f(x), 0)] = std * (phi(z) + z Phi(z))``."""

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        z, std = self._z(self.model.posterior(X))
        return std * torch.exp(_log_h(z))


@register_acquisition("ei")  # log-EI ranks like EI and keeps gradients where EI underflows
@register_acquisition("log_ei")
class LogExpectedImprovement(_ImprovementBased):
    """``log EI(x)``, accurate where EI underflows (Ament et al., NeurIPS 2023)."""

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        z, std = self._z(self.model.posterior(X))
        return _log_h(z) + torch.log(std)


@register_acquisition("pi")
class ProbabilityOfImprovement(_ImprovementBased):
    """``log PI(x) = log Phi(z)`` (log space so that tiny probabilities still rank)."""

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        z, _ = self._z(self.model.posterior(X))
        return torch.special.log_ndtr(z)


@register_acquisition("lcb")
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


@register_acquisition("ts")
class ThompsonSampling(AcquisitionFunction):
    """Negated joint posterior sample over the candidate batch (Thompson, 1933).

    For GPs each call draws a fresh joint sample over the given ``[m, d]`` candidates, so it is meant
    for optimisers that score one finite candidate pool; local optimisers reject it. Models whose
    :meth:`~mcbo.models.base.Model.thompson_function` draws one function (BOCS) give one sampled function per
    acquisition instead, which every optimiser can use.
    """

    deterministic = False

    def __init__(self, model: Model, generator: torch.Generator | None = None) -> None:
        super().__init__(model)
        self.generator = generator
        # Parametric models (BOCS) draw one function per acquisition: the same sample at every call.
        self._function = model.thompson_function(generator)
        if self._function is not None:
            self.deterministic = True

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        if self._function is not None:
            return -self._function(X)
        flat = X.reshape(-1, X.shape[-1])
        return -self.model.sample(flat, 1, generator=self.generator)[0].reshape(X.shape[:-1])


def _log_h(z: torch.Tensor) -> torch.Tensor:
    """``log(phi(z) + z Phi(z))``, finite with finite gradients for all ``z`` in float32 and float64.

    The log-EI kernel of Ament et al. (NeurIPS 2023), computed as BoTorch's ``_log_ei_helper`` does: each branch of
    the final ``where`` gets inputs clamped to its own range, so the branch not taken never produces an inf or NaN
    whose zero-weighted gradient would still poison the result.
    """
    z_near = z.clamp(min=-1.0)
    direct = torch.log(_INV_SQRT_2PI * torch.exp(-0.5 * z_near**2) + z_near * torch.special.ndtr(z_near))
    # z < -1: phi(z) + z Phi(z) = phi(z) * (1 - t), t = sqrt(pi/2) |z| erfcx(|z| / sqrt 2).
    a = (-z).clamp(min=1.0)
    far_from = _SERIES_FROM[z.dtype] if z.dtype in _SERIES_FROM else _SERIES_FROM[torch.float64]
    a_mid = a.clamp(max=far_from)
    t = math.sqrt(math.pi / 2) * a_mid * torch.special.erfcx(a_mid / math.sqrt(2))
    mid = torch.log1p(-t)
    # |z| large: 1 - t = a^-2 (1 - 3 a^-2 + 15 a^-4 - ...) (asymptotic series of erfcx), where 1 - t itself would
    # cancel to a few correct digits (float32 from |z| ~ 30 on).
    a_far = a.clamp(min=far_from)
    inv2 = a_far**-2
    far = -2 * torch.log(a_far) + torch.log1p(inv2 * (-3 + 15 * inv2 - 105 * inv2**2))
    tail = -0.5 * a**2 - _LOG_SQRT_2PI + torch.where(a < far_from, mid, far)
    return torch.where(z > -1.0, direct, tail)


#: |z| from which log(1 - t) in ``_log_h`` is taken from the asymptotic series (its 4 terms are then exact to the
#: dtype's precision, and the direct form has not yet lost it).
_SERIES_FROM = {torch.float32: 30.0, torch.float64: 1e3, torch.float16: 30.0, torch.bfloat16: 30.0}
