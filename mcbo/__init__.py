"""mcbo: Bayesian optimisation of mixed-variable and combinatorial black boxes.

The public API::

    from mcbo import SearchSpace, Real, Integer, Categorical, minimize

    result = minimize(black_box, space, n_evaluations=50, solver="casmopolitan", seed=0)

:func:`minimize` runs a named solver recipe on a black box; :func:`build_solver` builds a solver for
ask/tell use; :func:`build_task` instantiates a registered benchmark task. The solvers and tasks
are imported on first use, so ``import mcbo`` stays light.
"""

from typing import TYPE_CHECKING, Any

from mcbo.space import (
    Boolean,
    Categorical,
    Integer,
    Ordinal,
    Permutation,
    Real,
    SearchSpace,
    Sequence,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mcbo.api import OptimizationResult, minimize
    from mcbo.solvers import build_solver
    from mcbo.tasks import build_task

_LAZY = {
    "minimize": "mcbo.api",
    "OptimizationResult": "mcbo.api",
    "build_solver": "mcbo.solvers",
    "build_task": "mcbo.tasks",
}


def __getattr__(name: str) -> Any:
    """Import the API names that pull in solvers or tasks on first access."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mcbo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Boolean", "Categorical", "Integer", "OptimizationResult", "Ordinal", "Permutation", "Real", "SearchSpace",
    "Sequence", "__version__", "build_solver", "build_task", "minimize",
]
