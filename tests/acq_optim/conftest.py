"""Shared fixtures of the acquisition-optimiser tests: a known separable acquisition and small spaces."""

import pytest
import torch

from mcbo.acquisition import AcquisitionFunction
from mcbo.space import Categorical, Integer, Permutation, Real, SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


class Target(AcquisitionFunction):
    """Separable acquisition ``-sum_j (x_j - t_j)^2``: its unique maximiser is the encoding ``t``."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__(model=None)
        self.target = target

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return -((X - self.target.to(X)) ** 2).sum(-1)


@pytest.fixture
def target_acq():
    return Target


class Basin(AcquisitionFunction):
    """Flat everywhere except within Hamming distance 2 of ``target``, where it rises towards it."""

    def __init__(self, space, target):
        super().__init__(model=None)
        self.space, self.target = space, target

    def __call__(self, X):
        h = self.space.hamming(X, self.target.unsqueeze(0)).squeeze(-1).to(X.dtype)
        return torch.where(h <= 2, -h, torch.full_like(h, -100.0))


@pytest.fixture
def basin_acq():
    return Basin


@pytest.fixture
def mixed_space():
    return SearchSpace([Real("x", 0, 1), Real("y", 0, 1), Integer("n", 0, 10)]
                       + [Categorical(f"c{i}", list(range(4))) for i in range(5)])


@pytest.fixture
def mixed_target(mixed_space):
    return mixed_space.encode([{"x": 0.3, "y": 0.8, "n": 7, "c0": 3, "c1": 0, "c2": 2, "c3": 1, "c4": 3}])[0]


@pytest.fixture
def nominal_space():
    return SearchSpace([Categorical(f"c{i}", list(range(5))) for i in range(8)] + [Permutation("p", 6)])


@pytest.fixture
def nominal_target(nominal_space):
    return nominal_space.encode([{**{f"c{i}": (2 * i) % 5 for i in range(8)}, "p": [3, 0, 5, 1, 4, 2]}])[0]


@pytest.fixture
def constrained_region():
    """A space with a constraint, a trust region around the origin and a target far outside both."""
    space = SearchSpace([Real("x", 0, 1)] + [Categorical(f"c{i}", [0, 1, 2]) for i in range(6)],
                        constraints=[lambda p: p["c0"] != 2])
    tr = CasmopolitanTrustRegion(space, radius_init=2, length_init=0.2)
    tr.restart(space.encode([{"x": 0.5, **{f"c{i}": 0 for i in range(6)}}])[0])
    far = space.encode([{"x": 1.0, **{f"c{i}": 2 for i in range(6)}}])[0]
    return space, tr, far

