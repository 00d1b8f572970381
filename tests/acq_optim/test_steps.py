"""Shared search steps: starts from the best random points and the incumbent, projected Adam ascent,
moves to the best neighbour."""

import numpy as np
import torch

from mcbo.acq_optim import AcqContext
from mcbo.acq_optim.steps import incumbent_point, move_to_best_neighbours, numeric_ascent, start_points


def _ctx(acq, space, X_exclude=None, tr=None):
    X_exclude = space.sample(0, seed=0) if X_exclude is None else X_exclude
    return AcqContext(acq, space, X_exclude, trust_region=tr, generator=torch.Generator().manual_seed(0),
                      np_rng=np.random.default_rng(0))


def test_start_points_are_the_best_random_points_plus_the_incumbent(mixed_space, mixed_target, target_acq):
    seen = torch.cat([mixed_space.sample(3, seed=1), mixed_target.unsqueeze(0)])
    ctx = _ctx(target_acq(mixed_target), mixed_space, seen)
    assert torch.equal(incumbent_point(ctx)[0], mixed_target)  # the best-scored observed point
    X, values, pool, pool_values = start_points(ctx, n_raw=40, n_starts=4)
    assert X.shape == (4, mixed_space.d) and len(pool) == 40
    assert torch.equal(X[-1], mixed_target)
    assert torch.equal(values[:3], torch.sort(pool_values, descending=True).values[:3])


def test_in_a_region_the_incumbent_is_its_centre(constrained_region, target_acq):
    space, tr, far = constrained_region
    ctx = _ctx(target_acq(far), space, space.sample(5, seed=0), tr)
    assert torch.equal(incumbent_point(ctx)[0], tr.centre)
    X, _, pool, _ = start_points(ctx, n_raw=30, n_starts=3)
    assert tr.contains(X).all() and tr.contains(pool).all()


def test_numeric_ascent_climbs_inside_the_box_and_leaves_nominal_columns_alone(mixed_space, mixed_target, target_acq):
    ctx = _ctx(target_acq(mixed_target), mixed_space)
    X = mixed_space.sample(6, seed=2)
    lo = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
    hi = torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64)  # the target's y = 0.8 lies outside
    Y = numeric_ascent(ctx, X, n_steps=200, lr=0.05, lo=lo, hi=hi)
    assert torch.equal(Y[:, 3:], X[:, 3:])
    assert torch.allclose(Y[:, 0], torch.full((6,), 0.3, dtype=torch.float64), atol=0.02)
    assert torch.allclose(Y[:, 1], torch.full((6,), 0.5, dtype=torch.float64))  # stopped at the box
    assert torch.equal(Y, mixed_space.snap(Y))


def test_rows_move_to_their_best_neighbour_only_when_it_improves():
    X = torch.tensor([[0.0], [10.0]])
    values = torch.tensor([0.0, 5.0])
    nbrs = torch.tensor([[1.0], [2.0], [11.0]])
    owner = torch.tensor([0, 0, 1])
    X, values, moved = move_to_best_neighbours(X, values, nbrs, owner, torch.tensor([1.0, 3.0, 4.0]))
    assert X.tolist() == [[2.0], [10.0]] and values.tolist() == [3.0, 5.0] and moved.tolist() == [True, False]
