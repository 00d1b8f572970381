"""Solvers: the ask/tell base class, baselines, the BO loop and the recipe registry."""

from mcbo.solvers.base import SearchSpaceExhausted, Solver
from mcbo.solvers.random_search import RandomSearch
from mcbo.solvers.registry import build_solver, list_recipes, load_recipe

__all__ = ["RandomSearch", "SearchSpaceExhausted", "Solver", "build_solver", "list_recipes", "load_recipe"]
