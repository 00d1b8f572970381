"""Logic-synthesis flow optimisation (BOiLS: Grosnit et al., "BOiLS: Bayesian Optimisation for Logic
Synthesis", DATE 2022; also a task of MCBO, Dreczkowski et al., NeurIPS 2023).

A point is a sequence of ``seq_len`` (20) ABC optimisation commands applied to an EPFL
combinational circuit (Amarú et al., IWLS 2015; files in ``mcbo/data/epfl``). The optimised AIG
is mapped to 6-input LUTs (``if -K 6``) and the objective, minimised, is

    LUTs / LUTs_resyn2 + levels / levels_resyn2,

both measured after the same mapping of ABC's ``resyn2`` reference script, so ``resyn2``
itself scores exactly 2 and lower is better. This is BOiLS' "both" objective.

The 11 commands are BOiLS' extended action space: ``rewrite``, ``rewrite -z``, ``refactor``,
``refactor -z``, ``resub``, ``resub -z``, ``balance``, ``fraig``, ``&sopb``, ``&blut``, ``&dsdb``.
The last three work on ABC's newer ``&``-space AIG, so, as in the BOiLS reference code, each is
wrapped as ``&get -n; <cmd>; &put`` (copy the current AIG into the ``&`` space, transform it, copy
it back). ``fraig`` runs on the classic network, unwrapped, as in BOiLS.

Evaluations run ABC (Debian package ``berkeley-abc``) in subprocesses, ``n_workers`` at a time.
One that runs past ``timeout_s`` or fails is logged and returns NaN: a failed evaluation, not a
crash. The ``resyn2`` reference is computed once per circuit and ABC build and cached (see
:func:`mcbo.tasks.abc_tool.resyn2_reference`).

``logic_synthesis_mixed`` adds the commands' own options to the space, in the spirit of MCBO's
"EDA sequence and parameters" task (its ``boils_hyp_op_space``). Each option is one parameter
shared by every occurrence of its command in the sequence (not one per position); with every
option at its default the mixed task equals the plain one. The LUT size stays 6. Booleans pass
ABC's toggle flag; note that ABC's ``-l`` flags are *on* by default, so ``True`` switches
level preservation *off*:

=============  ==============================  ===========  ========
parameter      ABC option                      range        default
=============  ==============================  ===========  ========
rewrite_l      ``rewrite [-z] -l``             bool         False
refactor_n     ``refactor [-z] -N`` (support)  int 2..15    10
refactor_l     ``refactor [-z] -l``            bool         False
resub_k        ``resub [-z] -K`` (cut size)    int 5..8     8
resub_n        ``resub [-z] -N`` (added nodes) int 0..3     1
resub_l        ``resub [-z] -l``               bool         False
balance_l      ``balance -l``                  bool         False
balance_d      ``balance -d`` (duplication)    bool         False
balance_s      ``balance -s`` (dup. on paths)  bool         False
balance_x      ``balance -x`` (EXOR balance)   bool         False
fraig_r        ``fraig -r`` (func. reduction)  bool         False
sopb_c         ``&sopb -C`` (cuts per node)    int 8..100   8
blut_c         ``&blut -C`` (priority cuts)    int 1..8     8
blut_a         ``&blut -a`` (area-oriented)    bool         False
dsdb_c         ``&dsdb -C`` (cuts per node)    int 8..100   8
=============  ==============================  ===========  ========

(ranges from MCBO's ``utils_operators_hyp.py``; defaults are ABC's.)
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mcbo.space import Boolean, Integer, SearchSpace
from mcbo.space import Sequence as SequenceParam
from mcbo.space.params import Param
from mcbo.tasks.abc_tool import (
    LUT_SIZE,
    AbcError,
    MappedStats,
    check_circuit_path,
    find_abc,
    resyn2_reference,
    run_abc_script,
)
from mcbo.tasks.base import Task, register_task

logger = logging.getLogger(__name__)

#: BOiLS' extended action space, in its order.
OPERATIONS = (
    "rewrite", "rewrite -z", "refactor", "refactor -z", "resub", "resub -z", "balance", "fraig",
    "&sopb", "&blut", "&dsdb",
)
_AMPERSAND_OPS = ("&sopb", "&blut", "&dsdb")

EPFL_DIR = Path(__file__).resolve().parent.parent / "data" / "epfl"
#: EPFL circuit name -> file, relative to :data:`EPFL_DIR`.
CIRCUITS: dict[str, str] = {
    **{n: f"arithmetic/{n}.aig" for n in
       ("adder", "bar", "div", "hyp", "log2", "max", "multiplier", "sin", "sqrt", "square")},
    **{n: f"random_control/{n}.aig" for n in
       ("arbiter", "cavlc", "ctrl", "dec", "i2c", "int2float", "mem_ctrl", "priority", "router", "voter")},
}


def resolve_circuit(circuit: str | os.PathLike[str]) -> Path:
    """Path of an EPFL circuit given by name, or of a user's circuit file (``.aig``, ``.blif``, ...)."""
    if isinstance(circuit, str) and circuit in CIRCUITS:
        return check_circuit_path(EPFL_DIR / CIRCUITS[circuit])
    if isinstance(circuit, (str, os.PathLike)) and Path(circuit).suffix and Path(circuit).is_file():
        return check_circuit_path(circuit)
    raise ValueError(
        f"circuit {circuit!r} is neither an EPFL circuit nor an existing circuit file; "
        f"allowed names: {sorted(CIRCUITS)}"
    )


def operation_command(op: str, options: dict[str, Any] | None = None) -> str:
    """The ABC command text of one operation of :data:`OPERATIONS`, with the mixed task's options.

    ``options`` maps the mixed task's option names (see the module docstring) to values; absent
    options keep ABC's defaults, so ``operation_command(op)`` is the plain BOiLS command.
    """
    o = options or {}
    flag = lambda name, text: f" {text}" if o.get(name, False) else ""  # noqa: E731
    base, _, rest = op.partition(" ")
    z = f" {rest}" if rest else ""
    if base == "rewrite":
        cmd = f"rewrite{z}{flag('rewrite_l', '-l')}"
    elif base == "refactor":
        n = f" -N {o['refactor_n']}" if "refactor_n" in o else ""
        cmd = f"refactor{n}{z}{flag('refactor_l', '-l')}"
    elif base == "resub":
        k = f" -K {o['resub_k']}" if "resub_k" in o else ""
        n = f" -N {o['resub_n']}" if "resub_n" in o else ""
        cmd = f"resub{k}{n}{z}{flag('resub_l', '-l')}"
    elif base == "balance":
        cmd = "balance" + "".join(flag(f"balance_{c}", f"-{c}") for c in "ldsx")
    elif base == "fraig":
        cmd = f"fraig{flag('fraig_r', '-r')}"
    elif base == "&sopb":
        cmd = "&sopb" + (f" -C {o['sopb_c']}" if "sopb_c" in o else "")
    elif base == "&blut":
        cmd = "&blut" + (f" -C {o['blut_c']}" if "blut_c" in o else "") + flag("blut_a", "-a")
    elif base == "&dsdb":
        cmd = "&dsdb" + (f" -C {o['dsdb_c']}" if "dsdb_c" in o else "")
    else:
        raise ValueError(f"unknown operation {op!r}; allowed: {list(OPERATIONS)}")
    return f"&get -n; {cmd}; &put" if base in _AMPERSAND_OPS else cmd


def _objective(stats: MappedStats, ref: MappedStats) -> float:
    """BOiLS' objective: LUT count and levels, each relative to ``resyn2``, summed."""
    return stats.luts / ref.luts + stats.levels / ref.levels


@register_task("logic_synthesis")
class LogicSynthesis(Task):
    """Logic synthesis: a sequence of 20 ABC commands over 11 on an EPFL circuit (BOiLS, DATE 2022).

    Args:
        seed: kept for the interface; ABC is deterministic, so the task has no randomness.
        circuit: an EPFL circuit name (see :data:`CIRCUITS`) or the path of a circuit file ABC reads.
        seq_len: number of commands in the sequence.
        timeout_s: wall-clock limit of one evaluation (and of the reference run), in seconds.
        n_workers: ABC subprocesses run at once when a batch is evaluated; ``None`` uses the CPU count.
        abc_executable: ABC to run; default ``$MCBO_ABC`` or the first of ``berkeley-abc``, ``abc``,
            ``yosys-abc`` on ``PATH``.

    Raises:
        MissingToolError: ABC is not installed (the message gives the apt step).
        ValueError: unknown circuit or bad ``seq_len`` / ``timeout_s`` / ``n_workers``.
    """

    name = "logic_synthesis"

    def __init__(
        self,
        seed: int = 0,
        circuit: str | os.PathLike[str] = "adder",
        seq_len: int = 20,
        timeout_s: float = 600.0,
        n_workers: int | None = None,
        abc_executable: str | None = None,
    ) -> None:
        super().__init__(seed)
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
            raise ValueError(f"n_workers must be a positive integer or None, got {n_workers!r}")
        self.circuit_path = resolve_circuit(circuit)
        self.circuit = circuit if isinstance(circuit, str) and circuit in CIRCUITS else str(self.circuit_path)
        self.seq_len, self.timeout_s = seq_len, float(timeout_s)
        self.n_workers = n_workers or os.cpu_count() or 1
        self.abc_path = find_abc(abc_executable)
        self._space = SearchSpace([SequenceParam("operations", list(OPERATIONS), seq_len), *self._option_params()])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _option_params(self) -> list[Param]:
        """Parameters besides the sequence (none in the plain task)."""
        return []

    def commands(self, point: dict[str, Any]) -> list[str]:
        """The ABC commands of a (validated) point, in order."""
        return [operation_command(op) for op in point["operations"]]

    @property
    def reference(self) -> MappedStats:
        """LUTs and levels of ``resyn2`` on the circuit (computed once, then cached)."""
        return resyn2_reference(self.abc_path, self.circuit_path, self.timeout_s, LUT_SIZE)

    def _evaluate_one(self, point: dict[str, Any], ref: MappedStats) -> float:
        commands = self.commands(point)
        try:
            stats = run_abc_script(self.abc_path, self.circuit_path, commands, self.timeout_s, LUT_SIZE)
        except subprocess.TimeoutExpired:
            logger.error("%s on %s: evaluation timed out after %.3g s; value NaN (commands: %s)",
                         self.name, self.circuit, self.timeout_s, "; ".join(commands))
            return math.nan
        except (AbcError, OSError) as err:
            logger.error("%s on %s: evaluation failed, value NaN: %s", self.name, self.circuit, err)
            return math.nan
        return _objective(stats, ref)

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        """Objective values ``[n]``; NaN where an evaluation timed out or failed."""
        ref = self.reference
        if len(points) <= 1 or self.n_workers == 1:
            return np.array([self._evaluate_one(p, ref) for p in points], dtype=float)
        with ThreadPoolExecutor(max_workers=min(self.n_workers, len(points))) as pool:
            return np.array(list(pool.map(lambda p: self._evaluate_one(p, ref), points)), dtype=float)


#: Mixed task options: name -> (kind, lower, upper, ABC default); see the module docstring.
OPTION_SPECS: dict[str, tuple[str, int, int, int | bool]] = {
    "rewrite_l": ("bool", 0, 1, False),
    "refactor_n": ("int", 2, 15, 10),
    "refactor_l": ("bool", 0, 1, False),
    "resub_k": ("int", 5, 8, 8),
    "resub_n": ("int", 0, 3, 1),
    "resub_l": ("bool", 0, 1, False),
    "balance_l": ("bool", 0, 1, False),
    "balance_d": ("bool", 0, 1, False),
    "balance_s": ("bool", 0, 1, False),
    "balance_x": ("bool", 0, 1, False),
    "fraig_r": ("bool", 0, 1, False),
    "sopb_c": ("int", 8, 100, 8),
    "blut_c": ("int", 1, 8, 8),
    "blut_a": ("bool", 0, 1, False),
    "dsdb_c": ("int", 8, 100, 8),
}


@register_task("logic_synthesis_mixed")
class LogicSynthesisMixed(LogicSynthesis):
    """Logic synthesis with the commands' options: the 20-command sequence plus 10 Boolean and 5
    integer options (MCBO's EDA sequence-and-parameters task; see the module docstring).

    Same arguments as :class:`LogicSynthesis`.
    """

    name = "logic_synthesis_mixed"

    def _option_params(self) -> list[Param]:
        return [Boolean(n) if kind == "bool" else Integer(n, lb, ub) for n, (kind, lb, ub, _) in OPTION_SPECS.items()]

    @staticmethod
    def default_options() -> dict[str, int | bool]:
        """ABC's default value of every option; with them the mixed task equals the plain one."""
        return {n: default for n, (_, _, _, default) in OPTION_SPECS.items()}

    def commands(self, point: dict[str, Any]) -> list[str]:
        options = {n: point[n] for n in OPTION_SPECS}
        return [operation_command(op, options) for op in point["operations"]]
