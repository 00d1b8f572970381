"""Checkpoints: an exact round trip, and clear errors for another space, another version or a bad name."""

import pytest
import torch

from mcbo.meta.checkpoint import CHECKPOINT_VERSION, load_checkpoint, resolve_checkpoint, save_checkpoint
from mcbo.models.tnp import Featuriser, TNPModel, TNPNetwork
from mcbo.space import Categorical, Integer, Real, SearchSpace


@pytest.fixture
def space():
    return SearchSpace([Real("lr", 1e-4, 1.0, log=True), Integer("depth", 1, 8), Categorical("opt", ["sgd", "adam"])])


def _net(space):
    torch.manual_seed(3)
    return TNPNetwork(Featuriser(space).n_features, torch.linspace(-2, 2, 9), d_model=8, n_heads=2, n_layers=1,
                      d_ff=16)


def test_round_trip_gives_the_same_outputs(space, tmp_path):
    net = _net(space).eval()
    path = save_checkpoint(tmp_path / "m.pt", net, space, info={"note": "hello", "steps": 3})
    loaded, info = load_checkpoint(path, space)
    feat = Featuriser(space)
    xh, xc = feat(space.sample(5, seed=0).float())[None], feat(space.sample(7, seed=1).float())[None]
    yh = torch.randn(1, 5)
    a, b = net(xh, yh, xc), loaded.eval()(xh, yh, xc)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.acquisition, b.acquisition)
    assert info["note"] == "hello" and info["steps"] == 3 and info["space"] == space
    assert loaded.arch == net.arch


def test_a_mismatched_space_raises_a_clear_error(space, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _net(space), space)
    other = SearchSpace([Real("lr", 1e-4, 1.0, log=True), Integer("depth", 1, 9), Categorical("opt", ["sgd", "adam"])])
    with pytest.raises(ValueError, match=r"trained on a different search space: it reads parameters \[lr:Real, "
                                         r"depth:Integer, opt:Categorical\]"):
        load_checkpoint(path, other)
    with pytest.raises(ValueError, match="different search space"):
        TNPModel(other, checkpoint=path)


def test_another_version_is_refused(space, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _net(space), space)
    payload = torch.load(path, weights_only=True)
    payload["version"] = CHECKPOINT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(ValueError, match=f"has version {CHECKPOINT_VERSION + 1}; this mcbo reads version"):
        load_checkpoint(path, space)


def test_files_that_are_not_checkpoints_and_unknown_names_are_refused(space, tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(ValueError, match="not a TNP checkpoint"):
        load_checkpoint(bad, space)
    with pytest.raises(ValueError, match="neither a file nor a shipped checkpoint name"):
        resolve_checkpoint("no_such_model")


def test_save_is_atomic_and_leaves_no_temporary_file(space, tmp_path):
    save_checkpoint(tmp_path / "sub" / "m.pt", _net(space), space)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["m.pt"]
