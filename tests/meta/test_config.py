"""Meta-training configs: defaults, the shipped CPU config, and errors that name the field."""

from pathlib import Path

import pytest

from mcbo.meta.config import config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_fill_missing_sections():
    config = config_from_dict({"name": "x", "family": {"type": "gp_prior"}})
    assert config.out_dir == "results/meta/x" and config.torch_threads == 1
    assert config.ppo.clip == 0.2 and config.likelihood.steps > 0


def test_shipped_configs_are_valid():
    paths = sorted((ROOT / "configs" / "meta").glob("*.yaml"))
    assert paths
    for path in paths:
        config = load_config(path)
        assert config.torch_threads == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "a/b"}, "name: got 'a/b'"),
    ({"family": "gp"}, "family: got 'gp'; expected a mapping with a 'type' key"),
    ({"ppo": {"clip": 1.5}}, r"ppo.clip: got 1.5; expected a number in \(0, 1\)"),
    ({"ppo": {"horizon": 0}}, "ppo.horizon: got 0; expected an integer >= 1"),
    ({"likelihood": {"stepz": 3}}, "likelihood.stepz: got 3; expected one of the keys"),
    ({"model": {"d_model": 30, "n_heads": 4}}, r"model.d_model: got 30; expected a multiple of model.n_heads"),
    ({"seed": -1}, "seed: got -1; expected an integer >= 0"),
    ({"epochs": 3}, "epochs: got 3; expected one of the keys"),
])
def test_bad_values_name_the_field(change, message):
    data = {"name": "x", "family": {"type": "gp_prior"}, **change}
    with pytest.raises(ValueError, match=message):
        config_from_dict(data)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)
