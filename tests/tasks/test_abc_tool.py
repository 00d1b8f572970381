"""Tests of mcbo/tasks/abc_tool.py: locating ABC, parsing its statistics, the resyn2 reference cache."""

from __future__ import annotations

import json
import shutil

import pytest

from mcbo.tasks import abc_tool
from mcbo.tasks.abc_tool import (
    RESYN2_COMMANDS,
    AbcError,
    MappedStats,
    cache_dir,
    check_circuit_path,
    find_abc,
    mapping_script,
    parse_stats,
)
from mcbo.tasks.base import MissingToolError
from mcbo.tasks.logic_synthesis import CIRCUITS, EPFL_DIR

# A print_stats line exactly as berkeley-abc 1.01 prints it (with its ANSI colour codes).
STATS_LINE = "\x1b[1;37mctrl:\x1b[0m i/o =    7/   26  lat =    0  nd =    29  edge =    130  aig  =   186  lev = 2"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MCBO_CACHE_DIR", str(tmp_path / "cache"))
    abc_tool.clear_memory_cache()
    yield
    abc_tool.clear_memory_cache()


@pytest.fixture
def abc_path() -> str:
    try:
        return find_abc()
    except MissingToolError as err:
        pytest.skip(f"ABC not installed ({err})")


def test_parse_stats_reads_luts_and_levels_through_colour_codes():
    out = "ABC command line: ...\n\n" + STATS_LINE + "\n"
    assert parse_stats(out) == MappedStats(luts=29, levels=2)


def test_parse_stats_without_stats_line_raises():
    with pytest.raises(AbcError, match="no print_stats line"):
        parse_stats("** cmd error: unknown command 'bogus'\n")


def test_mapping_script_is_boils_flow_without_aliases():
    script = mapping_script("adder.aig", RESYN2_COMMANDS)
    assert script.startswith("read adder.aig; strash; balance; rewrite; refactor;")
    assert script.endswith("rewrite -z; balance; if -K 6; print_stats")
    assert all(tok.strip() not in {"b", "rw", "rf", "rwz", "rfz"} for tok in script.split(";"))


def test_missing_abc_names_apt_step(monkeypatch):
    monkeypatch.delenv("MCBO_ABC", raising=False)
    with pytest.raises(MissingToolError, match="apt-get install -y berkeley-abc"):
        find_abc("no-such-abc-binary-xyz")
    monkeypatch.setenv("MCBO_ABC", "no-such-abc-binary-xyz")
    with pytest.raises(MissingToolError, match="no-such-abc-binary-xyz"):
        find_abc()


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MCBO_CACHE_DIR", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("MCBO_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mcbo"


def test_circuit_path_checks(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        check_circuit_path(tmp_path / "missing.aig")
    spaced = tmp_path / "my circuit.aig"
    spaced.write_bytes(b"")
    with pytest.raises(ValueError, match="my circuit.aig"):
        check_circuit_path(spaced)


@pytest.mark.parametrize(
    ("command", "message"), [("bogus_command", "unknown command"), ("resub -K 40", "4 <= K <= 16")]
)
def test_failing_command_is_an_abc_error(abc_path, command, message):
    # ABC exits 0 after such errors; the error lines must still be caught.
    circuit = check_circuit_path(EPFL_DIR / CIRCUITS["ctrl"])
    with pytest.raises(AbcError, match=message):
        abc_tool.run_abc_script(abc_path, circuit, [command], timeout_s=60)


def test_run_abc_script_maps_circuit(abc_path):
    circuit = check_circuit_path(EPFL_DIR / CIRCUITS["ctrl"])
    stats = abc_tool.run_abc_script(abc_path, circuit, [], timeout_s=60)
    # The EPFL README lists ctrl at 29 LUT-6 and 2 levels after `if -K 6`.
    assert stats == MappedStats(luts=29, levels=2)


def test_resyn2_reference_is_cached_on_disk_and_reused(abc_path, monkeypatch):
    circuit = check_circuit_path(EPFL_DIR / CIRCUITS["ctrl"])
    ref = abc_tool.resyn2_reference(abc_path, circuit, timeout_s=60)
    assert ref.luts > 0 and ref.levels > 0
    stored = json.loads((cache_dir() / "abc_resyn2_references.json").read_text())
    assert [(v["luts"], v["levels"], v["circuit"]) for v in stored.values()] == [(ref.luts, ref.levels, "ctrl.aig")]

    # A fresh process (empty memory cache) must read the disk cache, not run ABC again.
    abc_tool.clear_memory_cache()

    def no_abc(*args, **kwargs):
        raise AssertionError("ABC was run although the reference is cached")

    monkeypatch.setattr(abc_tool, "run_abc_script", no_abc)
    assert abc_tool.resyn2_reference(abc_path, circuit, timeout_s=60) == ref


def test_changed_circuit_gets_its_own_reference(abc_path, tmp_path):
    first = check_circuit_path(EPFL_DIR / CIRCUITS["ctrl"])
    other = tmp_path / "ctrl.aig"
    shutil.copy(EPFL_DIR / CIRCUITS["int2float"], other)  # same file name, different circuit
    a = abc_tool.resyn2_reference(abc_path, first, timeout_s=60)
    b = abc_tool.resyn2_reference(abc_path, check_circuit_path(other), timeout_s=60)
    assert a != b
    assert len(json.loads((cache_dir() / "abc_resyn2_references.json").read_text())) == 2
