"""Registries of the GP kernels a recipe names (``numeric_kernel``, ``nominal_kernel`` of model ``gp``).

A kernel is registered as a *builder* ``(space, cols) -> gpytorch Kernel`` that makes the kernel for
columns ``cols`` (a ``[k]`` index tensor) of ``space``; the GP combines the numeric and nominal kernels.
A new kernel is one module with its class and a decorated builder::

    @register_nominal_kernel("my_kernel")
    def build_my_kernel(space: SearchSpace, cols: torch.Tensor) -> Kernel:
        return MyKernel(space.cardinalities[cols].tolist(), active_dims=cols)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from gpytorch.kernels import Kernel

from mcbo.registry import Registry
from mcbo.space import SearchSpace

#: ``(space, cols) -> Kernel`` on columns ``cols`` of ``space``.
KernelBuilder = Callable[[SearchSpace, torch.Tensor], Kernel]

#: Kernels for the numeric columns (real, integer, ordinal), by recipe name.
NUMERIC_KERNELS: Registry[KernelBuilder] = Registry("numeric_kernel", key=None, context=("space", "cols"))
#: Kernels for the nominal columns (categorical, boolean, permutation, sequence), by recipe name.
NOMINAL_KERNELS: Registry[KernelBuilder] = Registry("nominal_kernel", key=None, context=("space", "cols"))
#: Decorator registering a numeric-kernel builder: ``@register_numeric_kernel("matern52")``.
register_numeric_kernel = NUMERIC_KERNELS.register
#: Decorator registering a nominal-kernel builder: ``@register_nominal_kernel("overlap")``.
register_nominal_kernel = NOMINAL_KERNELS.register

__all__ = ["KernelBuilder", "NOMINAL_KERNELS", "NUMERIC_KERNELS", "register_nominal_kernel", "register_numeric_kernel"]
