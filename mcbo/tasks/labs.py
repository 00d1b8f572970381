"""Low Autocorrelation Binary Sequences (LABS; Golay 1972, Bernasconi 1987).

For a sequence ``s`` in ``{-1, +1}^n`` the aperiodic autocorrelations are
``C_k = sum_{i=1}^{n-k} s_i s_{i+k}``, its energy is ``E = sum_{k=1}^{n-1} C_k^2`` and its merit
factor is ``F = n^2 / (2 E)``. LABS maximises ``F``; the task minimises ``-F``. Each variable
is a :class:`~mcbo.space.Boolean`: ``True`` stands for ``+1`` and ``False`` for ``-1``.

Known optimal energies (:data:`OPTIMAL_ENERGY`): ``n = 2..22`` computed here by exhaustive
search (the brute-force check in the tests repeats it for ``n <= 20``), and ``n = 30, 40, 50,
60`` from the exhaustive search of Packebusch & Mertens, "Low autocorrelation binary sequences",
J. Phys. A 49 (2016) (the same values BoTorch's ``Labs`` lists).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Boolean, SearchSpace
from mcbo.tasks.base import Task, register_task

OPTIMAL_ENERGY: dict[int, int] = {
    2: 1, 3: 1, 4: 2, 5: 2, 6: 7, 7: 3, 8: 8, 9: 12, 10: 13, 11: 5, 12: 10, 13: 6, 14: 19, 15: 15, 16: 24,
    17: 32, 18: 25, 19: 29, 20: 26, 21: 26, 22: 39, 30: 59, 40: 108, 50: 153, 60: 218,
}


def _as_spins(s: np.ndarray) -> np.ndarray:
    """Rows of ``s`` ``[m, n]`` as ``+-1`` floats; 0/1 (or booleans) are mapped to -1/+1."""
    s = np.atleast_2d(np.asarray(s))
    if s.dtype == bool or np.all((s == 0) | (s == 1)):
        return 2.0 * s.astype(float) - 1.0
    if not np.all(np.abs(s) == 1):
        raise ValueError("sequence entries must be +-1, or 0/1 booleans")
    return s.astype(float)


def autocorrelation_energy(s: np.ndarray) -> np.ndarray:
    """Energy ``E = sum_k C_k^2`` of each row of ``s`` ``[m, n]`` (``+-1`` or 0/1) -> ``[m]``."""
    s = _as_spins(s)
    n = s.shape[1]
    energy = np.zeros(s.shape[0])
    for k in range(1, n):
        energy += np.sum(s[:, : n - k] * s[:, k:], axis=1) ** 2
    return energy


def merit_factor(s: np.ndarray) -> np.ndarray:
    """Merit factor ``F = n^2 / (2 E)`` of each row of ``s`` ``[m, n]`` (``n >= 2``) -> ``[m]``."""
    s = _as_spins(s)
    return s.shape[1] ** 2 / (2.0 * autocorrelation_energy(s))


@register_task("labs")
class Labs(Task):
    """Low Autocorrelation Binary Sequences: minimise minus the merit factor of n binary signs.

    Args:
        seed: unused (the task is deterministic); kept for the common interface.
        n: sequence length (>= 2).
    """

    name = "labs"

    def __init__(self, seed: int = 0, n: int = 50) -> None:
        super().__init__(seed)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"n must be an integer >= 2, got {n!r}")
        self.n = int(n)
        width = max(2, len(str(self.n - 1)))
        self._space = SearchSpace([Boolean(f"s{i:0{width}d}") for i in range(self.n)])
        best = OPTIMAL_ENERGY.get(self.n)
        self.optimum = None if best is None else -(self.n**2) / (2.0 * best)

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        bits = np.array([[p[name] for name in self._space.names] for p in points], dtype=bool).reshape(-1, self.n)
        return -merit_factor(bits)


__all__ = ["Labs", "OPTIMAL_ENERGY", "autocorrelation_energy", "merit_factor"]
