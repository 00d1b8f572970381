"""BOCS: horseshoe regression recovers sparse quadratics, is reproducible, and supports Thompson sampling."""

import pytest
import torch

from mcbo.models import BOCSModel, build_model
from mcbo.space import Boolean, Categorical, Real, SearchSpace

# f(z) = 1 + 2 z0 - 3 z3 + 4 z1 z5 - 2.5 z2 z7 on 8 bits
LINEAR = {0: 2.0, 3: -3.0}
PAIRS = {(1, 5): 4.0, (2, 7): -2.5}


def _quadratic(Z):
    out = torch.ones(Z.shape[0], dtype=Z.dtype)
    for i, a in LINEAR.items():
        out += a * Z[:, i]
    for (i, j), a in PAIRS.items():
        out += a * Z[:, i] * Z[:, j]
    return out


@pytest.fixture
def binary_space():
    return SearchSpace([Boolean(f"b{i}") for i in range(8)])


def _fit(space, n=60, seed=0, noise=0.01, **kw):
    model = BOCSModel(space, seed=seed, **kw)
    X = space.sample(n, seed=1)
    Z = model.binary(X)
    y = _quadratic(Z) + noise * torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model.fit(X, y)
    return model


def test_recovers_the_sparse_coefficients_of_a_known_quadratic(binary_space):
    model = _fit(binary_space)
    A = model.coefficient_matrix()
    expected = torch.zeros(8, 8, dtype=torch.float64)
    for i, a in LINEAR.items():
        expected[i, i] = a
    for (i, j), a in PAIRS.items():
        expected[i, j] = a
    assert torch.allclose(A, expected, atol=0.05)  # the 32 absent terms are shrunk to ~0
    assert float(model.intercepts.mean()) == pytest.approx(1.0, abs=0.05)
    Xt = binary_space.sample(100, seed=5)
    post = model.posterior(Xt)
    assert torch.allclose(post.mean, _quadratic(model.binary(Xt)), atol=0.05)
    assert post.mean.shape == post.variance.shape == (100,)


def test_one_hot_categoricals_predict_a_pairwise_objective():
    space = SearchSpace([Categorical(f"c{i}", list(range(4))) for i in range(5)])
    X = space.sample(120, seed=0)

    def f(X):
        return 3.0 * (X[:, 0] == 2) - 2.0 * ((X[:, 1] == 1) & (X[:, 3] == 0)) + 1.0 * (X[:, 4] == 3)

    model = BOCSModel(space, seed=0)
    assert model.n_bits == 20
    model.fit(X, f(X).double())
    Xt = space.sample(200, seed=9)
    assert torch.allclose(model.posterior(Xt).mean, f(Xt).double(), atol=0.15)


def test_same_seed_same_samples_other_seed_other_samples(binary_space):
    a, b, c = _fit(binary_space, seed=3), _fit(binary_space, seed=3), _fit(binary_space, seed=4)
    assert torch.equal(a.coefficients, b.coefficients)
    assert not torch.equal(a.coefficients, c.coefficients)


def test_terms_never_seen_in_the_data_are_dropped():
    space = SearchSpace([Boolean(f"b{i}") for i in range(10)])
    X = space.sample(40, seed=0)
    X[:, 9] = 0.0  # bit 9 is never set in the data: its terms are not identified
    model = BOCSModel(space, seed=0)
    model.fit(X, X[:, :3].sum(-1))
    seen, unseen = X[:5].clone(), X[:5].clone()
    unseen[:, 9] = 1.0
    post_seen, post_unseen = model.posterior(seen), model.posterior(unseen)
    assert torch.allclose(post_seen.mean, X[:5, :3].sum(-1), atol=0.05)
    assert torch.allclose(post_unseen.mean, post_seen.mean)  # unidentified terms are dropped, not guessed


def test_sample_and_thompson_function(binary_space):
    model = _fit(binary_space, noise=0.5)  # noisy data: posterior samples differ
    X = binary_space.sample(30, seed=2)
    draws = model.sample(X, 4, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (4, 30)
    again = model.sample(X, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    every = model.function_values(X)  # [S, 30]: each draw is one posterior sample, jointly over X
    assert all((every - row).abs().max(-1).values.min() < 1e-12 for row in draws)
    fn = model.thompson_function(torch.Generator().manual_seed(1))
    first = fn(X)
    assert torch.equal(fn(X[:7]), first[:7])  # one draw for every call
    model.condition_on(X[:3], first[:3])  # the model changes; the drawn function does not
    assert torch.equal(fn(X), first)


def test_condition_on_adds_data_and_refits(binary_space):
    model = _fit(binary_space, n=20)
    x = binary_space.sample(1, seed=7)
    model.condition_on(x, torch.tensor([50.0], dtype=torch.float64))
    assert model.posterior(x).mean.item() > 20  # pulled towards the fantasy value


def test_validates_space_and_settings(binary_space):
    with pytest.raises(ValueError, match="BOCS needs a nominal space.*'x'"):
        BOCSModel(SearchSpace([Real("x", 0, 1), Boolean("b")]))
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        BOCSModel(binary_space, order=3)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        build_model({"type": "bocs", "n_samples": 0}, binary_space, torch.device("cpu"), torch.float64)
    model = build_model({"type": "bocs", "order": 1}, binary_space, torch.device("cpu"), torch.float64)
    with pytest.raises(RuntimeError, match="before fit"):
        model.posterior(binary_space.sample(2, seed=0))
    early = model.thompson_function(torch.Generator().manual_seed(0))  # may be built before the fit ...
    with pytest.raises(RuntimeError, match="before fit"):
        early(binary_space.sample(2, seed=0))  # ... but not used before it


def test_annealing_a_thompson_draw_finds_its_minimiser(binary_space):
    """BOCS's own loop: draw one function, minimise it by simulated annealing (checked by enumeration)."""
    import itertools

    import numpy as np

    from mcbo.acq_optim import AcqContext, SimulatedAnnealing
    from mcbo.acquisition import AcquisitionFunction

    model = _fit(binary_space, n=30, noise=0.3)
    fn = model.thompson_function(torch.Generator().manual_seed(2))

    class NegatedDraw(AcquisitionFunction):
        def __call__(self, X):
            return -fn(X)

    everything = torch.tensor(list(itertools.product([0.0, 1.0], repeat=8)), dtype=torch.float64)
    x = SimulatedAnnealing(n_chains=4, n_steps=100, n_raw=20).optimize(AcqContext(
        NegatedDraw(model), binary_space, binary_space.sample(0, seed=0), generator=torch.Generator().manual_seed(0),
        np_rng=np.random.default_rng(0)))
    assert fn(x).item() == pytest.approx(fn(everything).min().item())
