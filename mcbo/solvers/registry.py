"""Build solvers from recipes: a named YAML file in ``solvers/`` or an inline dict.

A recipe names the solver kind and, for Bayesian optimisation, each primitive with its settings::

    name: casmopolitan
    solver: bo
    model: {type: gp, numeric_kernel: matern52, nominal_kernel: transformed_overlap, combine: mixture}
    acquisition: {type: ei}
    acq_optimizer: {type: interleaved, n_restarts: 3}
    trust_region: {type: casmopolitan}
    n_init: 20

Keyword overrides given to :func:`build_solver` replace top-level recipe keys.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from mcbo.solvers.base import Solver
from mcbo.space import SearchSpace

#: Solver kinds: ``recipe["solver"]`` -> factory(space, seed=..., **settings).
SOLVER_KINDS: dict[str, Callable[..., Solver]] = {}

_META_KEYS = ("name", "description", "paper", "solver")


def register_solver_kind(kind: str) -> Callable[[type[Solver]], type[Solver]]:
    """Class decorator registering a solver class under ``kind`` (the recipe's ``solver:`` key)."""

    def wrap(cls: type[Solver]) -> type[Solver]:
        if kind in SOLVER_KINDS:
            raise ValueError(f"solver kind {kind!r} is registered twice")
        SOLVER_KINDS[kind] = cls
        return cls

    return wrap


def recipe_dir() -> Path:
    """Folder of the named recipes: ``solvers/`` in a checkout, ``mcbo/recipes`` when installed."""
    checkout = Path(__file__).resolve().parents[2] / "solvers"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("mcbo.recipes")))


def list_recipes() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(p.stem for p in recipe_dir().glob("*.yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The recipe dict stored as ``solvers/<name>.yaml``."""
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
        ValueError: for an unknown recipe or solver kind, or settings the solver rejects.
    """
    spec = load_recipe(recipe) if isinstance(recipe, str) else copy.deepcopy(dict(recipe))
    spec.update(overrides)
    kind = spec.get("solver")
    settings = {k: v for k, v in spec.items() if k not in _META_KEYS}
    try:
        solver = solver_class(spec)(space, seed=seed, **settings)
    except TypeError as err:
        raise ValueError(f"recipe {spec.get('name')!r} (solver {kind!r}): {err}") from None
    if spec.get("name"):
        solver.name = str(spec["name"])
    solver.recipe = spec
    return solver


def solver_class(recipe: Mapping[str, Any]) -> type[Solver]:
    """The solver class of ``recipe``'s kind (its ``solver:`` key); ``ValueError`` for an unknown kind."""
    _register_builtin_kinds()
    kind = recipe.get("solver")
    if kind not in SOLVER_KINDS:
        raise ValueError(f"recipe {recipe.get('name')!r}: unknown solver kind {kind!r}; allowed: {sorted(SOLVER_KINDS)}")
    return SOLVER_KINDS[kind]


def _register_builtin_kinds() -> None:
    """Import the modules whose classes register themselves (kept lazy to keep imports light)."""
    import mcbo.solvers.bo  # noqa: F401
    import mcbo.solvers.heuristics  # noqa: F401
    import mcbo.solvers.nap  # noqa: F401
    import mcbo.solvers.optuna_samplers  # noqa: F401
    import mcbo.solvers.random_search  # noqa: F401
