"""SearchSpace: encode/decode, sampling, constraints, snapping, neighbourhoods, serialisation."""

import numpy as np
import pytest
import torch

from mcbo.space import Boolean, Categorical, Integer, Ordinal, Permutation, Real, SearchSpace, Sequence


@pytest.fixture
def mixed_space():
    return SearchSpace([
        Real("x", -1, 1), Real("lr", 1e-4, 1, log=True), Integer("n", 1, 100, log=True),
        Integer("k", 0, 9, step=3), Ordinal("o", [1, 2, 4, 8]), Categorical("c", ["a", "b", "c"]),
        Boolean("b"), Permutation("p", 4), Sequence("s", "ACGU", 5),
    ])


def test_duplicate_names_and_empty_space_raise():
    with pytest.raises(ValueError, match="duplicate parameter name 'x'"):
        SearchSpace([Real("x", 0, 1), Integer("x", 0, 3)])
    with pytest.raises(ValueError, match="at least one parameter"):
        SearchSpace([])


def test_validate_names_unknown_and_missing(mixed_space):
    point = mixed_space.sample_points(1, seed=0)[0]
    with pytest.raises(ValueError, match="unknown parameter"):
        mixed_space.validate({**point, "zzz": 1})
    del point["x"]
    with pytest.raises(ValueError, match=r"missing parameter\(s\) \['x'\]"):
        mixed_space.validate(point)


@pytest.mark.parametrize("method", ["uniform", "sobol"])
def test_samples_are_valid_and_round_trip(mixed_space, method):
    X = mixed_space.sample(64, seed=1, method=method)
    assert X.shape == (64, mixed_space.d)
    points = mixed_space.decode(X)
    for p in points:
        mixed_space.validate(p)  # raises if anything is invalid
        assert sorted(p["p"]) == [0, 1, 2, 3]
    assert torch.allclose(mixed_space.encode(points), X, atol=1e-12)


def test_sampling_is_reproducible_and_covers_categories(mixed_space):
    a, b = mixed_space.sample(200, seed=3), mixed_space.sample(200, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, mixed_space.sample(200, seed=4))
    values = {p["c"] for p in mixed_space.decode(a)}
    assert values == {"a", "b", "c"}


def test_constraints_are_respected_and_impossible_ones_raise():
    space = SearchSpace([Real("x", 0, 1), Real("y", 0, 1)], constraints=[lambda p: p["x"] + p["y"] <= 0.5])
    X = space.sample(50, seed=0)
    assert len(X) == 50
    assert all(p["x"] + p["y"] <= 0.5 for p in space.decode(X))
    impossible = SearchSpace([Real("x", 0, 1)], constraints=[lambda p: p["x"] > 2])
    with pytest.raises(ValueError, match="no point satisfying the input constraints"):
        impossible.sample(1, seed=0)


def test_snap_rounds_integers_ordinals_and_indices(mixed_space):
    X = mixed_space.sample(10, seed=0) + 0.04
    snapped = mixed_space.snap(X)
    assert torch.allclose(mixed_space.encode(mixed_space.decode(snapped)), snapped, atol=1e-12)


def test_hamming_counts_differing_nominal_columns():
    space = SearchSpace([Categorical("a", [0, 1, 2]), Boolean("b"), Real("x", 0, 1)])
    X = space.encode([{"a": 0, "b": False, "x": 0.1}, {"a": 2, "b": False, "x": 0.9}, {"a": 1, "b": True, "x": 0.1}])
    assert space.hamming(X, X).tolist() == [[0, 1, 2], [1, 0, 2], [2, 2, 0]]


def test_neighbours_change_exactly_one_thing(mixed_space):
    x = mixed_space.sample(1, seed=5)[0]
    base = mixed_space.decode(x)[0]
    nbrs = mixed_space.decode(mixed_space.neighbours(x))
    # 2 (categorical) + 1 (bool) + 5*3 (sequence) + up to 2 per integer/ordinal + 6 swaps
    assert 24 <= len(nbrs) <= 30
    for p in nbrs:
        changed = [k for k in p if p[k] != base[k]]
        assert len(changed) == 1 and changed[0] != "x" and changed[0] != "lr"
        mixed_space.validate(p)


def test_batch_neighbours_owner_matches_rows(mixed_space):
    X = mixed_space.sample(3, seed=2)
    N, owner = mixed_space.batch_neighbours(X)
    for i in range(3):
        assert torch.equal(N[owner == i], mixed_space.neighbours(X[i]))


def test_mutate_keeps_points_valid(mixed_space):
    X = mixed_space.sample(100, seed=0)
    M = mixed_space.mutate(X, generator=torch.Generator().manual_seed(0))
    assert (mixed_space.hamming(M, X).diagonal() >= 1).all()
    for p in mixed_space.decode(M):
        mixed_space.validate(p)


def test_dict_and_json_round_trip(mixed_space):
    again = SearchSpace.from_json(mixed_space.to_json())
    assert again == mixed_space
    assert again.signature() == mixed_space.signature()
    assert SearchSpace.from_dict(mixed_space.to_dict()["params"]) == mixed_space
    with pytest.raises(ValueError, match="list under 'params'"):
        SearchSpace.from_dict({"params": "x"})


def test_integer_log_grid_is_uniform_in_log(mixed_space):
    values = np.array([p["n"] for p in mixed_space.sample_points(2000, seed=0)])
    assert np.mean(values <= 10) == pytest.approx(0.5, abs=0.06)


def test_column_accessors_describe_permutations_and_grids(mixed_space):
    assert mixed_space.permutation_groups == [(7, 11)]
    assert mixed_space.grid_columns.tolist() == [2, 3, 4]  # the integers and the ordinal
    steps = mixed_space.numeric_grid_steps()  # over the numeric columns x, lr, n, k, o
    assert steps[:2].tolist() == [0.0, 0.0]
    assert steps[2] == pytest.approx(1 / 99) and steps[3] == pytest.approx(1 / 3) and steps[4] == pytest.approx(1 / 3)
    mixed_space.permutation_groups.append((0, 1))  # a copy: the space is unchanged
    assert mixed_space.permutation_groups == [(7, 11)]
