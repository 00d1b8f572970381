"""Tests of mcbo/tasks/tsp.py: the travelling salesman problem on seeded random cities."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from mcbo.solvers import build_solver
from mcbo.space import Permutation
from mcbo.tasks import TASKS, build_task
from mcbo.tasks.tsp import HELD_KARP_MAX_N, TSP, distance_matrix, held_karp, random_cities, tour_lengths

SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])


def _brute_force(dist: np.ndarray) -> float:
    """Shortest closed tour over every permutation with city 0 first."""
    n = dist.shape[0]
    tours = np.array([(0,) + rest for rest in itertools.permutations(range(1, n))])
    return float(tour_lengths(tours, dist).min())


def test_registered_and_space_is_one_permutation_of_the_cities():
    assert TASKS["tsp"] is TSP
    task = build_task("tsp", seed=3, n=9)
    assert task.n == 9 and len(task.space) == 1
    (param,) = task.space.params
    assert isinstance(param, Permutation) and param.items == list(range(9))
    assert task.cities.shape == (9, 2) and np.all((task.cities >= 0) & (task.cities <= 1))
    for point in task.space.sample_points(5, seed=0):
        assert sorted(point["tour"]) == list(range(9))
    assert TSP().n == 12


def test_tour_lengths_on_the_unit_square_by_hand():
    dist = distance_matrix(SQUARE)
    np.testing.assert_allclose(tour_lengths([[0, 1, 2, 3], [0, 2, 1, 3], [3, 2, 1, 0]], dist),
                               [4.0, 2.0 + 2.0 * math.sqrt(2.0), 4.0])
    length, tour = held_karp(dist)
    assert length == pytest.approx(4.0) and tour in ([0, 1, 2, 3], [0, 3, 2, 1])


def test_identity_tour_of_a_tiny_instance_by_hand():
    task = TSP(seed=5, n=4)
    (a, b, c, d) = [tuple(p) for p in task.cities]
    expected = math.dist(a, b) + math.dist(b, c) + math.dist(c, d) + math.dist(d, a)
    assert task({"tour": [0, 1, 2, 3]}) == pytest.approx(expected, rel=1e-12)
    # rotations and reversal of a tour have the same length
    assert task.evaluate([{"tour": [2, 3, 0, 1]}, {"tour": [3, 2, 1, 0]}]) == pytest.approx([expected, expected])


@pytest.mark.parametrize("seed", range(4))
def test_held_karp_matches_brute_force_for_7_cities(seed):
    task = TSP(seed=seed, n=7)
    best = _brute_force(task.dist)
    assert task.optimum == pytest.approx(best, rel=1e-12)
    assert sorted(task.best_tour) == list(range(7)) and task.best_tour[0] == 0
    assert task({"tour": task.best_tour}) == pytest.approx(best, rel=1e-12)
    values = task.evaluate(task.space.sample_points(50, seed=seed))
    assert np.all(values >= task.optimum - 1e-12)


def test_held_karp_matches_brute_force_on_asymmetric_distances():
    dist = np.random.default_rng(0).random((6, 6))
    length, tour = held_karp(dist)
    assert length == pytest.approx(_brute_force(dist)) and tour_lengths(tour, dist)[0] == pytest.approx(length)


def test_held_karp_for_12_cities_is_fast_and_optimum_known_up_to_the_limit():
    start = time.perf_counter()
    task = TSP(seed=0, n=12)
    assert time.perf_counter() - start < 2.0
    assert task.optimum is not None and task({"tour": task.best_tour}) == pytest.approx(task.optimum)
    assert TSP(n=HELD_KARP_MAX_N).optimum is not None
    big = TSP(n=HELD_KARP_MAX_N + 1)
    assert big.optimum is None and big.best_tour is None


def test_instance_is_determined_by_seed():
    points = TSP(seed=1).space.sample_points(6, seed=0)
    np.testing.assert_array_equal(TSP(seed=1).cities, random_cities(12, 1))
    np.testing.assert_array_equal(TSP(seed=1).evaluate(points), TSP(seed=1).evaluate(points))
    assert TSP(seed=1).optimum == TSP(seed=1).optimum
    assert not np.allclose(TSP(seed=1).cities, TSP(seed=2).cities)
    assert TSP(seed=1).optimum != TSP(seed=2).optimum


@pytest.mark.parametrize("n", [3, 31, 0, -5, 4.5, "12", True, None])
def test_bad_n_raises(n):
    with pytest.raises(ValueError, match="'n'"):
        TSP(n=n)


def test_invalid_tour_is_rejected():
    task = TSP(n=5)
    for tour in ([0, 1, 2, 3], [0, 1, 2, 3, 3], [0, 1, 2, 3, 5]):
        with pytest.raises(ValueError, match="tour"):
            task({"tour": tour})


def test_random_search_runs_and_does_not_beat_the_optimum():
    task = TSP(seed=0)
    solver = build_solver("rs", task.space, seed=0)
    point, value = solver.optimize(task, 20)
    assert len(solver.history) == 20 and sorted(point["tour"]) == list(range(12))
    assert value == pytest.approx(task(point)) and value >= task.optimum - 1e-12
