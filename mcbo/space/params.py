"""Parameter types of a mixed search space and how each one is encoded.

Every parameter maps a user value to one or more *columns* of the encoded tensor ``X`` of
shape ``[n, d]``:

* numeric parameters (:class:`Real`, :class:`Integer`, :class:`Ordinal`) to one column in
  ``[0, 1]`` (log scale where asked; ordinals by their normalised rank);
* nominal parameters (:class:`Categorical`, :class:`Boolean`) to one column holding the index
  of the value;
* :class:`Permutation` and :class:`Sequence` to ``length`` columns of indices.

Each column has a :class:`ColumnKind` and, for nominal columns, a number of categories; the
models, acquisition optimisers and trust regions only look at that metadata.
"""

from __future__ import annotations

import math
import numbers
import sys
from abc import ABC, abstractmethod
from enum import Enum
from typing import Any, ClassVar, Sequence as SequenceType

import numpy as np


class ColumnKind(str, Enum):
    """What an encoded column holds."""

    REAL = "real"  # continuous value in [0, 1]
    INTEGER = "integer"  # value in [0, 1] snapped to an integer grid
    ORDINAL = "ordinal"  # normalised rank in [0, 1]
    NOMINAL = "nominal"  # category index 0..k-1 (categorical, boolean, sequence)
    PERMUTATION = "permutation"  # item index 0..k-1, the columns of a group form a permutation

    @property
    def is_numeric(self) -> bool:
        return self in (ColumnKind.REAL, ColumnKind.INTEGER, ColumnKind.ORDINAL)


def _fail(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"parameter {name!r}: invalid value {value!r}; {allowed}")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"parameter name must be a non-empty string, got {name!r}")
    return name


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _brief(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (a 400-digit bound would swamp the message)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _is_finite_float(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool) that float64 holds as a finite value."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float64
        return False


#: Integer bounds must lie in ``[-MAX_EXACT_INT, MAX_EXACT_INT]`` and span at most ``MAX_EXACT_INT``:
#: float64 (the encoded tensors) represents every integer up to ``2**53`` exactly.
MAX_EXACT_INT = 2**53


def _is_nan(value: Any) -> bool:
    """Whether ``value`` is a NaN (float, numpy or Decimal): it equals nothing, not even itself."""
    try:
        return bool(value != value)
    except Exception:  # noqa: BLE001 -- a value whose comparison fails is not NaN (hashability is checked elsewhere)
        return False


def _check_hashable(name: str, values: SequenceType[Any], label: str) -> None:
    for v in values:
        try:
            hash(v)
        except TypeError:
            raise ValueError(f"parameter {name!r}: {label} must hold hashable values, got {v!r}") from None


def _check_no_nan(name: str, values: SequenceType[Any], label: str) -> None:
    for v in values:
        if _is_nan(v):
            raise ValueError(f"parameter {name!r}: {label} must not hold NaN (it equals no value, so it could "
                             f"never be chosen or told), got {list(values)!r}")


class Param(ABC):
    """A named dimension of a search space.

    Subclasses define how a value is validated, encoded to floats and decoded back.
    """

    type_name: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = _check_name(name)

    # ----------------------------------------------------------------- encoding
    @property
    @abstractmethod
    def n_columns(self) -> int:
        """Number of columns this parameter occupies in the encoded tensor."""

    @abstractmethod
    def column_kinds(self) -> list[ColumnKind]:
        """Kind of each of this parameter's columns."""

    def column_cardinalities(self) -> list[int]:
        """Number of distinct values of each column (0 for continuous columns)."""
        return [0] * self.n_columns

    @abstractmethod
    def validate(self, value: Any) -> Any:
        """Return ``value`` in canonical form or raise ``ValueError`` naming the parameter."""

    @abstractmethod
    def encode(self, value: Any) -> list[float]:
        """Encode a (validated) value to ``n_columns`` floats."""

    @abstractmethod
    def decode(self, row: np.ndarray) -> Any:
        """Decode ``n_columns`` floats (``[n_columns]``) to a value."""


    # ------------------------------------------------------------ serialisation
    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain-data description, inverse of :func:`param_from_dict`."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Param) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({body})"


class _NumericParam(Param):
    """Shared code for Real and Integer: bounds, optional log scale, one column in [0, 1]."""

    def __init__(self, name: str, lb: float, ub: float, log: bool = False) -> None:
        super().__init__(name)
        if not (_is_finite_float(lb) and _is_finite_float(ub)):
            raise ValueError(f"parameter {name!r}: bounds must be finite numbers (within float64), got "
                             f"lb={_brief(lb)}, ub={_brief(ub)}")
        if lb >= ub:
            raise ValueError(f"parameter {name!r}: lower bound must be below upper bound, got lb={lb!r} >= ub={ub!r}")
        if log and lb <= 0:
            raise ValueError(f"parameter {name!r}: log scale needs a positive lower bound, got lb={lb!r}")
        if not log and not math.isfinite(float(ub) - float(lb)):
            raise ValueError(f"parameter {name!r}: the range [{lb!r}, {ub!r}] is too wide: ub - lb overflows "
                             f"float64 (at most {sys.float_info.max:.4g}); narrow the bounds")
        self.lb, self.ub, self.log = lb, ub, bool(log)

    @property
    def n_columns(self) -> int:
        return 1

    def _to_unit(self, value: float) -> float:
        if self.log:
            return (math.log(value) - math.log(self.lb)) / (math.log(self.ub) - math.log(self.lb))
        return (value - self.lb) / (self.ub - self.lb)

    def _from_unit(self, unit: float) -> float:
        unit = min(max(float(unit), 0.0), 1.0)
        if self.log:
            return math.exp(math.log(self.lb) + unit * (math.log(self.ub) - math.log(self.lb)))
        return self.lb + unit * (self.ub - self.lb)

    def _check_range(self, value: Any, kind: str) -> float:
        if not _is_number(value) or not math.isfinite(value):
            raise _fail(self.name, value, f"expected a finite {kind} in [{self.lb}, {self.ub}]")
        if not (self.lb <= value <= self.ub):
            raise _fail(self.name, value, f"out of range [{self.lb}, {self.ub}]")
        return value

    def encode(self, value: Any) -> list[float]:
        return [self._to_unit(self.validate(value))]


class Real(_NumericParam):
    """A continuous parameter in ``[lb, ub]``, optionally on a log scale."""

    type_name = "real"

    def column_kinds(self) -> list[ColumnKind]:
        return [ColumnKind.REAL]

    def validate(self, value: Any) -> float:
        return float(self._check_range(value, "number"))

    def decode(self, row: np.ndarray) -> float:
        return min(max(self._from_unit(row[0]), self.lb), self.ub)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "lb": self.lb, "ub": self.ub, "log": self.log}


class Integer(_NumericParam):
    """An integer parameter ``lb, lb + step, ..., <= ub``, optionally on a log scale.

    ``ub`` is lowered to the last grid point ``lb + k * step <= ub``. Allowed: ``lb < ub`` inside
    ``[-2**53, 2**53]`` with ``ub - lb <= 2**53`` (float64 represents those integers exactly), and
    ``1 <= step <= ub - lb`` (a larger step would leave ``lb`` as the only value: a constant, not a
    parameter).
    """

    type_name = "integer"

    def __init__(self, name: str, lb: int, ub: int, log: bool = False, step: int = 1) -> None:
        for label, bound in (("lb", lb), ("ub", ub), ("step", step)):
            if not (isinstance(bound, numbers.Integral) and not isinstance(bound, bool)
                    or _is_finite_float(bound) and float(bound).is_integer()):
                raise ValueError(f"parameter {name!r}: {label} must be an integer, got {bound!r}")
        for label, bound in (("lb", lb), ("ub", ub)):
            if abs(int(bound)) > MAX_EXACT_INT:
                raise ValueError(f"parameter {name!r}: {label}={_brief(bound)} is outside [-2**53, 2**53], the "
                                 f"integers float64 represents exactly; use a Real (or rescale the parameter)")
        if int(ub) - int(lb) > MAX_EXACT_INT:
            raise ValueError(f"parameter {name!r}: the range [{lb!r}, {ub!r}] spans more than 2**53 integers, "
                             f"which float64 cannot tell apart; narrow it or use a Real")
        if step < 1:
            raise ValueError(f"parameter {name!r}: step must be >= 1, got {step!r}")
        if log and step != 1:
            raise ValueError(f"parameter {name!r}: step {step!r} cannot be combined with log scale")
        if int(lb) < int(ub) and int(step) > int(ub) - int(lb):
            raise ValueError(f"parameter {name!r}: step {step!r} is larger than the range ub - lb = "
                             f"{int(ub) - int(lb)}, so lb would be the only value; allowed: 1 <= step <= ub - lb")
        super().__init__(name, int(lb), int(ub), log)
        self.step = int(step)
        self.ub = self.lb + ((self.ub - self.lb) // self.step) * self.step

    def column_kinds(self) -> list[ColumnKind]:
        return [ColumnKind.INTEGER]

    def validate(self, value: Any) -> int:
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        if not isinstance(value, (numbers.Integral,)) or isinstance(value, bool):
            raise _fail(self.name, value, f"expected an integer in [{self.lb}, {self.ub}]")
        self._check_range(int(value), "integer")
        if (int(value) - self.lb) % self.step:
            raise _fail(self.name, value, f"not on the grid {self.lb} + k * {self.step}")
        return int(value)

    def decode(self, row: np.ndarray) -> int:
        raw = self._from_unit(row[0])
        snapped = self.lb + round((raw - self.lb) / self.step) * self.step
        return int(min(max(snapped, self.lb), self.ub))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "lb": self.lb, "ub": self.ub, "log": self.log,
                "step": self.step}


class _ChoiceParam(Param):
    """Shared code for parameters with a finite list of distinct values."""

    def __init__(self, name: str, values: SequenceType[Any], label: str) -> None:
        super().__init__(name)
        if isinstance(values, (str, bytes)) or not isinstance(values, SequenceType) or len(values) == 0:
            raise ValueError(f"parameter {name!r}: {label} must be a non-empty list, got {values!r}")
        values = list(values)
        seen: set[Any] = set()
        for v in values:
            key = (type(v).__name__, v) if isinstance(v, bool) else v
            try:
                if key in seen:
                    raise ValueError(f"parameter {name!r}: duplicate value {v!r} in {label}")
                seen.add(key)
            except TypeError:
                raise ValueError(f"parameter {name!r}: {label} must hold hashable values, got {v!r}") from None
        _check_no_nan(name, values, label)
        self.values = values

    def index_of(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if type(v) is type(value) or (_is_number(v) and _is_number(value)):
                if v == value:
                    return i
            elif isinstance(value, np.generic) and v == value.item():
                return i
        raise _fail(self.name, value, f"allowed values are {self.values!r}")


class Ordinal(_ChoiceParam):
    """An ordered finite set of values; encoded by its normalised rank in ``[0, 1]``."""

    type_name = "ordinal"

    def __init__(self, name: str, values: SequenceType[Any]) -> None:
        super().__init__(name, values, "values")

    @property
    def n_columns(self) -> int:
        return 1

    def column_kinds(self) -> list[ColumnKind]:
        return [ColumnKind.ORDINAL]

    def column_cardinalities(self) -> list[int]:
        return [len(self.values)]

    def validate(self, value: Any) -> Any:
        return self.values[self.index_of(value)]

    def encode(self, value: Any) -> list[float]:
        k = len(self.values)
        return [self.index_of(value) / (k - 1) if k > 1 else 0.0]

    def decode(self, row: np.ndarray) -> Any:
        k = len(self.values)
        idx = int(round(float(np.clip(row[0], 0.0, 1.0)) * (k - 1)))
        return self.values[idx]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "values": list(self.values)}


class Categorical(_ChoiceParam):
    """An unordered finite set of values (nominal); encoded by the value's index."""

    type_name = "categorical"

    def __init__(self, name: str, categories: SequenceType[Any]) -> None:
        super().__init__(name, categories, "categories")

    @property
    def categories(self) -> list[Any]:
        return self.values

    @property
    def n_columns(self) -> int:
        return 1

    def column_kinds(self) -> list[ColumnKind]:
        return [ColumnKind.NOMINAL]

    def column_cardinalities(self) -> list[int]:
        return [len(self.values)]

    def validate(self, value: Any) -> Any:
        return self.values[self.index_of(value)]

    def encode(self, value: Any) -> list[float]:
        return [float(self.index_of(value))]

    def decode(self, row: np.ndarray) -> Any:
        return self.values[int(np.clip(round(float(row[0])), 0, len(self.values) - 1))]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "categories": list(self.values)}


class Boolean(Categorical):
    """``False`` / ``True``; a categorical with two values."""

    type_name = "boolean"

    def __init__(self, name: str) -> None:
        super().__init__(name, [False, True])

    def validate(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if _is_number(value) and value in (0, 1):
            return bool(value)
        raise _fail(self.name, value, "expected a bool")

    def encode(self, value: Any) -> list[float]:
        return [float(self.validate(value))]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name}


class Permutation(Param):
    """An ordering of ``items``; the value is a list holding every item once.

    Encoded as ``len(items)`` columns, column ``i`` holding the index of the item at position ``i``.
    """

    type_name = "permutation"

    def __init__(self, name: str, items: SequenceType[Any] | int) -> None:
        super().__init__(name)
        if _is_number(items) and float(items).is_integer():
            items = list(range(int(items)))
        if isinstance(items, (str, bytes)) or not isinstance(items, SequenceType) or len(items) < 2:
            raise ValueError(f"parameter {name!r}: items must be a list of at least 2 values, got {items!r}")
        _check_hashable(name, items, "items")
        _check_no_nan(name, items, "items")
        if len(set(items)) != len(items):
            raise ValueError(f"parameter {name!r}: items must be distinct, got {list(items)!r}")
        self.items = list(items)
        self._index = {item: i for i, item in enumerate(self.items)}

    @property
    def n_columns(self) -> int:
        return len(self.items)

    def column_kinds(self) -> list[ColumnKind]:
        return [ColumnKind.PERMUTATION] * self.n_columns

    def column_cardinalities(self) -> list[int]:
        return [len(self.items)] * self.n_columns

    def validate(self, value: Any) -> list[Any]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (SequenceType, np.ndarray)):
            raise _fail(self.name, value, f"expected a list ordering the items {self.items!r}")
        value = [v.item() if isinstance(v, np.generic) else v for v in value]
        try:
            ok = len(value) == len(self.items) and sorted(self._index[v] for v in value) == list(range(len(self.items)))
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise _fail(self.name, value, f"expected each of the items {self.items!r} exactly once")
        return value

    def encode(self, value: Any) -> list[float]:
        return [float(self._index[v]) for v in self.validate(value)]

    def decode(self, row: np.ndarray) -> list[Any]:
        return [self.items[int(round(float(v)))] for v in row]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "items": list(self.items)}


class Sequence(Param):
    """A fixed-length sequence over one alphabet; the value is a list (or a string of characters).

    Encoded as ``length`` nominal columns sharing the alphabet.
    """

    type_name = "sequence"

    def __init__(self, name: str, alphabet: SequenceType[Any], length: int) -> None:
        super().__init__(name)
        if isinstance(alphabet, str):
            alphabet = list(alphabet)
        if not isinstance(alphabet, SequenceType) or len(alphabet) < 1:
            raise ValueError(f"parameter {name!r}: alphabet must be a non-empty list, got {alphabet!r}")
        _check_hashable(name, alphabet, "alphabet")
        _check_no_nan(name, alphabet, "alphabet")
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"parameter {name!r}: alphabet must hold distinct symbols, got {list(alphabet)!r}")
        if not (_is_number(length) and float(length).is_integer() and length >= 1):
            raise ValueError(f"parameter {name!r}: length must be a positive integer, got {length!r}")
        self.alphabet = list(alphabet)
        self.length = int(length)
        self._index = {s: i for i, s in enumerate(self.alphabet)}
        self._as_string = all(isinstance(s, str) and len(s) == 1 for s in self.alphabet)

    @property
    def n_columns(self) -> int:
        return self.length

    def column_kinds(self) -> list[ColumnKind]:
        return [ColumnKind.NOMINAL] * self.length

    def column_cardinalities(self) -> list[int]:
        return [len(self.alphabet)] * self.length

    def validate(self, value: Any) -> list[Any]:
        given = value
        if isinstance(value, str) and self._as_string:
            value = list(value)
        if not isinstance(value, (SequenceType, np.ndarray)) or isinstance(value, (str, bytes)):
            raise _fail(self.name, given, f"expected a sequence of {self.length} symbols from {self.alphabet!r}")
        value = [v.item() if isinstance(v, np.generic) else v for v in value]
        if len(value) != self.length:
            raise _fail(self.name, given, f"expected length {self.length}, got {len(value)}")
        for v in value:
            try:
                known = v in self._index
            except TypeError:
                known = False
            if not known:
                raise _fail(self.name, given, f"symbol {v!r} is not in the alphabet {self.alphabet!r}")
        return value

    def encode(self, value: Any) -> list[float]:
        return [float(self._index[v]) for v in self.validate(value)]

    def decode(self, row: np.ndarray) -> list[Any]:
        k = len(self.alphabet)
        return [self.alphabet[int(np.clip(round(float(v)), 0, k - 1))] for v in row]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "name": self.name, "alphabet": list(self.alphabet), "length": self.length}


PARAM_TYPES: dict[str, type[Param]] = {
    cls.type_name: cls for cls in (Real, Integer, Ordinal, Categorical, Boolean, Permutation, Sequence)
}


def param_from_dict(spec: dict[str, Any]) -> Param:
    """Build a parameter from its plain-data description (see ``Param.to_dict``)."""
    if not isinstance(spec, dict):
        raise ValueError(f"parameter spec must be a dict, got {spec!r}")
    spec = dict(spec)
    type_name = spec.pop("type", None)
    if type_name not in PARAM_TYPES:
        raise ValueError(
            f"parameter {spec.get('name')!r}: unknown type {type_name!r}; allowed: {sorted(PARAM_TYPES)}"
        )
    try:
        return PARAM_TYPES[type_name](**spec)
    except TypeError as err:
        raise ValueError(f"parameter {spec.get('name')!r} of type {type_name!r}: {err}") from None
