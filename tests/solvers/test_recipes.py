"""Every named recipe builds and improves on its initial design; invalid combinations say why."""

import pytest

from mcbo.solvers import build_solver, list_recipes, load_recipe
from mcbo.space import Categorical, Real, SearchSpace
from mcbo.tasks import build_task

#: recipe -> a task it suits (SSK needs one shared alphabet; BOCS a nominal space; CoCaBO a mixed one).
SUITABLE = {
    "casmopolitan": "pest_control",
    "boils": "ackley_cat",
    "combo": "ackley_cat",
    "bodi": "ackley_cat",
    "bocs": "contamination",
    "boss": "ackley_cat",
    "cocabo": "ackley53",
    "hc": "ackley_cat",
    "sa": "ackley_cat",
    "ga": "ackley_cat",
}
N_INIT = 10


def test_all_named_solvers_are_shipped():
    assert set(SUITABLE) | {"rs", "instinct"} <= set(list_recipes())
    for name in list_recipes():
        recipe = load_recipe(name)
        assert recipe["paper"] and recipe["description"] and recipe["solver"]


@pytest.mark.parametrize("recipe", sorted(SUITABLE))
def test_named_solver_improves_on_its_initial_design(recipe):
    task = build_task(SUITABLE[recipe])
    # The initial design: n_init random points for BO, the first population for the GA.
    overrides = {"n_init": N_INIT} if "n_init" in load_recipe(recipe) else {}
    if recipe == "ga":
        overrides = {"pop_size": N_INIT}
    solver = build_solver(recipe, task.space, seed=0, **overrides)
    solver.optimize(task, 30)
    values = solver.history["value"]
    assert len(values) == 30 and solver.history["status"].eq("ok").all()
    assert values.iloc[N_INIT:].min() < values.iloc[:N_INIT].min()


def test_ssk_needs_one_alphabet():
    space = SearchSpace([Categorical("a", [0, 1, 2]), Categorical("b", [0, 1, 2, 3, 4])])
    with pytest.raises(ValueError, match="share one alphabet"):
        build_solver("boils", space)


def test_bandit_needs_a_per_column_kernel():
    space = SearchSpace([Categorical(f"c{i}", list("abc")) for i in range(4)] + [Real("x", 0, 1)])
    with pytest.raises(ValueError, match="'mab' .* nominal kernel 'ssk'"):
        build_solver("cocabo", space, model={"type": "gp", "nominal_kernel": "ssk"})


def test_bocs_needs_a_nominal_space():
    space = SearchSpace([Categorical("c", list("abc")), Real("x", 0, 1)])
    with pytest.raises(ValueError, match="BOCS needs a nominal space"):
        build_solver("bocs", space)
