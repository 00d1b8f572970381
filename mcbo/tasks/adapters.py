"""Adapters turning BoTorch test functions and pymoo problems into :class:`~mcbo.tasks.base.Task` s.

* :class:`BoTorchTask` wraps an instance of ``botorch.test_functions.SyntheticTestFunction``
  (Balandat et al., "BoTorch", NeurIPS 2020): its ``bounds`` become :class:`~mcbo.space.Real`
  parameters, its declared ``discrete_inds`` :class:`~mcbo.space.Integer` and its
  ``categorical_inds`` :class:`~mcbo.space.Categorical` parameters over the integers of the bounds.
* :class:`PymooTask` wraps a single-objective ``pymoo.core.problem.Problem`` (Blank & Deb,
  "pymoo", IEEE Access 2020): ``xl``/``xu`` become Real parameters (Integer for ``vtype=int``,
  Boolean for ``vtype=bool``), and a mixed-variable problem's ``vars`` map to the matching types.

Both minimise. A BoTorch function is minimised in its natural orientation whatever its
``negate`` flag: ``negate`` only flips the sign BoTorch reports (so it can maximise), and the
adapter undoes it; a function BoTorch defines as a maximisation problem (``Labs``, ``Cosine8``)
is negated once. The known optimum (``_optimal_value`` for BoTorch, the single-objective
``pareto_front()`` for pymoo) becomes :attr:`Task.optimum` in the same orientation.

Constrained problems raise ``ValueError`` unless ``constraint_handling="fail"``: then an
infeasible point evaluates to NaN, which solvers record as a failed evaluation.

``build_task("botorch", function="Branin")`` and ``build_task("pymoo", problem="rastrigin", n_var=5)``
build either by name (``build_task`` takes ``name`` itself, for the registered task name).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Sequence

import numpy as np
import torch

from mcbo.space import Boolean, Categorical, Integer, Param, Real, SearchSpace
from mcbo.tasks.base import Task, register_task

logger = logging.getLogger(__name__)

CONSTRAINT_HANDLING = ("error", "fail")
#: Tolerance on ``|h(x)|`` under which a pymoo equality constraint counts as met.
EQUALITY_TOLERANCE = 1e-4


def _check_constraint_handling(value: Any) -> str:
    if value not in CONSTRAINT_HANDLING:
        raise ValueError(f"constraint_handling must be one of {list(CONSTRAINT_HANDLING)}, got {value!r}")
    return str(value)


def _names(d: int) -> list[str]:
    width = max(2, len(str(d - 1)))
    return [f"x{i:0{width}d}" for i in range(d)]


# ------------------------------------------------------------------------------ BoTorch
class BoTorchTask(Task):
    """A BoTorch ``SyntheticTestFunction`` as a task (minimised in the function's natural orientation).

    Args:
        test_function: the BoTorch test-function instance.
        seed: seed of the observation noise, when the function has ``noise_std``.
        constraint_handling: ``"error"`` (reject constrained functions) or ``"fail"`` (NaN when infeasible).
    """

    name = "botorch"

    def __init__(self, test_function: Any, seed: int = 0, constraint_handling: str = "error") -> None:
        from botorch.test_functions.base import ConstrainedBaseTestProblem, MultiObjectiveTestProblem
        from botorch.test_functions.synthetic import SyntheticTestFunction

        super().__init__(seed)
        kind = type(test_function).__name__
        if isinstance(test_function, MultiObjectiveTestProblem) or not isinstance(test_function, SyntheticTestFunction):
            raise ValueError(f"test_function must be a single-objective botorch SyntheticTestFunction instance, "
                             f"got {kind}")
        self.constraint_handling = _check_constraint_handling(constraint_handling)
        self.constrained = isinstance(test_function, ConstrainedBaseTestProblem)
        if self.constrained and self.constraint_handling == "error":
            raise ValueError(f"test_function {kind} has {test_function.num_constraints} outcome constraints; pass "
                             f"constraint_handling='fail' to evaluate infeasible points as failures")
        self.function = test_function
        self.name = f"botorch_{kind.lower()}"
        # Minimise f in its default orientation: undo BoTorch's negate, negate maximisation problems once.
        self.sign = 1.0 if test_function._is_minimization_by_default else -1.0
        self._generator = torch.Generator().manual_seed(self.seed)
        self._space = SearchSpace(self._build_params())
        optimal = test_function._optimal_value
        self.optimum = None if optimal is None else self.sign * float(optimal)

    def _build_params(self) -> list[Param]:
        f = self.function
        lower, upper = f.bounds[0].tolist(), f.bounds[1].tolist()
        discrete, categorical = set(f.discrete_inds), set(f.categorical_inds)
        params: list[Param] = []
        for i, name in enumerate(_names(f.dim)):
            lb, ub = lower[i], upper[i]
            if i in categorical:
                params.append(Categorical(name, list(range(int(lb), int(ub) + 1))))
            elif i in discrete:
                params.append(Integer(name, int(lb), int(ub)))
            else:
                params.append(Real(name, float(lb), float(ub)))
        return params

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        f = self.function
        X = torch.tensor([[float(p[n]) for n in self._space.names] for p in points], dtype=f.bounds.dtype)
        X = X.reshape(-1, f.dim)
        with torch.no_grad():
            y = f.evaluate_true(X)
            if f.noise_std is not None:
                y = y + float(f.noise_std) * torch.randn(y.shape, generator=self._generator, dtype=y.dtype)
            values = self.sign * y.detach().cpu().double().numpy()
            if self.constrained:
                feasible = f.is_feasible(X, noise=False).cpu().numpy()
                values = np.where(feasible, values, np.nan)
        return values

    def describe(self) -> str:
        optimum = "unknown" if self.optimum is None else f"{self.optimum:.6g}"
        return (f"{self.name}: BoTorch test function {type(self.function).__name__} (botorch.test_functions), "
                f"{len(self._space)} parameters, minimised; known minimum {optimum}.")


# -------------------------------------------------------------------------------- pymoo
def _pymoo_var_param(name: str, var: Any) -> Param:
    from pymoo.core import variable as pv

    if isinstance(var, pv.Binary):
        return Boolean(name)
    if isinstance(var, pv.Integer):
        return Integer(name, int(var.bounds[0]), int(var.bounds[1]))
    if isinstance(var, pv.Real):
        return Real(name, float(var.bounds[0]), float(var.bounds[1]))
    if isinstance(var, pv.Choice):
        return Categorical(name, list(var.options))
    raise ValueError(f"problem variable {name!r} has unsupported pymoo type {type(var).__name__}; "
                     f"allowed: Real, Integer, Binary, Choice")


class PymooTask(Task):
    """A single-objective pymoo ``Problem`` as a task (pymoo minimises, so values are taken as they are).

    Args:
        problem: the pymoo problem instance.
        seed: unused by deterministic problems; kept for the common interface.
        constraint_handling: ``"error"`` (reject constrained problems) or ``"fail"`` (NaN when infeasible:
            some ``g(x) > 0`` or ``|h(x)| > 1e-4``).
    """

    name = "pymoo"

    def __init__(self, problem: Any, seed: int = 0, constraint_handling: str = "error") -> None:
        from pymoo.core.problem import Problem

        super().__init__(seed)
        kind = type(problem).__name__
        if not isinstance(problem, Problem):
            raise ValueError(f"problem must be a pymoo Problem instance, got {kind}")
        if problem.n_obj != 1:
            raise ValueError(f"problem {kind} has n_obj = {problem.n_obj} objectives; only single-objective "
                             f"problems can be wrapped")
        self.constraint_handling = _check_constraint_handling(constraint_handling)
        self.n_ieq, self.n_eq = int(problem.n_ieq_constr), int(problem.n_eq_constr)
        if self.n_ieq + self.n_eq and self.constraint_handling == "error":
            raise ValueError(f"problem {kind} has {self.n_ieq} inequality and {self.n_eq} equality constraints; "
                             f"pass constraint_handling='fail' to evaluate infeasible points as failures")
        self.problem = problem
        self.name = f"pymoo_{kind.lower()}"
        self.mixed = getattr(problem, "vars", None) is not None
        self._space = SearchSpace(self._build_params())
        self.optimum = self._known_optimum()

    def _build_params(self) -> list[Param]:
        p = self.problem
        if self.mixed:
            return [_pymoo_var_param(str(name), var) for name, var in p.vars.items()]
        if p.xl is None or p.xu is None:
            raise ValueError(f"problem {type(p).__name__} has no bounds xl/xu; only bounded problems can be wrapped")
        xl = np.broadcast_to(np.asarray(p.xl, dtype=float), (p.n_var,))
        xu = np.broadcast_to(np.asarray(p.xu, dtype=float), (p.n_var,))
        vtype = p.vtype
        params: list[Param] = []
        for name, lb, ub in zip(_names(p.n_var), xl, xu):
            if vtype is bool or vtype is np.bool_:
                params.append(Boolean(name))
            elif vtype is int or (isinstance(vtype, type) and issubclass(vtype, np.integer)):
                params.append(Integer(name, math.ceil(lb), math.floor(ub)))
            else:
                params.append(Real(name, float(lb), float(ub)))
        return params

    def _known_optimum(self) -> float | None:
        try:
            front = self.problem.pareto_front()
        except Exception as exc:  # optional metadata: any failure just means "unknown"
            logger.debug("pareto_front() of %s failed: %s", type(self.problem).__name__, exc)
            return None
        if front is None:
            return None
        front = np.asarray(front, dtype=float).reshape(-1)
        return float(front.min()) if front.size and np.all(np.isfinite(front)) else None

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _inputs(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        if self.mixed:
            return np.array([dict(p) for p in points], dtype=object)
        X = np.array([[p[n] for n in self._space.names] for p in points], dtype=float).reshape(-1, len(self._space))
        if self.problem.vtype is bool or self.problem.vtype is np.bool_:
            return X.astype(bool)
        if self.problem.vtype is int:
            return X.astype(int)
        return X

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        out = self.problem.evaluate(self._inputs(points), return_values_of=["F", "G", "H"], return_as_dictionary=True)
        values = np.asarray(out["F"], dtype=float).reshape(len(points))
        if self.n_ieq + self.n_eq:
            feasible = np.ones(len(points), dtype=bool)
            if self.n_ieq:
                feasible &= np.all(np.asarray(out["G"], dtype=float).reshape(len(points), -1) <= 0.0, axis=1)
            if self.n_eq:
                h = np.asarray(out["H"], dtype=float).reshape(len(points), -1)
                feasible &= np.all(np.abs(h) <= EQUALITY_TOLERANCE, axis=1)
            values = np.where(feasible, values, np.nan)
        return values

    def describe(self) -> str:
        optimum = "unknown" if self.optimum is None else f"{self.optimum:.6g}"
        return (f"{self.name}: pymoo problem {type(self.problem).__name__} (pymoo.problems), "
                f"{len(self._space)} parameters, minimised; known minimum {optimum}.")


# ------------------------------------------------------------------------- by-name factories
def _pick_name(field_name: str, value: Any, name: Any) -> str:
    """The class/problem name given as ``field_name`` or as ``name`` (exactly one of them)."""
    if (value is None) == (name is None):
        raise ValueError(f"{field_name}: give the name exactly once (as {field_name}=... or name=...), "
                         f"got {field_name}={value!r}, name={name!r}")
    chosen = value if value is not None else name
    if not isinstance(chosen, str):
        raise ValueError(f"{field_name} must be a string, got {chosen!r}")
    return chosen


@register_task("botorch")
def botorch_task(function: str | None = None, seed: int = 0, constraint_handling: str = "error",
                 name: str | None = None, **kwargs: Any) -> BoTorchTask:
    """Build ``botorch.test_functions.<function>(**kwargs)`` and wrap it in a :class:`BoTorchTask`.

    ``build_task("botorch", function="Branin")``; ``name=`` is accepted as a synonym of
    ``function=`` for direct calls (``build_task`` keeps ``name`` for the task name).
    """
    function = _pick_name("function", function, name)
    classes = _botorch_functions()
    if function not in classes:
        raise ValueError(f"function {function!r} is not a botorch SyntheticTestFunction; allowed: {sorted(classes)}")
    return BoTorchTask(classes[function](**kwargs), seed=seed, constraint_handling=constraint_handling)


def _botorch_functions() -> dict[str, type]:
    """Concrete ``SyntheticTestFunction`` classes of ``botorch.test_functions`` (and its submodules) by name."""
    import inspect

    import botorch.test_functions as btf
    from botorch.test_functions import multi_fidelity, synthetic

    found: dict[str, type] = {}
    for module in (btf, synthetic, multi_fidelity):
        for attr, obj in vars(module).items():
            if (isinstance(obj, type) and issubclass(obj, synthetic.SyntheticTestFunction)
                    and not inspect.isabstract(obj)):
                found.setdefault(attr, obj)
    return found


@register_task("pymoo")
def pymoo_task(problem: str | None = None, seed: int = 0, constraint_handling: str = "error",
               name: str | None = None, **kwargs: Any) -> PymooTask:
    """Build ``pymoo.problems.get_problem(problem, **kwargs)`` and wrap it in a :class:`PymooTask`.

    ``build_task("pymoo", problem="rastrigin", n_var=5)``; ``name=`` is accepted as a synonym of
    ``problem=`` for direct calls.
    """
    from pymoo.problems import get_problem

    problem = _pick_name("problem", problem, name)
    try:
        instance = get_problem(problem, **kwargs)
    except Exception as exc:  # pymoo raises a bare Exception for unknown names
        raise ValueError(f"problem {problem!r}: pymoo could not build it with {kwargs}: {exc}") from exc
    return PymooTask(instance, seed=seed, constraint_handling=constraint_handling)


__all__ = ["BoTorchTask", "PymooTask", "botorch_task", "pymoo_task"]
