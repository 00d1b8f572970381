"""Enumeration of finite spaces: every point once, canonical encodings, clear refusals."""

import math

import pytest
import torch

from mcbo.space import (
    Boolean,
    Categorical,
    Integer,
    Ordinal,
    Permutation,
    Real,
    SearchSpace,
    Sequence,
    enumerate_space,
)


def test_enumeration_lists_every_point_once():
    space = SearchSpace([Categorical("c", ["a", "b", "c"]), Boolean("flag"), Ordinal("o", [1, 10, 100]),
                         Integer("n", 2, 8, step=3), Sequence("s", "xy", 2), Permutation("p", 3)])
    X = enumerate_space(space, 10**6)
    assert X.shape == (3 * 2 * 3 * 3 * 4 * math.factorial(3), space.d)
    points = space.decode(X)
    assert len({repr(p) for p in points}) == len(points)
    for p in points:
        space.validate(p)
    assert torch.equal(space.encode(points), X)  # canonical encodings


def test_refuses_infinite_and_too_large_spaces():
    with pytest.raises(ValueError, match="parameter 'x' of type Real has infinitely many values"):
        enumerate_space(SearchSpace([Real("x", 0, 1), Categorical("c", [0, 1])]), 100)
    with pytest.raises(ValueError, match="1000000 points, more than max_points=1000"):
        enumerate_space(SearchSpace([Sequence("s", "0123456789", 6)]), 1000)
