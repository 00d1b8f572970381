"""Synthetic benchmark functions used throughout the MCBO literature.

* Ackley-53 (Wan et al., "Think Global and Act Local", ICML 2021; Deshwal et al., BODi,
  NeurIPS 2023): 50 binary variables in {0, 1} and 3 continuous variables in [-1, 1], the
  Ackley function over all 53 coordinates, minimum 0 at the origin.
* Categorical Ackley (Dreczkowski et al., MCBO, NeurIPS 2023): 20 nominal variables, each
  taking one of 11 evenly spaced levels of [-32.768, 32.768]; minimum 0 at the middle level.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Boolean, Categorical, Real, SearchSpace
from mcbo.tasks.base import Task, register_task


def ackley(x: np.ndarray, a: float = 20.0, b: float = 0.2, c: float = 2 * np.pi) -> np.ndarray:
    """Ackley function (Surjanovic & Bingham, SFU library) on rows of ``x`` ``[n, d]`` -> ``[n]``."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    d = x.shape[1]
    term1 = -a * np.exp(-b * np.sqrt(np.sum(x**2, axis=1) / d))
    term2 = -np.exp(np.sum(np.cos(c * x), axis=1) / d)
    return term1 + term2 + a + np.e


@register_task("ackley53")
class Ackley53(Task):
    """Ackley-53: 50 binary + 3 continuous variables (Wan et al., ICML 2021); minimum 0."""

    name = "ackley53"
    optimum = 0.0

    def __init__(self, seed: int = 0, n_binary: int = 50, n_continuous: int = 3) -> None:
        super().__init__(seed)
        self.n_binary, self.n_continuous = n_binary, n_continuous
        params = [Boolean(f"b{i:02d}") for i in range(n_binary)]
        params += [Real(f"x{i}", -1.0, 1.0) for i in range(n_continuous)]
        self._space = SearchSpace(params)

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        x = np.array([[float(p[name]) for name in self._space.names] for p in points])
        return ackley(x)


@register_task("ackley_cat")
class CategoricalAckley(Task):
    """Categorical Ackley: 20 nominal variables with 11 levels of [-32.768, 32.768] (MCBO); minimum 0.

    The optimum is the constant string of the middle level, which favours kernels biased toward repetitive
    strings (SSK). ``shuffle_levels=True`` permutes the levels of each variable (permutations drawn from
    ``seed``), so the optimum is no longer a constant string while the landscape is the same.
    """

    name = "ackley_cat"
    optimum = 0.0

    def __init__(self, seed: int = 0, n_dims: int = 20, n_levels: int = 11, shuffle_levels: bool = False) -> None:
        super().__init__(seed)
        self.levels = np.linspace(-32.768, 32.768, n_levels)
        self.level_values = np.tile(self.levels, (n_dims, 1))  # [n_dims, n_levels]: level j of variable i
        if shuffle_levels:
            rng = np.random.default_rng(seed)
            self.level_values = np.stack([self.levels[rng.permutation(n_levels)] for _ in range(n_dims)])
        self._space = SearchSpace([Categorical(f"x{i:02d}", list(range(n_levels))) for i in range(n_dims)])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        idx = np.array([[p[name] for name in self._space.names] for p in points], dtype=int)
        return ackley(np.take_along_axis(self.level_values[None], idx[..., None], axis=2)[..., 0])
