"""``meta-train``: trains from a YAML config with the two checkpoints, resumes, and reports bad configs."""

import argparse

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
