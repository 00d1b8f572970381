"""Acquisition functions: score ``[..., m, d]`` candidates -> ``[..., m]``, higher is better.

Importing this package registers every built-in acquisition in :data:`ACQUISITIONS`.
"""

from __future__ import annotations

from typing import Any

import torch

from mcbo.acquisition.analytic import (
    ExpectedImprovement,
    LogExpectedImprovement,
    LowerConfidenceBound,
    ProbabilityOfImprovement,
    ThompsonSampling,
)
from mcbo.acquisition.base import ACQUISITIONS, AcquisitionFunction, register_acquisition
from mcbo.models.base import Model


def build_acquisition(
    spec: dict[str, Any], model: Model, best_f: float, generator: torch.Generator | None = None
) -> AcquisitionFunction:
    """Instantiate the acquisition named by ``spec["type"]`` with the remaining settings.

    The constructor gets whichever of ``model``, ``best_f`` and ``generator`` it takes.

    Raises:
        ValueError: naming an unknown type or setting and listing the allowed ones.
    """
    settings = dict(spec)
    kind = settings.pop("type", None)
    return ACQUISITIONS.build(kind, settings, model=model, best_f=best_f, generator=generator)


__all__ = [
    "ACQUISITIONS", "AcquisitionFunction", "ExpectedImprovement", "LogExpectedImprovement",
    "LowerConfidenceBound", "ProbabilityOfImprovement", "ThompsonSampling", "build_acquisition",
    "register_acquisition",
]
