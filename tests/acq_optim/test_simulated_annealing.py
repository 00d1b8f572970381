"""Batched simulated annealing finds the maximiser and respects trust regions, constraints and exclusions."""

import numpy as np
import pytest
import torch

from mcbo.acq_optim import AcqContext, SimulatedAnnealing, build_acq_optimizer


def _run(opt, acq, space, X_exclude=None, tr=None, seed=0):
    X_exclude = space.sample(0, seed=0) if X_exclude is None else X_exclude
    return opt.optimize(AcqContext(acq, space, X_exclude=X_exclude, trust_region=tr,
                        generator=torch.Generator().manual_seed(seed), np_rng=np.random.default_rng(seed)))


def test_finds_the_maximiser_of_a_separable_acquisition_on_a_mixed_space(mixed_space, mixed_target, target_acq):
    opt = SimulatedAnnealing(n_chains=8, n_steps=400, n_raw=200, numeric_sigma=0.05)
    x = _run(opt, target_acq(mixed_target), mixed_space)
    assert torch.equal(x[0, 2:], mixed_target[2:])
    assert torch.allclose(x[0, :2], mixed_target[:2], atol=0.05)


def test_finds_the_maximiser_on_a_nominal_space_with_a_permutation(nominal_space, nominal_target, target_acq):
    x = _run(SimulatedAnnealing(n_chains=8, n_steps=300), target_acq(nominal_target), nominal_space)
    assert torch.equal(x[0], nominal_target)


def test_same_seed_same_result(nominal_space, nominal_target, target_acq):
    opt = SimulatedAnnealing(n_chains=4, n_steps=30, n_raw=50)
    a = _run(opt, target_acq(nominal_target), nominal_space, seed=1)
    b = _run(opt, target_acq(nominal_target), nominal_space, seed=1)
    assert torch.equal(a, b)


def test_stays_in_the_trust_region_and_meets_the_constraint(constrained_region, target_acq):
    space, tr, far = constrained_region
    for seed in range(3):
        x = _run(SimulatedAnnealing(n_chains=4, n_steps=150, n_raw=100), target_acq(far), space, tr=tr, seed=seed)
        assert tr.contains(x).all()
        assert space.decode(x)[0]["c0"] != 2
        assert space.hamming(x, tr.centre.unsqueeze(0)).item() == 2


def test_never_returns_an_excluded_point(nominal_space, nominal_target, target_acq):
    x = _run(SimulatedAnnealing(n_chains=8, n_steps=300), target_acq(nominal_target), nominal_space,
             X_exclude=nominal_target.unsqueeze(0))
    assert not torch.equal(x[0], nominal_target)


def test_validates_settings():
    with pytest.raises(ValueError, match="final_temp_ratio must be in"):
        build_acq_optimizer({"type": "sa", "final_temp_ratio": 0})
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1"):
        SimulatedAnnealing(n_steps=0)
    with pytest.raises(ValueError, match="p_insert must be in"):
        SimulatedAnnealing(p_insert=2)
