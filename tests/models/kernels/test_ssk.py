"""String subsequence kernel: equals Lodhi's recursion, PSD, batched, blocked, and its builder's checks."""

import math
from functools import cache

import pytest
import torch

from mcbo.models import GPModel
from mcbo.models.kernels import SubsequenceStringKernel, build_ssk
from mcbo.space import Categorical, Permutation, Real, SearchSpace, Sequence


def _lodhi(s, t, lm, lg, n_max, coefs):
    """Unnormalised SSK by the plain recursion of Lodhi et al. 2002 (separate match/gap decays)."""

    @cache
    def k_prime(i, ls, lt):  # K'_i(s[:ls], t[:lt])
        if i == 0:
            return 1.0
        if min(ls, lt) < i:
            return 0.0
        x = s[ls - 1]
        total = lg * k_prime(i, ls - 1, lt)
        for j in range(lt):
            if t[j] == x:
                total += lm**2 * lg ** (lt - j - 1) * k_prime(i - 1, ls - 1, j)
        return total

    @cache
    def k_n(n, ls, lt):  # K_n(s[:ls], t[:lt])
        if min(ls, lt) < n:
            return 0.0
        x = s[ls - 1]
        total = k_n(n, ls - 1, lt)
        for j in range(lt):
            if t[j] == x:
                total += lm**2 * k_prime(n - 1, ls - 1, j)
        return total

    return sum(c * k_n(n, len(s), len(t)) for n, c in zip(range(1, n_max + 1), coefs))


def _strings(n, length, alphabet, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, alphabet, (n, length), generator=g).double()


def _kernel(length, alphabet=None, n_max=3, match=0.7, gap=0.4, coefs=(0.2, 0.5, 0.9)):
    """SSK with set hyper-parameters; ``alphabet=None`` forces the pairwise programme, a size the feature map."""
    k = SubsequenceStringKernel(torch.arange(length), alphabet_size=alphabet, max_subsequence_length=n_max).double()
    k.initialize(raw_match_decay=k.raw_match_decay_constraint.inverse_transform(torch.tensor([match]).double()),
                 raw_gap_decay=k.raw_gap_decay_constraint.inverse_transform(torch.tensor([gap]).double()),
                 raw_order_coefs=k.raw_order_coefs_constraint.inverse_transform(torch.tensor(coefs).double()))
    return k


@pytest.mark.parametrize("alphabet", [None, 3], ids=["pairwise", "features"])
def test_matches_lodhi_recursion_on_short_strings(alphabet):
    k = _kernel(5, alphabet)
    assert k.uses_features == (alphabet is not None)
    lm, lg = k.match_decay.item(), k.gap_decay.item()
    coefs = k.order_coefs.detach().tolist()
    x1, x2 = _strings(6, 5, 3, 0), _strings(4, 5, 3, 1)
    x1[0] = x2[0]  # one identical pair

    def ref(a, b):
        a, b = tuple(int(v) for v in a), tuple(int(v) for v in b)
        norm = math.sqrt(_lodhi(a, a, lm, lg, 3, coefs) * _lodhi(b, b, lm, lg, 3, coefs))
        return _lodhi(a, b, lm, lg, 3, coefs) / norm

    expected = torch.tensor([[ref(a, b) for b in x2] for a in x1], dtype=torch.float64)
    assert torch.allclose(k(x1, x2).to_dense(), expected, atol=1e-12)
    assert k(x1, x2).to_dense()[0, 0].item() == pytest.approx(1.0)
    paired = torch.tensor([ref(a, b) for a, b in zip(x1[:4], x2)], dtype=torch.float64)
    assert torch.allclose(k(x1[:4], x2, diag=True), paired, atol=1e-12)
    # order 1 alone counts matching symbol pairs: lm^2 * sum_a count_s(a) count_t(a), before normalising
    assert _lodhi((0, 1, 1), (1, 0, 1), 0.5, 0.3, 1, [1.0]) == pytest.approx(0.25 * (1 * 1 + 2 * 2))


@pytest.mark.parametrize("alphabet", [None, 4], ids=["pairwise", "features"])
def test_psd_batched_and_blocked(alphabet):
    X = _strings(40, 8, 4, 2)
    k = _kernel(8, alphabet)
    K = k(X).to_dense()
    assert torch.linalg.eigvalsh(K).min() > -1e-9
    assert torch.allclose(K.diagonal(), torch.ones(40, dtype=torch.float64))
    batched = k(X.reshape(2, 20, 8)).to_dense()
    assert batched.shape == (2, 20, 20) and torch.allclose(batched[1], K[20:, 20:])
    k.memory_budget_mb = 1e-5  # one row per block
    assert torch.allclose(k(X).to_dense(), K)
    assert torch.allclose(k(X[:5], X[5:]).to_dense(), K[:5, 5:])
    assert torch.allclose(k(X[:20], X[20:], diag=True), K[:20, 20:].diagonal())


def test_hyper_parameter_gradients_agree_across_paths_and_blocks():
    X = _strings(12, 6, 3, 3)
    grads = []
    for alphabet, budget in ((None, 256.0), (None, 1e-5), (3, 256.0), (3, 1e-5)):
        k = _kernel(6, alphabet)
        k.memory_budget_mb = budget
        k(X).to_dense().sum().backward()
        grads.append(torch.cat([k.raw_match_decay.grad, k.raw_gap_decay.grad, k.raw_order_coefs.grad]))
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    for g in grads[1:]:
        assert torch.allclose(grads[0], g)


@pytest.mark.parametrize("n_max", [1, 2, 4])
def test_feature_map_matches_pairwise_programme_for_every_order(n_max):
    """Orders other than BOiLS' 3 take other branches of the feature recursion (no G, G_1 only, G_2)."""
    coefs = (0.3, 0.8, 0.5, 0.6)[:n_max]
    X1, X2 = _strings(9, 7, 3, 4), _strings(5, 7, 3, 5)
    pairwise = _kernel(7, None, n_max=n_max, coefs=coefs)(X1, X2).to_dense()
    features = _kernel(7, 3, n_max=n_max, coefs=coefs)
    with torch.no_grad():  # the in-place normalisation
        assert torch.allclose(features(X1, X2).to_dense(), pairwise, atol=1e-12)
    assert torch.allclose(features(X1, X2).to_dense(), pairwise, atol=1e-12)


def test_builder_checks_shared_alphabet():
    seq = SearchSpace([Sequence("s", "ACGU", 6), Real("x", 0, 1)])
    kern = build_ssk(seq, seq.nominal_columns)
    assert isinstance(kern, SubsequenceStringKernel) and kern.alphabet_size == 4 and kern.uses_features
    same = SearchSpace([Categorical("c1", ["a", "b"]), Categorical("c2", ["a", "b"])])
    build_ssk(same, same.nominal_columns)
    with pytest.raises(ValueError, match="'c1' has 3 categories, 'c2' has 5"):
        bad = SearchSpace([Categorical("c1", [0, 1, 2]), Categorical("c2", list(range(5)))])
        build_ssk(bad, bad.nominal_columns)
    with pytest.raises(ValueError, match="share one alphabet; 'c1' has \\['a', 'b'\\] but 'c2' has \\['x', 'y'\\]"):
        bad = SearchSpace([Categorical("c1", ["a", "b"]), Categorical("c2", ["x", "y"])])
        build_ssk(bad, bad.nominal_columns)
    with pytest.raises(ValueError, match="permutation parameter 'p'"):
        perm = SearchSpace([Permutation("p", 4)])
        build_ssk(perm, perm.nominal_columns)
    with pytest.raises(ValueError, match="share one alphabet"):
        GPModel(SearchSpace([Categorical("c1", [0, 1, 2]), Categorical("c2", list(range(5)))]), nominal_kernel="ssk")


def test_gp_with_ssk_learns_a_motif_count():
    space = SearchSpace([Sequence("s", "ABC", 8)])
    X, Xt = space.sample(40, seed=0), space.sample(60, seed=1)

    def f(X):  # number of "AB" bigrams
        return ((X[:, :-1] == 0) & (X[:, 1:] == 1)).sum(-1).double()

    model = GPModel(space, nominal_kernel="ssk", fit_maxiter=30)
    model.fit(X, f(X))
    post = model.posterior(Xt)
    assert torch.corrcoef(torch.stack([post.mean, f(Xt)]))[0, 1] > 0.7


def test_casmopolitan_runs_with_ssk(casmopolitan_run):
    space = SearchSpace([Sequence("s", "ABCD", 10)])
    solver = casmopolitan_run(space, lambda p: -p["s"].count("A"), {"nominal_kernel": "ssk"})
    assert isinstance(solver.model.gp.covar_module.base_kernel, SubsequenceStringKernel)
