"""Casmopolitan from its recipe beats random search (median best value over 5 seeds, 80 evaluations)."""

import numpy as np
import pytest

from mcbo.solvers import build_solver, load_recipe
from mcbo.tasks import build_task

SEEDS = range(5)
BUDGET = 80


def _median_best(recipe: str, task_name: str) -> float:
    task = build_task(task_name, seed=0)
    bests = [build_solver(recipe, task.space, seed=seed).optimize(task, BUDGET)[1] for seed in SEEDS]
    return float(np.median(bests))


def test_recipe_composes_the_casmopolitan_primitives():
    recipe = load_recipe("casmopolitan")
    assert recipe["model"]["nominal_kernel"] == "transformed_overlap"
    assert recipe["acq_optimizer"]["type"] == "interleaved"
    assert recipe["trust_region"]["type"] == "casmopolitan"


@pytest.mark.parametrize("task_name", ["pest_control", "ackley53"])
def test_casmopolitan_beats_random_search(task_name):
    casmopolitan = _median_best("casmopolitan", task_name)
    random_search = _median_best("rs", task_name)
    assert casmopolitan < random_search
