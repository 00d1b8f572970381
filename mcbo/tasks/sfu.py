"""SFU test functions over mixed numeric / integer / categorical spaces (the MCBO SFU tasks).

Any of the 21 functions of :mod:`mcbo.tasks.sfu_functions` (Surjanovic & Bingham, Virtual
Library of Simulation Experiments, https://www.sfu.ca/~ssurjano/optimization.html) evaluated
over ``d = n_numeric + n_integer + n_categorical`` coordinates, in that order:

* numeric coordinates are :class:`~mcbo.space.Real` over the function's domain ``[lb, ub]``;
* integer coordinates are :class:`~mcbo.space.Integer` over ``[ceil(lb), floor(ub)]``;
* categorical coordinates are :class:`~mcbo.space.Categorical` over the level indices
  ``0 .. k-1`` of ``linspace(lb, ub, k)``, ``k = n_categories``, as in the MCBO paper
  (Dreczkowski et al., NeurIPS 2023); index ``j`` stands for the ``j``-th level.

The domain may depend on ``d`` (Perm, Trid, Power Sum). :attr:`SfuTask.optimum` is set only
when the known minimum is attained in the space as built: at the documented minimiser when
every integer coordinate of it is an integer and every categorical one is a level (Ackley with
an odd number of levels includes 0), or, for purely numeric spaces, the documented value.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from mcbo.space import Categorical, Integer, Param, Real, SearchSpace
from mcbo.tasks.base import Task, register_task
from mcbo.tasks.sfu_functions import SfuSpec, get_sfu


def _check_count(field_name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{field_name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@register_task("sfu")
class SfuTask(Task):
    """An SFU test function (Surjanovic & Bingham) over numeric, integer and categorical dims (MCBO).

    Args:
        function: name of the function (see :data:`mcbo.tasks.sfu_functions.SFU_FUNCTIONS`).
        n_numeric: number of continuous coordinates.
        n_integer: number of integer coordinates.
        n_categorical: number of categorical coordinates.
        n_categories: number of evenly spaced levels of each categorical coordinate (>= 2).
        seed: seed of the instance constants of Langermann (``d != 2``) and Power Sum (``d != 4``).
    """

    name = "sfu"

    def __init__(
        self,
        function: str = "ackley",
        n_numeric: int = 5,
        n_integer: int = 0,
        n_categorical: int = 0,
        n_categories: int = 11,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if not isinstance(function, str):
            raise ValueError(f"function must be a string naming an SFU function, got {function!r}")
        self.spec: SfuSpec = get_sfu(function)
        self.n_numeric = _check_count("n_numeric", n_numeric, 0)
        self.n_integer = _check_count("n_integer", n_integer, 0)
        self.n_categorical = _check_count("n_categorical", n_categorical, 0)
        self.n_categories = _check_count("n_categories", n_categories, 2)
        self.d = self.n_numeric + self.n_integer + self.n_categorical
        if self.d == 0:
            raise ValueError("n_numeric + n_integer + n_categorical must be >= 1, got 0 dimensions")
        self.spec.check_dims(self.d)
        self.name = f"sfu_{function}"
        self.lb, self.ub = self.spec.domain(self.d)
        self.levels = np.linspace(self.lb, self.ub, self.n_categories)
        self.params = self.spec.make_params(self.d, np.random.default_rng(self.seed))
        self._space = SearchSpace(self._build_params())
        self.optimum = self._attained_optimum()

    # ------------------------------------------------------------------ building
    def _build_params(self) -> list[Param]:
        width = max(2, len(str(self.d - 1)))
        names = [f"x{i:0{width}d}" for i in range(self.d)]
        params: list[Param] = [Real(n, self.lb, self.ub) for n in names[: self.n_numeric]]
        if self.n_integer:
            lo, hi = math.ceil(self.lb), math.floor(self.ub)
            if lo >= hi:
                raise ValueError(f"n_integer: the domain [{self.lb}, {self.ub}] of {self.spec.name!r} holds fewer "
                                 f"than two integers; use numeric or categorical dimensions instead")
            params += [Integer(n, lo, hi) for n in names[self.n_numeric: self.n_numeric + self.n_integer]]
        categories = list(range(self.n_categories))
        params += [Categorical(n, categories) for n in names[self.n_numeric + self.n_integer:]]
        return params

    def _attained_optimum(self) -> float | None:
        """Known minimum if some point of the space attains it, else ``None``."""
        x_star = self.spec.minimiser(self.d, self.params)
        if x_star is None:
            return self.spec.minimum(self.d) if self.n_integer == self.n_categorical == 0 else None
        row = np.asarray(x_star, dtype=float).copy()
        if np.any(row < self.lb) or np.any(row > self.ub):
            return None
        ints = slice(self.n_numeric, self.n_numeric + self.n_integer)
        if not np.all(row[ints] == np.round(row[ints])):
            return None
        cats = slice(self.n_numeric + self.n_integer, self.d)
        tol = 1e-9 * (self.ub - self.lb)
        nearest = np.abs(row[cats, None] - self.levels[None, :]).argmin(axis=1)
        if not np.all(np.abs(self.levels[nearest] - row[cats]) <= tol):
            return None
        row[cats] = self.levels[nearest]
        return float(self.spec.evaluate(row[None, :], self.params)[0])

    # ---------------------------------------------------------------- evaluation
    @property
    def space(self) -> SearchSpace:
        return self._space

    def to_array(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        """Function inputs ``[n, d]`` of decoded points (categorical indices mapped to their levels)."""
        x = np.array([[p[name] for name in self._space.names] for p in points], dtype=float).reshape(-1, self.d)
        cats = slice(self.n_numeric + self.n_integer, self.d)
        x[:, cats] = self.levels[x[:, cats].astype(int)]
        return x

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        return self.spec.evaluate(self.to_array(points), self.params)

    def describe(self) -> str:
        parts = [f"{self.n_numeric} real", f"{self.n_integer} integer",
                 f"{self.n_categorical} categorical ({self.n_categories} levels)"]
        optimum = "unknown or not attained" if self.optimum is None else f"{self.optimum:.6g}"
        return (f"{self.name}: the {self.spec.title} from the SFU Virtual Library of Simulation Experiments "
                f"(Surjanovic & Bingham, {self.spec.url}) in d = {self.d} ({', '.join(parts)}) over "
                f"[{self.lb:g}, {self.ub:g}]; minimum in this space: {optimum}.")


__all__ = ["SfuTask"]
