"""Pool arg-max: exact enumeration of finite spaces, exact arg-max over untried points, constraints, limits."""

import logging
import math

import pytest
import torch

from mcbo.acq_optim import ACQ_OPTIMIZERS, build_acq_optimizer
from mcbo.acq_optim.pool import PoolArgMax, enumerate_space
from mcbo.space import Boolean, Categorical, Integer, Ordinal, Permutation, Real, SearchSpace, Sequence
from mcbo.trust_region import CasmopolitanTrustRegion


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


def test_finds_the_exact_arg_max_and_skips_tried_points(target_acq):
    space = SearchSpace([Categorical("i", list(range(500))), Boolean("b")])
    target = space.encode([{"i": 321, "b": True}])[0]
    opt = build_acq_optimizer({"type": "pool"})
    assert isinstance(opt, PoolArgMax) and ACQ_OPTIMIZERS["pool"] is PoolArgMax
    x = opt.optimize(target_acq(target), space, torch.empty(0, space.d, dtype=torch.float64))
    assert space.decode(x)[0] == {"i": 321, "b": True}
    x = opt.optimize(target_acq(target), space, target.unsqueeze(0))
    assert space.decode(x)[0] in ({"i": 321, "b": False}, {"i": 320, "b": True}, {"i": 322, "b": True})


def test_respects_constraints_and_the_trust_region(target_acq):
    space = SearchSpace([Categorical(f"c{i}", [0, 1, 2]) for i in range(6)], constraints=[lambda p: p["c0"] != 2])
    tr = CasmopolitanTrustRegion(space, radius_init=2)
    tr.restart(space.encode([{f"c{i}": 0 for i in range(6)}])[0])
    far = space.encode([{f"c{i}": 2 for i in range(6)}])[0]
    x = PoolArgMax().optimize(target_acq(far), space, torch.empty(0, 6, dtype=torch.float64), trust_region=tr)
    point = space.decode(x)[0]
    assert point["c0"] != 2 and sum(v != 0 for v in point.values()) <= 2
    assert sum(v == 2 for v in point.values()) == 2  # the best the region allows


def test_when_everything_was_tried_it_repeats_the_best(target_acq, caplog):
    space = SearchSpace([Categorical("i", [0, 1, 2])])
    X_all = enumerate_space(space, 10)
    with caplog.at_level(logging.WARNING):
        x = PoolArgMax().optimize(target_acq(X_all[1]), space, X_all)
    assert torch.equal(x[0], X_all[1]) and "already tried" in caplog.text


def test_refuses_infinite_and_too_large_spaces(target_acq):
    with pytest.raises(ValueError, match="parameter 'x' of type Real"):
        enumerate_space(SearchSpace([Real("x", 0, 1), Categorical("c", [0, 1])]), 100)
    with pytest.raises(ValueError, match="1000000 points, more than max_pool_size=1000"):
        enumerate_space(SearchSpace([Sequence("s", "0123456789", 6)]), 1000)
    with pytest.raises(ValueError, match="max_pool_size"):
        PoolArgMax(max_pool_size=0)
