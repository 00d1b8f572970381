"""The one-call front door: :func:`minimize` a black box over a :class:`~mcbo.space.SearchSpace`.

Example::

    from mcbo import Categorical, Integer, Real, SearchSpace, minimize

    space = SearchSpace([Real("x", -5, 5), Integer("n", 0, 10), Categorical("kind", ["a", "b", "c"])])

    def black_box(p):  # minimised; raise or return NaN to record a failed evaluation
        return (p["x"] - 1) ** 2 + abs(p["n"] - 3) + (p["kind"] != "b")

    result = minimize(black_box, space, n_evaluations=40, solver="default", seed=0)
    print(result.best_value, result.best_point)
    result.history.to_csv("history.csv", index=False)

``result.solver`` is the solver that ran; pass it back as ``solver=`` to continue the same run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcbo.space import SearchSpace

if TYPE_CHECKING:  # imported lazily at run time: they pull in the solvers and the models
    import pandas as pd

    from mcbo.solvers.base import Solver

__all__ = ["OptimizationResult", "minimize"]


@dataclass(frozen=True)
class OptimizationResult:
    """What :func:`minimize` returns.

    Attributes:
        best_point: the best point evaluated successfully (``None`` if every evaluation failed).
        best_value: its value (``inf`` if every evaluation failed).
        history: one row per evaluation (the solver's :attr:`~mcbo.solvers.base.Solver.history`):
            ``index``, one column per parameter, ``value``, ``status`` (``ok`` / ``failed``),
            ``error``, ``ask_seconds``, ``eval_seconds`` and ``best_value`` (best so far).
        solver: the solver that ran; give it to :func:`minimize` again to continue the run, or
            ``solver.save(path)`` it.
        n_failed: how many evaluations failed (the black box raised or returned None/NaN/inf).
    """

    best_point: dict[str, Any] | None
    best_value: float
    history: pd.DataFrame = field(repr=False)
    solver: Solver = field(repr=False)
    n_failed: int = 0

    @property
    def n_evaluations(self) -> int:
        """Rows in :attr:`history` (every evaluation the solver was told, failed ones included)."""
        return len(self.history)

    @property
    def success(self) -> bool:
        """Whether at least one evaluation succeeded."""
        return self.best_point is not None and math.isfinite(self.best_value)


def minimize(
    black_box: Callable[[dict[str, Any]], float],
    space: SearchSpace,
    n_evaluations: int,
    solver: str | Mapping[str, Any] | Solver = "default",
    seed: int = 0,
    batch_size: int = 1,
    progress: bool = False,
    *,
    n_workers: int | None = None,
    executor: Any = None,
    eval_timeout: float | None = None,
    storage: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> OptimizationResult:
    """Minimise ``black_box`` over ``space`` with ``n_evaluations`` evaluations.

    Args:
        black_box: called with one point (a dict ``{parameter name: value}``); returns a float to
            minimise. An exception, ``None``, NaN or inf records the evaluation as failed and the
            run goes on.
        space: the search space.
        n_evaluations: evaluations to run, an integer >= 1 (the rule of ``mcbo run --evals`` and
            of suite budgets). With an already-used ``solver`` these are added to the ones it has; with
            ``storage``, it is the run's total (a rerun of a finished call evaluates nothing).
        solver: a recipe name (see ``mcbo solvers``: ``"default"`` picks its configuration from the kinds of
            variables in ``space``; others are ``"casmopolitan"``, ``"rs"``, ``"ga"``, ...), an inline recipe
            dict (as :func:`mcbo.solvers.build_solver` takes), or an already-built
            :class:`~mcbo.solvers.base.Solver` over ``space`` (then ``seed`` is the solver's own and
            ``overrides`` must be empty).
        seed: seed of every random draw of the solver built from a recipe.
        batch_size: points asked per step (>= 1).
        progress: show a progress bar.
        n_workers: evaluations in flight at once, in worker processes (or on ``executor``); ``None``: one,
            in this process unless ``eval_timeout`` or ``executor`` is given. See ``docs/parallel.md``.
        executor: a :class:`distributed.Client` of a Dask cluster to evaluate on.
        eval_timeout: seconds one evaluation may run (> 0): a longer one is stopped and recorded as failed
            with an error starting ``timeout:``, and the run goes on. Evaluations then run in a worker
            process, so the black box must pickle.
        storage: an SQLite file (``"sqlite:///run.db"`` or a path) where every ask and tell is committed;
            calling again with the same arguments resumes the run where it stopped.
        **overrides: recipe keys to replace, e.g. ``n_init=10``.

    Returns:
        An :class:`OptimizationResult` with the best point and value, the history DataFrame, the
        solver and the number of failed evaluations.

    Raises:
        ValueError: for a space that is not a :class:`SearchSpace`, a black box that is not
            callable, an ``n_evaluations`` that is not an integer >= 1 (``n_evaluations: got 0;
            expected an integer >= 1 (the number of evaluations)``), a ``batch_size`` < 1, an unknown
            recipe or settings the solver rejects, a pre-built solver given with overrides or over
            another space, bad ``n_workers`` / ``eval_timeout`` / ``executor`` values, a black box that
            must pickle and does not, or a ``storage`` of another run or in use.

    Example:
        >>> from mcbo import Integer, Real, SearchSpace, minimize
        >>> space = SearchSpace([Real("x", -2.0, 2.0), Integer("n", 0, 5)])
        >>> result = minimize(lambda p: p["x"] ** 2 + (p["n"] - 2) ** 2, space, 20, solver="rs", seed=0)
        >>> len(result.history)
        20
    """
    if not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a mcbo.SearchSpace, got {type(space).__name__}")
    if not callable(black_box):
        raise ValueError(f"black_box must be callable (point dict -> float), got {type(black_box).__name__}")
    from mcbo.runner.config import check_budget  # the one budget rule (the suite runner is imported on use)

    check_budget(n_evaluations, "n_evaluations")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    runner = _solver_for(solver, space, seed, overrides)
    runner.optimize(black_box, n_evaluations, batch_size=batch_size, progress=progress, n_workers=n_workers,
                    executor=executor, eval_timeout=eval_timeout, storage=storage)
    point, value = runner.best
    history = runner.history
    n_failed = int((history["status"] == "failed").sum()) if len(history) else 0
    return OptimizationResult(best_point=point, best_value=float(value), history=history, solver=runner,
                              n_failed=n_failed)


def _solver_for(solver: Any, space: SearchSpace, seed: int, overrides: dict[str, Any]) -> Solver:
    """``solver`` itself when it is a Solver over ``space``; else the solver its recipe builds."""
    from mcbo.solvers.base import Solver

    if isinstance(solver, Solver):
        if overrides:
            raise ValueError(f"recipe overrides {sorted(overrides)} cannot apply to an already-built solver; "
                             "pass a recipe name or dict instead")
        if solver.space is not space and list(solver.space.params) != list(space.params):
            raise ValueError(f"solver {solver.name!r} was built for another search space "
                             f"({solver.space.names}) than the one given ({space.names})")
        return solver
    if isinstance(solver, (str, Mapping)):
        from mcbo.solvers.registry import build_solver

        return build_solver(solver, space, seed=seed, **overrides)
    raise ValueError(f"solver must be a recipe name, a recipe dict or a mcbo Solver, got {type(solver).__name__}")
