"""build_solver's own arguments: a recipe that is neither a name nor a dict, a seed that is not an integer
>= 0, and an unknown override raise at once, naming the argument and what is allowed."""

import numpy as np
import pytest

from mcbo import Integer, SearchSpace, build_solver


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace([Integer("a", 0, 5)])


@pytest.mark.parametrize("recipe", [42, None, ["rs"]])
def test_recipe_of_another_type_is_a_type_error_naming_recipe(space, recipe):
    with pytest.raises(TypeError, match=r"recipe must be a recipe name \(str, see list_recipes\(\)\) or a recipe "
                                        r"dict, got "):
        build_solver(recipe, space)


@pytest.mark.parametrize("seed", ["zero", 1.5, None, True])
def test_seed_that_is_not_an_integer_is_a_type_error_naming_seed(space, seed):
    with pytest.raises(TypeError, match=f"seed must be an integer >= 0, got {type(seed).__name__} "):
        build_solver("rs", space, seed=seed)


def test_negative_seed_is_a_value_error_and_numpy_integers_are_seeds(space):
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        build_solver("rs", space, seed=-1)
    assert build_solver("rs", space, seed=np.int64(3)).seed == 3


def test_unknown_override_names_it_and_lists_the_allowed_keys(space):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['n_innit'\]; allowed: \[.*'n_init'.*\]"):
        build_solver("casmopolitan", space, n_innit=5)
