"""RNA inverse folding (as in MCBO, Dreczkowski et al., NeurIPS 2023; targets from Eterna100,
Anderson-Lee et al., J. Mol. Biol. 2016).

Design an RNA sequence over ``ACGU`` whose minimum-free-energy (MFE) secondary structure, as
predicted by ViennaRNA's ``RNA.fold`` (Lorenz et al., Algorithms Mol. Biol. 2011; PyPI package
``viennarna``), matches a target structure in dot-bracket notation. The objective, minimised, is
the Hamming distance between the predicted and the target dot-bracket strings: 0 means solved.

``target`` is either the id of one of the Eterna100 puzzles shipped in
``mcbo/data/eterna100.json`` (its 1-based position in the Eterna100 list) or any balanced
dot-bracket string. ViennaRNA is imported lazily, so ``import mcbo.tasks`` works without it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mcbo.space import SearchSpace
from mcbo.space import Sequence as SequenceParam
from mcbo.tasks.base import MissingToolError, Task, register_task

BASES = ("A", "C", "G", "U")
ETERNA_FILE = Path(__file__).resolve().parent.parent / "data" / "eterna100.json"
_VIENNA_HINT = "pip install viennarna"


@lru_cache(maxsize=1)
def eterna_targets() -> dict[int, dict[str, Any]]:
    """The shipped Eterna100 puzzles: id -> ``{"id", "name", "structure", "solution"}``.

    ``solution`` is ``None`` where no sequence folding exactly to the target is known (id 65, the MCBO paper's
    40-nt task); such entries carry ``best_known`` (distance and sequence) instead.
    """
    data = json.loads(ETERNA_FILE.read_text())
    return {int(t["id"]): t for t in data["targets"]}


def check_dot_bracket(structure: str) -> str:
    """Return ``structure`` if it is a non-empty, balanced string of ``(``, ``)`` and ``.``."""
    if not isinstance(structure, str) or not structure:
        raise ValueError(f"target {structure!r} must be a non-empty dot-bracket string")
    bad = sorted(set(structure) - {"(", ")", "."})
    if bad:
        raise ValueError(f"target {structure!r} has characters {bad}; allowed: '(', ')', '.'")
    depth = 0
    for i, c in enumerate(structure):
        depth += (c == "(") - (c == ")")
        if depth < 0:
            raise ValueError(f"target {structure!r}: ')' at position {i} closes no '('")
    if depth:
        raise ValueError(f"target {structure!r}: {depth} '(' never closed")
    return structure


def resolve_target(target: int | str) -> str:
    """Dot-bracket structure of an Eterna100 id (int or digit string) or of a dot-bracket string."""
    known = eterna_targets()
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        key = int(target)
    elif isinstance(target, str) and target.strip().isdigit():
        key = int(target.strip())
    else:
        if isinstance(target, str) and set(target) <= {"(", ")", "."}:
            return check_dot_bracket(target)
        raise ValueError(
            f"target {target!r} is neither a shipped Eterna100 id {sorted(known)} nor a dot-bracket string "
            "of '(', ')' and '.'"
        )
    if key not in known:
        raise ValueError(f"target {target!r}: unknown Eterna100 id; shipped ids: {sorted(known)}")
    return str(known[key]["structure"])


def _hamming(a: str, b: str) -> int:
    """Number of positions where equal-length strings differ."""
    return sum(x != y for x, y in zip(a, b))


def _import_rna() -> Any:
    try:
        import RNA  # type: ignore[import-not-found]
    except ImportError as err:
        raise MissingToolError(
            f"ViennaRNA's Python module 'RNA' is not installed; install it with: {_VIENNA_HINT}"
        ) from err
    return RNA


@register_task("rna_inverse_folding")
class RNAInverseFolding(Task):
    """RNA inverse folding: an ``ACGU`` sequence whose ViennaRNA MFE structure matches a target; minimum 0.

    Args:
        seed: kept for the interface; folding is deterministic.
        target: an Eterna100 id shipped in ``mcbo/data/eterna100.json`` or a dot-bracket string.

    Raises:
        ValueError: the target is neither a shipped id nor a balanced dot-bracket string.
        MissingToolError: the ``viennarna`` package is not installed.
    """

    name = "rna_inverse_folding"
    optimum = 0.0

    def __init__(self, seed: int = 0, target: int | str = 1) -> None:
        super().__init__(seed)
        self.target = resolve_target(target)
        self._rna = _import_rna()
        self._space = SearchSpace([SequenceParam("sequence", list(BASES), len(self.target))])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def fold(self, sequence: str) -> str:
        """ViennaRNA's MFE structure (dot-bracket) of ``sequence``."""
        structure, _energy = self._rna.fold(sequence)
        return str(structure)

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        """Hamming distances ``[n]`` between each point's MFE structure and the target."""
        return np.array([_hamming(self.fold("".join(p["sequence"])), self.target) for p in points], dtype=float)
