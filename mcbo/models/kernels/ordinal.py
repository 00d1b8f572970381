"""Kernel for ordinal columns: the exponential (Laplace) ARD kernel on the rank.

An ordinal parameter with ``K`` values is encoded by its normalised rank ``r / (K - 1)`` in ``[0, 1]``.
Its values form a path graph ``v_1 - v_2 - ... - v_K`` (how COMBO, Oh et al. NeurIPS 2019, models
ordinal variables), and the kernel used here is::

    k(x, x') = prod_i exp(-|x_i - x'_i| / l_i) = exp(-sum_i |x_i - x'_i| / l_i)

On the grid of ranks this is ``rho_i^|r_i - r'_i|`` with ``rho_i = exp(-1 / ((K_i - 1) l_i))``: the
covariance of a stationary first-order autoregressive (Markov) process along the chain of values.
Why this and not Matérn-5/2: an ordinal has no values between its grid points, so the smoothness
a Matérn-5/2 kernel assumes (twice differentiable paths) has no meaning there; what the order
does tell us is that correlation should fall off with the number of steps between values, which is
exactly what the AR(1) covariance encodes with one parameter per column. The product (L1) form,
unlike gpytorch's Matérn-1/2 on the Euclidean distance, factorises over columns, so each column
keeps that exact AR(1) form. The whole matrix comes from one batched ``torch.cdist(p=1)``.

Builder ``ordinal`` (``numeric_kernel: ordinal``): the ordinal kernel acts on the ORDINAL columns
only, and real/integer columns, if any, keep the Matérn-5/2 ARD kernel of ``matern52``, multiplied
in. A space with no ordinal column raises ``ValueError``: the kernel would then be a plain
exponential kernel on continuous values, and ``matern52`` is the better default there. With this
kernel ``GPModel.numeric_lengthscales`` does not cover every numeric column, so a Casmopolitan trust
region uses a cube box rather than a lengthscale-shaped one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel, ProductKernel

from mcbo.models.kernels.matern import Matern52Kernel
from mcbo.models.kernels.registry import register_numeric_kernel
from mcbo.space import SearchSpace
from mcbo.space.params import ColumnKind


class OrdinalKernel(Kernel):
    """``exp(-sum_i |x_i - x'_i| / l_i)`` on normalised ranks ``[..., n, d]`` with ARD lengthscales.

    Args:
        active_dims: the ordinal columns in the encoded input.
        lengthscale_init: initial lengthscale of every column (in normalised-rank units).
    """

    has_lengthscale = True

    def __init__(self, active_dims: Sequence[int] | torch.Tensor, lengthscale_init: float = 0.5, **kwargs) -> None:
        dims = torch.as_tensor(active_dims)
        if not lengthscale_init > 0:
            raise ValueError(f"lengthscale_init must be positive, got {lengthscale_init!r}")
        kwargs.setdefault("lengthscale_constraint", Interval(0.01, 20.0))
        super().__init__(ard_num_dims=len(dims), active_dims=dims, **kwargs)
        self.lengthscale = lengthscale_init

    def adjacent_correlation(self, n_values: Sequence[int]) -> torch.Tensor:
        """``rho_i``: correlation between neighbouring values of column ``i`` with ``n_values[i]`` values, ``[d]``."""
        steps = (torch.as_tensor(list(n_values), dtype=self.lengthscale.dtype) - 1).clamp(min=1)
        return torch.exp(-1.0 / (steps * self.lengthscale.reshape(-1)))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        ls = self.lengthscale.reshape(-1)
        z1, z2 = x1 / ls, x2 / ls
        if diag:
            return torch.exp(-(z1 - z2).abs().sum(-1))
        batch = torch.broadcast_shapes(z1.shape[:-2], z2.shape[:-2])
        z1, z2 = z1.expand(*batch, *z1.shape[-2:]), z2.expand(*batch, *z2.shape[-2:])
        return torch.exp(-torch.cdist(z1, z2, p=1.0))


@register_numeric_kernel("ordinal")
def build_ordinal(space: SearchSpace, cols: torch.Tensor) -> Kernel:
    """Builder for ``numeric_kernel: ordinal`` over ``cols`` (the numeric columns).

    Ordinal columns get :class:`OrdinalKernel`; real and integer columns get Matérn-5/2 ARD, multiplied in.

    Raises:
        ValueError: when none of ``cols`` is an ordinal column.
    """
    kinds = [space.column_kinds[int(c)] for c in cols]
    ordinal = cols[torch.tensor([k is ColumnKind.ORDINAL for k in kinds], dtype=torch.bool)]
    others = cols[torch.tensor([k is not ColumnKind.ORDINAL for k in kinds], dtype=torch.bool)]
    if len(ordinal) == 0:
        names = [p.name for p, sl in zip(space.params, space.param_slices) if sl.start in set(cols.tolist())]
        raise ValueError(
            f"numeric_kernel 'ordinal' needs at least one Ordinal parameter; the numeric parameters {names} are "
            f"real/integer, use numeric_kernel 'matern52' for them"
        )
    kernel = OrdinalKernel(active_dims=ordinal)
    if len(others) == 0:
        return kernel
    matern = Matern52Kernel(ard_num_dims=len(others), active_dims=others,
                          lengthscale_constraint=Interval(0.01, 20.0))
    return ProductKernel(matern, kernel)


__all__ = ["OrdinalKernel", "build_ordinal"]
