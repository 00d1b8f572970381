"""Acquisition optimisers find the maximiser of known acquisitions and respect regions and constraints."""

import numpy as np
import pytest
import torch

from mcbo.acq_optim import AcqContext, InterleavedSearch, RandomCandidateSearch, build_acq_optimizer
from mcbo.acquisition import AcquisitionFunction, ThompsonSampling
from mcbo.space import Categorical, Integer, Real, SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


class Target(AcquisitionFunction):
    """Score = -(distance to a target encoding); maximised at the target."""

    def __init__(self, target):
        super().__init__(model=None)
        self.target = target

    def __call__(self, X):
        return -((X - self.target) ** 2).sum(-1)


@pytest.fixture
def space():
    return SearchSpace([Real("x", 0, 1), Real("y", 0, 1), Integer("n", 0, 20)]
                       + [Categorical(f"c{i}", list(range(5))) for i in range(8)])


def test_interleaved_search_finds_the_optimum(space):
    target = space.encode([{"x": 0.3, "y": 0.7, "n": 13, **{f"c{i}": (i * 3) % 5 for i in range(8)}}])[0]
    opt = InterleavedSearch(n_restarts=4, n_raw=200, n_rounds=20, n_grad_steps=30, lr=0.05)
    x = opt.optimize(AcqContext(Target(target), space, X_exclude=space.sample(0, seed=0), generator=torch.Generator(),
                     np_rng=np.random.default_rng(0)))
    assert x.shape == (1, space.d)
    assert torch.equal(x[0, 3:], target[3:])  # every nominal column found
    assert torch.allclose(x[0, :3], target[:3], atol=0.05)


def test_optimizers_never_return_an_excluded_point(space):
    target = space.sample(1, seed=9)[0]
    for opt in (InterleavedSearch(n_raw=50, n_rounds=3), RandomCandidateSearch(n_candidates=50)):
        x = opt.optimize(AcqContext(Target(target), space, target.unsqueeze(0), np_rng=np.random.default_rng(0)))
        assert not torch.equal(x[0], target)


def test_optimizers_stay_in_trust_region_and_satisfy_constraints():
    space = SearchSpace([Real("x", 0, 1)] + [Categorical(f"c{i}", [0, 1, 2]) for i in range(6)],
                        constraints=[lambda p: p["c0"] != 2])
    tr = CasmopolitanTrustRegion(space, radius_init=2, length_init=0.2)
    tr.restart(space.encode([{"x": 0.5, **{f"c{i}": 0 for i in range(6)}}])[0])
    far = space.encode([{"x": 1.0, **{f"c{i}": 2 for i in range(6)}}])[0]
    for opt in (InterleavedSearch(n_raw=100), RandomCandidateSearch(n_candidates=300)):
        x = opt.optimize(AcqContext(Target(far), space, X_exclude=space.sample(0, seed=0), trust_region=tr,
                         generator=torch.Generator().manual_seed(0), np_rng=np.random.default_rng(0)))
        assert tr.contains(x).all()
        assert space.decode(x)[0]["c0"] != 2
        assert space.hamming(x, tr.centre.unsqueeze(0)).item() == 2  # pushed to the edge of the ball


def test_interleaved_rejects_thompson_sampling(space):
    from mcbo.models import GPModel

    model = GPModel(space)
    X = space.sample(5, seed=0)
    model.fit(X, torch.arange(5.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="needs a deterministic acquisition"):
        InterleavedSearch().optimize(AcqContext(ThompsonSampling(model), space, X_exclude=X))
    x = RandomCandidateSearch(n_candidates=64).optimize(AcqContext(ThompsonSampling(model), space, X_exclude=X,
                                                        np_rng=np.random.default_rng(0)))
    assert x.shape == (1, space.d)


def test_build_validates():
    with pytest.raises(ValueError, match="unknown acq_optimizer type 'lbfgs'"):
        build_acq_optimizer({"type": "lbfgs"})
    with pytest.raises(ValueError, match="n_restarts must be >= 1"):
        build_acq_optimizer({"type": "interleaved", "n_restarts": 0})
