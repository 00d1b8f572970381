"""Kernel registries: every built-in kernel is registered under its recipe name; unknown names are refused."""

import pytest
import torch

from mcbo.models import build_kernel
from mcbo.models.kernels import NOMINAL_KERNELS, NUMERIC_KERNELS, Matern52Kernel, OverlapKernel
from mcbo.space import Categorical, Real, SearchSpace


def test_built_in_kernels_are_registered_by_name():
    assert set(NUMERIC_KERNELS) >= {"matern52", "rbf", "ordinal"}
    assert set(NOMINAL_KERNELS) >= {"overlap", "transformed_overlap", "ssk", "hed", "diffusion", "kendall", "mallows"}
    space = SearchSpace([Real("x", 0, 1), Categorical("c", ["a", "b"])])
    assert isinstance(NUMERIC_KERNELS["matern52"](space, space.numeric_columns), Matern52Kernel)
    assert isinstance(NOMINAL_KERNELS["overlap"](space, torch.tensor([1])), OverlapKernel)


def test_unknown_kernel_names_list_the_registered_ones():
    space = SearchSpace([Real("x", 0, 1)])
    with pytest.raises(ValueError, match=r"unknown numeric_kernel 'matern32'; allowed: \[.*'matern52'"):
        build_kernel(space, "matern32", "overlap", "mixture")
