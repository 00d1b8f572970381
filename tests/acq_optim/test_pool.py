"""Pool arg-max: exact arg-max over untried points of a finite space, constraints, regions, limits."""

import logging

import pytest
import torch

from mcbo.acq_optim import ACQ_OPTIMIZERS, AcqContext, build_acq_optimizer
from mcbo.acq_optim.pool import PoolArgMax
from mcbo.space import Boolean, Categorical, Real, SearchSpace, Sequence, enumerate_space
from mcbo.trust_region import CasmopolitanTrustRegion


def test_finds_the_exact_arg_max_and_skips_tried_points(target_acq):
    space = SearchSpace([Categorical("i", list(range(500))), Boolean("b")])
    target = space.encode([{"i": 321, "b": True}])[0]
    opt = build_acq_optimizer({"type": "pool"})
    assert isinstance(opt, PoolArgMax) and ACQ_OPTIMIZERS["pool"] is PoolArgMax
    x = opt.optimize(AcqContext(target_acq(target), space, torch.empty(0, space.d, dtype=torch.float64)))
    assert space.decode(x)[0] == {"i": 321, "b": True}
    x = opt.optimize(AcqContext(target_acq(target), space, target.unsqueeze(0)))
    assert space.decode(x)[0] in ({"i": 321, "b": False}, {"i": 320, "b": True}, {"i": 322, "b": True})


def test_respects_constraints_and_the_trust_region(target_acq):
    space = SearchSpace([Categorical(f"c{i}", [0, 1, 2]) for i in range(6)], constraints=[lambda p: p["c0"] != 2])
    tr = CasmopolitanTrustRegion(space, radius_init=2)
    tr.restart(space.encode([{f"c{i}": 0 for i in range(6)}])[0])
    far = space.encode([{f"c{i}": 2 for i in range(6)}])[0]
    X_exclude = torch.empty(0, 6, dtype=torch.float64)
    x = PoolArgMax().optimize(AcqContext(target_acq(far), space, X_exclude, trust_region=tr))
    point = space.decode(x)[0]
    assert point["c0"] != 2 and sum(v != 0 for v in point.values()) <= 2
    assert sum(v == 2 for v in point.values()) == 2  # the best the region allows


def test_when_everything_was_tried_it_repeats_the_best(target_acq, caplog):
    space = SearchSpace([Categorical("i", [0, 1, 2])])
    X_all = enumerate_space(space, 10)
    with caplog.at_level(logging.WARNING):
        x = PoolArgMax().optimize(AcqContext(target_acq(X_all[1]), space, X_all))
    assert torch.equal(x[0], X_all[1]) and "already tried" in caplog.text


def test_refuses_infinite_and_too_large_spaces(target_acq):
    infinite = SearchSpace([Real("x", 0, 1), Categorical("c", [0, 1])])
    with pytest.raises(ValueError, match="pool: parameter 'x' of type Real.*max_pool_size=100"):
        PoolArgMax(max_pool_size=100).optimize(AcqContext(target_acq(infinite.sample(1, seed=0)[0]), infinite,
                                                          infinite.sample(0, seed=0)))
    with pytest.raises(ValueError, match="1000000 points, more than max_points=1000.*raise max_pool_size"):
        PoolArgMax(max_pool_size=1000).pool(SearchSpace([Sequence("s", "0123456789", 6)]), torch.float64,
                                            torch.device("cpu"))
    with pytest.raises(ValueError, match="max_pool_size"):
        PoolArgMax(max_pool_size=0)
