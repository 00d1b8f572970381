"""Parameter types: validation messages, encode/decode round trips, dict round trips."""

import numpy as np
import pytest

from mcbo.space import (
    Boolean,
    Categorical,
    ColumnKind,
    Integer,
    Ordinal,
    Permutation,
    Real,
    Sequence,
    param_from_dict,
)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: Real("lr", 1.0, 1.0), "lr.*lower bound must be below"),
        (lambda: Real("lr", 2.0, 1.0), "lr.*lb=2.0"),
        (lambda: Real("lr", 0.0, 1.0, log=True), "lr.*log scale needs a positive lower bound"),
        (lambda: Integer("n", 0, 10, log=True), "n.*log scale"),
        (lambda: Integer("n", 0.5, 10), "n.*lb must be an integer"),
        (lambda: Integer("n", 0, 10, step=0), "n.*step must be >= 1"),
        (lambda: Categorical("opt", []), "opt.*non-empty"),
        (lambda: Categorical("opt", ["a", "a"]), "opt.*duplicate value 'a'"),
        (lambda: Ordinal("o", []), "o.*non-empty"),
        (lambda: Permutation("p", 1), "p.*at least 2"),
        (lambda: Sequence("s", "", 3), "s.*alphabet"),
        (lambda: Sequence("s", "AC", 0), "s.*length"),
        (lambda: Real("", 0, 1), "name"),
    ],
)
def test_bad_definitions_raise_naming_the_parameter(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(
    "param, bad",
    [
        (Real("x", -1, 1), 2.0),
        (Real("x", -1, 1), "0.5"),
        (Real("x", -1, 1), float("nan")),
        (Integer("n", 1, 10), 11),
        (Integer("n", 1, 10), 2.5),
        (Integer("k", 0, 9, step=3), 4),
        (Categorical("c", ["a", "b"]), "z"),
        (Ordinal("o", [1, 2, 4]), 3),
        (Boolean("b"), "yes"),
        (Permutation("p", 3), [0, 0, 1]),
        (Sequence("s", "ACGU", 3), "ACX"),
        (Sequence("s", "ACGU", 3), "AC"),
    ],
)
def test_bad_values_raise_naming_parameter_and_value(param, bad):
    with pytest.raises(ValueError) as err:
        param.validate(bad)
    assert repr(param.name) in str(err.value)
    assert repr(bad)[:10] in str(err.value) or str(bad)[:5] in str(err.value)


def test_real_log_scale_encodes_to_unit_interval_geometrically():
    p = Real("lr", 1e-4, 1.0, log=True)
    assert p.encode(1e-2)[0] == pytest.approx(0.5)
    assert p.decode(np.array([0.25])) == pytest.approx(1e-3)


def test_integer_step_grid_and_log_decode():
    p = Integer("k", 0, 10, step=3)
    assert p.ub == 9  # the last value on the grid
    assert p.decode(np.array([0.6])) in (3, 6)
    q = Integer("n", 1, 1000, log=True)
    assert q.decode(np.array([q.encode(100)[0]])) == 100


@pytest.mark.parametrize(
    "param, value",
    [
        (Real("x", -3, 5), 1.25),
        (Integer("n", -5, 5), -2),
        (Ordinal("o", ["low", "mid", "high"]), "mid"),
        (Categorical("c", ["a", 1, 2.5]), 2.5),
        (Boolean("b"), True),
        (Permutation("p", ["x", "y", "z"]), ["z", "x", "y"]),
        (Sequence("s", "ACGU", 4), ["G", "A", "U", "U"]),
    ],
)
def test_encode_decode_round_trip(param, value):
    encoded = np.array(param.encode(value))
    assert len(encoded) == param.n_columns == len(param.column_kinds())
    assert param.decode(encoded) == value
    assert param_from_dict(param.to_dict()) == param


def test_sequence_accepts_strings_and_column_kinds():
    s = Sequence("s", "AC", 3)
    assert s.validate("CAC") == ["C", "A", "C"]
    assert s.column_kinds() == [ColumnKind.NOMINAL] * 3
    assert Permutation("p", 3).column_kinds() == [ColumnKind.PERMUTATION] * 3


def test_unknown_param_type_in_dict():
    with pytest.raises(ValueError, match="unknown type 'float'"):
        param_from_dict({"type": "float", "name": "x"})


# ---------------------------------------------------------------- ranges float64 cannot hold (issue 18)
@pytest.mark.parametrize("factory, match", [
    (lambda: Real("x", -1e308, 1e308), r"parameter 'x': the range .* overflows float64"),
    (lambda: Real("x", 0, 10**400), r"parameter 'x': bounds must be finite numbers \(within float64\)"),
    (lambda: Integer("i", 0, 3, step=5), r"parameter 'i': step 5 is larger than the range ub - lb = 3"),
    (lambda: Integer("i", 0, 10**20), r"parameter 'i': ub=100000000000000000000 is outside \[-2\*\*53, 2\*\*53\]"),
    (lambda: Integer("i", -2**53, 2**53), r"parameter 'i': the range .* spans more than 2\*\*53 integers"),
    (lambda: Integer("i", 0, 10**400), r"parameter 'i': ub=.* is outside"),
    (lambda: Categorical("c", ["a", float("nan")]), r"parameter 'c': categories must not hold NaN"),
    (lambda: Categorical("c", [1.0, np.float64("nan")]), r"parameter 'c': categories must not hold NaN"),
    (lambda: Ordinal("o", [1.0, float("nan"), 3.0]), r"parameter 'o': values must not hold NaN"),
    (lambda: Permutation("p", [0, float("nan")]), r"parameter 'p': items must not hold NaN"),
    (lambda: Sequence("s", ["a", float("nan")], 2), r"parameter 's': alphabet must not hold NaN"),
    (lambda: Permutation("p", [[0], [1]]), r"parameter 'p': items must hold hashable values"),
])
def test_values_float64_cannot_hold_are_refused_naming_the_parameter(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_the_widest_ranges_float64_can_hold_still_work():
    wide = Real("x", -1e307, 1e307)
    assert wide.decode(np.array([0.5])) == 0.0 and np.isfinite(wide.decode(np.array([1.0])))
    assert Real("x", 1e-300, 1e300, log=True).decode(np.array([1.0])) == pytest.approx(1e300)
    big = Integer("i", 0, 2**53)
    for value in (0, 1, 2**52 + 1, 2**53 - 1, 2**53):
        assert big.decode(np.array(big.encode(value))) == value
    assert Integer("i", -2**52, 2**52).decode(np.array([0.5])) == 0
    single_step = Integer("i", 0, 3, step=3)  # step == ub - lb: the two values 0 and 3
    assert [single_step.decode(np.array([u])) for u in (0.0, 1.0)] == [0, 3]
    assert Categorical("c", [None, "a", 1.5]).validate(None) is None
