"""Tests of mcbo/tasks/sfu_functions.py: the 21 SFU functions, their domains and known minima."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.test_functions import synthetic as bt

from mcbo.tasks import sfu_functions as sf
from mcbo.tasks.sfu_functions import SFU_FUNCTIONS, get_sfu, sfu_table

MCBO_NAMES = [
    "ackley", "griewank", "langermann", "levy", "rastrigin", "schwefel", "perm0", "rot_hyp", "sphere",
    "modified_sphere", "sum_pow", "sum_squares", "trid", "power_sum", "zakharov", "dixon_price", "rosenbrock",
    "michalewicz", "perm", "powell", "styblinski_tang",
]


def _valid_dims(spec: sf.SfuSpec) -> list[int]:
    return [d for d in (2, 3, 4, 5, 8) if d >= spec.min_dims and d % spec.dims_multiple == 0]


def _uniform(spec: sf.SfuSpec, d: int, n: int, seed: int = 0) -> np.ndarray:
    lb, ub = spec.domain(d)
    return np.random.default_rng(seed).uniform(lb, ub, size=(n, d))


def test_the_21_mcbo_functions_are_all_there():
    assert sorted(SFU_FUNCTIONS) == sorted(MCBO_NAMES)


@pytest.mark.parametrize("name", MCBO_NAMES)
def test_vectorised_shape_and_single_row(name):
    spec = SFU_FUNCTIONS[name]
    d = _valid_dims(spec)[-1]
    params = spec.make_params(d, np.random.default_rng(0))
    x = _uniform(spec, d, 8)
    y = spec.evaluate(x, params)
    assert y.shape == (8,) and np.all(np.isfinite(y))
    one = spec.evaluate(x[3], params)
    assert one.shape == (1,) and one[0] == pytest.approx(y[3], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", MCBO_NAMES)
def test_documented_minimiser_gives_documented_minimum(name):
    spec = SFU_FUNCTIONS[name]
    checked = 0
    for d in _valid_dims(spec):
        params = spec.make_params(d, np.random.default_rng(1))
        x_star = spec.minimiser(d, params)
        if x_star is None:
            continue
        lb, ub = spec.domain(d)
        assert np.all((lb <= x_star) & (x_star <= ub)), f"{name}: minimiser outside the domain for d={d}"
        value = spec.evaluate(x_star[None, :], params)[0]
        assert value == pytest.approx(spec.minimum(d), abs=1e-3 * d, rel=1e-6)
        checked += 1
    if name != "langermann" and name != "michalewicz":
        assert checked > 0


@pytest.mark.parametrize("name", MCBO_NAMES)
def test_minimiser_beats_nearby_and_random_points(name):
    spec = SFU_FUNCTIONS[name]
    rng = np.random.default_rng(2)
    for d in _valid_dims(spec):
        params = spec.make_params(d, np.random.default_rng(1))
        x_star = spec.minimiser(d, params)
        if x_star is None:
            continue
        lb, ub = spec.domain(d)
        best = spec.evaluate(x_star[None, :], params)[0]
        near = np.clip(x_star + rng.normal(scale=1e-3 * (ub - lb), size=(256, d)), lb, ub)
        far = _uniform(spec, d, 2048, seed=3)
        assert np.all(spec.evaluate(near, params) >= best - 1e-9)
        assert np.all(spec.evaluate(far, params) >= best - 1e-9)


def test_known_values_at_the_origin_and_ones():
    zeros, ones = np.zeros((1, 6)), np.ones((1, 6))
    assert sf.ackley(zeros)[0] == pytest.approx(0.0, abs=1e-12)
    assert sf.rosenbrock(ones)[0] == 0.0
    assert sf.levy(ones)[0] == pytest.approx(0.0, abs=1e-12)
    assert sf.modified_sphere(zeros)[0] == pytest.approx(-1745 / 899)
    assert sf.rastrigin(ones)[0] == pytest.approx(6.0)  # 10 d + sum(1 - 10) = 60 - 54
    assert sf.power_sum(np.array([[1.0, 2.0, 2.0, 3.0]]))[0] == 0.0
    assert sf.trid(np.array([[4.0, 6.0, 6.0, 4.0]]))[0] == pytest.approx(-16.0)
    assert sf.michalewicz(np.array([[2.20, 1.57]]))[0] == pytest.approx(-1.8013, abs=1e-3)


# Independent BoTorch implementations of the same SFU functions (same default constants).
BOTORCH_TWINS = {
    "ackley": lambda d: bt.Ackley(dim=d),
    "griewank": lambda d: bt.Griewank(dim=d),
    "levy": lambda d: bt.Levy(dim=d),
    "rastrigin": lambda d: bt.Rastrigin(dim=d),
    "rosenbrock": lambda d: bt.Rosenbrock(dim=d),
    "dixon_price": lambda d: bt.DixonPrice(dim=d),
    "michalewicz": lambda d: bt.Michalewicz(dim=d),
    "powell": lambda d: bt.Powell(dim=d),
    "styblinski_tang": lambda d: bt.StyblinskiTang(dim=d),
}


@pytest.mark.parametrize("name", sorted(BOTORCH_TWINS))
def test_agrees_with_botorch(name):
    d = 4
    spec = SFU_FUNCTIONS[name]
    twin = BOTORCH_TWINS[name](d)
    lo = max(spec.domain(d)[0], float(twin.bounds[0, 0]))
    hi = min(spec.domain(d)[1], float(twin.bounds[1, 0]))
    x = np.random.default_rng(4).uniform(lo, hi, size=(32, d))
    expected = twin.evaluate_true(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(spec.evaluate(x), expected, rtol=1e-10, atol=1e-10)


def _loop_reference(name: str, x: np.ndarray, params: dict) -> float:
    """Scalar, loop-by-loop definitions from the SFU pages (1-based indices as printed there)."""
    d = len(x)
    if name == "perm0":
        return sum(sum((j + 10.0) * (x[j - 1] ** i - 1.0 / j**i) for j in range(1, d + 1)) ** 2
                   for i in range(1, d + 1))
    if name == "perm":
        return sum(sum((j**i + 10.0) * ((x[j - 1] / j) ** i - 1.0) for j in range(1, d + 1)) ** 2
                   for i in range(1, d + 1))
    if name == "rot_hyp":
        return sum(sum(x[j - 1] ** 2 for j in range(1, i + 1)) for i in range(1, d + 1))
    if name == "sum_pow":
        return sum(abs(x[i - 1]) ** (i + 1) for i in range(1, d + 1))
    if name == "sum_squares":
        return sum(i * x[i - 1] ** 2 for i in range(1, d + 1))
    if name == "trid":
        return sum((x[i - 1] - 1) ** 2 for i in range(1, d + 1)) - sum(x[i - 1] * x[i - 2] for i in range(2, d + 1))
    if name == "zakharov":
        s = sum(0.5 * i * x[i - 1] for i in range(1, d + 1))
        return sum(v**2 for v in x) + s**2 + s**4
    if name == "modified_sphere":
        return (sum(x[i - 1] ** 2 * 2**i for i in range(1, d + 1)) - 1745) / 899
    if name == "power_sum":
        return sum((sum(x[j] ** i for j in range(d)) - params["b"][i - 1]) ** 2 for i in range(1, d + 1))
    if name == "langermann":
        total = 0.0
        for a_i, c_i in zip(params["a"], params["c"]):
            r = sum((x[j] - a_i[j]) ** 2 for j in range(d))
            total += c_i * math.exp(-r / math.pi) * math.cos(math.pi * r)
        return total
    if name == "schwefel":
        return 418.9829 * d - sum(v * math.sin(math.sqrt(abs(v))) for v in x)
    if name == "sphere":
        return sum(v**2 for v in x)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["perm0", "perm", "rot_hyp", "sum_pow", "sum_squares", "trid", "zakharov",
                                  "modified_sphere", "power_sum", "langermann", "schwefel", "sphere"])
@pytest.mark.parametrize("d", [2, 3, 4])
def test_agrees_with_loop_reference(name, d):
    spec = SFU_FUNCTIONS[name]
    params = spec.make_params(d, np.random.default_rng(5))
    x = _uniform(spec, d, 6, seed=6)
    expected = [_loop_reference(name, row, params) for row in x]
    np.testing.assert_allclose(spec.evaluate(x, params), expected, rtol=1e-9, atol=1e-9)


def test_instance_constants_follow_the_library_and_the_seed():
    lang = get_sfu("langermann")
    np.testing.assert_array_equal(lang.make_params(2, np.random.default_rng(0))["c"], [1, 2, 5, 2, 3])
    p1, p2 = lang.make_params(3, np.random.default_rng(7)), lang.make_params(3, np.random.default_rng(7))
    np.testing.assert_array_equal(p1["a"], p2["a"])
    assert p1["a"].shape == (5, 3) and np.all((1 <= p1["a"]) & (p1["a"] <= 9))
    power = get_sfu("power_sum")
    np.testing.assert_array_equal(power.make_params(4, np.random.default_rng(0))["b"], [8, 18, 44, 114])
    planted = power.make_params(6, np.random.default_rng(8))
    assert power.evaluate(planted["z"][None, :], planted)[0] == 0.0


def test_functions_without_constants_refuse_other_dimensions():
    with pytest.raises(ValueError, match="'a' and 'c'"):
        sf.langermann(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="'b'"):
        sf.power_sum(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="multiple of 4"):
        sf.powell(np.zeros((1, 6)))


def test_dimension_checks_and_unknown_name():
    with pytest.raises(ValueError, match="powell"):
        get_sfu("powell").check_dims(6)
    with pytest.raises(ValueError, match="at least 2"):
        get_sfu("rosenbrock").check_dims(1)
    with pytest.raises(ValueError, match="'nope'.*allowed"):
        get_sfu("nope")


def test_domains_depend_on_dimension_where_documented():
    assert get_sfu("perm0").domain(5) == (-5.0, 5.0)
    assert get_sfu("trid").domain(3) == (-9.0, 9.0)
    assert get_sfu("power_sum").domain(4) == (0.0, 4.0)
    assert get_sfu("ackley").domain(7) == (-32.768, 32.768)


def test_table_lists_every_function_with_its_source():
    table = sfu_table(4)
    assert list(table["function"]) == list(SFU_FUNCTIONS)
    assert table["url"].str.startswith("https://www.sfu.ca/~ssurjano/").all()
    row = table.set_index("function").loc["trid"]
    assert row["minimum"] == pytest.approx(-16.0) and row["minimiser"] == [4.0, 6.0, 6.0, 4.0]
    assert table.set_index("function").loc["langermann", "minimiser"] is None
    assert math.isnan(sfu_table(3).set_index("function").loc["powell", "lb"])
