"""Meta-training: likelihood pre-training fits, PPO learns a trivial family, a crashed run resumes exactly."""

import numpy as np
import pytest
import torch

from mcbo.meta.checkpoint import load_checkpoint
from mcbo.meta.config import config_from_dict
from mcbo.meta.data import TableFamily
from mcbo.meta.train import Trainer, greedy_regret, make_borders
from mcbo.space import Categorical, SearchSpace

TINY_MODEL = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "n_buckets": 16}
OPTIMUM = 11


def trivial_family(n_train=24, n_test=8, seed=0):
    """16 categories; every task is minimised at category 11 (values |i - 11| * scale + noise)."""
    rng = np.random.default_rng(seed)
    space = SearchSpace([Categorical("c", [f"v{i}" for i in range(16)])])

    def tables(n):
        base = np.abs(np.arange(16) - OPTIMUM)[None, :] * rng.uniform(0.5, 2.0, (n, 1))
        return base + rng.uniform(-3.0, 3.0, (n, 1)) + 0.01 * rng.standard_normal((n, 16))

    return TableFamily(space, tables(n_train), tables(n_test), name="trivial")


def tiny_config(tmp_path, likelihood_steps=40, iterations=0, **ppo):
    return config_from_dict({
        "name": "tiny", "seed": 0, "out_dir": str(tmp_path / "run"), "family": {"type": "table"},
        "checkpoint_every": 10, "model": TINY_MODEL,
        "likelihood": {"steps": likelihood_steps, "batch_size": 8, "max_context": 8, "n_targets": 8,
                       "border_samples": 20, "lr": 0.003},
        "ppo": {"iterations": iterations, "episodes": 8, "horizon": 4, "n_candidates": 16, "epochs": 2,
                "minibatch_steps": 2, "lr": 0.003, **ppo},
    })


def test_borders_are_strictly_increasing_even_on_plateaus():
    b = make_borders(torch.tensor([0.0] * 50 + [1.0] * 50 + [2.0]), 8)
    assert b.shape == (9,) and bool((b[1:] > b[:-1]).all())


def test_likelihood_pretraining_lowers_the_nll(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, likelihood_steps=60), family=trivial_family())
    trainer.run(resume=False)
    nll = trainer.metrics_frame().query("phase == 'likelihood'")["nll"].to_numpy()
    assert nll[-10:].mean() < nll[:10].mean() - 0.2
    assert trainer.likelihood_checkpoint_path.is_file()


def test_ppo_improves_the_greedy_policy_on_a_trivial_family(tmp_path):
    family = trivial_family()
    trainer = Trainer(tiny_config(tmp_path, likelihood_steps=30, iterations=25), family=family)
    held_out = family.tasks("test", 8)
    cfg = trainer.config
    for _ in range(cfg.likelihood.steps):
        trainer.likelihood_step()
    before = greedy_regret(trainer, held_out, horizon=3, n_candidates=16)
    trainer.opt = torch.optim.Adam(trainer.net.parameters(), lr=cfg.ppo.lr)
    rewards = [trainer.ppo_iteration()["reward"] for _ in range(cfg.ppo.iterations)]
    after = greedy_regret(trainer, held_out, horizon=3, n_candidates=16)
    assert after.mean() < before.mean()
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5])
    assert after[0] < 0.05  # the learnt policy opens with the family's shared optimum


def test_a_crashed_run_resumes_to_the_same_model(tmp_path, monkeypatch):
    family = trivial_family()
    full = Trainer(tiny_config(tmp_path / "a", likelihood_steps=20, iterations=3), family=family)
    full.run(resume=False)

    crashing = Trainer(tiny_config(tmp_path / "b", likelihood_steps=20, iterations=3), family=family)
    original = Trainer.likelihood_step
    calls = {"n": 0}

    def crash_after_fifteen(self):
        calls["n"] += 1
        if calls["n"] > 15:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "likelihood_step", crash_after_fifteen)
    with pytest.raises(KeyboardInterrupt):
        crashing.run(resume=False)
    monkeypatch.setattr(Trainer, "likelihood_step", original)
    resumed = Trainer(tiny_config(tmp_path / "b", likelihood_steps=20, iterations=3), family=family)
    path = resumed.run(resume=True)
    assert resumed.metrics_frame()["step"].tolist() == full.metrics_frame()["step"].tolist()
    net_a, _ = load_checkpoint(full.checkpoint_path, family.space)
    net_b, info = load_checkpoint(path, family.space)
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.allclose(a, b), name
    assert info["phase"] == "ppo" and info["family"] == {"type": "table", "name": "trivial"}
    assert info["tables_sha256"] == family.tables_sha256 != trivial_family(seed=1).tables_sha256


def test_training_does_not_depend_on_the_callers_torch_threads(tmp_path):
    """The config's torch_threads (1) holds while training, so the caller's thread count changes nothing."""
    family = trivial_family()
    weights = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            trainer = Trainer(tiny_config(tmp_path / str(n), likelihood_steps=10, iterations=2), family=family)
            trainer.run(resume=False)
            assert torch.get_num_threads() == n  # given back afterwards
            weights.append(load_checkpoint(trainer.checkpoint_path, family.space)[0].state_dict())
    finally:
        torch.set_num_threads(threads)
    for name, a in weights[0].items():
        assert torch.equal(a, weights[1][name]), name


def test_a_saved_state_of_another_config_is_not_resumed(tmp_path):
    family = trivial_family()
    Trainer(tiny_config(tmp_path, likelihood_steps=10), family=family).run(resume=False)
    other = Trainer(tiny_config(tmp_path, likelihood_steps=12), family=family)
    with pytest.raises(ValueError, match="different config"):
        other.run(resume=True)
