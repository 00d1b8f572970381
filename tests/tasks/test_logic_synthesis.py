"""Tests of mcbo/tasks/logic_synthesis.py (BOiLS logic-synthesis tasks driven by ABC)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from mcbo.space import Sequence as SequenceParam
from mcbo.tasks import abc_tool, build_task
from mcbo.tasks.abc_tool import RESYN2_COMMANDS, find_abc
from mcbo.tasks.base import MissingToolError
from mcbo.tasks.logic_synthesis import (
    CIRCUITS,
    OPERATIONS,
    OPTION_SPECS,
    LogicSynthesis,
    LogicSynthesisMixed,
    operation_command,
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCBO_CACHE_DIR", str(tmp_path / "cache"))
    abc_tool.clear_memory_cache()
    yield
    abc_tool.clear_memory_cache()


@pytest.fixture
def needs_abc() -> None:
    try:
        find_abc()
    except MissingToolError as err:
        pytest.skip(f"ABC not installed ({err})")


# ---------------------------------------------------------------- without ABC
def test_ampersand_ops_are_wrapped_and_others_are_not():
    assert operation_command("&sopb") == "&get -n; &sopb; &put"
    assert operation_command("&blut") == "&get -n; &blut; &put"
    assert operation_command("&dsdb") == "&get -n; &dsdb; &put"
    assert [operation_command(op) for op in OPERATIONS[:8]] == list(OPERATIONS[:8])


def test_mixed_options_become_abc_flags():
    opts = {**LogicSynthesisMixed.default_options(), "rewrite_l": True, "resub_k": 6, "resub_n": 2,
            "balance_x": True, "blut_c": 4, "blut_a": True, "sopb_c": 50}
    assert operation_command("rewrite -z", opts) == "rewrite -z -l"
    assert operation_command("resub", opts) == "resub -K 6 -N 2"
    assert operation_command("balance", opts) == "balance -x"
    assert operation_command("&blut", opts) == "&get -n; &blut -C 4 -a; &put"
    assert operation_command("&sopb", opts) == "&get -n; &sopb -C 50; &put"
    with pytest.raises(ValueError, match="unknown operation 'strash'"):
        operation_command("strash")


def test_unknown_circuit_names_value_and_allowed():
    with pytest.raises(ValueError) as err:
        LogicSynthesis(circuit="not_a_circuit")
    assert "not_a_circuit" in str(err.value) and "adder" in str(err.value) and "int2float" in str(err.value)


@pytest.mark.parametrize("kwargs", [{"seq_len": 0}, {"timeout_s": -1.0}, {"n_workers": 0}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LogicSynthesis(circuit="ctrl", **kwargs)


def test_missing_abc_raises_with_install_step():
    with pytest.raises(MissingToolError, match="apt-get install -y berkeley-abc"):
        LogicSynthesis(circuit="ctrl", abc_executable="no-such-abc-binary-xyz")


def test_all_epfl_circuits_are_shipped():
    assert len(CIRCUITS) == 20
    from mcbo.tasks.logic_synthesis import EPFL_DIR

    assert all((EPFL_DIR / rel).is_file() for rel in CIRCUITS.values())
    assert (EPFL_DIR / "LICENSE").is_file()


# ---------------------------------------------------------------- with ABC
def test_spaces(needs_abc):
    task = build_task("logic_synthesis", circuit="ctrl")
    (param,) = task.space.params
    assert isinstance(param, SequenceParam) and param.length == 20 and param.alphabet == list(OPERATIONS)
    mixed = build_task("logic_synthesis_mixed", circuit="ctrl")
    assert mixed.space.names == ["operations", *OPTION_SPECS]


@pytest.mark.parametrize("circuit", ["int2float", "ctrl"])
def test_resyn2_scores_exactly_two(needs_abc, circuit):
    task = LogicSynthesis(circuit=circuit, seq_len=len(RESYN2_COMMANDS), n_workers=1)
    assert task.evaluate({"operations": list(RESYN2_COMMANDS)})[0] == 2.0
    mixed = LogicSynthesisMixed(circuit=circuit, seq_len=len(RESYN2_COMMANDS), n_workers=1)
    point = {"operations": list(RESYN2_COMMANDS), **LogicSynthesisMixed.default_options()}
    assert mixed.evaluate(point)[0] == 2.0


@pytest.mark.parametrize("cls", [LogicSynthesis, LogicSynthesisMixed])
def test_random_batch_evaluates_in_parallel_and_repeatably(needs_abc, cls):
    task = cls(circuit="router", n_workers=2)
    points = task.space.sample_points(3, seed=0)
    values = task.evaluate(points)
    assert values.shape == (3,) and np.all(np.isfinite(values)) and np.all(values > 0)
    # ABC is deterministic: a second, serial evaluation gives the same numbers.
    serial = cls(circuit="router", n_workers=1)
    np.testing.assert_array_equal(serial.evaluate(points), values)


def test_timeout_gives_nan_and_logs_error(needs_abc, caplog):
    LogicSynthesis(circuit="ctrl").reference  # cache the reference, which must not time out
    task = LogicSynthesis(circuit="ctrl", timeout_s=1e-3, n_workers=2)
    points = task.space.sample_points(2, seed=1)
    with caplog.at_level(logging.ERROR, logger="mcbo.tasks.logic_synthesis"):
        values = task.evaluate(points)
    assert all(math.isnan(v) for v in values)
    assert sum("timed out" in r.getMessage() for r in caplog.records) == 2


def test_reference_timeout_is_an_error(needs_abc):
    task = LogicSynthesis(circuit="ctrl", timeout_s=1e-3)
    with pytest.raises(RuntimeError, match="raise timeout_s"):
        task.evaluate(task.space.sample_points(1, seed=0))
