"""CoCaBO's bandit optimiser: EXP3 learns from rewards, gradients find the numbers, state persists."""

import json

import numpy as np
import pytest
import torch

from mcbo.acq_optim import AcqContext, MultiArmedBandit, build_acq_optimizer
from mcbo.space import Categorical, Permutation, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", 0, 1), Real("y", 0, 1)] + [Categorical(f"c{i}", list(range(3))) for i in range(4)])


@pytest.fixture
def target(space):
    return space.encode([{"x": 0.2, "y": 0.9, "c0": 2, "c1": 0, "c2": 1, "c3": 2}])[0]


def _teach(opt, space, target, n=300, seed=0):
    """Feed observations of random points whose value is the number of wrong categories (minimised)."""
    X = space.sample(n, seed=seed)
    y = (X[:, 2:] != target[2:]).sum(-1).double()
    opt.observe(space, X, y)


def test_exp3_weights_move_towards_the_rewarding_categories(space, target):
    opt = MultiArmedBandit(gamma=0.1)
    before = opt.probabilities(space)
    assert all(torch.allclose(p, torch.full((3,), 1 / 3, dtype=torch.float64)) for p in before)
    _teach(opt, space, target)
    probs = opt.probabilities(space)
    for c, p in enumerate(probs):
        assert int(torch.argmax(p)) == int(target[2 + c])
        assert p.min() >= 0.1 / 3 - 1e-12  # EXP3 keeps exploring every arm


def test_draws_learned_categories_and_ascends_the_numeric_columns(space, target, target_acq):
    opt = MultiArmedBandit(gamma=0.05, n_raw=50, n_restarts=2, n_grad_steps=60, lr=0.03)
    _teach(opt, space, target, n=2000)
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    ctx = AcqContext(target_acq(target), space, space.sample(0, seed=0), generator=gen, np_rng=rng)
    xs = torch.cat([opt.optimize(ctx) for _ in range(8)])
    assert (xs[:, 2:] == target[2:]).all(-1).sum() >= 5  # mostly the learned categories
    assert torch.allclose(xs[:, :2], target[:2].expand(8, 2), atol=0.02)  # gradient steps reach the optimum


def test_stays_in_the_trust_region_and_meets_the_constraint(constrained_region, target_acq):
    space, tr, far = constrained_region
    opt = MultiArmedBandit(n_raw=50, n_grad_steps=10)
    gen, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    ctx = AcqContext(target_acq(far), space, space.sample(0, seed=0), trust_region=tr, generator=gen, np_rng=rng)
    for _ in range(10):
        x = opt.optimize(ctx)
        assert tr.contains(x).all()
        assert space.decode(x)[0]["c0"] != 2


def test_never_returns_an_excluded_point(target_acq):
    space = SearchSpace([Categorical("a", [0, 1]), Categorical("b", [0, 1])])
    seen = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    opt = MultiArmedBandit()
    x = opt.optimize(AcqContext(target_acq(seen[0]), space, seen, generator=torch.Generator().manual_seed(0),
                     np_rng=np.random.default_rng(0)))
    assert x.tolist() == [[1.0, 1.0]]


def test_state_round_trips_through_json(space, target):
    opt = MultiArmedBandit(gamma=0.1)
    _teach(opt, space, target, n=50)
    restored = MultiArmedBandit(gamma=0.1)
    restored.load_state_dict(json.loads(json.dumps(opt.state_dict())))
    for a, b in zip(opt.probabilities(space), restored.probabilities(space)):
        assert torch.allclose(a, b)


def test_rejects_permutations_and_bad_settings():
    with pytest.raises(ValueError, match="does not support permutation parameters"):
        MultiArmedBandit().probabilities(SearchSpace([Permutation("p", 4)]))
    with pytest.raises(ValueError, match="gamma must be in"):
        build_acq_optimizer({"type": "mab", "gamma": 0})
