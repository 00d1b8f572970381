"""Surrogate models behind one interface: ``fit(X, y)`` and batched ``posterior(X)``.

Importing this package registers every built-in model in :data:`MODELS` and kernel in
:data:`NUMERIC_KERNELS` / :data:`NOMINAL_KERNELS`.
"""

from __future__ import annotations

from typing import Any

import torch

from mcbo.models.base import MODELS, Model, Posterior, register_model
from mcbo.models.bocs import BOCSModel
from mcbo.models.gp import GPModel, build_kernel
from mcbo.models.kernels import NOMINAL_KERNELS, NUMERIC_KERNELS, register_nominal_kernel, register_numeric_kernel
from mcbo.models.neural_ucb import NeuralUCBModel
from mcbo.models.tnp import TNPModel
from mcbo.space import SearchSpace


def build_model(
    spec: dict[str, Any], space: SearchSpace, device: torch.device, dtype: torch.dtype, seed: int | None = None
) -> Model:
    """Instantiate the model named by ``spec["type"]`` with the remaining settings.

    ``seed`` reaches models with randomness of their own (samplers, dictionaries) unless the spec sets one.

    Raises:
        ValueError: naming an unknown type or setting and listing the allowed ones.
    """
    settings = dict(spec)
    kind = settings.pop("type", None)
    if seed is not None and "seed" in MODELS.settings(kind):
        settings.setdefault("seed", seed)
    return MODELS.build(kind, settings, space=space, device=device, dtype=dtype)


__all__ = [
    "BOCSModel", "GPModel", "MODELS", "Model", "NOMINAL_KERNELS", "NUMERIC_KERNELS", "NeuralUCBModel", "Posterior",
    "TNPModel", "build_kernel", "build_model", "register_model", "register_nominal_kernel", "register_numeric_kernel",
]
