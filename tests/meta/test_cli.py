"""``meta-train``: trains from a YAML config with the two checkpoints, resumes, and reports bad configs."""

import argparse

import torch
import yaml

from mcbo.cli import main
from mcbo.meta.checkpoint import load_checkpoint
from mcbo.meta.cli import add_commands
from mcbo.meta.data import unit_cube


def _write_config(tmp_path, **changes):
    config = {
        "name": "gp2", "seed": 1, "out_dir": str(tmp_path / "out"), "family": {"type": "gp_prior", "dim": 2},
        "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "n_buckets": 16},
        "likelihood": {"steps": 8, "batch_size": 4, "max_context": 6, "n_targets": 8, "table_size": 32,
                       "border_samples": 5},
        "ppo": {"iterations": 2, "episodes": 2, "horizon": 3, "n_candidates": 16, "epochs": 1},
        **changes,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_meta_train_writes_both_checkpoints_and_the_metrics(tmp_path, capsys):
    assert main(["meta-train", str(_write_config(tmp_path)), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "NAP model:" in out and "likelihood-only model" in out
    for name in ("gp2.pt", "gp2-likelihood.pt", "metrics.csv", "train_state.pt"):
        assert (tmp_path / "out" / name).is_file()
    _, info = load_checkpoint(tmp_path / "out" / "gp2.pt", unit_cube(2))
    assert info["phase"] == "ppo" and info["family"]["type"] == "gp_prior"
    # running again resumes a finished run: nothing is trained twice
    assert main(["meta-train", str(_write_config(tmp_path)), "--no-progress"]) == 0
    assert len((tmp_path / "out" / "metrics.csv").read_text().strip().splitlines()) == 1 + 8 + 2


def test_a_changed_config_needs_restart(tmp_path, capsys):
    assert main(["meta-train", str(_write_config(tmp_path)), "--no-progress"]) == 0
    changed = _write_config(tmp_path, seed=2)
    assert main(["meta-train", str(changed), "--no-progress"]) == 2
    assert "different config" in capsys.readouterr().err
    assert main(["meta-train", str(changed), "--no-progress", "--restart"]) == 0


def test_bad_configs_exit_with_status_2_and_the_field(tmp_path, capsys):
    assert main(["meta-train", str(_write_config(tmp_path, ppo={"clip": 2})), "--no-progress"]) == 2
    assert "ppo.clip: got 2" in capsys.readouterr().err
    assert main(["meta-train", str(tmp_path / "missing.yaml")]) == 2


def test_add_commands_registers_meta_train():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["meta-train", "c.yaml", "--torch-threads", "2"])
    assert args.config == "c.yaml" and args.torch_threads == 2 and callable(args.func)


def _interrupt_on_call(monkeypatch, method, call):
    """Make ``Trainer.<method>`` send this process SIGINT (Ctrl-C) during its ``call``-th call."""
    import os
    import signal

    from mcbo.meta.train import Trainer

    original = getattr(Trainer, method)
    calls = {"n": 0}
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh process, whatever ran before

    def step(self):
        calls["n"] += 1
        out = original(self)
        if calls["n"] == call:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(Trainer, method, step)


def test_ctrl_c_saves_the_step_in_progress_prints_the_resume_command_and_resumes_exactly(tmp_path, capsys,
                                                                                         monkeypatch):
    likelihood = {"steps": 20, "batch_size": 4, "max_context": 6, "n_targets": 8, "table_size": 32,
                  "border_samples": 5}
    ppo = {"iterations": 3, "episodes": 2, "horizon": 3, "n_candidates": 16, "epochs": 1}
    (tmp_path / "a").mkdir()
    reference = _write_config(tmp_path / "a", checkpoint_every=10, likelihood=likelihood, ppo=ppo)
    config = _write_config(tmp_path, checkpoint_every=10, likelihood=likelihood, ppo=ppo)
    assert main(["meta-train", str(reference), "--no-progress"]) == 0
    capsys.readouterr()
    state = tmp_path / "out" / "train_state.pt"
    command = f"mcbo meta-train {config} --no-progress"

    with monkeypatch.context() as patch:
        _interrupt_on_call(patch, "likelihood_step", 13)
        assert main(["meta-train", str(config), "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"interrupted: training state at likelihood step 13 of 20 saved in {state}; "
                   f"resume with: {command}"]

    with monkeypatch.context() as patch:  # the resumed run, stopped again in the PPO phase
        _interrupt_on_call(patch, "ppo_iteration", 1)
        assert main(["meta-train", str(config), "--no-progress"]) == 130
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{state} resuming at likelihood step 13 of 20"
    assert f"training state at PPO iteration 1 of 3 saved in {state}" in captured.err

    assert main(["meta-train", str(config), "--no-progress"]) == 0
    assert f"{state} resuming at PPO iteration 1 of 3" in capsys.readouterr().out
    net_a, _ = load_checkpoint(tmp_path / "a" / "out" / "gp2.pt", unit_cube(2))
    net_b, _ = load_checkpoint(tmp_path / "out" / "gp2.pt", unit_cube(2))
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(a, b), name
    assert len((tmp_path / "out" / "metrics.csv").read_text().splitlines()) == 1 + 20 + 3


def test_a_hard_interrupt_names_the_last_saved_state(tmp_path, capsys, monkeypatch):
    from mcbo.meta.train import Trainer

    original = Trainer.likelihood_step
    calls = {"n": 0}

    def crash_after_five(self):  # a second Ctrl-C, or training outside the main thread: no step is finished
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "likelihood_step", crash_after_five)
    config = _write_config(tmp_path, checkpoint_every=4)
    out = tmp_path / "elsewhere"
    assert main(["meta-train", str(config), "--no-progress", "--out-dir", str(out), "--torch-threads", "1"]) == 130
    assert capsys.readouterr().err.strip() == (
        f"interrupted at likelihood step 5 of 8; training state at likelihood step 4 of 8 saved in "
        f"{out / 'train_state.pt'}; resume with: mcbo meta-train {config} --out-dir {out} --torch-threads 1 "
        f"--no-progress")
