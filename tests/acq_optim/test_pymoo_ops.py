"""pymoo operators on encoded columns produce valid encodings, permutations and allowed points."""

import numpy as np
import torch

from mcbo.acq_optim.pymoo_ops import EncodedProblem, SpaceCrossover, SpaceMutation, SpaceRepair
from mcbo.space import Categorical, Integer, Permutation, Real, SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion


def _space():
    return SearchSpace([Real("x", 0, 1), Integer("n", 0, 9)] + [Categorical(f"c{i}", list(range(4))) for i in range(4)]
                       + [Permutation("p", 5)], constraints=[lambda p: p["c0"] != 3])


def _valid(space, X):
    T = torch.as_tensor(X)
    return torch.equal(T, space.snap(T)) and all(sorted(r) == list(range(5)) for r in T[:, 6:].long().tolist())


def test_crossover_and_mutation_keep_encodings_valid():
    space = _space()
    problem = EncodedProblem(space)
    rs = np.random.default_rng(0)
    parents = space.sample(2 * 50, seed=0).numpy().reshape(2, 50, space.d)
    children = SpaceCrossover(space)._do(problem, parents, random_state=rs)
    assert children.shape == parents.shape
    flat = children.reshape(-1, space.d)
    assert torch.equal(torch.as_tensor(flat[:, 2:]), space.snap(torch.as_tensor(flat))[:, 2:])
    assert _valid(space, space.snap(torch.as_tensor(flat)).numpy())
    # each nominal value and each whole permutation comes from one of the two parents
    for k in range(50):
        for child in children[:, k]:
            assert all(child[c] in (parents[0, k, c], parents[1, k, c]) for c in range(2, 6))
            assert any(np.array_equal(child[6:], parents[p, k, 6:]) for p in (0, 1))
    X = space.sample(200, seed=1).numpy()
    mutated = SpaceMutation(space, prob_perm=1.0)._do(problem, X, random_state=rs)
    assert _valid(space, space.snap(torch.as_tensor(mutated)).numpy())
    assert (mutated[:, 6:] != X[:, 6:]).any(-1).all()  # every permutation moved
    assert (mutated[:, 2:6] != X[:, 2:6]).any(-1).mean() > 0.2


def test_repair_snaps_and_moves_points_into_the_trust_region_and_constraints():
    space = _space()
    tr = CasmopolitanTrustRegion(space, radius_init=2, length_init=0.3)
    tr.restart(space.encode([{"x": 0.5, "n": 4, "c0": 0, "c1": 0, "c2": 0, "c3": 0, "p": [0, 1, 2, 3, 4]}])[0])

    def sampler(n, rs):
        return tr.sample(n, generator=torch.Generator().manual_seed(int(rs.integers(1000)))).numpy()

    X = space.sample(100, seed=2).numpy() + np.random.default_rng(0).normal(0, 0.2, (100, space.d)) * (
        np.arange(space.d) < 2)
    repaired = SpaceRepair(space, tr, sampler)._do(EncodedProblem(space), X, random_state=np.random.default_rng(0))
    T = torch.as_tensor(repaired)
    assert tr.contains(T).all()
    assert space.is_feasible(T).all()
    assert _valid(space, repaired)
