"""Casmopolitan trust region: membership, sampling, projection, expand/shrink/collapse, save/load."""

import pytest
import torch

from mcbo.space import Boolean, Categorical, Real, SearchSpace
from mcbo.trust_region import TRUST_REGIONS, CasmopolitanTrustRegion, TrustRegion, build_trust_region


@pytest.fixture
def space():
    return SearchSpace([Real("x", 0, 1), Real("y", 0, 1)] + [Categorical(f"c{i}", list(range(4))) for i in range(6)])


def _region(space, **kw):
    tr = CasmopolitanTrustRegion(space, **kw)
    tr.restart(space.sample(1, seed=0)[0])
    return tr


def test_samples_lie_inside_box_and_hamming_ball(space):
    tr = _region(space, length_init=0.4, radius_init=2)
    X = tr.sample(300, generator=torch.Generator().manual_seed(0))
    assert len(X) == 300
    assert tr.contains(X).all()
    lo, hi = tr.bounds()
    assert ((X[:, :2] >= lo - 1e-12) & (X[:, :2] <= hi + 1e-12)).all()
    assert (space.hamming(X, tr.centre.unsqueeze(0)).squeeze(-1) <= 2).all()
    assert (space.hamming(X, tr.centre.unsqueeze(0)) == 2).any()


def test_box_is_shaped_by_lengthscales(space):
    tr = _region(space, length_init=0.4)
    tr.centre[:2] = 0.5
    tr.set_lengthscales(torch.tensor([4.0, 1.0], dtype=torch.float64))
    lo, hi = tr.bounds()
    widths = hi - lo
    assert widths[0] == pytest.approx(4 * widths[1])
    assert widths[0] * widths[1] == pytest.approx(0.4**2)


def test_success_expands_failure_shrinks_then_collapses(space):
    tr = _region(space, success_tolerance=2, failure_tolerance=2, radius_init=4, length_init=0.4, multiplier=2.0)
    x = tr.centre.unsqueeze(0)
    tr.update(x, torch.tensor([10.0]))  # first value sets the reference
    tr.update(x, torch.tensor([9.0]))
    tr.update(x, torch.tensor([8.0]))
    assert tr.length == pytest.approx(0.8) and tr.radius == 6
    for _ in range(2):
        tr.update(x, torch.tensor([8.0]))
    assert tr.length == pytest.approx(0.4) and tr.radius == 3
    for _ in range(4):
        tr.update(x, torch.tensor([8.0]))
    assert tr.radius == 0 and tr.collapsed
    tr.restart(space.sample(1, seed=1)[0])
    assert not tr.collapsed and tr.radius == 4 and tr.n_restarts == 2


def test_improvement_moves_the_centre(space):
    tr = _region(space)
    X = space.sample(3, seed=5)
    tr.update(X, torch.tensor([3.0, 1.0, 2.0]))
    assert torch.equal(tr.centre, X[1])


def test_state_round_trip_and_validation(space):
    tr = _region(space)
    tr.update(tr.centre.unsqueeze(0), torch.tensor([1.0]))
    other = CasmopolitanTrustRegion(space)
    other.load_state_dict(tr.state_dict(), torch.float64, torch.device("cpu"))
    assert other.state_dict() == tr.state_dict()
    with pytest.raises(ValueError, match="length_min <= length_init"):
        CasmopolitanTrustRegion(space, length_init=5.0)
    with pytest.raises(ValueError, match="unknown trust_region type 'turbo'"):
        build_trust_region({"type": "turbo"}, space)
    assert build_trust_region({"type": "none"}, space) is None


def test_binary_only_space_has_no_box():
    space = SearchSpace([Boolean(f"b{i}") for i in range(10)])
    tr = _region(space)
    assert not tr.has_numeric and tr.radius == 8  # ceil(0.8 * 10)
    assert tr.contains(tr.sample(50)).all()


def test_project_brings_points_into_the_box_and_the_ball_and_keeps_points_inside(space):
    tr = _region(space, length_init=0.3, radius_init=2)
    X = space.sample(200, seed=1)
    Y = tr.project(X, torch.Generator().manual_seed(0))
    assert tr.contains(Y).all()
    inside = tr.contains(X)
    assert inside.any() and torch.equal(Y[inside], X[inside])
    nominal = space.nominal_columns
    reset = Y[:, nominal] != X[:, nominal]
    assert reset.any() and (Y[:, nominal][reset] == tr.centre[nominal].expand(len(X), -1)[reset]).all()


def test_it_is_the_registered_trust_region_contract():
    assert TRUST_REGIONS["casmopolitan"] is CasmopolitanTrustRegion
    assert issubclass(CasmopolitanTrustRegion, TrustRegion)
    assert build_trust_region({"type": "none"}, SearchSpace([Real("x", 0, 1)])) is None
