"""Solvers: the ask/tell base class, baselines, the BO loop and the recipe registry.

Importing this package registers the built-in solver kinds (``bo``, ``auto``, ``rs``, ``hc``, ``sa``, ``ga``, ``nap``,
``optuna``) in :data:`~mcbo.solvers.registry.SOLVER_KINDS`; the registry module itself imports none of them.
"""

from mcbo.solvers import auto, bo, heuristics, nap, optuna_samplers, random_search  # noqa: F401 -- they register
from mcbo.solvers.base import SearchSpaceExhausted, Solver
from mcbo.solvers.random_search import RandomSearch
from mcbo.solvers.registry import SOLVER_KINDS, build_solver, list_recipes, load_recipe, register_solver_kind

__all__ = [
    "RandomSearch", "SOLVER_KINDS", "SearchSpaceExhausted", "Solver", "build_solver", "list_recipes", "load_recipe",
    "register_solver_kind",
]
