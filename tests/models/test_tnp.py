"""TNP: candidates see only the history and themselves, a proper bar distribution, the Model contract, and
checkpoints (an exact round trip, and clear errors for another space, another version or a bad name)."""

import math

import pytest
import torch

from mcbo.models import MODELS, build_model
from mcbo.models.tnp import (
    CHECKPOINT_VERSION,
    BarDistribution,
    Featuriser,
    TNPModel,
    TNPNetwork,
    load_checkpoint,
    predict,
    resolve_checkpoint,
    save_checkpoint,
)
from mcbo.space import Categorical, Integer, Permutation, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("x", 0, 1), Integer("k", 1, 5), Categorical("c", list("abc"))])


def _net(space, seed=0):
    torch.manual_seed(seed)
    return TNPNetwork(Featuriser(space).n_features, torch.linspace(-3, 3, 17), d_model=16, n_heads=2, n_layers=2,
                      d_ff=32)


@pytest.fixture
def checkpoint(space, tmp_path):
    return save_checkpoint(tmp_path / "tiny.pt", _net(space), space)


def test_featuriser_one_hot_encodes_nominal_and_permutation_columns():
    space = SearchSpace([Real("x", 0, 1), Categorical("c", list("abc")), Permutation("p", 3)])
    f = Featuriser(space)
    X = space.encode([{"x": 0.25, "c": "c", "p": [2, 0, 1]}])
    assert f.n_features == 1 + 3 + 9
    assert f(X).tolist() == [[-0.5, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0]]


def test_a_candidate_never_sees_the_other_candidates(space):
    net = _net(space).eval()
    feat = Featuriser(space)
    Xh, Xc = space.sample(6, seed=0), space.sample(5, seed=1)
    yh = torch.randn(1, 6)
    base = net(feat(Xh).float()[None], yh, feat(Xc).float()[None])
    changed = Xc.clone()
    changed[2] = space.sample(1, seed=7)[0]
    out = net(feat(Xh).float()[None], yh, feat(changed).float()[None])
    keep = [0, 1, 3, 4]
    assert torch.allclose(out.logits[0, keep], base.logits[0, keep], atol=1e-6)
    assert torch.allclose(out.acquisition[0, keep], base.acquisition[0, keep], atol=1e-6)
    assert not torch.allclose(out.logits[0, 2], base.logits[0, 2])
    # ... while every candidate does read the history
    other = net(feat(Xh).float()[None], yh + 1.5 * torch.arange(6.0), feat(Xc).float()[None])
    assert not torch.allclose(other.logits[0, 0], base.logits[0, 0])


def test_scoring_in_chunks_or_alone_gives_the_same_outputs(space):
    net = _net(space).eval()
    feat = Featuriser(space)
    Xh, Xc = space.sample(4, seed=0), space.sample(9, seed=1)
    yh = torch.tensor([0.3, 1.0, -2.0, 0.5])
    with torch.no_grad():
        whole = predict(net, feat, Xh, yh, Xc, chunk_size=100)
        chunks = predict(net, feat, Xh, yh, Xc, chunk_size=2)
        alone = predict(net, feat, Xh, yh, Xc[4:5])
    for a, b in zip(whole, chunks):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(alone[0], whole[0][4:5], atol=1e-6)


def test_empty_history_is_allowed(space):
    net = _net(space).eval()
    mean, var, acq = predict(net, Featuriser(space), torch.empty(0, space.d), torch.empty(0), space.sample(3, seed=0))
    assert mean.shape == var.shape == acq.shape == (3,)
    assert torch.isfinite(acq).all() and (var > 0).all()


def test_bar_distribution_is_a_density_with_matching_moments():
    bar = BarDistribution(torch.tensor([-2.0, -1.0, 0.0, 0.5, 2.0], dtype=torch.float64))
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.1], [-2.0, 0.0, 0.0, 1.5]], dtype=torch.float64)
    grid = torch.linspace(-40, 40, 400_001, dtype=torch.float64)
    density = bar.log_prob(logits[:, None, :].expand(2, len(grid), 4), grid.expand(2, -1)).exp()
    dx = grid[1] - grid[0]
    assert torch.allclose((density * dx).sum(-1), torch.ones(2, dtype=torch.float64), atol=1e-3)
    mean, var = bar.mean_var(logits)
    assert torch.allclose((density * grid * dx).sum(-1), mean, atol=1e-3)
    assert torch.allclose((density * (grid - mean[:, None]) ** 2 * dx).sum(-1), var, atol=1e-2)
    draws = bar.sample(logits, 40_000, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (40_000, 2)
    assert torch.allclose(draws.mean(0), mean, atol=0.03)


def test_bar_distribution_rejects_unsorted_borders():
    with pytest.raises(ValueError, match="strictly increasing"):
        BarDistribution(torch.tensor([0.0, 1.0, 1.0, 2.0]))


def test_model_is_registered_and_follows_the_contract(space, checkpoint):
    assert MODELS["tnp"] is TNPModel
    model = build_model({"type": "tnp", "checkpoint": str(checkpoint)}, space, torch.device("cpu"), torch.float64)
    X = space.sample(8, seed=0)
    y = torch.linspace(-1.0, 2.0, 8, dtype=torch.float64)
    model.fit(X, y)
    post = model.posterior(space.sample(6, seed=1).reshape(2, 3, space.d))
    assert post.mean.shape == post.variance.shape == (2, 3)
    assert post.mean.dtype == torch.float64 and (post.variance > 0).all()
    assert model.sample(space.sample(4, seed=2), 5, generator=torch.Generator().manual_seed(0)).shape == (5, 4)
    assert model.acquisition(space.sample(4, seed=2)).shape == (4,)


def test_posterior_follows_the_units_of_y(space, checkpoint):
    """Standardising by the history makes predictions equivariant to shifting and scaling y."""
    X, Xc = space.sample(8, seed=0), space.sample(5, seed=1)
    y = torch.linspace(-1.0, 2.0, 8, dtype=torch.float64) ** 2
    model = TNPModel(space, checkpoint=checkpoint)
    model.fit(X, y)
    base = model.posterior(Xc)
    model.fit(X, 10.0 * y + 3.0)
    scaled = model.posterior(Xc)
    assert torch.allclose(scaled.mean, 10.0 * base.mean + 3.0, rtol=1e-4, atol=1e-4)
    assert torch.allclose(scaled.variance, 100.0 * base.variance, rtol=1e-4)


def test_condition_on_adds_to_the_history(space, checkpoint):
    model = TNPModel(space, checkpoint=checkpoint)
    X, y = space.sample(5, seed=0), torch.arange(5.0, dtype=torch.float64)
    model.fit(X[:3], y[:3])
    model.condition_on(X[3:], y[3:])
    after = model.posterior(X).mean
    model.fit(X, y)
    assert torch.allclose(model.posterior(X).mean, after)
    assert model.X_hist.shape == (5, space.d)


def test_posterior_is_differentiable_in_numeric_inputs(space, checkpoint):
    model = TNPModel(space, checkpoint=checkpoint)
    model.fit(space.sample(4, seed=0), torch.tensor([0.0, 1.0, 0.5, 2.0], dtype=torch.float64))
    X = space.sample(3, seed=1).requires_grad_(True)
    model.posterior(X).mean.sum().backward()
    assert X.grad is not None and math.isfinite(float(X.grad[:, 0].abs().sum()))


# ------------------------------------------------------------------------------------------ checkpoints
@pytest.fixture
def hpo_space():
    return SearchSpace([Real("lr", 1e-4, 1.0, log=True), Integer("depth", 1, 8), Categorical("opt", ["sgd", "adam"])])


def _small_net(space):
    torch.manual_seed(3)
    return TNPNetwork(Featuriser(space).n_features, torch.linspace(-2, 2, 9), d_model=8, n_heads=2, n_layers=1,
                      d_ff=16)


def test_round_trip_gives_the_same_outputs(hpo_space, tmp_path):
    net = _small_net(hpo_space).eval()
    path = save_checkpoint(tmp_path / "m.pt", net, hpo_space, info={"note": "hello", "steps": 3})
    loaded, info = load_checkpoint(path, hpo_space)
    feat = Featuriser(hpo_space)
    xh, xc = feat(hpo_space.sample(5, seed=0).float())[None], feat(hpo_space.sample(7, seed=1).float())[None]
    yh = torch.randn(1, 5)
    a, b = net(xh, yh, xc), loaded.eval()(xh, yh, xc)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.acquisition, b.acquisition)
    assert info["note"] == "hello" and info["steps"] == 3 and info["space"] == hpo_space
    assert loaded.arch == net.arch


def test_a_mismatched_space_raises_a_clear_error(hpo_space, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _small_net(hpo_space), hpo_space)
    other = SearchSpace([Real("lr", 1e-4, 1.0, log=True), Integer("depth", 1, 9), Categorical("opt", ["sgd", "adam"])])
    with pytest.raises(ValueError, match=r"trained on a different search space: it reads parameters \[lr:Real, "
                                         r"depth:Integer, opt:Categorical\]"):
        load_checkpoint(path, other)
    with pytest.raises(ValueError, match="different search space"):
        TNPModel(other, checkpoint=path)


def test_another_version_is_refused(hpo_space, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _small_net(hpo_space), hpo_space)
    payload = torch.load(path, weights_only=True)
    payload["version"] = CHECKPOINT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(ValueError, match=f"has version {CHECKPOINT_VERSION + 1}; this mcbo reads version"):
        load_checkpoint(path, hpo_space)


def test_files_that_are_not_checkpoints_and_unknown_names_are_refused(hpo_space, tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="not a TNP checkpoint"):
        load_checkpoint(bad, hpo_space)
    with pytest.raises(ValueError, match="neither a file nor a shipped checkpoint name"):
        resolve_checkpoint("no_such_model")


def test_save_is_atomic_and_leaves_no_temporary_file(hpo_space, tmp_path):
    save_checkpoint(tmp_path / "sub" / "m.pt", _small_net(hpo_space), hpo_space)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.pt"]
