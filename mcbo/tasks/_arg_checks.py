"""Boundary checks for task constructor arguments.

Each helper returns the value in canonical form or raises a ``ValueError`` whose message names
the argument, the bad value and what is allowed.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (``high=None``: no upper bound)."""
    ok = _is_real(value) and math.isfinite(value) and float(value).is_integer()
    if ok and value >= low and (high is None or value <= high):
        return int(value)
    upper = "inf" if high is None else str(high)
    raise ValueError(f"argument {name!r}: invalid value {value!r}; expected an integer in [{low}, {upper}]")


def check_real(
    name: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the interval from ``low`` to ``high`` (ends open where asked)."""
    ok = _is_real(value) and math.isfinite(value)
    if ok:
        v = float(value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if ok:
        return float(value)
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    raise ValueError(f"argument {name!r}: invalid value {value!r}; expected a finite number in {interval}")


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    if isinstance(value, str) and value in allowed:
        return value
    raise ValueError(f"argument {name!r}: invalid value {value!r}; allowed values are {list(allowed)!r}")
