"""Black boxes that crash in part of their space, to measure how solvers handle failed evaluations.

In both, the best points lie next to the crashing region, as when the best learning rate sits just below the
one where training diverges: a solver that does not learn where evaluations fail keeps spending them there.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Categorical, Real, SearchSpace
from mcbo.tasks.base import Task, register_task

_LEVELS = ["a", "b", "c", "d", "e"]


class EvaluationCrashed(RuntimeError):
    """Raised by a crash task for a point in its crashing region."""


@register_task("crash_cat")
class CrashCategorical(Task):
    """6 nominal variables with 5 levels; weighted mismatches to a target, crashing where c0 == c1 == "a".

    The target (a, a, b, c, d, e) itself crashes; the best feasible value is 1.0 (c0 changed).
    """

    name = "crash_cat"
    optimum = 1.0
    target = ("a", "a", "b", "c", "d", "e")
    weights = np.array([1.0, 1.2, 1.4, 1.6, 1.8, 2.0])

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._space = SearchSpace([Categorical(f"c{i}", _LEVELS) for i in range(len(self.target))])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        values = []
        for p in points:
            if p["c0"] == p["c1"] == "a":
                raise EvaluationCrashed("c0 == c1 == 'a' crashes")
            mismatch = np.array([p[f"c{i}"] != t for i, t in enumerate(self.target)], dtype=float)
            values.append(float(mismatch @ self.weights))
        return np.array(values)


@register_task("crash_mixed")
class CrashMixed(Task):
    """3 reals in [0, 1] and 3 nominal variables (5 levels); a quadratic bowl at x = 0.6 plus nominal mismatches.

    Evaluations crash where x0 + x1 > 1.3 (a quarter of the square, 0.07 from the optimum x = (0.6, 0.6, 0.6),
    c = (a, a, a), whose value is 0).
    """

    name = "crash_mixed"
    optimum = 0.0

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        params = [Real(f"x{i}", 0.0, 1.0) for i in range(3)] + [Categorical(f"c{i}", _LEVELS) for i in range(3)]
        self._space = SearchSpace(params)

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        values = []
        for p in points:
            if p["x0"] + p["x1"] > 1.3:
                raise EvaluationCrashed("x0 + x1 > 1.3 crashes")
            x = np.array([p["x0"], p["x1"], p["x2"]])
            mismatches = sum(p[f"c{i}"] != "a" for i in range(3))
            values.append(float(10.0 * np.sum((x - 0.6) ** 2) + mismatches))
        return np.array(values)
