"""Running the ABC logic-synthesis tool (Brayton & Mishchenko, CAV 2010) on a circuit.

What the logic-synthesis tasks need from ABC, and nothing more:

* :func:`find_abc` locates the executable (Debian's ``berkeley-abc``, an upstream build ``abc``
  or Yosys' ``yosys-abc``), or raises :class:`~mcbo.tasks.base.MissingToolError` naming the
  install step;
* :func:`run_abc_script` runs one ABC script on one circuit in a subprocess with a timeout and
  parses the LUT count and the number of levels from the last ``print_stats`` line;
* :func:`resyn2_reference` computes (once) the LUT count and levels of the ``resyn2`` reference
  flow on a circuit, cached in memory and on disk (see :func:`cache_dir`), since every
  objective value is normalised by it.

The ``resyn2`` script is spelled out (:data:`RESYN2_COMMANDS`) because ABC's aliases (``b``,
``rw``, ...) live in an ``abc.rc`` file that a packaged binary does not load.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mcbo.tasks.base import MissingToolError

logger = logging.getLogger(__name__)

#: Executables tried in order when no explicit one is given.
ABC_EXECUTABLES = ("berkeley-abc", "abc", "yosys-abc")
ABC_INSTALL_HINT = "apt-get update && apt-get install -y berkeley-abc  (Debian/Ubuntu; installs `berkeley-abc`)"
#: Environment variable naming an ABC executable to use instead of searching PATH.
ABC_ENV_VAR = "MCBO_ABC"
#: Environment variable overriding the on-disk cache directory.
CACHE_ENV_VAR = "MCBO_CACHE_DIR"

#: ``resyn2`` (ABC's ``abc.rc``): ``b; rw; rf; b; rw; rw -z; b; rf -z; rw -z; b``, without aliases.
RESYN2_COMMANDS = (
    "balance", "rewrite", "refactor", "balance", "rewrite", "rewrite -z", "balance", "refactor -z",
    "rewrite -z", "balance",
)
#: LUT size of the FPGA mapping (``if -K 6``), as in BOiLS and the EPFL suite's tables.
LUT_SIZE = 6

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NODES = re.compile(r"\bnd\s*=\s*(\d+)")
_LEVELS = re.compile(r"\blev\s*=\s*(\d+)")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
# ABC reports failures as "** cmd error: ...", "Error: ..." or "Cannot open ..." lines (and still exits 0).
_ERROR_LINE = re.compile(r"^(\*\*\s*cmd error|error\b|cannot\b)", re.IGNORECASE)
_REF_FILE = "abc_resyn2_references.json"


class AbcError(RuntimeError):
    """ABC ran but did not print the statistics expected (unknown command, crash, bad input)."""


@dataclass(frozen=True)
class MappedStats:
    """Statistics of a LUT-mapped network: number of LUTs and logic levels (depth)."""

    luts: int
    levels: int


def find_abc(executable: str | None = None) -> str:
    """Absolute path of the ABC executable.

    Args:
        executable: a name on ``PATH`` or a path; ``None`` uses ``$MCBO_ABC`` or the first of
            :data:`ABC_EXECUTABLES` found on ``PATH``.

    Raises:
        MissingToolError: nothing usable was found; the message names the apt install step.
    """
    candidates = [executable] if executable else ([os.environ[ABC_ENV_VAR]] if os.environ.get(ABC_ENV_VAR) else [])
    candidates = candidates or list(ABC_EXECUTABLES)
    for name in candidates:
        path = shutil.which(name)
        if path is not None:
            return path
    raise MissingToolError(
        f"ABC executable not found (tried {candidates!r} on PATH); install it with: {ABC_INSTALL_HINT}"
    )


@functools.lru_cache(maxsize=None)
def abc_version(abc_path: str) -> str:
    """The version line ABC prints (e.g. ``UC Berkeley, ABC 1.01 (compiled ...)``); part of cache keys."""
    out = subprocess.run([abc_path, "-c", "version"], capture_output=True, text=True, timeout=60)
    lines = [ln.strip() for ln in _ANSI.sub("", out.stdout).splitlines() if "ABC" in ln and "command line" not in ln]
    return lines[-1] if lines else f"unknown ABC at {abc_path}"


def check_circuit_path(path: str | os.PathLike[str]) -> Path:
    """Validate a circuit file: it must exist and its file name must be safe inside an ABC script.

    ABC splits its command line on spaces and ``;``, so the file is read by its bare name from
    its own directory; that name may hold only letters, digits and ``_ . + -``.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"circuit file {str(p)!r} does not exist")
    if not _SAFE_NAME.match(p.name):
        raise ValueError(
            f"circuit file name {p.name!r} must hold only letters, digits and '_.+-' (ABC splits on spaces)"
        )
    return p.resolve()


def mapping_script(circuit_name: str, commands: Sequence[str], lut_size: int = LUT_SIZE) -> str:
    """The ABC script: read, ``strash``, the optimisation ``commands``, ``if -K lut_size``, ``print_stats``.

    This is BOiLS' evaluation flow (Grosnit et al., DATE 2022; ``core/sessions`` in the
    reference code): the network is structurally hashed to an AIG, optimised, mapped to
    ``lut_size``-input LUTs and measured.
    """
    body = "; ".join(["strash", *commands, f"if -K {int(lut_size)}", "print_stats"])
    return f"read {circuit_name}; {body}"


def parse_stats(output: str) -> MappedStats:
    """LUT count (``nd``) and levels (``lev``) from the last ``print_stats`` line of ABC's stdout."""
    for line in reversed(_ANSI.sub("", output).splitlines()):
        nodes, levels = _NODES.search(line), _LEVELS.search(line)
        if nodes and levels:
            return MappedStats(int(nodes.group(1)), int(levels.group(1)))
    tail = " | ".join(_ANSI.sub("", output).strip().splitlines()[-3:])
    raise AbcError(f"no print_stats line in ABC output (last lines: {tail!r})")


def run_abc_script(
    abc_path: str, circuit: Path, commands: Sequence[str], timeout_s: float, lut_size: int = LUT_SIZE
) -> MappedStats:
    """Apply ``commands`` to ``circuit``, map to LUTs and return the mapped statistics.

    Raises:
        subprocess.TimeoutExpired: ABC ran longer than ``timeout_s`` (the process is killed).
        AbcError: ABC exited with an error or printed no statistics (e.g. unknown command).
    """
    script = mapping_script(circuit.name, commands, lut_size)
    proc = subprocess.run(
        [abc_path, "-c", script], cwd=circuit.parent, capture_output=True, text=True, timeout=timeout_s,
    )
    lines = _ANSI.sub("", proc.stdout + "\n" + proc.stderr).splitlines()
    errors = [ln.strip() for ln in lines if _ERROR_LINE.match(ln.strip())]
    if proc.returncode != 0 or errors:
        raise AbcError(f"ABC failed (exit code {proc.returncode}) on {circuit.name}: {' | '.join(errors)[:500]}")
    return parse_stats(proc.stdout)


# ------------------------------------------------------------------ reference cache
def cache_dir() -> Path:
    """mcbo's cache directory: ``$MCBO_CACHE_DIR``, else ``$XDG_CACHE_HOME/mcbo``, else ``~/.cache/mcbo``."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "mcbo"


_memory_refs: dict[str, MappedStats] = {}
_refs_lock = threading.Lock()


def _reference_key(abc_path: str, circuit: Path, lut_size: int) -> str:
    digest = hashlib.sha256()
    for part in (abc_version(abc_path), hashlib.sha256(circuit.read_bytes()).hexdigest(),
                 "; ".join(RESYN2_COMMANDS), str(lut_size)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _read_disk_refs(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        logger.warning("ignoring unreadable reference cache %s: %s", path, err)
        return {}


def _write_disk_ref(key: str, stats: MappedStats, circuit: Path) -> None:
    directory = cache_dir()
    path = directory / _REF_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        data = _read_disk_refs(path)
        data[key] = {"luts": stats.luts, "levels": stats.levels, "circuit": circuit.name}
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".refs-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as err:
        logger.warning("could not write the resyn2 reference cache %s: %s", path, err)


def clear_memory_cache() -> None:
    """Forget the in-memory references (the on-disk cache is kept)."""
    with _refs_lock:
        _memory_refs.clear()


def resyn2_reference(abc_path: str, circuit: Path, timeout_s: float, lut_size: int = LUT_SIZE) -> MappedStats:
    """LUT count and levels after ``resyn2`` + ``if -K lut_size`` on ``circuit``, cached.

    The cache key is a hash of the ABC version line, the circuit's bytes and the flow, so a
    changed circuit or ABC build is recomputed. Looks in memory, then in
    ``cache_dir()/abc_resyn2_references.json``, then runs ABC and stores the result in both.

    Raises:
        RuntimeError: the reference flow timed out or failed; nothing can be normalised without it.
    """
    key = _reference_key(abc_path, circuit, lut_size)
    with _refs_lock:
        if key in _memory_refs:
            return _memory_refs[key]
    entry = _read_disk_refs(cache_dir() / _REF_FILE).get(key)
    if isinstance(entry, dict) and {"luts", "levels"} <= entry.keys():
        stats = MappedStats(int(entry["luts"]), int(entry["levels"]))
    else:
        try:
            stats = run_abc_script(abc_path, circuit, RESYN2_COMMANDS, timeout_s, lut_size)
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"the resyn2 reference on {circuit.name} took longer than timeout_s={timeout_s}; raise timeout_s"
            ) from None
        except AbcError as err:
            raise RuntimeError(f"the resyn2 reference on {circuit.name} failed: {err}") from err
        if stats.luts <= 0 or stats.levels <= 0:
            raise RuntimeError(f"resyn2 reference on {circuit.name} has {stats}; cannot normalise by it")
        _write_disk_ref(key, stats, circuit)
    with _refs_lock:
        _memory_refs[key] = stats
    return stats
