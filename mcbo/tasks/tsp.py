"""The travelling salesman problem (TSP) on seeded random cities in the unit square.

``n`` cities are drawn uniformly at random in ``[0, 1]^2`` from ``numpy.random.default_rng(seed)``
(so a seed fixes the instance; coordinates are the first ``2 n`` draws, row by row). The search
space is one :class:`~mcbo.space.Permutation` ``tour`` of the city indices ``0..n-1``; the
objective (minimised) is the length of the closed tour visiting the cities in that order and
returning to the first, with Euclidean distances. Random Euclidean TSP instances of this kind
are a standard permutation benchmark of Bayesian optimisation (e.g. Deshwal et al., "Bayesian
optimization over permutation spaces", AAAI 2022).

The exact optimum is computed when the task is built, for ``n <= HELD_KARP_MAX_N`` (16, in
well under a second), by the Held-Karp dynamic programme (Held & Karp, "A dynamic programming
approach to sequencing problems", J. SIAM 10(1), 1962; also Bellman, J. ACM 9(1), 1962):
``O(2^n n^2)`` time and ``O(2^n n)`` memory, here vectorised over all subsets of one size at a
time. For larger ``n`` the optimum is left unknown (``None``), so regret is not reported.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mcbo.space import Permutation, SearchSpace
from mcbo.tasks._arg_checks import check_int
from mcbo.tasks.base import Task, register_task

#: Smallest and largest number of cities the task accepts.
MIN_CITIES, MAX_CITIES = 4, 30
#: Largest ``n`` whose exact optimum the task computes with :func:`held_karp` when built.
HELD_KARP_MAX_N = 16


def random_cities(n: int, seed: int) -> np.ndarray:
    """Coordinates ``[n, 2]`` of ``n`` cities uniform in the unit square, from ``default_rng(seed)``."""
    return np.random.default_rng(seed).random((n, 2))


def distance_matrix(cities: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[n, n]`` between the rows of ``cities`` ``[n, 2]``."""
    cities = np.asarray(cities, dtype=float)
    return np.sqrt(np.sum((cities[:, None, :] - cities[None, :, :]) ** 2, axis=-1))


def tour_lengths(tours: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Closed-tour length of each row of ``tours`` ``[m, n]`` (city indices) under ``dist`` ``[n, n]`` -> ``[m]``."""
    tours = np.atleast_2d(np.asarray(tours, dtype=np.int64))
    return dist[tours, np.roll(tours, -1, axis=1)].sum(axis=1)


def held_karp(dist: np.ndarray) -> tuple[float, list[int]]:
    """Exact shortest closed tour under ``dist`` ``[n, n]`` (``n >= 2``): its length and one optimal tour from city 0.

    ``cost[S, j]`` is the length of the shortest path from city 0 through the cities of the set
    ``S`` of cities ``1..n-1`` (a bit mask, bit ``j`` for city ``j + 1``) ending at ``j + 1``;
    ``cost[S, j] = min_k cost[S - {j}, k] + dist[k + 1, j + 1]``. Sets are processed by size, all
    sets of one size and all end cities at once; entries with ``j`` outside ``S`` stay ``inf``.
    Time ``O(2^n n^2)``, memory ``O(2^n n)``.
    """
    dist = np.asarray(dist, dtype=float)
    n = dist.shape[0]
    if dist.ndim != 2 or dist.shape[1] != n or n < 2:
        raise ValueError(f"dist must be a square matrix of at least 2 cities, got shape {dist.shape}")
    m = n - 1
    inner = dist[1:, 1:]  # inner[k, j]: from city k + 1 to city j + 1
    bits = 1 << np.arange(m)
    masks = np.arange(1 << m)
    sizes = np.zeros(1 << m, dtype=np.int64)
    for b in range(m):
        sizes += (masks >> b) & 1
    cost = np.full((1 << m, m), np.inf)
    parent = np.full((1 << m, m), -1, dtype=np.int64)
    cost[bits, np.arange(m)] = dist[0, 1:]
    for size in range(2, m + 1):
        layer = masks[sizes == size]  # [L]
        prev = layer[:, None] ^ bits[None, :]  # [L, j]: the set without j (with j added when j is not in it)
        # [L, j, k]: cost of reaching k through prev, then going k -> j; inf where j is not in the set
        through = cost[prev] + inner.T[None, :, :]
        best_k = np.argmin(through, axis=2)
        cost[layer] = np.take_along_axis(through, best_k[:, :, None], axis=2)[:, :, 0]
        parent[layer] = best_k
    full = (1 << m) - 1
    closing = cost[full] + dist[1:, 0]
    last = int(np.argmin(closing))
    tour, mask, j = [], full, last
    while j >= 0:
        tour.append(j + 1)
        mask, j = mask ^ (1 << j), int(parent[mask, j])
    return float(closing[last]), [0] + tour[::-1]


@register_task("tsp")
class TSP(Task):
    """Travelling salesman on n seeded random cities in the unit square; minimises the closed tour length.

    Args:
        seed: seed of the instance (the city coordinates).
        n: number of cities, in ``[4, 30]``; the exact optimum (Held-Karp) is known for ``n <= 16``.
    """

    name = "tsp"

    def __init__(self, seed: int = 0, n: int = 12) -> None:
        super().__init__(seed)
        self.n = check_int("n", n, MIN_CITIES, MAX_CITIES)
        self.cities = random_cities(self.n, self.seed)
        self.dist = distance_matrix(self.cities)
        self._space = SearchSpace([Permutation("tour", self.n)])
        #: An optimal tour (starting at city 0) when the optimum is known, else ``None``.
        self.best_tour: list[int] | None = None
        if self.n <= HELD_KARP_MAX_N:
            self.optimum, self.best_tour = held_karp(self.dist)

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        tours = np.array([p["tour"] for p in points], dtype=np.int64).reshape(-1, self.n)
        return tour_lengths(tours, self.dist)


__all__ = ["HELD_KARP_MAX_N", "TSP", "distance_matrix", "held_karp", "random_cities", "tour_lengths"]
