"""Converters between Optuna distributions and an mcbo :class:`~mcbo.space.SearchSpace`.

An :class:`OptunaBridge` pairs a search space with a dict of Optuna distributions and maps points both
ways (``to_params``: mcbo point -> Optuna params, ``to_point``: Optuna params -> mcbo point). Build it from
either side:

* :meth:`OptunaBridge.from_distributions` (Optuna -> mcbo), used by :class:`~mcbo.integrations.optuna.McboSampler`:

  =================================  =====================================================================
  Optuna                             mcbo
  =================================  =====================================================================
  ``FloatDistribution``              :class:`~mcbo.space.Real` (``log`` kept)
  ``FloatDistribution(step=s)``      :class:`~mcbo.space.Ordinal` of the grid values (at most 10,000 of
                                     them; a finer grid becomes a ``Real`` and values are rounded onto it)
  ``IntDistribution``                :class:`~mcbo.space.Integer` (``log`` and ``step`` kept)
  ``CategoricalDistribution``        :class:`~mcbo.space.Categorical` of the choices themselves (None,
                                     bools, numbers, strings, mixed); choices mcbo cannot tell apart
                                     (``1`` and ``1.0``) become labels ``"<index>: <repr>"``
  a single value (``low == high``,   not a parameter of the space: kept in :attr:`OptunaBridge.fixed`
  one choice)
  =================================  =====================================================================

* :meth:`OptunaBridge.from_space` (mcbo -> Optuna), used by the ``optuna`` solver kind and the export of
  suites:

  =============================  ===========================================================================
  mcbo                           Optuna
  =============================  ===========================================================================
  ``Real``                       ``FloatDistribution`` (``log`` kept)
  ``Integer``                    ``IntDistribution`` (``log``, ``step`` kept)
  ``Boolean``                    ``CategoricalDistribution((False, True))``
  ``Categorical``                ``CategoricalDistribution`` of the categories when they are None, bool,
                                 int, float or str; otherwise of their indices
  ``Ordinal``                    ``IntDistribution(0, k - 1)`` over the rank of the value (faithful: the
                                 order is kept; the Optuna parameter holds the rank)
  ``Sequence``                   one ``CategoricalDistribution`` per position, named ``name[i]`` (faithful)
  ``Permutation``                ``ValueError``: no Optuna distribution keeps the items distinct
  =============================  ===========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from mcbo.space import Boolean, Categorical, Integer, Ordinal, Param, Permutation, Real, SearchSpace, Sequence

#: Largest stepped-float grid kept exactly as an ``Ordinal``; finer grids are searched as a ``Real``.
MAX_GRID_VALUES = 10_000

_OPTUNA_CHOICE_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class _Link:
    """One mcbo parameter (or a fixed Optuna value) and the Optuna parameter(s) it stands for."""

    param: Param | None  # None: an Optuna parameter with a single possible value
    distributions: dict[str, BaseDistribution]
    to_params: Callable[[Any], dict[str, Any]]  # mcbo value -> Optuna params
    to_value: Callable[[Mapping[str, Any]], Any]  # Optuna params -> mcbo value


class OptunaBridge:
    """A search space and the Optuna distributions of the same parameters, with point maps both ways.

    Attributes:
        space: the mcbo search space (``None`` when every Optuna parameter has a single value).
        distributions: Optuna parameter name -> distribution.
        fixed: Optuna parameters with a single possible value (not in ``space``), name -> value.
    """

    def __init__(self, links: list[_Link], constraints: tuple = ()) -> None:
        self._links = links
        params = [link.param for link in links if link.param is not None]
        self.space: SearchSpace | None = SearchSpace(params, constraints=constraints) if params else None
        self.distributions: dict[str, BaseDistribution] = {}
        for link in links:
            for name, dist in link.distributions.items():
                if name in self.distributions:
                    raise ValueError(f"Optuna parameter name {name!r} is produced twice; rename a parameter")
                self.distributions[name] = dist
        self.fixed = {name: value for link in links if link.param is None for name, value in link.to_params(None).items()}

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_distributions(cls, distributions: Mapping[str, BaseDistribution]) -> "OptunaBridge":
        """Bridge for an Optuna search space (``{name: distribution}``), e.g. a trial's relative space."""
        return cls([_link_from_distribution(name, dist) for name, dist in distributions.items()])

    @classmethod
    def from_space(cls, space: SearchSpace) -> "OptunaBridge":
        """Bridge for an mcbo search space; raises ``ValueError`` for a ``Permutation`` parameter."""
        if not isinstance(space, SearchSpace):
            raise ValueError(f"expected a SearchSpace, got {type(space).__name__}")
        bridge = cls([_link_from_param(p) for p in space.params])
        bridge.space = space  # keep the caller's space (its constraints included)
        return bridge

    # --------------------------------------------------------------- mapping
    def to_params(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna params (exact Python types: int, float, the choice object) of an mcbo ``point``."""
        params: dict[str, Any] = {}
        for link in self._links:
            params.update(link.to_params(None if link.param is None else point[link.param.name]))
        return params

    def to_point(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The mcbo point of Optuna ``params``; ``ValueError`` when one is missing or out of its space."""
        missing = [name for name in self.distributions if name not in params]
        if missing:
            raise ValueError(f"Optuna params lack {missing}")
        point = {link.param.name: link.to_value(params) for link in self._links if link.param is not None}
        assert self.space is not None
        return self.space.validate(point)


# ---------------------------------------------------------------- Optuna -> mcbo
def space_from_optuna(distributions: Mapping[str, BaseDistribution]) -> SearchSpace:
    """The mcbo search space of an Optuna search space (single-valued parameters left out)."""
    space = OptunaBridge.from_distributions(distributions).space
    if space is None:
        raise ValueError("every Optuna parameter has a single value: there is nothing to search")
    return space


def _link_from_distribution(name: str, dist: BaseDistribution) -> _Link:
    if isinstance(dist, CategoricalDistribution):
        return _categorical_link(name, dist)
    if not isinstance(dist, (FloatDistribution, IntDistribution)):
        raise ValueError(f"parameter {name!r}: unsupported Optuna distribution {type(dist).__name__}")
    if dist.low == dist.high:
        value = dist.low
        return _Link(None, {name: dist}, lambda _: {name: value}, lambda params: value)
    if isinstance(dist, IntDistribution):
        param = Integer(name, dist.low, dist.high, log=dist.log, step=dist.step)
        return _Link(param, {name: dist}, lambda v: {name: int(v)}, lambda params: int(params[name]))
    if dist.step is None:
        param = Real(name, dist.low, dist.high, log=dist.log)
        return _Link(param, {name: dist}, lambda v: {name: float(v)}, lambda params: float(params[name]))
    return _stepped_float_link(name, dist)


def _stepped_float_link(name: str, dist: FloatDistribution) -> _Link:
    low, high, step = dist.low, dist.high, dist.step
    n_values = int(round((high - low) / step)) + 1
    exact_low, exact_step = Decimal(repr(low)), Decimal(repr(step))

    def grid_value(k: int) -> float:
        # Decimal arithmetic: -10.2 + 3 * 0.1 is -9.9, not -9.899999999999999, and no value passes `high`
        return min(max(float(exact_low + k * exact_step), low), high)

    def on_grid(value: float) -> float:
        return grid_value(min(max(int(round((float(value) - low) / step)), 0), n_values - 1))

    if n_values <= MAX_GRID_VALUES:
        param: Param = Ordinal(name, [grid_value(k) for k in range(n_values)])
    else:
        param = Real(name, low, dist.high)
    return _Link(param, {name: dist}, lambda v: {name: on_grid(v)}, lambda params: on_grid(params[name]))


def _categorical_link(name: str, dist: CategoricalDistribution) -> _Link:
    choices = dist.choices
    if len(choices) == 1:
        return _Link(None, {name: dist}, lambda _: {name: choices[0]}, lambda params: choices[0])
    try:
        param = Categorical(name, list(choices))
    except ValueError:  # choices equal in mcbo's eyes (1 and 1.0): label them by position
        param = Categorical(name, [f"{i}: {c!r}" for i, c in enumerate(choices)])
    values = param.values
    return _Link(
        param, {name: dist},
        lambda v: {name: choices[param.index_of(v)]},
        lambda params: values[_choice_index(dist, params[name])],
    )


def _choice_index(dist: CategoricalDistribution, value: Any) -> int:
    """Index of ``value`` among the choices, telling apart what Optuna's own look-up does not (1, 1.0, True)."""
    for i, choice in enumerate(dist.choices):
        if type(choice) is type(value) and choice == value:
            return i
    return dist.to_internal_repr(value)


# ---------------------------------------------------------------- mcbo -> Optuna
def distributions_from_space(space: SearchSpace) -> dict[str, BaseDistribution]:
    """Optuna distributions of every parameter of ``space`` (see the module table for the mapping)."""
    return OptunaBridge.from_space(space).distributions


def _link_from_param(p: Param) -> _Link:
    name = p.name
    if isinstance(p, Real):
        return _Link(p, {name: FloatDistribution(p.lb, p.ub, log=p.log)},
                     lambda v: {name: float(v)}, lambda params: float(params[name]))
    if isinstance(p, Integer):
        return _Link(p, {name: IntDistribution(p.lb, p.ub, log=p.log, step=p.step)},
                     lambda v: {name: int(v)}, lambda params: int(params[name]))
    if isinstance(p, Boolean):
        return _Link(p, {name: CategoricalDistribution((False, True))},
                     lambda v: {name: bool(v)}, lambda params: bool(params[name]))
    if isinstance(p, Categorical):
        dist, to_choice, to_value = _choice_codec(p.values)
        return _Link(p, {name: dist}, lambda v: {name: to_choice(v)}, lambda params: to_value(params[name]))
    if isinstance(p, Ordinal):
        last = len(p.values) - 1
        return _Link(p, {name: IntDistribution(0, last)}, lambda v: {name: p.index_of(v)},
                     lambda params: p.values[min(max(int(params[name]), 0), last)])
    if isinstance(p, Sequence):
        dist, to_choice, to_value = _choice_codec(p.alphabet)
        names = [f"{name}[{i}]" for i in range(p.length)]
        return _Link(p, {n: dist for n in names},
                     lambda v: {n: to_choice(s) for n, s in zip(names, p.validate(v))},
                     lambda params: [to_value(params[n]) for n in names])
    if isinstance(p, Permutation):
        raise ValueError(
            f"parameter {name!r} is a Permutation, which no Optuna distribution can represent (Optuna samplers "
            f"cannot keep its items distinct); use an mcbo solver for permutation spaces (casmopolitan, ga, sa, hc)"
        )
    raise ValueError(f"parameter {name!r}: no Optuna distribution for type {type(p).__name__}")


def _choice_codec(values: list[Any]) -> tuple[CategoricalDistribution, Callable[[Any], Any], Callable[[Any], Any]]:
    """Categorical distribution of ``values`` and the maps value -> choice, choice -> value.

    Choices are the values themselves when Optuna accepts them (None, bool, int, float, str and not NaN),
    otherwise the values' indices.
    """
    plain = all(
        isinstance(v, _OPTUNA_CHOICE_TYPES) and not (isinstance(v, float) and math.isnan(v)) for v in values
    )
    if plain:
        dist = CategoricalDistribution(tuple(values))
        return dist, lambda v: v, lambda choice: values[_choice_index(dist, choice)]
    return CategoricalDistribution(tuple(range(len(values)))), values.index, lambda choice: values[int(choice)]
