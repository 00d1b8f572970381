"""Kendall and Mallows kernels: equal direct discordant-pair counts, PSD, products, builders, GP fit."""

import math

import pytest
import torch

from mcbo.models import GPModel
from mcbo.models.kernels import PermutationKernel, build_kendall, build_mallows
from mcbo.space import Categorical, Permutation, Real, SearchSpace


def _perms(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(k, generator=g) for _ in range(n)]).double()


def _discordant(s, t):
    """Pairs of items ordered differently by s and t (each lists the item at every position)."""
    pos_s = {int(item): p for p, item in enumerate(s)}
    pos_t = {int(item): p for p, item in enumerate(t)}
    items = sorted(pos_s)
    return sum((pos_s[a] < pos_s[b]) != (pos_t[a] < pos_t[b]) for i, a in enumerate(items) for b in items[i + 1:])


def test_match_direct_discordant_pair_counts():
    k_items, C = 6, 15
    x1, x2 = _perms(7, k_items, 0), _perms(5, k_items, 1)
    nd = torch.tensor([[_discordant(a, b) for b in x2] for a in x1], dtype=torch.float64)
    assert _discordant([0, 1, 2], [2, 1, 0]) == 3 and _discordant([1, 0, 2], [0, 1, 2]) == 1
    assert _discordant([1, 2, 0], [0, 1, 2]) == 2  # items, not positions: item 0 moved behind 1 and 2
    kendall = PermutationKernel([list(range(k_items))], "kendall", active_dims=torch.arange(k_items)).double()
    assert torch.allclose(kendall(x1, x2).to_dense(), (C - 2 * nd) / C)
    mallows = PermutationKernel([list(range(k_items))], "mallows", active_dims=torch.arange(k_items)).double()
    mallows.initialize(raw_rate=mallows.raw_rate_constraint.inverse_transform(torch.tensor([3.0]).double()))
    lam = mallows.rate.item() / C
    assert torch.allclose(mallows(x1, x2).to_dense(), torch.exp(-lam * nd))
    assert torch.allclose(mallows(x1[:5], x2, diag=True), torch.exp(-lam * nd.diagonal()))
    assert torch.allclose(kendall(x1, x1, diag=True), torch.ones(7, dtype=torch.float64))


def test_psd_batched_and_product_over_groups_and_categoricals():
    space = SearchSpace([Permutation("p", 5), Categorical("c", ["a", "b", "c"]), Permutation("q", list("wxyz"))])
    X = space.sample(50, seed=2)
    for build in (build_kendall, build_mallows):
        kern = build(space, space.nominal_columns).double()
        K = kern(X).to_dense()
        assert torch.linalg.eigvalsh(K).min() > -1e-9
        batched = kern(X.reshape(2, 25, -1)).to_dense()
        assert batched.shape == (2, 25, 25) and torch.allclose(batched[1], K[25:, 25:])
    kern = build_kendall(space, space.nominal_columns).double()
    a, b = X[:1], X[1:2]
    kendall_p = (10 - 2 * _discordant(a[0, :5], b[0, :5])) / 10  # 5 items: 10 pairs
    kendall_q = (6 - 2 * _discordant(a[0, 6:], b[0, 6:])) / 6  # 4 items: 6 pairs
    overlap_c = math.exp(-float(a[0, 5] != b[0, 5]))  # transformed overlap, unit lengthscale
    kern.other.lengthscale = 1.0
    expected = kendall_p * kendall_q * overlap_c
    assert kern(a, b).to_dense().item() == pytest.approx(expected)


def test_builders_need_a_permutation():
    with pytest.raises(ValueError, match="'kendall' needs at least one Permutation parameter"):
        GPModel(SearchSpace([Categorical("c", ["a", "b"])]), nominal_kernel="kendall")
    space = SearchSpace([Real("x", 0, 1), Permutation("p", 4)])
    kern = build_mallows(space, space.nominal_columns)
    assert kern.other is None and kern.rate.shape == (1,)
    assert not any(True for _ in build_kendall(space, space.nominal_columns).parameters())  # Kendall: none


@pytest.mark.parametrize("name", ["kendall", "mallows"])
def test_gp_learns_a_ranking_objective(name):
    space = SearchSpace([Permutation("p", 7)])
    X, Xt = space.sample(40, seed=0), space.sample(80, seed=1)
    identity = torch.arange(7.0).reshape(1, 7)

    def f(X):
        return torch.tensor([float(_discordant(x, identity[0])) for x in X], dtype=torch.float64)

    model = GPModel(space, nominal_kernel=name, fit_maxiter=40)
    model.fit(X, f(X))
    post = model.posterior(Xt)
    assert torch.corrcoef(torch.stack([post.mean, f(Xt)]))[0, 1] > 0.8


@pytest.mark.parametrize("name", ["kendall", "mallows"])
def test_casmopolitan_runs_with_permutation_kernels(casmopolitan_run, name):
    space = SearchSpace([Permutation("p", 6), Categorical("c", ["a", "b"])])
    solver = casmopolitan_run(space, lambda p: sum(i * v for i, v in enumerate(p["p"])) + (p["c"] == "b"),
                              {"nominal_kernel": name})
    kern = solver.model.gp.covar_module.base_kernel
    assert isinstance(kern, PermutationKernel) and kern.kind == name and kern.other is not None
