"""Surrogate models behind one interface: ``fit(X, y)`` and batched ``posterior(X)``."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from mcbo.models.base import Model, Posterior
from mcbo.models.bocs import BOCSModel
from mcbo.models.gp import NOMINAL_KERNELS, NUMERIC_KERNELS, GPModel, build_kernel
from mcbo.models.neural_ucb import NeuralUCBModel
from mcbo.models.tnp import TNPModel
from mcbo.space import SearchSpace

#: Recipe name -> model class (constructed as ``cls(space, **settings, device=..., dtype=...)``).
MODELS: dict[str, type[Model]] = {"gp": GPModel, "bocs": BOCSModel, "neural_ucb": NeuralUCBModel,
                                  "tnp": TNPModel}


def build_model(
    spec: dict[str, Any], space: SearchSpace, device: torch.device, dtype: torch.dtype, seed: int | None = None
) -> Model:
    """Instantiate the model named by ``spec["type"]`` with the remaining settings.

    ``seed`` reaches models with randomness of their own (samplers, dictionaries) unless the spec sets one.
    """
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in MODELS:
        raise ValueError(f"unknown model type {kind!r}; allowed: {sorted(MODELS)}")
    cls = MODELS[kind]
    if seed is not None and "seed" in inspect.signature(cls.__init__).parameters:
        spec.setdefault("seed", seed)
    try:
        return cls(space, device=device, dtype=dtype, **spec)
    except TypeError as err:
        raise ValueError(f"model {kind!r}: {err}") from None


__all__ = [
    "BOCSModel", "GPModel", "MODELS", "Model", "NOMINAL_KERNELS", "NUMERIC_KERNELS", "Posterior", "build_kernel",
    "build_model",
]
