"""Recipes: validated against their solver kind's schema, names that cannot leave the recipe folder, and
solver kinds added from outside by decorator."""

import pytest
import torch

from mcbo.solvers import Solver, build_solver, list_recipes, load_recipe, register_solver_kind
from mcbo.solvers.registry import SOLVER_KINDS, check_recipe_keys
from mcbo.space import Categorical, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", 0, 1), Categorical("c", ["a", "b", "c"])])


@register_solver_kind("test_plugin_grid_walk")
class GridWalk(Solver):
    """A user's solver kind: points on a diagonal of the unit cube."""

    def __init__(self, space, seed=0, step: float = 0.1, **kwargs) -> None:
        super().__init__(space, seed=seed, **kwargs)
        self.step = step

    def _suggest(self, n):
        k = len(self.X_tried)
        U = ((torch.arange(k, k + n, dtype=self.dtype) * self.step) % 1.0).unsqueeze(-1).expand(n, self.space.d)
        return self.space.from_unit_cube(U.clone())


def test_a_solver_kind_registered_outside_is_built_by_name_from_an_inline_recipe(space):
    solver = build_solver({"name": "walk", "solver": "test_plugin_grid_walk", "step": 0.25}, space, seed=0)
    assert isinstance(solver, GridWalk) and solver.step == 0.25 and solver.name == "walk"
    assert [p["x"] for p in solver.ask(3)] == [0.0, 0.25, 0.5]
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['stride'\]; allowed: \[.*'device', 'dtype', .*'step'\]"):
        build_solver({"solver": "test_plugin_grid_walk", "stride": 0.25}, space)


def test_an_unknown_top_level_key_is_named_with_the_allowed_keys(space):
    with pytest.raises(ValueError, match=r"recipe 'casmopolitan' \(solver 'bo'\): unknown key\(s\) \['n_innit'\]; "
                                         r"allowed: \['acq_optimizer', 'acquisition', .*'n_init', .*'trust_region'\]"):
        build_solver("casmopolitan", space, n_innit=5)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['seed'\]"):  # the seed is build_solver's argument
        build_solver({"solver": "rs", "seed": 3}, space)


def test_an_unknown_primitive_setting_is_named_with_the_allowed_settings(space):
    with pytest.raises(ValueError, match=r"acq_optimizer 'interleaved': unknown setting\(s\) \['n_restart'\]; "
                                         r"allowed: \['lr', 'n_grad_steps', 'n_raw', 'n_restarts', 'n_rounds'\]"):
        build_solver("casmopolitan", space, acq_optimizer={"type": "interleaved", "n_restart": 3})
    with pytest.raises(ValueError, match=r"model 'gp': unknown setting\(s\) \['kernel'\]; allowed: \[.*'nominal_kernel'"):
        build_solver("casmopolitan", space, model={"type": "gp", "kernel": "overlap"})
    with pytest.raises(ValueError, match=r"unknown acquisition type 'ucb'; allowed: \[.*'lcb'"):
        build_solver("casmopolitan", space, acquisition={"type": "ucb"})


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "casmopolitan/../rs", "", ".hidden",
                                  "a b"])
def test_a_recipe_name_cannot_reach_outside_the_recipe_folder(space, name):
    with pytest.raises(ValueError, match="names must match"):
        build_solver(name, space)
    with pytest.raises(ValueError, match="names must match"):
        load_recipe(name)


def test_every_shipped_recipe_fits_its_schema():
    for name in list_recipes():
        recipe = load_recipe(name)
        assert recipe["solver"] in SOLVER_KINDS
        check_recipe_keys(recipe)
