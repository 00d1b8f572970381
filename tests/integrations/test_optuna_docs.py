"""docs/optuna.md: its Python blocks run in order as written, and the suite config it shows is the shipped one."""

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "optuna.md"


def test_the_python_examples_run_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S):
        exec(compile(block, str(DOC), "exec"), namespace)
    assert namespace["study"].best_value < 2.0
    assert len(namespace["parallel"].trials) == 12
    assert namespace["sampler"].solver.space.names == ["kind", "x"]
    assert len(namespace["tpe"].history) == 20
    out = capsys.readouterr().out
    assert "['kind', 'x']" in out


def test_the_suite_config_shown_is_the_shipped_one():
    shown = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)[0])
    shipped = yaml.safe_load((DOC.parents[1] / "configs" / "optuna-peers.yaml").read_text())
    for key, value in shown.items():
        assert shipped[key] == value, key
