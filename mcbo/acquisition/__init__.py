"""Acquisition functions: score ``[..., m, d]`` candidates -> ``[..., m]``, higher is better."""

from __future__ import annotations

from typing import Any

import torch

from mcbo.acquisition.analytic import (
    AcquisitionFunction,
    ExpectedImprovement,
    LogExpectedImprovement,
    LowerConfidenceBound,
    ProbabilityOfImprovement,
    ThompsonSampling,
)
from mcbo.models.base import Model

#: Recipe name -> acquisition class.
ACQUISITIONS: dict[str, type[AcquisitionFunction]] = {
    "ei": LogExpectedImprovement,  # log-EI ranks like EI and keeps gradients where EI underflows
    "plain_ei": ExpectedImprovement,
    "log_ei": LogExpectedImprovement,
    "pi": ProbabilityOfImprovement,
    "lcb": LowerConfidenceBound,
    "ts": ThompsonSampling,
}


def build_acquisition(
    spec: dict[str, Any], model: Model, best_f: float, generator: torch.Generator | None = None
) -> AcquisitionFunction:
    """Instantiate the acquisition named by ``spec["type"]`` with the remaining settings."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition type {kind!r}; allowed: {sorted(ACQUISITIONS)}")
    cls = ACQUISITIONS[kind]
    try:
        if issubclass(cls, (ExpectedImprovement, LogExpectedImprovement, ProbabilityOfImprovement)):
            return cls(model, best_f=best_f, **spec)
        if cls is ThompsonSampling:
            return cls(model, generator=generator, **spec)
        return cls(model, **spec)
    except TypeError as err:
        raise ValueError(f"acquisition {kind!r}: {err}") from None


__all__ = [
    "ACQUISITIONS", "AcquisitionFunction", "ExpectedImprovement", "LogExpectedImprovement",
    "LowerConfidenceBound", "ProbabilityOfImprovement", "ThompsonSampling", "build_acquisition",
]
