"""Weighted MaxSAT on seeded random k-SAT instances.

The MCBO and COMBO MaxSAT benchmarks use files of the MaxSAT competition, which cannot be
fetched at run time; this task generates instances of the same form instead: ``n_variables``
Boolean variables and ``n_clauses`` clauses of ``clause_size`` distinct variables with random
signs (uniform random k-SAT; by default ``round(4.26 n)`` 3-clauses, the random 3-SAT phase
transition of Mitchell, Selman & Levesque, AAAI 1992), each with an integer weight in
``1..max_weight``. The objective (minimised) is minus the total weight of the satisfied clauses,
divided by the total weight when ``normalise`` (then it lies in ``[-1, 0]``).

With ``planted=True`` a hidden assignment is drawn first and any clause it violates gets one of
its literals negated (the "planted" 3-SAT model, e.g. Achlioptas, Jia & Moore, AAAI 2005), so the
hidden assignment satisfies every clause and the optimum is known: ``-1`` (normalised) or minus
the total weight. Without planting the optimum is unknown.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Boolean, SearchSpace
from mcbo.tasks.base import Task, register_task

PHASE_TRANSITION_RATIO = 4.26


def random_ksat(
    n_variables: int, n_clauses: int, clause_size: int, rng: np.random.Generator, planted: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random k-SAT clauses: variable indices ``[m, k]`` (distinct per clause) and signs ``[m, k]``.

    A literal is satisfied when the variable equals its sign (``True`` = positive literal). With
    a ``planted`` assignment ``[n_variables]`` (bool), every clause it violates has one random
    literal negated, so ``planted`` satisfies all clauses.
    """
    variables = np.argsort(rng.random((n_clauses, n_variables)), axis=1)[:, :clause_size]
    signs = rng.random((n_clauses, clause_size)) < 0.5
    if planted is not None:
        violated = ~np.any(planted[variables] == signs, axis=1)
        flip = rng.integers(0, clause_size, size=n_clauses)
        rows = np.nonzero(violated)[0]
        signs[rows, flip[rows]] = ~signs[rows, flip[rows]]
    return variables, signs


def satisfied_clauses(x: np.ndarray, variables: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Which clauses each assignment satisfies: ``x`` ``[n, n_variables]`` (bool) -> ``[n, m]`` (bool)."""
    x = np.atleast_2d(np.asarray(x, dtype=bool))
    return np.any(x[:, variables] == signs[None, :, :], axis=2)


def _check_int(field_name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{field_name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@register_task("maxsat")
class MaxSat(Task):
    """Weighted MaxSAT on a seeded random (optionally planted) k-SAT instance; minimises minus the satisfied weight.

    Args:
        seed: seed of the instance (clauses, weights, planted assignment).
        n_variables: number of Boolean variables.
        n_clauses: number of clauses; default ``round(4.26 * n_variables)``.
        clause_size: literals per clause (distinct variables).
        max_weight: clause weights are integers in ``1..max_weight`` (1 gives unweighted MaxSAT).
        planted: draw a hidden assignment satisfying every clause, so the optimum is known.
        normalise: divide by the total weight (values in ``[-1, 0]``).
    """

    name = "maxsat"

    def __init__(
        self,
        seed: int = 0,
        n_variables: int = 60,
        n_clauses: int | None = None,
        clause_size: int = 3,
        max_weight: int = 100,
        planted: bool = True,
        normalise: bool = True,
    ) -> None:
        super().__init__(seed)
        self.n_variables = _check_int("n_variables", n_variables, 1)
        self.n_clauses = (round(PHASE_TRANSITION_RATIO * self.n_variables) if n_clauses is None
                          else _check_int("n_clauses", n_clauses, 1))
        self.clause_size = _check_int("clause_size", clause_size, 1)
        if self.clause_size > self.n_variables:
            raise ValueError(f"clause_size must be <= n_variables = {self.n_variables}, got {clause_size!r}")
        self.max_weight = _check_int("max_weight", max_weight, 1)
        for field_name, flag in (("planted", planted), ("normalise", normalise)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ValueError(f"{field_name} must be a bool, got {flag!r}")
        self.planted, self.normalise = bool(planted), bool(normalise)

        rng = np.random.default_rng(self.seed)
        self.planted_assignment = rng.random(self.n_variables) < 0.5 if self.planted else None
        self.variables, self.signs = random_ksat(
            self.n_variables, self.n_clauses, self.clause_size, rng, self.planted_assignment
        )
        self.weights = rng.integers(1, self.max_weight + 1, size=self.n_clauses).astype(float)
        self.total_weight = float(self.weights.sum())
        width = max(2, len(str(self.n_variables - 1)))
        self._space = SearchSpace([Boolean(f"x{i:0{width}d}") for i in range(self.n_variables)])
        if self.planted:
            self.optimum = -1.0 if self.normalise else -self.total_weight

    @property
    def space(self) -> SearchSpace:
        return self._space

    def planted_point(self) -> dict[str, bool] | None:
        """The hidden assignment as a point of the space (``None`` without planting)."""
        if self.planted_assignment is None:
            return None
        return {name: bool(v) for name, v in zip(self._space.names, self.planted_assignment)}

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        x = np.array([[p[n] for n in self._space.names] for p in points], dtype=bool).reshape(-1, self.n_variables)
        value = -(satisfied_clauses(x, self.variables, self.signs).astype(float) @ self.weights)
        return value / self.total_weight if self.normalise else value


__all__ = ["MaxSat", "random_ksat", "satisfied_clauses"]
