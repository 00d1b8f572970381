"""Genetic algorithms (plain categorical and pymoo) find the maximiser and respect regions and constraints."""

import numpy as np
import pytest
import torch

from mcbo.acq_optim import AcqContext, GeneticAlgorithm, build_acq_optimizer
from mcbo.space import Categorical, SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


def _run(opt, acq, space, X_exclude=None, tr=None, seed=0):
    X_exclude = space.sample(0, seed=0) if X_exclude is None else X_exclude
    return opt.optimize(AcqContext(acq, space, X_exclude=X_exclude, trust_region=tr,
                        generator=torch.Generator().manual_seed(seed), np_rng=np.random.default_rng(seed)))


def test_pymoo_ga_finds_the_maximiser_on_a_mixed_space(mixed_space, mixed_target, target_acq):
    opt = GeneticAlgorithm(pop_size=40, n_generations=60, n_raw=200)
    x = _run(opt, target_acq(mixed_target), mixed_space)
    assert torch.equal(x[0, 2:], mixed_target[2:])
    assert torch.allclose(x[0, :2], mixed_target[:2], atol=0.03)


def test_categorical_ga_finds_the_maximiser_on_a_nominal_space(nominal_space, nominal_target, target_acq):
    opt = GeneticAlgorithm(pop_size=40, n_generations=60, n_raw=100)
    x = _run(opt, target_acq(nominal_target), nominal_space)
    assert torch.equal(x[0], nominal_target)
    assert sorted(x[0, 8:].tolist()) == list(range(6))  # the permutation stays a permutation


def test_pymoo_engine_also_runs_on_a_nominal_space(nominal_space, nominal_target, target_acq):
    opt = GeneticAlgorithm(pop_size=40, n_generations=60, n_raw=100, method="pymoo")
    x = _run(opt, target_acq(nominal_target), nominal_space)
    assert nominal_space.hamming(x, nominal_target.unsqueeze(0)).item() <= 1


@pytest.mark.parametrize("method", ["pymoo", "categorical"])
def test_stays_in_the_trust_region_and_meets_the_constraint(constrained_region, target_acq, method):
    space, tr, far = constrained_region
    if method == "categorical":  # the categorical engine needs a space without numeric columns
        space = SearchSpace([Categorical(f"c{i}", [0, 1, 2]) for i in range(6)], constraints=[lambda p: p["c0"] != 2])
        tr = CasmopolitanTrustRegion(space, radius_init=2)
        tr.restart(torch.zeros(6, dtype=torch.float64))
        far = torch.full((6,), 2.0, dtype=torch.float64)
    for seed in range(2):
        x = _run(GeneticAlgorithm(pop_size=20, n_generations=20, n_raw=100, method=method), target_acq(far), space,
                 tr=tr, seed=seed)
        assert tr.contains(x).all()
        assert space.decode(x)[0]["c0"] != 2
        assert space.hamming(x, tr.centre.unsqueeze(0)).item() == 2


def test_never_returns_an_excluded_point(nominal_space, nominal_target, target_acq):
    x = _run(GeneticAlgorithm(pop_size=20, n_generations=30), target_acq(nominal_target), nominal_space,
             X_exclude=nominal_target.unsqueeze(0))
    assert not torch.equal(x[0], nominal_target)


def test_same_seed_same_result(mixed_space, mixed_target, target_acq):
    opt = GeneticAlgorithm(pop_size=10, n_generations=5, n_raw=50)
    assert torch.equal(_run(opt, target_acq(mixed_target), mixed_space, seed=3),
                       _run(opt, target_acq(mixed_target), mixed_space, seed=3))


def test_validates_settings(mixed_space, mixed_target, target_acq):
    with pytest.raises(ValueError, match="unknown method 'nsga'"):
        build_acq_optimizer({"type": "ga", "method": "nsga"})
    with pytest.raises(ValueError, match="pop_size must be >= 2"):
        GeneticAlgorithm(pop_size=1)
    with pytest.raises(ValueError, match="needs a space without numeric columns"):
        _run(GeneticAlgorithm(method="categorical"), target_acq(mixed_target), mixed_space)
