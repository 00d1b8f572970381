"""Random search: uniform (or Sobol) samples of the space; the baseline every solver must beat."""

from __future__ import annotations

import torch

from mcbo.solvers.base import Solver
from mcbo.solvers.registry import register_solver_kind
from mcbo.space import SearchSpace


@register_solver_kind("rs")
class RandomSearch(Solver):
    """Uniform random sampling of the search space (input constraints respected).

    Args:
        space: the search space.
        method: ``"uniform"`` or ``"sobol"``.
    """

    name = "rs"

    def __init__(self, space: SearchSpace, seed: int = 0, method: str = "uniform", **kwargs) -> None:
        super().__init__(space, seed=seed, **kwargs)
        if method not in ("uniform", "sobol"):
            raise ValueError(f"random search method must be 'uniform' or 'sobol', got {method!r}")
        self.method = method

    def _suggest(self, n: int) -> torch.Tensor:
        return self.space.sample(n, method=self.method, generator=self.np_rng, dtype=self.dtype).to(self.device)
