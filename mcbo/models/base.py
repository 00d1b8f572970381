"""The surrogate-model contract: ``fit(X, y)`` then ``posterior(X)`` on batches of candidates."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mcbo.registry import Registry


@dataclass
class Posterior:
    """Marginal predictive distribution of the latent objective at ``m`` points.

    Attributes:
        mean: ``[..., m]`` predictive means, in the units of the observed ``y``.
        variance: ``[..., m]`` predictive variances (latent, without observation noise).
    """

    mean: torch.Tensor
    variance: torch.Tensor

    @property
    def std(self) -> torch.Tensor:
        return self.variance.clamp(min=1e-12).sqrt()


class Model(ABC):
    """A surrogate of the objective over encoded points ``X`` of shape ``[n, d]``.

    Subclasses implement :meth:`fit`, :meth:`posterior` and :meth:`sample`; the other methods are
    optional hooks whose defaults say "not supported".

    Args:
        device: torch device the model and its inputs live on.
        dtype: torch dtype of the model's computations.
    """

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float64) -> None:
        self.device = torch.device(device)
        self.dtype = dtype

    @abstractmethod
    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Fit to observations ``X`` ``[n, d]`` and ``y`` ``[n]`` (minimisation convention)."""

    @abstractmethod
    def posterior(self, X: torch.Tensor) -> Posterior:
        """Predictive marginals at candidates ``X`` ``[..., m, d]``; differentiable in ``X``."""

    @abstractmethod
    def sample(self, X: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Joint samples of the latent objective at ``X`` ``[m, d]``, shape ``[n_samples, m]``."""

    def condition_on(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Add fantasy observations ``X`` ``[k, d]``, ``y`` ``[k]`` without refitting hyper-parameters."""
        raise NotImplementedError(f"{type(self).__name__} does not support fantasy observations")

    def numeric_lengthscales(self) -> torch.Tensor | None:
        """Lengthscales of the numeric columns ``[d_numeric]`` (used to shape trust regions), if any."""
        return None

    def thompson_function(
        self, generator: torch.Generator | None = None
    ) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """One posterior sample as a function ``[..., m, d]`` -> ``[..., m]``, for models that can draw one
        (parametric models such as BOCS); ``None`` (the default): Thompson sampling draws per call."""
        return None

    def state_for_warm_start(self) -> dict[str, Any] | None:
        """Plain-data state the next fit starts from, saved with the solver; ``None`` (the default): nothing."""
        return None

    def load_warm_start(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_for_warm_start` returned (the default has nothing to restore)."""

    def _to(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)


#: Recipe name -> model class (constructed as ``cls(space, device=..., dtype=..., **settings)``).
MODELS: Registry[type[Model]] = Registry("model", context=("space", "device", "dtype"))
#: Class decorator registering a model under a recipe name: ``@register_model("gp")``.
register_model = MODELS.register
