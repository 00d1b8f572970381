"""HED kernel: dictionary diversity and seeding, embedding equals direct Hamming distances, PSD, GP fit."""

import numpy as np
import torch
from gpytorch.kernels import MaternKernel

from mcbo.models import GPModel
from mcbo.models.kernels import HEDKernel, build_hed, diverse_dictionary
from mcbo.space import Boolean, Categorical, Permutation, Real, SearchSpace

CARDS = [3, 5, 2, 4, 5]


def _points(n, seed, cards=CARDS):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, k, (n,), generator=g) for k in cards], -1).double()


def test_dictionary_is_seeded_valid_and_diverse():
    a, b = diverse_dictionary(CARDS, 64, seed=3), diverse_dictionary(CARDS, 64, seed=3)
    assert a.shape == (64, 5) and np.array_equal(a, b)
    assert not np.array_equal(a, diverse_dictionary(CARDS, 64, seed=4))
    assert (a >= 0).all() and (a < np.array(CARDS)).all()
    weights = diverse_dictionary([2] * 40, 200, seed=0).sum(1)  # binary: Hamming weight of each element
    assert weights.min() <= 8 and weights.max() >= 32  # spread over the range, not clustered at d/2 = 20


def test_embedding_equals_direct_hamming_distances():
    k = HEDKernel(CARDS, active_dims=torch.arange(5), n_elements=16, seed=0).double()
    x = _points(7, 0)
    A = k.dictionary
    direct = torch.tensor([[sum(int(xi[c]) != int(a[c]) for c in range(5)) / 5 for a in A] for xi in x],
                          dtype=torch.float64)
    assert torch.allclose(k.embed(x), direct)
    # the kernel is the Matern-5/2 ARD kernel on those embeddings
    ref = MaternKernel(nu=2.5, ard_num_dims=16).double()
    ref.lengthscale = k.base.lengthscale.detach()
    y = _points(4, 1)
    assert torch.allclose(k(x, y).to_dense(), ref(direct, k.embed(y)).to_dense())
    assert torch.allclose(k(x[:4], y, diag=True), ref(direct[:4], k.embed(y), diag=True))


def test_psd_and_batched():
    k = HEDKernel(CARDS, active_dims=torch.arange(5)).double()
    X = _points(60, 2)
    K = k(X).to_dense()
    assert torch.linalg.eigvalsh(K).min() > -1e-9
    batched = k(X.reshape(3, 20, 5)).to_dense()
    assert batched.shape == (3, 20, 20) and torch.allclose(batched[2], K[40:, 40:])


def test_builder_and_gp_fit_on_mixed_space():
    space = SearchSpace([Real("x", 0, 1)] + [Categorical(f"c{i}", list("abcd")) for i in range(6)]
                        + [Boolean("b"), Permutation("p", 3)])
    kern = build_hed(space, space.nominal_columns)
    assert kern.dictionary.shape == (128, 10)
    X, Xt = space.sample(40, seed=0), space.sample(100, seed=1)

    def f(X):
        return (X[:, 1:7] == 0).sum(-1).double() + X[:, 0]

    model = GPModel(space, nominal_kernel="hed", fit_maxiter=40)
    model.fit(X, f(X))
    post = model.posterior(Xt)
    assert torch.corrcoef(torch.stack([post.mean, f(Xt)]))[0, 1] > 0.6


def test_casmopolitan_runs_with_hed(casmopolitan_run):
    space = SearchSpace([Real("x", 0, 1)] + [Categorical(f"c{i}", list("abc")) for i in range(8)])
    solver = casmopolitan_run(space, lambda p: sum(p[f"c{i}"] != "a" for i in range(8)) + p["x"],
                              {"nominal_kernel": "hed"})
    assert isinstance(solver.model.gp.covar_module.base_kernel.nominal, HEDKernel)
