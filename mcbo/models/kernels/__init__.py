"""GP kernels for mixed spaces; each works on batched ``[..., n, d]`` inputs.

Importing this package registers every built-in kernel in :data:`NUMERIC_KERNELS` and
:data:`NOMINAL_KERNELS` (see :mod:`mcbo.models.kernels.registry`).
"""

from mcbo.models.kernels.categorical import (
    OverlapKernel,
    TransformedOverlapKernel,
    build_overlap,
    build_transformed_overlap,
)
from mcbo.models.kernels.diffusion import COMBOHorseshoePrior, DiffusionKernel, build_diffusion
from mcbo.models.kernels.matern import Matern52Kernel, build_matern52, build_rbf
from mcbo.models.kernels.hed import HEDKernel, build_hed, diverse_dictionary
from mcbo.models.kernels.mixture import MixtureKernel
from mcbo.models.kernels.ordinal import OrdinalKernel, build_ordinal
from mcbo.models.kernels.permutation import PermutationKernel, build_kendall, build_mallows, pair_features
from mcbo.models.kernels.registry import (
    NOMINAL_KERNELS,
    NUMERIC_KERNELS,
    KernelBuilder,
    register_nominal_kernel,
    register_numeric_kernel,
)
from mcbo.models.kernels.ssk import SubsequenceStringKernel, build_ssk

__all__ = [
    "COMBOHorseshoePrior", "DiffusionKernel", "HEDKernel", "KernelBuilder", "Matern52Kernel", "MixtureKernel",
    "NOMINAL_KERNELS", "NUMERIC_KERNELS", "OrdinalKernel", "OverlapKernel", "PermutationKernel",
    "SubsequenceStringKernel", "TransformedOverlapKernel", "build_diffusion", "build_hed", "build_kendall",
    "build_mallows", "build_matern52", "build_ordinal", "build_overlap", "build_rbf", "build_ssk",
    "build_transformed_overlap", "diverse_dictionary", "pair_features", "register_nominal_kernel",
    "register_numeric_kernel",
]
