"""The ``default`` recipe finds better points than random search on tasks of different space kinds (slow).

Issue 16's acceptance test: on three tasks -- nominal (Pest Control), permutation (TSP) and mixed
(SFU Ackley with integer and categorical variables) -- ``default`` beats random search in the median best
value over 5 seeds at a small budget. Seeds fix the tasks, the initial designs and the searches.
"""

import statistics

import pytest

from mcbo.solvers import build_solver
from mcbo.tasks import build_task

TASKS = [
    ("pest_control", {}, 40),
    ("tsp", {"n": 10}, 40),
    ("sfu", {"function": "ackley", "n_numeric": 3, "n_integer": 2, "n_categorical": 2, "n_categories": 5}, 40),
]


def _best(recipe: str, task_name: str, kwargs: dict, budget: int, seed: int) -> float:
    task = build_task(task_name, seed=seed, **kwargs)
    solver = build_solver(recipe, task.space, seed=seed)
    solver.optimize(task, budget)
    return float(solver.y.min())


@pytest.mark.slow
@pytest.mark.parametrize("task_name, kwargs, budget", TASKS, ids=[t[0] for t in TASKS])
def test_default_beats_random_search_in_the_median_over_five_seeds(task_name, kwargs, budget):
    default = [_best("default", task_name, kwargs, budget, seed) for seed in range(5)]
    random = [_best("rs", task_name, kwargs, budget, seed) for seed in range(5)]
    assert statistics.median(default) < statistics.median(random), (default, random)
