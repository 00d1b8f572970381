"""Output warping: a monotone transform of the objective values before the model sees them.

A GP assumes Gaussian observations; objective values of real black boxes are often skewed (a long tail of
bad configurations, or of rare good ones). A monotone warp keeps the order of the values, hence which point is
the incumbent, while making the targets closer to Gaussian.

* :class:`NoWarping` (``none``): the values as they are.
* :class:`YeoJohnsonWarping` (``yeo_johnson``): the Yeo-Johnson power transform (Yeo & Johnson, Biometrika
  2000) with the exponent fitted by maximum likelihood on the standardised values, refitted on every call;
  HEBO's output transform (Cowen-Rivers et al., JAIR 2022), which uses Box-Cox for positive values and
  Yeo-Johnson otherwise.

The solver warps the training targets ``[n]`` and computes the acquisition's incumbent on the warped scale, so
the model, the acquisition and the fantasies all live on one scale.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Mapping

import numpy as np
import torch
from scipy import stats

from mcbo.registry import Registry


class OutputWarping(ABC):
    """Contract: :meth:`__call__` maps targets ``y`` ``[n]`` to warped targets ``[n]``, order preserved."""

    @abstractmethod
    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        """Warped targets ``[n]`` (same dtype and device), fitted on ``y`` itself."""


#: Recipe name -> warping class (the ``output_warping`` setting of a BO solver: ``{type: yeo_johnson}``).
OUTPUT_WARPINGS: Registry[type[OutputWarping]] = Registry("output_warping")


@OUTPUT_WARPINGS.register("none")
class NoWarping(OutputWarping):
    """The identity."""

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        return y


@OUTPUT_WARPINGS.register("yeo_johnson")
class YeoJohnsonWarping(OutputWarping):
    """Yeo-Johnson power transform of the standardised targets, exponent by maximum likelihood.

    Args:
        min_points: below this many finite, distinct targets the values pass unchanged (the exponent is not
            identifiable from two or three points).
        max_abs_lambda: the fitted exponent is clipped to ``[-max_abs_lambda, 2 + max_abs_lambda]`` (the
            family's identity is ``lambda = 1``); extreme exponents blow single points up by many orders.
    """

    def __init__(self, min_points: int = 4, max_abs_lambda: float = 3.0) -> None:
        if not isinstance(min_points, int) or min_points < 3:
            raise ValueError(f"yeo_johnson: min_points must be an integer >= 3, got {min_points!r}")
        if not max_abs_lambda > 0:
            raise ValueError(f"yeo_johnson: max_abs_lambda must be positive, got {max_abs_lambda!r}")
        self.min_points, self.max_abs_lambda = min_points, float(max_abs_lambda)
        #: exponent of the last fit (``None`` when the values passed unchanged)
        self.lambda_: float | None = None

    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        values = y.detach().cpu().double().numpy()
        self.lambda_ = None
        if len(np.unique(values)) < self.min_points or not np.isfinite(values).all():
            return y
        z = (values - values.mean()) / values.std()
        lam = float(np.clip(stats.yeojohnson_normmax(z), -self.max_abs_lambda, 2.0 + self.max_abs_lambda))
        warped = stats.yeojohnson(z, lmbda=lam)
        if not np.isfinite(warped).all() or not math.isfinite(float(warped.std())) or warped.std() == 0:
            return y
        self.lambda_ = lam
        return torch.as_tensor(warped, dtype=y.dtype, device=y.device)


def build_output_warping(spec: Mapping[str, Any] | None) -> OutputWarping:
    """The warping named by ``spec["type"]`` with the rest of ``spec`` as settings (``None``: no warping).

    Raises:
        ValueError: naming an unknown type or setting and listing the allowed ones.
    """
    if spec is None:
        return NoWarping()
    spec = dict(spec)
    return OUTPUT_WARPINGS.build(spec.pop("type", None), spec)


__all__ = ["OUTPUT_WARPINGS", "NoWarping", "OutputWarping", "YeoJohnsonWarping", "build_output_warping"]
