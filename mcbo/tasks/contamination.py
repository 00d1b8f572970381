"""Contamination control (Baptista & Poloczek, BOCS, ICML 2018; as benchmarked in COMBO, Oh et al. 2019).

A food supply chain of ``n_stages`` (25) stages; at each stage decide whether to spend on
prevention (``x_i = 1``, cost ``c_i = 1``). In each of ``n_simulations`` (100) Monte-Carlo
runs the contaminated fraction evolves as

    Z_i = Lambda_i (1 - x_i) (1 - Z_{i-1}) + (1 - Gamma_i x_i) Z_{i-1},

from ``Z_0 ~ Beta(1, 30)`` with contamination rates ``Lambda_i ~ Beta(1, 17/3)`` and restoration
rates ``Gamma_i ~ Beta(1, 3/7)``. Stage ``i`` should keep ``Z_i`` below ``U = 0.1`` with
probability at least ``1 - epsilon`` (``epsilon = 0.05``); the constraints enter through a
Lagrangian with ``rho = 1``. The objective (minimised) is

    sum_i c_i x_i - rho * sum_i (mean_s[Z_is < U] - (1 - epsilon)) + lam * ||x||_1.

The constants are those of the BOCS reference code (``Contamination.m``); the draws of
``Z_0``, ``Lambda`` and ``Gamma`` come, in that order, from ``numpy.random.default_rng(seed)``,
so a seed fixes the instance. The optimum is unknown.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Boolean, SearchSpace
from mcbo.tasks.base import Task, register_task

N_SIMULATIONS = 100
THRESHOLD_U = 0.1
EPSILON = 0.05
RHO = 1.0
INIT_BETA = (1.0, 30.0)
CONTAMINATION_BETA = (1.0, 17.0 / 3.0)
RESTORATION_BETA = (1.0, 3.0 / 7.0)


def contamination_dynamics(n_stages: int, seed: int, n_simulations: int = N_SIMULATIONS
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded random draws ``(z0 [s], lambdas [n_stages, s], gammas [n_stages, s])``, ``s = n_simulations``."""
    rng = np.random.default_rng(seed)
    z0 = rng.beta(*INIT_BETA, size=n_simulations)
    lambdas = rng.beta(*CONTAMINATION_BETA, size=(n_stages, n_simulations))
    gammas = rng.beta(*RESTORATION_BETA, size=(n_stages, n_simulations))
    return z0, lambdas, gammas


def contamination_objective(
    x: np.ndarray,
    z0: np.ndarray,
    lambdas: np.ndarray,
    gammas: np.ndarray,
    costs: np.ndarray,
    lam: float = 0.0,
) -> np.ndarray:
    """Regularised contamination cost of decisions ``x`` ``[n, n_stages]`` (0/1) -> ``[n]``.

    Args:
        x: prevention decisions, one row per candidate.
        z0: initial contaminated fractions ``[s]``.
        lambdas: contamination rates ``[n_stages, s]``.
        gammas: restoration rates ``[n_stages, s]``.
        costs: prevention cost per stage ``[n_stages]``.
        lam: weight of the ``||x||_1`` regulariser.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    z = np.broadcast_to(z0, (x.shape[0], z0.shape[0]))
    safe_fraction = np.empty_like(x)
    for i in range(x.shape[1]):
        xi = x[:, i: i + 1]
        z = lambdas[i] * (1.0 - xi) * (1.0 - z) + (1.0 - gammas[i] * xi) * z
        safe_fraction[:, i] = np.mean(z < THRESHOLD_U, axis=1)
    constraint = safe_fraction - (1.0 - EPSILON)
    return x @ costs - RHO * constraint.sum(axis=1) + lam * np.abs(x).sum(axis=1)


@register_task("contamination")
class Contamination(Task):
    """Contamination control: 25 binary prevention decisions (Baptista & Poloczek, BOCS, 2018).

    Args:
        seed: seed of the Monte-Carlo draws that define the instance.
        n_stages: number of stages (binary variables).
        lam: weight of the ``||x||_1`` regulariser (BOCS and COMBO use 0, 1e-4 and 1e-2).
    """

    name = "contamination"

    def __init__(self, seed: int = 0, n_stages: int = 25, lam: float = 1e-2) -> None:
        super().__init__(seed)
        if isinstance(n_stages, bool) or not isinstance(n_stages, (int, np.integer)) or n_stages < 1:
            raise ValueError(f"n_stages must be an integer >= 1, got {n_stages!r}")
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not np.isfinite(lam) or lam < 0:
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        self.n_stages, self.lam = int(n_stages), float(lam)
        self.costs = np.ones(self.n_stages)
        self.z0, self.lambdas, self.gammas = contamination_dynamics(self.n_stages, self.seed)
        self._space = SearchSpace([Boolean(f"stage_{i + 1:02d}") for i in range(self.n_stages)])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        x = np.array([[float(p[n]) for n in self._space.names] for p in points]).reshape(-1, self.n_stages)
        return contamination_objective(x, self.z0, self.lambdas, self.gammas, self.costs, self.lam)


__all__ = ["Contamination", "contamination_dynamics", "contamination_objective"]
