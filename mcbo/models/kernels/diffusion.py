"""COMBO's diffusion kernel on the combinatorial graph (Oh et al., "Combinatorial Bayesian
optimization using the graph Cartesian product", NeurIPS 2019).

The combinatorial graph of ``d`` nominal columns is the Cartesian product of one complete graph
``K_{k_i}`` per column (vertices: the ``k_i`` categories). Its Laplacian is the Kronecker sum of the
factors' Laplacians, so the diffusion kernel ``exp(-beta L)`` with one ``beta_i >= 0`` per factor (ARD)
is the product over columns of

    k_i(a, b) = sum_j exp(-beta_i lambda_ij) u_ij(a) u_ij(b)

(eigenpairs ``(lambda_ij, u_ij)`` of the Laplacian ``k I - 1 1^T`` of ``K_k``). For a complete graph the
sum has a closed form: eigenvalue 0 with the constant eigenvector and eigenvalue ``k`` on its
orthogonal complement give ``k_i(a, b) = 1/k + exp(-beta k) ([a == b] - 1/k)``. ``beta_i = 0`` gives the
indicator ``[a == b]`` (no diffusion); ``beta_i -> inf`` gives the constant ``1/k`` (column ``i`` ignored).

With ``normalise=True`` (the default) each factor is divided by its diagonal, which is the same for
every vertex of a complete graph, so ``k(x, x) = 1`` and the overall scale lives in the GP's
outputscale, as in COMBO's implementation (which divides each factor by the mean of
``exp(-beta lambda)``, that same constant). The product is computed in log space for all pairs at once::

    log k(x, x') = sum_i log off_i + onehot(x) diag(log diag_i - log off_i) onehot(x')^T

with ``diag_i``/``off_i`` the factor's value for equal/different categories.

Prior: COMBO puts a horseshoe prior on each ``beta_i`` (Carvalho, Polson & Scott, "The horseshoe
estimator for sparse signals", Biometrika 2010). Its density has no closed form; COMBO uses the
log of the upper bound ``K log(1 + 2 (tau / beta)^2)`` of Carvalho et al.'s Theorem 1 (with
``K = (2 pi^3)^(-1/2)``) and scale ``tau = 5``; :class:`COMBOHorseshoePrior` does the same. Note the
direction: the horseshoe's mass near ``beta = 0`` pulls factors towards the indicator kernel (no
diffusion, different categories uncorrelated), while a large ``beta`` switches a column off; the
prior is kept as COMBO has it, for parity.
COMBO samples the hyper-parameters by slice sampling; here they are fitted by MAP: the prior is
registered on ``beta`` as a gpytorch prior, so the GP's exact-marginal-likelihood fit adds its
log-density to the objective.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel
from gpytorch.priors import Prior
from torch.distributions import HalfCauchy, constraints

from mcbo.models.kernels.one_hot import category_columns, weighted_matches
from mcbo.models.kernels.registry import register_nominal_kernel
from mcbo.space import SearchSpace

_K = 1.0 / math.sqrt(2.0 * math.pi**3)
_BETA_FLOOR = 1e-12  # keeps log(off-diagonal) finite if a softplus underflows to 0


class COMBOHorseshoePrior(Prior):
    """Horseshoe prior on a non-negative scale, by COMBO's approximation of its log-density.

    ``log p(beta) ~= log K + log log(1 + 2 (tau / beta)^2) - log tau`` for ``beta > 0`` (the upper
    bound of Carvalho et al. 2010, Theorem 1, for ``beta / tau``); unnormalised like COMBO's.

    Args:
        scale: ``tau`` (COMBO uses 5).
    """

    arg_constraints: ClassVar[dict] = {"scale": constraints.positive}
    support = constraints.positive

    def __init__(self, scale: float = 5.0, validate_args: bool = False) -> None:
        torch.nn.Module.__init__(self)
        if not scale > 0:
            raise ValueError(f"horseshoe scale must be positive, got {scale!r}")
        scale_t = torch.tensor(float(scale))
        self.scale = scale_t
        super().__init__(scale_t.shape, validate_args=validate_args)
        del self.scale
        self.register_buffer("scale", scale_t)
        self._transform = None

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        beta = value.clamp(min=_BETA_FLOOR)
        scale = self.scale.to(beta)
        return math.log(_K) + torch.log(torch.log1p(2.0 * (scale / beta) ** 2)) - torch.log(scale)

    def rsample(self, sample_shape: torch.Size | None = None) -> torch.Tensor:
        """``|N(0, lambda^2 tau^2)|`` with ``lambda ~ HalfCauchy(1)``: the horseshoe on ``beta >= 0``."""
        local = HalfCauchy(torch.ones_like(self.scale)).rsample(torch.Size() if sample_shape is None else sample_shape)
        return (torch.randn_like(local) * local * self.scale).abs()


class DiffusionKernel(Kernel):
    """ARD diffusion kernel on the product of complete graphs over the active (nominal) columns.

    Args:
        cardinalities: number of categories ``k_i`` of each active column, ``[d]``.
        active_dims: indices of those columns in the encoded input.
        normalise: divide each factor by its (constant) diagonal so that ``k(x, x) = 1``.
        horseshoe_scale: ``tau`` of the horseshoe prior on ``beta`` (``None``: no prior).
        beta_init: initial ``beta`` (one value for all columns). ``None`` starts each factor at the
            correlation ``exp(-1/d)`` between different categories, i.e. where the Casmopolitan
            transformed-overlap kernel with unit lengthscales starts.
    """

    def __init__(
        self,
        cardinalities: Sequence[int],
        active_dims: Sequence[int] | torch.Tensor,
        normalise: bool = True,
        horseshoe_scale: float | None = 5.0,
        beta_init: float | None = None,
        **kwargs,
    ) -> None:
        cards = torch.as_tensor(list(cardinalities), dtype=torch.long)
        if len(cards) == 0 or (cards < 1).any():
            raise ValueError(f"diffusion kernel: cardinalities must be positive integers, got {cards.tolist()}")
        if beta_init is not None and not beta_init > 0:
            raise ValueError(f"beta_init must be positive, got {beta_init!r}")
        super().__init__(active_dims=torch.as_tensor(active_dims), **kwargs)
        self.register_buffer("cardinalities", cards)
        self.register_buffer("offsets", torch.cumsum(cards, 0) - cards)
        self.normalise = bool(normalise)
        self.register_parameter("raw_beta", torch.nn.Parameter(torch.zeros(len(cards))))
        self.register_constraint("raw_beta", GreaterThan(0.0))
        self.beta = self._default_beta(cards) if beta_init is None else torch.full((len(cards),), float(beta_init))
        if horseshoe_scale is not None:
            self.register_prior("beta_prior", COMBOHorseshoePrior(horseshoe_scale), _get_beta, _set_beta)

    @staticmethod
    def _default_beta(cards: torch.Tensor) -> torch.Tensor:
        """``beta_i`` [d] solving ``(1 - e) / (1 + (k - 1) e) = r`` with ``e = exp(-beta k)``, ``r = exp(-1/d)``."""
        k = cards.double()
        r = math.exp(-1.0 / len(cards))
        e = (1.0 - r) / (1.0 + r * (k - 1.0))
        return (-torch.log(e) / k).float()

    @property
    def beta(self) -> torch.Tensor:
        return self.raw_beta_constraint.transform(self.raw_beta)

    @beta.setter
    def beta(self, value: torch.Tensor | float) -> None:
        value = torch.as_tensor(value, dtype=self.raw_beta.dtype, device=self.raw_beta.device).expand_as(self.raw_beta)
        self.initialize(raw_beta=self.raw_beta_constraint.inverse_transform(value.clamp(min=1e-6)))

    def log_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Log of each factor for equal and for different categories, ``([d], [d])``."""
        k = self.cardinalities.to(self.raw_beta)
        bk = self.beta.clamp(min=_BETA_FLOOR) * k
        log_off = torch.log(-torch.expm1(-bk))  # log(1 - exp(-beta k)), + log(1/k) below
        log_diag = torch.log1p((k - 1.0) * torch.exp(-bk))
        if self.normalise:
            return torch.zeros_like(log_diag), log_off - log_diag
        return log_diag - torch.log(k), log_off - torch.log(k)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        log_diag, log_off = (t.to(x1) for t in self.log_factors())
        gain = log_diag - log_off  # added for every column where the categories agree
        if diag:
            same = (x1.round() == x2.round()).to(x1.dtype)
            return torch.exp(log_off.sum() + (same * gain).sum(-1))
        matches = weighted_matches(category_columns(x1, self.cardinalities, self.offsets),
                                   category_columns(x2, self.cardinalities, self.offsets),
                                   torch.repeat_interleave(gain, self.cardinalities))
        return torch.exp(log_off.sum() + matches)


def _get_beta(module: DiffusionKernel) -> torch.Tensor:
    return module.beta


def _set_beta(module: DiffusionKernel, value: torch.Tensor) -> None:
    module.beta = value


@register_nominal_kernel("diffusion")
def build_diffusion(space: SearchSpace, cols: torch.Tensor) -> DiffusionKernel:
    """Builder for ``nominal_kernel: diffusion`` over ``cols`` (the nominal columns). Permutation
    columns are treated like categoricals (complete graph over the items at each position)."""
    return DiffusionKernel(space.cardinalities[cols].tolist(), active_dims=cols)


__all__ = ["COMBOHorseshoePrior", "DiffusionKernel", "build_diffusion"]
