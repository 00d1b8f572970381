"""Pest Control (Oh et al., COMBO, NeurIPS 2019; after Baptista & Poloczek, BOCS, ICML 2018).

A chain of ``n_stages`` (25) stations; at each one choose nothing or one of four pesticides.
The cost is the price paid for pesticides (with volume discounts) plus, per stage, the fraction
of 100 Monte-Carlo simulations whose pest level exceeds the tolerance U = 0.1. Pesticides lose
effect as the pests build tolerance. Minimised; the optimum is unknown. The simulation draws come
from ``numpy.random.RandomState(seed)`` re-created at every stage, as in the reference code,
so the objective is deterministic for a given seed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Categorical, SearchSpace
from mcbo.tasks.base import Task, register_task

CHOICES = ["do nothing", "pesticide 1", "pesticide 2", "pesticide 3", "pesticide 4"]

_TOLERANCE = 0.1
_N_SIMULATIONS = 100
_INIT_BETA = (1.0, 30.0)
_SPREAD_BETA = (1.0, 17.0 / 3.0)
_CONTROL_ALPHA = 1.0
_CONTROL_BETA = {1: 2.0 / 7.0, 2: 3.0 / 7.0, 3: 3.0 / 7.0, 4: 5.0 / 7.0}
_TOLERANCE_GROWTH = {1: 1.0 / 7.0, 2: 2.5 / 7.0, 3: 2.0 / 7.0, 4: 0.5 / 7.0}
_PRICE = {1: 1.0, 2: 0.8, 3: 0.7, 4: 0.5}
_MAX_DISCOUNT = {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.0}


def pest_control_cost(choices: np.ndarray, seed: int) -> float:
    """Cost of one sequence of choices ``[n_stages]`` (0 = nothing, 1..4 = pesticide)."""
    choices = np.asarray(choices, dtype=int)
    n_stages = choices.size
    control_beta = dict(_CONTROL_BETA)
    pest = np.random.RandomState(seed).beta(*_INIT_BETA, size=_N_SIMULATIONS)
    spread = np.random.RandomState(seed).beta(*_SPREAD_BETA, size=_N_SIMULATIONS)
    cost = 0.0
    for c in choices:
        if c > 0:
            control = np.random.RandomState(seed).beta(_CONTROL_ALPHA, control_beta[c], size=_N_SIMULATIONS)
            nxt = (1.0 - control) * pest
            control_beta[c] += _TOLERANCE_GROWTH[c] / n_stages
            cost += _PRICE[c] * (1.0 - _MAX_DISCOUNT[c] / n_stages * np.sum(choices == c))
        else:
            nxt = spread * (1.0 - pest) + pest
        cost += np.mean(pest > _TOLERANCE)
        pest = nxt
    return float(cost)


@register_task("pest_control")
class PestControl(Task):
    """Pest Control: 25 stages x 5 choices (COMBO, Oh et al. 2019)."""

    name = "pest_control"

    def __init__(self, seed: int = 0, n_stages: int = 25) -> None:
        super().__init__(seed)
        self._space = SearchSpace([Categorical(f"stage_{i + 1:02d}", CHOICES) for i in range(n_stages)])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        index = {c: i for i, c in enumerate(CHOICES)}
        return np.array(
            [pest_control_cost(np.array([index[p[n]] for n in self._space.names]), self.seed) for p in points]
        )
