"""COMBO-style local search finds the maximiser, starts from the incumbent, respects regions and constraints."""

import numpy as np
import pytest
import torch

from mcbo.acq_optim import AcqContext, LocalSearch, build_acq_optimizer
from mcbo.acquisition import ThompsonSampling


def _run(opt, acq, space, X_exclude=None, tr=None, seed=0):
    X_exclude = space.sample(0, seed=0) if X_exclude is None else X_exclude
    return opt.optimize(AcqContext(acq, space, X_exclude=X_exclude, trust_region=tr,
                        generator=torch.Generator().manual_seed(seed), np_rng=np.random.default_rng(seed)))


def test_finds_the_maximiser_of_a_separable_acquisition_on_a_mixed_space(mixed_space, mixed_target, target_acq):
    opt = LocalSearch(n_restarts=4, n_raw=200, max_rounds=60, n_numeric_moves=40, numeric_sigma=0.05)
    x = _run(opt, target_acq(mixed_target), mixed_space)
    assert x.shape == (1, mixed_space.d)
    assert torch.equal(x[0, 2:], mixed_target[2:])  # integer and nominal columns exactly
    assert torch.allclose(x[0, :2], mixed_target[:2], atol=0.03)


def test_finds_the_maximiser_on_a_nominal_space_with_a_permutation(nominal_space, nominal_target, target_acq):
    x = _run(LocalSearch(n_restarts=3, n_raw=100), target_acq(nominal_target), nominal_space)
    assert torch.equal(x[0], nominal_target)


def test_climbs_from_the_incumbent_when_random_starts_sit_on_a_plateau(nominal_space, nominal_target, basin_acq):
    incumbent = nominal_target.clone()
    incumbent[:2] = torch.remainder(incumbent[:2] + 1, 5)  # two moves away from the target, inside the basin
    opt = LocalSearch(n_restarts=2, n_raw=1, max_rounds=5)
    x = _run(opt, basin_acq(nominal_space, nominal_target), nominal_space, X_exclude=incumbent.unsqueeze(0))
    assert torch.equal(x[0], nominal_target)


def test_stays_in_the_trust_region_and_meets_the_constraint(constrained_region, target_acq):
    space, tr, far = constrained_region
    for seed in range(3):
        x = _run(LocalSearch(n_restarts=3, n_raw=100), target_acq(far), space, tr=tr, seed=seed)
        assert tr.contains(x).all()
        assert space.decode(x)[0]["c0"] != 2
        assert space.hamming(x, tr.centre.unsqueeze(0)).item() == 2  # pushed to the edge of the ball
        _, hi = tr.bounds()
        assert x[0, 0] == pytest.approx(float(hi[0]))


def test_never_returns_an_excluded_point(nominal_space, nominal_target, target_acq):
    x = _run(LocalSearch(n_restarts=3, n_raw=100), target_acq(nominal_target), nominal_space,
             X_exclude=nominal_target.unsqueeze(0))
    assert not torch.equal(x[0], nominal_target)
    assert nominal_space.hamming(x, nominal_target.unsqueeze(0)).item() <= 2  # still next to the maximiser


def test_validates_settings_and_rejects_thompson_sampling(mixed_space):
    with pytest.raises(ValueError, match="n_restarts must be an integer >= 1"):
        build_acq_optimizer({"type": "local_search", "n_restarts": 0})
    with pytest.raises(ValueError, match="numeric_sigma must be > 0"):
        LocalSearch(numeric_sigma=0)
    from mcbo.models import GPModel

    model = GPModel(mixed_space)
    X = mixed_space.sample(4, seed=0)
    model.fit(X, torch.arange(4.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="needs a deterministic acquisition"):
        LocalSearch().optimize(AcqContext(ThompsonSampling(model), mixed_space, X_exclude=X))
