"""GP kernels for mixed spaces; each works on batched ``[..., n, d]`` inputs."""

from mcbo.models.kernels.categorical import OverlapKernel, TransformedOverlapKernel
from mcbo.models.kernels.diffusion import COMBOHorseshoePrior, DiffusionKernel, build_diffusion
from mcbo.models.kernels.matern import Matern52Kernel
from mcbo.models.kernels.hed import HEDKernel, build_hed, diverse_dictionary
from mcbo.models.kernels.mixture import MixtureKernel
from mcbo.models.kernels.ordinal import OrdinalKernel, build_ordinal
from mcbo.models.kernels.permutation import PermutationKernel, build_kendall, build_mallows, pair_features
from mcbo.models.kernels.ssk import SubsequenceStringKernel, build_ssk

__all__ = [
    "COMBOHorseshoePrior", "DiffusionKernel", "HEDKernel", "Matern52Kernel", "MixtureKernel", "OrdinalKernel", "OverlapKernel",
    "PermutationKernel", "SubsequenceStringKernel", "TransformedOverlapKernel", "build_diffusion", "build_hed",
    "build_kendall", "build_mallows", "build_ordinal", "build_ssk", "diverse_dictionary", "pair_features",
]
