"""The solver-kind registry and recipes: build a solver from a named YAML file in ``solvers/`` or an inline dict.

A recipe names the solver kind and, for Bayesian optimisation, each primitive with its settings::

    name: casmopolitan
    solver: bo
    model: {type: gp, numeric_kernel: matern52, nominal_kernel: transformed_overlap, combine: mixture}
    acquisition: {type: ei}
    acq_optimizer: {type: interleaved, n_restarts: 3}
    trust_region: {type: casmopolitan}
    n_init: 20

Keyword overrides given to :func:`build_solver` replace top-level recipe keys. The schema of a recipe is
its kind's constructor: a top-level key it does not take raises ``ValueError`` naming the key and
listing the allowed ones; each primitive's registry checks the primitive's settings the same way.

This module holds the registry only; importing :mod:`mcbo.solvers` registers the built-in kinds.
"""

from __future__ import annotations

import copy
import numbers
from pathlib import Path
from typing import Any, Mapping

import yaml

from mcbo.registry import Registry, check_name, shipped_dir
from mcbo.solvers.base import Solver
from mcbo.space import SearchSpace

#: Solver kinds: ``recipe["solver"]`` -> class constructed as ``cls(space, seed=..., **settings)``.
SOLVER_KINDS: Registry[type[Solver]] = Registry("solver", key="kind", context=("space", "seed"))
#: Class decorator registering a solver class under ``kind`` (the recipe's ``solver:`` key).
register_solver_kind = SOLVER_KINDS.register

#: Recipe keys that describe a recipe rather than set its solver.
META_KEYS = ("name", "description", "paper", "solver")


def recipe_dir() -> Path:
    """Folder of the named recipes: ``solvers/`` in a checkout, ``mcbo/recipes`` when installed."""
    folder = shipped_dir("solvers", "mcbo.recipes")
    if folder is None:
        raise FileNotFoundError("the solver recipes (package mcbo.recipes) are not installed; reinstall mcbo")
    return folder


def list_recipes() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe dict stored as ``solvers/<name>.yaml``.

    Raises:
        ValueError: for a name that is not a plain file name (``[A-Za-z0-9][A-Za-z0-9_.-]*``, so no path
            leaves the recipe folder), or no such recipe.
    """
    check_name(name, "solver recipe name")
    path = recipe_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown solver recipe {name!r}; available: {list_recipes()}")
    recipe = yaml.safe_load(path.read_text())
    if not isinstance(recipe, dict):
        raise ValueError(f"recipe file {path} must hold a mapping, got {type(recipe).__name__}")
    recipe.setdefault("name", name)
    return recipe


def build_solver(
    recipe: str | Mapping[str, Any],
    space: SearchSpace,
    seed: int = 0,
    **overrides: Any,
) -> Solver:
    """Build a solver for ``space`` from a recipe name or an inline recipe dict.

    Raises:
        TypeError: for a ``recipe`` that is neither a name nor a mapping, or a ``seed`` that is not an integer.
        ValueError: for an unknown recipe or solver kind, a key the kind does not take (naming it and the
            allowed keys), a negative ``seed``, or settings the solver or one of its primitives rejects.
    """
    if not isinstance(recipe, (str, Mapping)):
        raise TypeError(f"recipe must be a recipe name (str, see list_recipes()) or a recipe dict, "
                        f"got {type(recipe).__name__} {recipe!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer >= 0, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    spec = load_recipe(recipe) if isinstance(recipe, str) else copy.deepcopy(dict(recipe))
    spec.update(overrides)
    cls = solver_class(spec)
    settings = {k: v for k, v in spec.items() if k not in META_KEYS}
    check_recipe_keys(spec)
    try:
        solver = cls(space, seed=seed, **settings)
    except TypeError as err:
        raise ValueError(f"recipe {spec.get('name')!r} (solver {spec.get('solver')!r}): {err}") from None
    if spec.get("name"):
        solver.name = str(spec["name"])
    solver.recipe = spec
    return solver


def solver_class(recipe: Mapping[str, Any]) -> type[Solver]:
    """The solver class of ``recipe``'s kind (its ``solver:`` key); ``ValueError`` for an unknown kind."""
    try:
        return SOLVER_KINDS.lookup(recipe.get("solver"))
    except ValueError as err:
        raise ValueError(f"recipe {recipe.get('name')!r}: {err}") from None


def check_recipe_keys(recipe: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming every top-level key of ``recipe`` its solver kind does not take."""
    kind = recipe.get("solver")
    solver_class(recipe)
    allowed = set(META_KEYS) | set(SOLVER_KINDS.settings(kind))
    unknown = sorted(str(k) for k in recipe if k not in allowed)
    if unknown:
        raise ValueError(f"recipe {recipe.get('name')!r} (solver {kind!r}): unknown key(s) {unknown}; "
                         f"allowed: {sorted(allowed)}")


__all__ = [
    "META_KEYS", "SOLVER_KINDS", "build_solver", "check_recipe_keys", "list_recipes", "load_recipe", "recipe_dir",
    "register_solver_kind", "solver_class",
]
