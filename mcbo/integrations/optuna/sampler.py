"""``McboSampler``: any mcbo recipe as an Optuna sampler.

Optuna asks a sampler for the *relative* parameters of a trial (those every completed trial shares, Optuna's
intersection search space) and, one by one, for the others (*independent*: conditional or define-by-run
parameters, and every parameter of the first trial). ``McboSampler`` answers the relative ones with an mcbo
solver built from a recipe and the independent ones with another Optuna sampler (``RandomSampler`` by default).

The solver is a cache of the study: before each relative sample it is told every trial that finished since the
last call (COMPLETE with its value; FAIL, a NaN value and PRUNED as failed evaluations), and the trials still
running -- in other threads (``n_jobs > 1``) or other processes sharing the storage -- are its pending points, so a
batch spreads out. When the relative search space changes the solver is rebuilt for the new space from the
trials that fit it; a new process (a restarted script) rebuilds it from the study's trials in the same way.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from mcbo.integrations.optuna.bridge import OptunaBridge
from mcbo.solvers.base import SearchSpaceExhausted, Solver

logger = logging.getLogger(__name__)

_FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
_STATES = (*_FINISHED, TrialState.RUNNING)


class McboSampler(BaseSampler):
    """An Optuna sampler whose relative parameters come from an mcbo solver.

    Args:
        recipe: an mcbo recipe name (``mcbo solvers`` lists them; ``default`` picks the configuration from the
            kinds of variables in the space) or an inline recipe dict.
        seed: seed of the solver and of the default independent sampler (``None``: a random seed).
        n_startup_trials: trials sampled by the solver's initial design before its model is used (the recipe's
            ``n_init``; ``None`` keeps the recipe's value). Only for recipes that have an initial design.
        independent_sampler: sampler of the parameters outside the relative search space
            (default: ``RandomSampler(seed)``).
        **overrides: further top-level recipe keys (e.g. ``acquisition={"type": "ei"}``).

    Single-objective studies only: multi-objective ones raise ``ValueError``.

    Example::

        study = optuna.create_study(sampler=McboSampler("default", seed=0))
        study.optimize(objective, n_trials=100)
    """

    def __init__(
        self,
        recipe: str | Mapping[str, Any] = "default",
        seed: int | None = None,
        n_startup_trials: int | None = None,
        independent_sampler: BaseSampler | None = None,
        **overrides: Any,
    ) -> None:
        from mcbo.solvers.registry import load_recipe

        if not isinstance(recipe, (str, Mapping)):
            raise ValueError(f"recipe must be a recipe name or a recipe dict, got {type(recipe).__name__}")
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}")
        if n_startup_trials is not None:
            if not isinstance(n_startup_trials, (int, np.integer)) or n_startup_trials < 1:
                raise ValueError(f"n_startup_trials must be a positive integer, got {n_startup_trials!r}")
            overrides["n_init"] = int(n_startup_trials)
        self._recipe = load_recipe(recipe) if isinstance(recipe, str) else dict(recipe)
        if "n_init" in overrides:
            _check_takes_n_init(self._recipe)
        self._overrides = overrides
        self._seed = int(seed) if seed is not None else _random_seed()
        self._independent_sampler = independent_sampler or RandomSampler(seed=self._seed)
        self._intersection = IntersectionSearchSpace()
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        """Forget the cached solver; the next relative sample rebuilds it from the study's trials."""
        self._solver: Solver | None = None
        self._bridge: OptunaBridge | None = None
        self._space_key: tuple | None = None
        self._study_key: tuple | None = None
        self._told: set[int] = set()  # trial numbers the solver has been told

    @property
    def solver(self) -> Solver | None:
        """The mcbo solver behind the relative samples (``None`` before the first one); for inspection."""
        return self._solver

    # ------------------------------------------------------------ the contract
    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        _check_single_objective(study)
        return {name: dist for name, dist in self._intersection.calculate(study).items() if not dist.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        _check_single_objective(study)
        if not search_space:
            return {}
        with self._lock:
            solver = self._solver_for(study, search_space)
            self._sync(study, trial, solver)
            try:
                point = solver.ask(1)[0]
            except SearchSpaceExhausted:
                # Every point was tried: Optuna studies may go on anyway (a repeat is the user's call), so the
                # independent sampler answers, as Optuna's own samplers would repeat points.
                logger.info("every point of the relative search space has been tried; sampling independently")
                return {}
            assert self._bridge is not None
            return self._bridge.to_params(point)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        _check_single_objective(study)
        return self._independent_sampler.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        with self._lock:
            self._seed = _random_seed()
            self._reset()
        self._independent_sampler.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent_sampler.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._independent_sampler.after_trial(study, trial, state, values)

    # --------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        for key in ("_solver", "_bridge", "_space_key", "_study_key"):
            state[key] = None
        state["_told"] = set()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------- internals
    def _solver_for(self, study: Study, search_space: dict[str, BaseDistribution]) -> Solver:
        """The cached solver when the study and the relative space are unchanged, else a new one."""
        from mcbo.solvers.registry import build_solver

        space_key = tuple(sorted((name, repr(dist)) for name, dist in search_space.items()))
        study_key = (study._study_id, study.study_name)
        if self._solver is None or space_key != self._space_key or study_key != self._study_key:
            if self._solver is not None:
                logger.info("relative search space changed: rebuilding the %s solver from the study's trials",
                            self._recipe.get("name"))
            self._reset()
            self._bridge = OptunaBridge.from_distributions(search_space)
            if self._bridge.space is None:
                raise ValueError("every relative parameter has a single value")
            self._solver = build_solver(self._recipe, self._bridge.space, seed=self._seed, **self._overrides)
            self._space_key, self._study_key = space_key, study_key
        assert self._solver is not None
        return self._solver

    def _sync(self, study: Study, current: FrozenTrial, solver: Solver) -> None:
        """Tell ``solver`` the trials finished since the last call; make the running ones its pending points."""
        assert self._bridge is not None
        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        points, values, errors, running = [], [], [], []
        for trial in study._get_trials(deepcopy=False, states=_STATES):
            if trial.number == current.number or trial.number in self._told:
                continue
            point = self._point_of(trial)
            if trial.state == TrialState.RUNNING:
                if point is not None:
                    running.append(point)
                continue
            self._told.add(trial.number)
            if point is None:
                continue
            points.append(point)
            if trial.state == TrialState.COMPLETE and trial.value is not None:
                values.append(sign * trial.value)
                errors.append(None)
            else:
                values.append(None)
                errors.append(_failure_reason(trial))
        if points:
            solver.tell(points, values, errors=errors)
        solver.set_pending(running)

    def _point_of(self, trial: FrozenTrial) -> dict[str, Any] | None:
        """The solver's point for ``trial``'s params; ``None`` when it lacks one or it lies outside the space."""
        assert self._bridge is not None
        for name, dist in self._bridge.distributions.items():
            if trial.distributions.get(name) != dist:
                return None
        try:
            return self._bridge.to_point(trial.params)
        except ValueError:
            return None


def _check_takes_n_init(recipe: Mapping[str, Any]) -> None:
    from mcbo.solvers.registry import solver_class

    if "n_init" not in inspect.signature(solver_class(recipe)).parameters:
        raise ValueError(f"n_startup_trials: recipe {recipe.get('name')!r} (solver {recipe.get('solver')!r}) has no "
                         "initial design; leave n_startup_trials=None")


def _check_single_objective(study: Study) -> None:
    if study._is_multi_objective():
        raise ValueError("McboSampler supports single-objective studies only; this study has "
                         f"{len(study.directions)} objectives")


def _failure_reason(trial: FrozenTrial) -> str:
    if trial.state == TrialState.PRUNED:
        return "pruned"
    return str(trial.system_attrs.get("fail_reason") or "trial failed")


def _random_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0] % (2**31))
