"""Coordinate search (Optuna GPSampler's optimiser): exact maximisers, incumbent starts, regions, constraints."""

import numpy as np
import pytest
import torch

from mcbo.acq_optim import AcqContext, CoordinateSearch, build_acq_optimizer
from mcbo.acquisition import ThompsonSampling
from mcbo.space import Integer, SearchSpace


def _run(opt, acq, space, X_exclude=None, tr=None, seed=0):
    X_exclude = space.sample(0, seed=0) if X_exclude is None else X_exclude
    return opt.optimize(AcqContext(acq, space, X_exclude=X_exclude, trust_region=tr,
                        generator=torch.Generator().manual_seed(seed), np_rng=np.random.default_rng(seed)))


def test_finds_the_maximiser_of_a_separable_acquisition_on_a_mixed_space(mixed_space, mixed_target, target_acq):
    x = _run(CoordinateSearch(n_raw=256, n_starts=4), target_acq(mixed_target), mixed_space)
    assert x.shape == (1, mixed_space.d)
    assert torch.equal(x[0, 2:], mixed_target[2:])  # integer and nominal columns exactly
    assert torch.allclose(x[0, :2], mixed_target[:2], atol=1e-4)  # L-BFGS-B on the real columns


def test_finds_the_maximiser_on_a_nominal_space_with_a_permutation(nominal_space, nominal_target, target_acq):
    x = _run(CoordinateSearch(n_raw=100, n_starts=3), target_acq(nominal_target), nominal_space)
    assert torch.equal(x[0], nominal_target)


def test_reaches_far_values_of_a_wide_integer_column(target_acq):
    space = SearchSpace([Integer("n", 0, 1000)])
    target = space.encode([{"n": 777}])[0]
    x = _run(CoordinateSearch(n_raw=1, n_starts=1), target_acq(target), space)
    assert space.decode(x)[0]["n"] == 777


def test_climbs_from_the_incumbent_when_random_starts_sit_on_a_plateau(nominal_space, nominal_target, basin_acq):
    incumbent = nominal_target.clone()
    incumbent[:2] = torch.remainder(incumbent[:2] + 1, 5)  # two moves away from the target, inside the basin
    x = _run(CoordinateSearch(n_raw=1, n_starts=2), basin_acq(nominal_space, nominal_target), nominal_space,
             X_exclude=incumbent.unsqueeze(0))
    assert torch.equal(x[0], nominal_target)


def test_stays_in_the_trust_region_and_meets_the_constraint(constrained_region, target_acq):
    space, tr, far = constrained_region
    for seed in range(3):
        x = _run(CoordinateSearch(n_raw=100, n_starts=3), target_acq(far), space, tr=tr, seed=seed)
        assert tr.contains(x).all()
        assert space.decode(x)[0]["c0"] != 2
        assert space.hamming(x, tr.centre.unsqueeze(0)).item() == 2  # pushed to the edge of the ball
        _, hi = tr.bounds()
        assert x[0, 0] == pytest.approx(float(hi[0]))


def test_never_returns_an_excluded_point(mixed_space, mixed_target, target_acq):
    x = _run(CoordinateSearch(n_raw=64, n_starts=3), target_acq(mixed_target), mixed_space,
             X_exclude=mixed_target.unsqueeze(0))
    assert not torch.equal(x[0], mixed_target)


def test_same_seed_same_point(mixed_space, mixed_target, target_acq):
    runs = [_run(CoordinateSearch(n_raw=64, n_starts=4), target_acq(mixed_target * 0.5), mixed_space, seed=3)
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_is_built_from_a_recipe_and_rejects_bad_settings_and_sampled_acquisitions(mixed_space):
    assert isinstance(build_acq_optimizer({"type": "coordinate", "n_starts": 3}), CoordinateSearch)
    for bad in ({"n_raw": 0}, {"n_starts": 1.5}, {"max_grid_values": 1}, {"max_sweeps": True}):
        with pytest.raises(ValueError, match="coordinate search"):
            CoordinateSearch(**bad)
    from mcbo.models import GPModel

    model = GPModel(mixed_space)
    X = mixed_space.sample(4, seed=0)
    model.fit(X, torch.arange(4.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="needs a deterministic acquisition"):
        CoordinateSearch().optimize(AcqContext(ThompsonSampling(model), mixed_space, X_exclude=X))
