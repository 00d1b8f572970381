"""The solver base owns the record of tried points: nothing evaluated, failed or pending is proposed again."""

import pytest
import torch

from mcbo.solvers import SearchSpaceExhausted, build_solver, list_recipes, load_recipe
from mcbo.solvers.base import Solver
from mcbo.space import Categorical, SearchSpace
from mcbo.tasks import build_task

#: Recipes for other spaces: NAP's checkpoints were trained on one HPO space; CMA-ES is numeric only.
SPACE_BOUND = {"nap", "tnp-ei", "optuna-cmaes"}


def _overrides(recipe: str) -> dict:
    spec = load_recipe(recipe)
    if "n_init" in spec or spec["solver"] == "bo":
        return {"n_init": 5}
    return {"pop_size": 6} if recipe == "ga" else {}


def _repeats(solver: Solver) -> int:
    history = solver.history
    return len(history) - len(history.drop_duplicates(subset=solver.space.names))


@pytest.mark.parametrize("recipe", sorted(set(list_recipes()) - SPACE_BOUND))
def test_no_recipe_evaluates_a_point_twice_on_the_crash_region_problem(recipe):
    task = build_task("crash_cat")
    solver = build_solver(recipe, task.space, seed=0, **_overrides(recipe))
    solver.optimize(task, 25)
    assert _repeats(solver) == 0
    assert (solver.history["status"] == "failed").sum() < 10


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(set(list_recipes()) - SPACE_BOUND))
def test_no_repeated_failed_evaluation_over_five_seeds_at_sixty_evaluations(recipe):
    for seed in range(5):
        task = build_task("crash_cat", seed=seed)
        solver = build_solver(recipe, task.space, seed=seed, **_overrides(recipe))
        solver.optimize(task, 60)
        assert _repeats(solver) == 0, seed


def test_a_repeated_proposal_is_replaced_by_a_new_point():
    space = SearchSpace([Categorical(f"c{i}", ["a", "b", "c"]) for i in range(3)])

    class Stubborn(Solver):
        def _suggest(self, n):
            return torch.zeros(n, space.d, dtype=self.dtype)  # always (a, a, a)

    solver = Stubborn(space, seed=0)
    first = solver.ask(3)
    solver.tell(first[:1], [None])  # the failed point stays tried; the two others are pending
    second = solver.ask(2)
    points = [tuple(p.values()) for p in first + second]
    assert len(set(points)) == 5


def test_a_fully_tried_finite_space_is_a_clear_error():
    space = SearchSpace([Categorical("a", [0, 1]), Categorical("b", ["x", "y"])])
    solver = build_solver("rs", space, seed=0)
    points = solver.ask(4)
    solver.tell(points, [1.0, 2.0, None, 3.0])
    with pytest.raises(SearchSpaceExhausted, match="no untried feasible point"):
        solver.ask(1)


def test_imputed_failures_join_the_training_data_at_the_worst_value():
    task = build_task("crash_cat")
    solver = build_solver("casmopolitan", task.space, seed=0, n_init=5)
    points = [{"c0": "a", "c1": "a", "c2": "b", "c3": "c", "c4": "d", "c5": "e"},
              {"c0": "b", "c1": "a", "c2": "b", "c3": "c", "c4": "d", "c5": "e"},
              {"c0": "b", "c1": "b", "c2": "b", "c3": "c", "c4": "d", "c5": "e"}]
    solver.tell(points, [None, 1.0, 2.2])
    X, y = solver._training_data()
    assert X.shape[0] == 3 and y.tolist() == [1.0, 2.2, 2.2]
    ignoring = build_solver("casmopolitan", task.space, seed=0, n_init=5, failure_policy="ignore")
    ignoring.tell(points, [None, 1.0, 2.2])
    assert ignoring._training_data()[0].shape[0] == 2
    with pytest.raises(ValueError, match="failure_policy"):
        build_solver("casmopolitan", task.space, failure_policy="skip")


def test_failed_evaluations_count_as_trust_region_failures():
    task = build_task("crash_cat")
    solver = build_solver("casmopolitan", task.space, seed=0, n_init=5)
    solver.optimize(task, 6)  # design + one BO step: the trust region is set
    tr = solver.trust_region
    before = tr.n_failures
    solver.tell({"c0": "a", "c1": "a", "c2": "a", "c3": "a", "c4": "a", "c5": "a"}, None)
    assert tr.n_failures == before + 1
