"""The acquisition contract: score ``[..., m, d]`` candidates -> ``[..., m]``, higher is better."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from mcbo.models.base import Model
from mcbo.registry import Registry


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


#: Recipe name -> acquisition class, constructed with the settings plus whichever of ``model``, ``best_f``
#: (the incumbent value, minimised) and ``generator`` (torch) its constructor takes.
ACQUISITIONS: Registry[type[AcquisitionFunction]] = Registry(
    "acquisition", context=("model", "best_f", "generator"))
#: Class decorator registering an acquisition under a recipe name: ``@register_acquisition("ei")``.
register_acquisition = ACQUISITIONS.register

__all__ = ["ACQUISITIONS", "AcquisitionFunction", "register_acquisition"]
