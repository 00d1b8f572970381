"""GP kernels for mixed spaces; each works on batched ``[..., n, d]`` inputs."""

from mcbo.models.kernels.categorical import OverlapKernel, TransformedOverlapKernel
from mcbo.models.kernels.mixture import MixtureKernel

__all__ = ["MixtureKernel", "OverlapKernel", "TransformedOverlapKernel"]
