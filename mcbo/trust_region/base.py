"""The trust-region contract: what the BO loop and the acquisition optimisers may call.

A trust region is a part of the search space around a *centre* (an observed point) that the
acquisition optimisers search in. It is inactive (restricts nothing) until it has a centre. The BO
loop moves it from the observations (:meth:`TrustRegion.update`), restarts it when it has
collapsed, and saves it with the solver.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import torch

from mcbo.registry import Registry
from mcbo.space import SearchSpace

#: Recipe name -> trust-region class (constructed as ``cls(space, **settings)``).
TRUST_REGIONS: Registry[type["TrustRegion"]] = Registry("trust_region", context=("space",))
#: Class decorator registering a trust region under a recipe name: ``@register_trust_region("turbo")``.
register_trust_region = TRUST_REGIONS.register


class TrustRegion(ABC):
    """A region around a centre; acquisition optimisers propose points inside it.

    Args:
        space: the search space.

    Attributes:
        centre: ``[d]`` encoded centre, ``None`` until the first :meth:`restart` or :meth:`update`.
        best_value: best value observed in the current region (``inf`` before any).
        n_restarts: restarts so far.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.centre: torch.Tensor | None = None
        self.best_value = math.inf
        self.n_restarts = 0

    # ------------------------------------------------------------ geometry
    @abstractmethod
    def contains(self, X: torch.Tensor) -> torch.Tensor:
        """Mask ``[n]`` of the rows of ``X`` ``[n, d]`` inside the region (all of them without a centre)."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Up to ``n`` random points of the region ``[<=n, d]`` (needs a centre)."""

    @abstractmethod
    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds ``[d_numeric]`` of the region's box on the numeric columns (needs a centre)."""

    @abstractmethod
    def project(self, X: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """``X`` ``[n, d]`` moved into the region (rows inside are unchanged); may draw from ``generator``."""

    # ----------------------------------------------------------- lifecycle
    @property
    @abstractmethod
    def collapsed(self) -> bool:
        """Whether the region has shrunk below its minimum size and must be restarted."""

    @abstractmethod
    def restart(self, centre: torch.Tensor) -> None:
        """Start a fresh region of initial size around ``centre`` ``[d]``."""

    @abstractmethod
    def update(self, X_new: torch.Tensor, y_new: torch.Tensor) -> None:
        """Learn from a batch of observations ``[m, d]``, ``[m]`` (minimised): move, expand or shrink."""

    def set_lengthscales(self, lengthscales: torch.Tensor | None) -> None:
        """Hook: the model's numeric lengthscales ``[d_numeric]`` before each search (default: ignored)."""

    # ---------------------------------------------------------- save / load
    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The region's state as plain JSON data."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any], dtype: torch.dtype, device: torch.device) -> None:
        """Restore what :meth:`state_dict` returned, tensors on ``device`` with ``dtype``."""


__all__ = ["TRUST_REGIONS", "TrustRegion", "register_trust_region"]
