"""The 21 SFU test functions used by MCBO, vectorised, with their domains and known minima.

Source of every definition, default domain and known minimum: S. Surjanovic and D. Bingham,
*Virtual Library of Simulation Experiments: Test Functions and Datasets*, Simon Fraser
University, https://www.sfu.ca/~ssurjano/optimization.html. The selection and the default
domains are those of the MCBO benchmark (Dreczkowski, Grosnit & Bou-Ammar, NeurIPS 2023), which
uses ``beta = 10`` for both Perm functions.

Every function maps rows of ``x`` (``[n, d]``) to values ``[n]`` (a ``[d]`` input is read as
one row) and is minimised. :data:`SFU_FUNCTIONS` maps each name to an :class:`SfuSpec` holding
the function, its default domain (which may depend on ``d``), its known global minimum and,
where known, a minimiser; :func:`sfu_table` lists them as a ``pandas.DataFrame``.

Two functions need instance constants the library fixes for one dimension only: Langermann
(``A``, ``c`` for ``d = 2``) and Power Sum (``b`` for ``d = 4``). For other dimensions
:meth:`SfuSpec.make_params` draws them from a seeded generator (Langermann as MCBO does: integer
``A`` in 1..9 and ``c`` in 1..4, ``m = 5``; Power Sum from a planted integer point ``z`` in
``[0, d]``, ``b_i = sum_j z_j^i``, so its minimum 0 at ``z`` stays known).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from mcbo.tasks.synthetic import ackley

SFU_URL = "https://www.sfu.ca/~ssurjano/{page}.html"

_LANGERMANN_A = np.array([[3.0, 5.0], [5.0, 2.0], [2.0, 1.0], [1.0, 4.0], [7.0, 9.0]])
_LANGERMANN_C = np.array([1.0, 2.0, 5.0, 2.0, 3.0])
_POWER_SUM_B = np.array([8.0, 18.0, 44.0, 114.0])
_POWER_SUM_Z = np.array([1.0, 2.0, 2.0, 3.0])
# Michalewicz (m = 10) minima listed by the SFU library; the d = 2 minimiser to 8 digits.
_MICHALEWICZ_MIN = {2: -1.8013, 5: -4.687658, 10: -9.66015}
_MICHALEWICZ_X2 = np.array([2.20290552, 1.57079633])
_SCHWEFEL_X = 420.968746
_STYBLINSKI_TANG_X = -2.903534


def _rows(x: np.ndarray) -> np.ndarray:
    """``x`` as a float array ``[n, d]``."""
    return np.atleast_2d(np.asarray(x, dtype=float))


def _index(d: int) -> np.ndarray:
    """``1, ..., d`` as floats ``[d]``."""
    return np.arange(1, d + 1, dtype=float)


# --------------------------------------------------------------------- many local minima
def griewank(x: np.ndarray) -> np.ndarray:
    """Griewank: ``sum x_i^2 / 4000 - prod cos(x_i / sqrt(i)) + 1``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return np.sum(x**2, axis=1) / 4000.0 - np.prod(np.cos(x / np.sqrt(_index(x.shape[1]))), axis=1) + 1.0


def langermann(x: np.ndarray, a: np.ndarray | None = None, c: np.ndarray | None = None) -> np.ndarray:
    """Langermann: ``sum_i c_i exp(-r_i / pi) cos(pi r_i)``, ``r_i = ||x - A_i||^2``; ``[n, d] -> [n]``.

    Args:
        x: points ``[n, d]``.
        a: matrix ``A`` ``[m, d]``; defaults to the library's ``m = 5`` constants when ``d = 2``.
        c: weights ``[m]``; defaults likewise.
    """
    x = _rows(x)
    if a is None or c is None:
        if x.shape[1] != 2:
            raise ValueError(f"langermann: constants 'a' and 'c' must be given for d = {x.shape[1]} "
                             f"(defaults are for d = 2)")
        a, c = _LANGERMANN_A, _LANGERMANN_C
    r = np.sum((x[:, None, :] - np.asarray(a, dtype=float)[None, :, :]) ** 2, axis=-1)  # [n, m]
    return np.sum(np.asarray(c, dtype=float) * np.exp(-r / np.pi) * np.cos(np.pi * r), axis=1)


def levy(x: np.ndarray) -> np.ndarray:
    """Levy function with ``w_i = 1 + (x_i - 1) / 4``; ``[n, d] -> [n]``."""
    w = 1.0 + (_rows(x) - 1.0) / 4.0
    head = np.sin(np.pi * w[:, 0]) ** 2
    body = np.sum((w[:, :-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(np.pi * w[:, :-1] + 1.0) ** 2), axis=1)
    tail = (w[:, -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * np.pi * w[:, -1]) ** 2)
    return head + body + tail


def rastrigin(x: np.ndarray) -> np.ndarray:
    """Rastrigin: ``10 d + sum (x_i^2 - 10 cos(2 pi x_i))``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return 10.0 * x.shape[1] + np.sum(x**2 - 10.0 * np.cos(2.0 * np.pi * x), axis=1)


def schwefel(x: np.ndarray) -> np.ndarray:
    """Schwefel: ``418.9829 d - sum x_i sin(sqrt|x_i|)``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return 418.9829 * x.shape[1] - np.sum(x * np.sin(np.sqrt(np.abs(x))), axis=1)


# ---------------------------------------------------------------------------- bowl shaped
def perm0(x: np.ndarray, beta: float = 10.0) -> np.ndarray:
    """Perm 0, d, beta: ``sum_i (sum_j (j + beta)(x_j^i - j^-i))^2``; ``[n, d] -> [n]``."""
    x = _rows(x)
    j = _index(x.shape[1])
    i = j[:, None]  # [d, 1] outer power
    inner = np.sum((j + beta) * (x[:, None, :] ** i - j ** (-i)), axis=-1)  # [n, d]
    return np.sum(inner**2, axis=1)


def rot_hyp(x: np.ndarray) -> np.ndarray:
    """Rotated hyper-ellipsoid: ``sum_i sum_{j <= i} x_j^2``; ``[n, d] -> [n]``."""
    return np.sum(np.cumsum(_rows(x) ** 2, axis=1), axis=1)


def sphere(x: np.ndarray) -> np.ndarray:
    """Sphere: ``sum x_i^2``; ``[n, d] -> [n]``."""
    return np.sum(_rows(x) ** 2, axis=1)


def modified_sphere(x: np.ndarray) -> np.ndarray:
    """Modified sphere (Picheny et al. 2012): ``(sum 2^i x_i^2 - 1745) / 899``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return (np.sum(2.0 ** _index(x.shape[1]) * x**2, axis=1) - 1745.0) / 899.0


def sum_pow(x: np.ndarray) -> np.ndarray:
    """Sum of different powers: ``sum |x_i|^(i + 1)``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return np.sum(np.abs(x) ** (_index(x.shape[1]) + 1.0), axis=1)


def sum_squares(x: np.ndarray) -> np.ndarray:
    """Sum squares: ``sum i x_i^2``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return np.sum(_index(x.shape[1]) * x**2, axis=1)


def trid(x: np.ndarray) -> np.ndarray:
    """Trid: ``sum (x_i - 1)^2 - sum_{i >= 2} x_i x_{i-1}``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return np.sum((x - 1.0) ** 2, axis=1) - np.sum(x[:, 1:] * x[:, :-1], axis=1)


# --------------------------------------------------------------------------- plate shaped
def power_sum(x: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Power sum: ``sum_i (sum_j x_j^i - b_i)^2``; ``[n, d] -> [n]``.

    Args:
        x: points ``[n, d]``.
        b: targets ``[d]``; defaults to the library's ``(8, 18, 44, 114)`` when ``d = 4``.
    """
    x = _rows(x)
    d = x.shape[1]
    if b is None:
        if d != 4:
            raise ValueError(f"power_sum: targets 'b' must be given for d = {d} (the default is for d = 4)")
        b = _POWER_SUM_B
    moments = np.sum(x[:, None, :] ** _index(d)[:, None], axis=-1)  # [n, d]: row i = sum_j x_j^i
    return np.sum((moments - np.asarray(b, dtype=float)) ** 2, axis=1)


def zakharov(x: np.ndarray) -> np.ndarray:
    """Zakharov: ``sum x_i^2 + s^2 + s^4`` with ``s = sum 0.5 i x_i``; ``[n, d] -> [n]``."""
    x = _rows(x)
    s = np.sum(0.5 * _index(x.shape[1]) * x, axis=1)
    return np.sum(x**2, axis=1) + s**2 + s**4


# -------------------------------------------------------------------------- valley shaped
def dixon_price(x: np.ndarray) -> np.ndarray:
    """Dixon-Price: ``(x_1 - 1)^2 + sum_{i >= 2} i (2 x_i^2 - x_{i-1})^2``; ``[n, d] -> [n]``."""
    x = _rows(x)
    i = _index(x.shape[1])[1:]
    return (x[:, 0] - 1.0) ** 2 + np.sum(i * (2.0 * x[:, 1:] ** 2 - x[:, :-1]) ** 2, axis=1)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    """Rosenbrock: ``sum 100 (x_{i+1} - x_i^2)^2 + (x_i - 1)^2``; ``[n, d] -> [n]`` (``d >= 2``)."""
    x = _rows(x)
    return np.sum(100.0 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (x[:, :-1] - 1.0) ** 2, axis=1)


# ---------------------------------------------------------------------------- steep ridges
def michalewicz(x: np.ndarray, m: float = 10.0) -> np.ndarray:
    """Michalewicz: ``-sum sin(x_i) sin(i x_i^2 / pi)^(2m)``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return -np.sum(np.sin(x) * np.sin(_index(x.shape[1]) * x**2 / np.pi) ** (2.0 * m), axis=1)


# ----------------------------------------------------------------------------------- other
def perm(x: np.ndarray, beta: float = 10.0) -> np.ndarray:
    """Perm d, beta: ``sum_i (sum_j (j^i + beta)((x_j / j)^i - 1))^2``; ``[n, d] -> [n]``."""
    x = _rows(x)
    j = _index(x.shape[1])
    i = j[:, None]
    inner = np.sum((j**i + beta) * ((x[:, None, :] / j) ** i - 1.0), axis=-1)  # [n, d]
    return np.sum(inner**2, axis=1)


def powell(x: np.ndarray) -> np.ndarray:
    """Powell, on groups of 4 coordinates; ``[n, d] -> [n]`` with ``d`` a multiple of 4."""
    x = _rows(x)
    if x.shape[1] % 4:
        raise ValueError(f"powell: the dimension must be a multiple of 4, got d = {x.shape[1]}")
    a, b, c, e = (x[:, k::4] for k in range(4))
    terms = (a + 10.0 * b) ** 2 + 5.0 * (c - e) ** 2 + (b - 2.0 * c) ** 4 + 10.0 * (a - e) ** 4
    return np.sum(terms, axis=1)


def styblinski_tang(x: np.ndarray) -> np.ndarray:
    """Styblinski-Tang: ``0.5 sum (x_i^4 - 16 x_i^2 + 5 x_i)``; ``[n, d] -> [n]``."""
    x = _rows(x)
    return 0.5 * np.sum(x**4 - 16.0 * x**2 + 5.0 * x, axis=1)


# ------------------------------------------------------------------------------ the table
Domain = Callable[[int], "tuple[float, float]"]
Minimiser = Callable[[int, Mapping[str, Any]], "np.ndarray | None"]
Minimum = Callable[[int], "float | None"]


def _fixed(lb: float, ub: float) -> Domain:
    return lambda d: (float(lb), float(ub))


def _const(value: float) -> Minimiser:
    return lambda d, params: np.full(d, float(value))


def _no_params(d: int, rng: np.random.Generator) -> dict[str, Any]:
    return {}


def _langermann_params(d: int, rng: np.random.Generator) -> dict[str, Any]:
    if d == 2:
        return {"a": _LANGERMANN_A.copy(), "c": _LANGERMANN_C.copy()}
    return {"a": rng.integers(1, 10, size=(5, d)).astype(float), "c": rng.integers(1, 5, size=5).astype(float)}


def _power_sum_params(d: int, rng: np.random.Generator) -> dict[str, Any]:
    z = _POWER_SUM_Z.copy() if d == 4 else np.sort(rng.integers(0, d + 1, size=d)).astype(float)
    b = np.sum(z[None, :] ** _index(d)[:, None], axis=1)
    return {"b": b, "z": z}


@dataclass(frozen=True)
class SfuSpec:
    """One SFU function: definition, default domain and known minimum.

    Attributes:
        name: short name (the key of :data:`SFU_FUNCTIONS`).
        title: the library's name of the function.
        page: the library page's file stem (``https://www.sfu.ca/~ssurjano/<page>.html``).
        group: the library's grouping (many local minima, bowl shaped, ...).
        func: the vectorised function ``[n, d] -> [n]``.
        domain: ``d -> (lb, ub)``, the same interval for every coordinate.
        minimiser: ``(d, params) -> [d]`` global minimiser, or ``None`` where unknown.
        minimum: ``d -> value`` of the global minimum, or ``None`` where unknown.
        min_dims: smallest dimension the function is defined for.
        dims_multiple: the dimension must be a multiple of this.
        make_params: ``(d, rng) -> kwargs`` of ``func`` (instance constants).
    """

    name: str
    title: str
    page: str
    group: str
    func: Callable[..., np.ndarray]
    domain: Domain
    minimiser: Minimiser = field(default=lambda d, params: None)
    minimum: Minimum = field(default=lambda d: None)
    min_dims: int = 1
    dims_multiple: int = 1
    make_params: Callable[[int, np.random.Generator], dict[str, Any]] = _no_params

    @property
    def url(self) -> str:
        return SFU_URL.format(page=self.page)

    def check_dims(self, d: int) -> None:
        """Raise ``ValueError`` when the function is not defined in dimension ``d``."""
        if d < self.min_dims:
            raise ValueError(f"function {self.name!r} needs at least {self.min_dims} dimensions, got d = {d}")
        if d % self.dims_multiple:
            raise ValueError(f"function {self.name!r} needs a dimension that is a multiple of "
                             f"{self.dims_multiple}, got d = {d}")

    def evaluate(self, x: np.ndarray, params: Mapping[str, Any] | None = None) -> np.ndarray:
        """Values ``[n]`` of rows ``x`` ``[n, d]`` with instance constants ``params``."""
        kwargs = {k: v for k, v in (params or {}).items() if k != "z"}
        return self.func(x, **kwargs)


def _trid_minimiser(d: int, params: Mapping[str, Any]) -> np.ndarray:
    i = _index(d)
    return i * (d + 1.0 - i)


def _dixon_price_minimiser(d: int, params: Mapping[str, Any]) -> np.ndarray:
    i = _index(d)
    return 2.0 ** (-(2.0**i - 2.0) / 2.0**i)


_SPECS = [
    SfuSpec("ackley", "Ackley function", "ackley", "many local minima", ackley, _fixed(-32.768, 32.768),
            _const(0.0), lambda d: 0.0),
    SfuSpec("griewank", "Griewank function", "griewank", "many local minima", griewank, _fixed(-600, 600),
            _const(0.0), lambda d: 0.0),
    SfuSpec("langermann", "Langermann function", "langer", "many local minima", langermann, _fixed(0, 10),
            make_params=_langermann_params),
    SfuSpec("levy", "Levy function", "levy", "many local minima", levy, _fixed(-10, 10), _const(1.0), lambda d: 0.0),
    SfuSpec("rastrigin", "Rastrigin function", "rastr", "many local minima", rastrigin, _fixed(-5.12, 5.12),
            _const(0.0), lambda d: 0.0),
    SfuSpec("schwefel", "Schwefel function", "schwef", "many local minima", schwefel, _fixed(-500, 500),
            _const(_SCHWEFEL_X), lambda d: 0.0),
    SfuSpec("perm0", "Perm function 0, d, beta", "perm0db", "bowl shaped", perm0, lambda d: (-float(d), float(d)),
            lambda d, params: 1.0 / _index(d), lambda d: 0.0),
    SfuSpec("rot_hyp", "Rotated hyper-ellipsoid function", "rothyp", "bowl shaped", rot_hyp,
            _fixed(-65.536, 65.536), _const(0.0), lambda d: 0.0),
    SfuSpec("sphere", "Sphere function", "spheref", "bowl shaped", sphere, _fixed(-5.12, 5.12), _const(0.0),
            lambda d: 0.0),
    SfuSpec("modified_sphere", "Sphere function (modified, Picheny et al. 2012)", "spheref", "bowl shaped",
            modified_sphere, _fixed(0, 1), _const(0.0), lambda d: -1745.0 / 899.0),
    SfuSpec("sum_pow", "Sum of different powers function", "sumpow", "bowl shaped", sum_pow, _fixed(-1, 1),
            _const(0.0), lambda d: 0.0),
    SfuSpec("sum_squares", "Sum squares function", "sumsqu", "bowl shaped", sum_squares, _fixed(-10, 10),
            _const(0.0), lambda d: 0.0),
    SfuSpec("trid", "Trid function", "trid", "bowl shaped", trid, lambda d: (-float(d) ** 2, float(d) ** 2),
            _trid_minimiser, lambda d: -d * (d + 4.0) * (d - 1.0) / 6.0),
    SfuSpec("power_sum", "Power sum function", "powersum", "plate shaped", power_sum, lambda d: (0.0, float(d)),
            lambda d, params: np.asarray(params["z"], dtype=float), lambda d: 0.0, make_params=_power_sum_params),
    SfuSpec("zakharov", "Zakharov function", "zakharov", "plate shaped", zakharov, _fixed(-5, 10), _const(0.0),
            lambda d: 0.0),
    SfuSpec("dixon_price", "Dixon-Price function", "dixonpr", "valley shaped", dixon_price, _fixed(-10, 10),
            _dixon_price_minimiser, lambda d: 0.0),
    SfuSpec("rosenbrock", "Rosenbrock function", "rosen", "valley shaped", rosenbrock, _fixed(-5, 10), _const(1.0),
            lambda d: 0.0, min_dims=2),
    SfuSpec("michalewicz", "Michalewicz function", "michal", "steep ridges", michalewicz, _fixed(0, np.pi),
            lambda d, params: _MICHALEWICZ_X2.copy() if d == 2 else None, lambda d: _MICHALEWICZ_MIN.get(d)),
    SfuSpec("perm", "Perm function d, beta", "permdb", "other", perm, lambda d: (-float(d), float(d)),
            lambda d, params: _index(d), lambda d: 0.0),
    SfuSpec("powell", "Powell function", "powell", "other", powell, _fixed(-4, 5), _const(0.0), lambda d: 0.0,
            min_dims=4, dims_multiple=4),
    SfuSpec("styblinski_tang", "Styblinski-Tang function", "stybtang", "other", styblinski_tang, _fixed(-5, 5),
            _const(_STYBLINSKI_TANG_X), lambda d: -39.16599 * d),
]

#: The 21 functions by short name.
SFU_FUNCTIONS: dict[str, SfuSpec] = {spec.name: spec for spec in _SPECS}


def get_sfu(name: str) -> SfuSpec:
    """The :class:`SfuSpec` of ``name``, or a ``ValueError`` listing the allowed names."""
    if name not in SFU_FUNCTIONS:
        raise ValueError(f"function {name!r} is not an SFU function; allowed: {sorted(SFU_FUNCTIONS)}")
    return SFU_FUNCTIONS[name]


def sfu_table(d: int = 4) -> pd.DataFrame:
    """One row per function in dimension ``d``: domain, known minimum and minimiser, source page.

    Functions not defined in dimension ``d`` (Powell needs a multiple of 4, Rosenbrock ``d >= 2``)
    are listed with empty entries; instance-dependent minimisers are shown for seed 0.
    """
    rows = []
    for spec in SFU_FUNCTIONS.values():
        row: dict[str, Any] = {"function": spec.name, "title": spec.title, "group": spec.group, "url": spec.url}
        try:
            spec.check_dims(d)
        except ValueError:
            rows.append(row)
            continue
        lb, ub = spec.domain(d)
        x_star = spec.minimiser(d, spec.make_params(d, np.random.default_rng(0)))
        row.update(lb=lb, ub=ub, minimum=spec.minimum(d),
                   minimiser=None if x_star is None else [float(v) for v in x_star])
        rows.append(row)
    return pd.DataFrame(rows, columns=["function", "title", "group", "lb", "ub", "minimum", "minimiser", "url"])


__all__ = [
    "SFU_FUNCTIONS",
    "SfuSpec",
    "ackley",
    "dixon_price",
    "get_sfu",
    "griewank",
    "langermann",
    "levy",
    "michalewicz",
    "modified_sphere",
    "perm",
    "perm0",
    "powell",
    "power_sum",
    "rastrigin",
    "rosenbrock",
    "rot_hyp",
    "schwefel",
    "sfu_table",
    "sphere",
    "styblinski_tang",
    "sum_pow",
    "sum_squares",
    "trid",
    "zakharov",
]
