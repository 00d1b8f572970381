"""Move operators: permutation inserts, Gaussian numeric moves, random moves, Hamming-ball projection."""

import torch

from mcbo.space.moves import (
    all_neighbours,
    gaussian_move,
    insert_neighbours,
    project_hamming,
    random_insert,
    random_move,
    random_permutation_move,
)
from mcbo.space import Categorical, Integer, Permutation, Real, SearchSpace


def _is_perm(rows, n):
    return all(sorted(r) == list(range(n)) for r in rows.long().tolist())


def test_insert_neighbours_are_every_insert_that_is_not_a_swap():
    space = SearchSpace([Categorical("c", ["a", "b"]), Permutation("p", 5)])
    X = space.encode([{"c": "a", "p": [0, 1, 2, 3, 4]}, {"c": "b", "p": [4, 3, 2, 1, 0]}])
    N, owner = insert_neighbours(space, X)
    assert len(N) == 2 * 4 * 3  # (n - 1)(n - 2) per point
    assert _is_perm(N[:, 1:], 5)
    assert torch.equal(N[:, 0], X[owner, 0])
    assert len(torch.unique(N, dim=0)) == len(N)
    assert [0.0, 2.0, 3.0, 1.0, 4.0] in N[owner == 0, 1:].tolist()  # item 1 moved from position 1 to 3
    swaps, _ = space.batch_neighbours(X)
    together, _ = all_neighbours(space, X)
    assert len(together) == len(swaps) + len(N)
    assert not (torch.cdist(N, swaps, p=1) < 1e-9).any()  # inserts add moves the swaps do not have


def test_random_inserts_keep_permutations_and_move_one_item():
    space = SearchSpace([Permutation("p", 7), Permutation("q", 3)])
    X = space.sample(200, seed=0)
    Y = random_insert(space, X, torch.Generator().manual_seed(0))
    assert _is_perm(Y[:, :7], 7) and _is_perm(Y[:, 7:], 3)
    changed_groups = (Y[:, :7] != X[:, :7]).any(-1).long() + (Y[:, 7:] != X[:, 7:]).any(-1).long()
    assert (changed_groups == 1).all()  # exactly one group moved per row
    Z = random_permutation_move(space, X, torch.Generator().manual_seed(1), groups=[(7, 10)])
    assert torch.equal(Z[:, :7], X[:, :7]) and _is_perm(Z[:, 7:], 3) and (Z[:, 7:] != X[:, 7:]).any(-1).all()


def test_gaussian_moves_stay_in_the_box_and_on_the_grid():
    space = SearchSpace([Real("x", 0, 1), Integer("n", 0, 3), Categorical("c", [0, 1, 2])])
    X = space.encode([{"x": 0.5, "n": 1, "c": 2}]).repeat(500, 1)
    lo, hi = torch.tensor([0.4, 0.0], dtype=torch.float64), torch.tensor([0.6, 1.0], dtype=torch.float64)
    Y = gaussian_move(space, X, 0.2, torch.Generator().manual_seed(0), lo, hi)
    assert ((Y[:, :2] >= lo) & (Y[:, :2] <= hi)).all()
    assert torch.equal(Y, space.snap(Y))  # on the integer grid
    assert (Y[:, 1] != X[:, 1]).float().mean() > 0.3  # integer steps are not rounded away
    assert (Y[:, 2] == 2).all()  # nominal columns untouched


def test_random_move_changes_one_nominal_column_or_the_numeric_ones():
    space = SearchSpace([Real("x", 0, 1)] + [Categorical(f"c{i}", [0, 1, 2]) for i in range(3)])
    X = space.sample(400, seed=1)
    Y = random_move(space, X, torch.Generator().manual_seed(0))
    nominal_changes = (Y[:, 1:] != X[:, 1:]).sum(-1)
    numeric_moved = Y[:, 0] != X[:, 0]
    assert ((nominal_changes == 1) ^ numeric_moved).all()
    assert 0.1 < numeric_moved.float().mean() < 0.4  # one numeric column of four


def test_project_hamming_enters_the_ball_and_keeps_permutations():
    space = SearchSpace([Categorical(f"c{i}", list(range(4))) for i in range(6)] + [Permutation("p", 4)])
    centre = space.sample(1, seed=0)[0]
    X = space.sample(300, seed=1)
    for radius in (0, 2, 5):
        Y = project_hamming(space, X, centre, radius, torch.Generator().manual_seed(0))
        assert (space.hamming(Y, centre.unsqueeze(0)).squeeze(-1) <= radius).all()
        assert _is_perm(Y[:, 6:], 4)
        inside = space.hamming(X, centre.unsqueeze(0)).squeeze(-1) <= radius
        assert torch.equal(Y[inside], X[inside])
        changed = Y != X
        assert torch.equal(Y[changed], centre.expand_as(Y)[changed])  # only reverts towards the centre
