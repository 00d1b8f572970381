"""Converters between Optuna distributions and SearchSpace: faithful round trips, exact types, clear errors."""

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from mcbo import Boolean, Categorical, Integer, Ordinal, Permutation, Real, SearchSpace, Sequence
from mcbo.integrations.optuna import OptunaBridge, distributions_from_space, space_from_optuna
from mcbo.integrations.optuna.bridge import MAX_GRID_VALUES

OPTUNA_SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "dropout": FloatDistribution(-10.2, 10.2, step=0.1),
    "layers": IntDistribution(1, 9, step=2),
    "width": IntDistribution(8, 512, log=True),
    "act": CategoricalDistribution([None, True, 1, "relu"]),
    "same": CategoricalDistribution([1, 1.0, "x"]),
    "fixed_f": FloatDistribution(2.0, 2.0),
    "fixed_c": CategoricalDistribution(["only"]),
}


def test_optuna_space_maps_to_mcbo_types_and_keeps_single_values_aside():
    bridge = OptunaBridge.from_distributions(OPTUNA_SPACE)
    space = bridge.space
    assert [type(p) for p in space.params] == [Real, Ordinal, Integer, Integer, Categorical, Categorical]
    assert space["lr"].log and space["width"].log and space["layers"].step == 2
    assert space["dropout"].values[:3] == [-10.2, -10.1, -10.0] and space["dropout"].values[-1] == 10.2
    assert space["act"].values == [None, True, 1, "relu"]
    assert bridge.fixed == {"fixed_f": 2.0, "fixed_c": "only"}
    assert space_from_optuna(OPTUNA_SPACE) == space


def test_optuna_params_round_trip_with_the_exact_python_types_optuna_requires():
    bridge = OptunaBridge.from_distributions(OPTUNA_SPACE)
    for point in bridge.space.sample_points(50, seed=0):
        params = bridge.to_params(point)
        assert set(params) == set(OPTUNA_SPACE)
        for name, dist in OPTUNA_SPACE.items():
            assert dist._contains(dist.to_internal_repr(params[name])), (name, params[name])
        assert type(params["lr"]) is float and type(params["dropout"]) is float
        assert type(params["layers"]) is int and type(params["width"]) is int
        assert params["act"] in OPTUNA_SPACE["act"].choices
        assert any(params["same"] is c for c in OPTUNA_SPACE["same"].choices)  # 1 and 1.0 kept apart
        assert bridge.to_point(params) == point


def test_stepped_float_values_from_other_samplers_land_on_the_grid():
    bridge = OptunaBridge.from_distributions({"x": FloatDistribution(-10.2, 10.2, step=0.1)})
    assert bridge.to_point({"x": -10.2 + 3 * 0.1}) == {"x": -9.9}  # -9.899999999999999 from float arithmetic


def test_a_grid_finer_than_the_limit_is_searched_as_a_real_and_rounded_onto_the_grid():
    step = 1.0 / (MAX_GRID_VALUES * 2)
    bridge = OptunaBridge.from_distributions({"x": FloatDistribution(0.0, 1.0, step=step)})
    assert isinstance(bridge.space["x"], Real)
    value = bridge.to_params({"x": 0.123456789})["x"]
    assert value == pytest.approx(round(0.123456789 / step) * step)


def test_mcbo_space_maps_to_optuna_and_back():
    space = SearchSpace([
        Real("r", 0.1, 10.0, log=True), Integer("i", 0, 10, step=2), Boolean("b"),
        Categorical("c", ["a", 3, None]), Categorical("t", [(1, 2), (3, 4)]),
        Ordinal("o", ["low", "mid", "high"]), Sequence("s", "ACGU", 3),
    ])
    dists = distributions_from_space(space)
    assert dists["r"] == FloatDistribution(0.1, 10.0, log=True)
    assert dists["i"] == IntDistribution(0, 10, step=2)
    assert dists["b"] == CategoricalDistribution((False, True))
    assert dists["c"] == CategoricalDistribution(("a", 3, None))
    assert dists["t"] == CategoricalDistribution((0, 1))  # tuples are not Optuna choices: their indices are
    assert dists["o"] == IntDistribution(0, 2)  # the rank keeps the order
    assert [n for n in dists if n.startswith("s")] == ["s[0]", "s[1]", "s[2]"]
    bridge = OptunaBridge.from_space(space)
    for point in space.sample_points(30, seed=1):
        params = bridge.to_params(point)
        for name, dist in dists.items():
            assert dist._contains(dist.to_internal_repr(params[name]))
        assert bridge.to_point(params) == space.validate(point)


def test_permutation_has_no_optuna_twin_and_the_error_says_what_to_use():
    space = SearchSpace([Real("x", 0, 1), Permutation("route", 5)])
    with pytest.raises(ValueError, match="'route' is a Permutation.*use an mcbo solver"):
        distributions_from_space(space)


def test_missing_or_out_of_range_params_are_value_errors():
    bridge = OptunaBridge.from_distributions({"x": FloatDistribution(0, 1), "k": IntDistribution(0, 3)})
    with pytest.raises(ValueError, match="lack"):
        bridge.to_point({"x": 0.5})
    with pytest.raises(ValueError, match="'k'"):
        bridge.to_point({"x": 0.5, "k": 7})
    with pytest.raises(ValueError, match="nothing to search"):
        space_from_optuna({"only": FloatDistribution(1.0, 1.0)})
