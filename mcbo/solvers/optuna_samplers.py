"""Optuna's samplers as mcbo solvers: the ``optuna`` solver kind.

Recipes ``optuna-tpe``, ``optuna-gp``, ``optuna-cmaes`` and ``optuna-random`` (``solvers/*.yaml``) build an
:class:`OptunaSolver`, which drives an in-memory Optuna study (``direction="minimize"``) through Optuna's
ask/tell interface, so that Optuna's samplers can be benchmarked beside mcbo's solvers on the same tasks,
suites and reports::

    solver = build_solver("optuna-tpe", space, seed=0)
    points = solver.ask(2)                 # two RUNNING trials in the study
    solver.tell(points, [1.3, None])       # the first COMPLETE, the second FAIL

How the two sides meet:

* The space is translated by :class:`~mcbo.integrations.optuna.OptunaBridge` (a ``Sequence`` becomes one
  categorical parameter per position, an ``Ordinal`` the integer rank of its value, ...). A ``Permutation``
  cannot be represented and raises ``ValueError`` at construction.
* :meth:`OptunaSolver.ask` asks the study for one trial per point (``study.ask(fixed_distributions=...)``):
  points asked and not yet told are RUNNING trials, which the samplers that handle parallel trials see
  (TPE's constant liar, the GP sampler's pending points).
* :meth:`OptunaSolver.tell` completes the trial of each asked point (``study.tell``), or fails it
  (``TrialState.FAIL``) for a failed evaluation. A point that was never asked (a warm start, the user's
  own data, a run resumed from its stored history) is added as a finished trial (``study.add_trial``).
* Input constraints (``space.constraints``) are unknown to Optuna's samplers, and TPE proposes points it
  has tried before on discrete spaces. A proposal that violates the constraints or was already tried
  (evaluated, failed or pending: the solver base's record) is refused and a new one is asked, up to
  ``max_constraint_tries`` proposals per point; then a random feasible point never tried is drawn and
  handed out as an enqueued trial. Refused proposals stay
  RUNNING trials while the next ones are asked (TPE's constant liar and the GP sampler's pending points then
  steer away from them: on a 20%-feasible test space this needed a third fewer proposals and half the
  random fall-backs of failing them at once), and are told to the study as FAIL once the point is settled.
  Optuna's samplers skip FAIL trials when they model the data, so they never learn the constraints: on a
  tightly constrained space expect several Optuna asks per point (cheap for TPE and random, one GP
  acquisition each for ``gp``) and some random fall-back points.
* ``seed`` seeds the Optuna sampler: the same seed gives the same run.
* ``n_init`` (the initial design of mcbo's BO recipes; the suite runner replaces it for recipes that declare
  it) is Optuna's ``n_startup_trials`` for the samplers that have one (``tpe``, ``gp``, ``cmaes``) and is
  ignored by ``random`` and ``qmc``. Left unset, the sampler's own default applies.
* Optuna's INFO messages (one per trial) are silenced while the solver calls Optuna: the ``optuna`` logger
  is raised to WARNING for the duration of each call and restored afterwards, so the user's own level of
  that logger is left as it was.

Save/load: :meth:`~mcbo.solvers.base.Solver.state_dict` holds every told record and the pending points;
:meth:`_load_extra_state` rebuilds the study by replaying the records (COMPLETE and FAIL trials, in order)
and re-creating each pending point as a RUNNING trial, so telling them after a load works. The rebuilt
sampler is seeded from the solver seed and the number of records and pending points, so a loaded run is
deterministic but not the same sequence as the uninterrupted run (Optuna's samplers keep their random
state in private attributes). The study's system attributes (e.g. the QMC sampler's position in its
sequence) are saved and restored; the trials' own system attributes are not, so CMA-ES starts a fresh
search distribution after a load (its state there is a pickle, which mcbo's JSON states never load).
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from importlib.util import find_spec
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from mcbo.acq_optim.base import is_new
from mcbo.solvers.base import Solver
from mcbo.solvers.registry import register_solver_kind
from mcbo.space import Integer, Ordinal, Real, SearchSpace

#: ``sampler`` setting -> Optuna sampler class name (in ``optuna.samplers``).
SAMPLERS: dict[str, str] = {
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "random": "RandomSampler",
    "qmc": "QMCSampler",
}
#: Samplers whose constructor takes ``n_startup_trials`` (what ``n_init`` sets).
STARTUP_SAMPLERS = ("tpe", "gp", "cmaes")
#: Samplers that only handle numeric parameters.
NUMERIC_ONLY_SAMPLERS = ("cmaes",)


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Raise the ``optuna`` logger to WARNING while the block runs (no INFO line per trial), then restore it."""
    logger = logging.getLogger("optuna")
    old = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


@register_solver_kind("optuna")
class OptunaSolver(Solver):
    """An Optuna sampler driving an in-memory Optuna study through ask/tell (see the module docstring).

    Args:
        space: the search space (no ``Permutation``; only numeric parameters for ``cmaes``).
        seed: seed of the Optuna sampler (and of the random feasible points drawn under constraints).
        sampler: ``"tpe"``, ``"gp"``, ``"cmaes"``, ``"random"`` or ``"qmc"``.
        sampler_options: keyword arguments of the Optuna sampler's constructor (e.g. ``{multivariate: true}``
            for TPE); ``seed`` is not allowed here (use the solver's ``seed``).
        n_init: Optuna's ``n_startup_trials`` for ``tpe``, ``gp`` and ``cmaes``; ignored by ``random`` and
            ``qmc``. ``None`` keeps the sampler's default.
        max_constraint_tries: proposals asked per point before a random new feasible point is used (a
            proposal is refused when it breaks a constraint or was tried already).
        device, dtype: of the encoded tensors (see :class:`~mcbo.solvers.base.Solver`).

    Attributes:
        study: the Optuna study (one trial per proposal; refused infeasible proposals are FAIL trials too).
        bridge: the :class:`~mcbo.integrations.optuna.OptunaBridge` between ``space`` and the study's params.
    """

    name = "optuna"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        sampler: str = "tpe",
        sampler_options: Mapping[str, Any] | None = None,
        n_init: int | None = None,
        max_constraint_tries: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, seed=seed, **kwargs)
        if sampler not in SAMPLERS:
            raise ValueError(f"optuna solver: unknown sampler {sampler!r}; allowed: {sorted(SAMPLERS)}")
        if sampler_options is None:
            sampler_options = {}
        if not isinstance(sampler_options, Mapping):
            raise ValueError(f"optuna solver: sampler_options must be a mapping of keyword arguments of "
                             f"{SAMPLERS[sampler]}, got {sampler_options!r}")
        options = dict(sampler_options)
        if "seed" in options:
            raise ValueError("optuna solver: give the seed as the solver's seed, not in sampler_options")
        if n_init is not None:
            if isinstance(n_init, bool) or not isinstance(n_init, (int, np.integer)) or n_init < 0:
                raise ValueError(f"optuna solver: n_init must be an integer >= 0, got {n_init!r}")
            if sampler in STARTUP_SAMPLERS:
                given = options.get("n_startup_trials", n_init)
                if given != n_init:
                    raise ValueError(f"optuna solver: n_init ({n_init}) and sampler_options.n_startup_trials "
                                     f"({given}) disagree; give one of them")
                options["n_startup_trials"] = int(n_init)
        if isinstance(max_constraint_tries, bool) or not isinstance(max_constraint_tries, int) \
                or max_constraint_tries < 1:
            raise ValueError(f"optuna solver: max_constraint_tries must be a positive integer, "
                             f"got {max_constraint_tries!r}")
        if sampler in NUMERIC_ONLY_SAMPLERS:
            _check_numeric(space, sampler)
        if sampler == "cmaes" and find_spec("cmaes") is None:
            raise ValueError("optuna solver: the 'cmaes' sampler needs the `cmaes` package: pip install cmaes")

        import optuna  # noqa: F401 -- after the cheap checks

        from mcbo.integrations.optuna.bridge import OptunaBridge

        self.bridge = OptunaBridge.from_space(space)  # ValueError naming a Permutation parameter
        self.sampler_name = sampler
        self.sampler_options = options
        self.n_init = n_init
        self.max_constraint_tries = int(max_constraint_tries)
        self._asked: list[tuple[dict[str, Any], Any]] = []  # (decoded point handed out, its RUNNING trial)
        self._new_study(self.seed)

    # ------------------------------------------------------------------ study
    def _make_sampler(self, seed: int):
        import optuna
        from optuna.exceptions import ExperimentalWarning

        cls = getattr(optuna.samplers, SAMPLERS[self.sampler_name], None)
        if cls is None:
            raise ValueError(f"optuna solver: optuna {optuna.__version__} has no {SAMPLERS[self.sampler_name]}; "
                             f"upgrade optuna")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            try:
                return cls(seed=int(seed), **self.sampler_options)
            except TypeError as err:
                raise ValueError(f"optuna solver: sampler_options {self.sampler_options} rejected by "
                                 f"{cls.__name__}: {err}") from None

    def _new_study(self, seed: int) -> None:
        import optuna

        self._storage = optuna.storages.InMemoryStorage()
        with quiet_optuna():
            self.study = optuna.create_study(storage=self._storage, sampler=self._make_sampler(seed),
                                             direction="minimize", study_name="mcbo")
        self._study_id = self._storage.get_study_id_from_name(self.study.study_name)
        self._asked = []

    def _ask_trial(self, params: Mapping[str, Any] | None = None):
        """A new RUNNING trial: sampled by the sampler, or with ``params`` (enqueued first)."""
        with quiet_optuna():
            if params is not None:
                self.study.enqueue_trial(dict(params))
            return self.study.ask(fixed_distributions=self.bridge.distributions)

    # ------------------------------------------------------------------ ask
    def _suggest(self, n: int) -> torch.Tensor:
        from optuna.trial import TrialState

        rows: list[torch.Tensor] = []
        for _ in range(n):
            x = trial = None
            refused = []  # refused proposals, RUNNING while the next are asked: samplers propose elsewhere
            tried = torch.cat([self.X_tried.cpu(), *rows])
            for _ in range(self.max_constraint_tries):
                trial = self._ask_trial()
                x = self.space.encode([self.bridge.to_point(trial.params)], dtype=self.dtype)
                new = bool(is_new(x, tried)[0])
                if new and (not self.space.constraints or bool(self.space.is_feasible(x)[0])):
                    break
                refused.append(trial)
                x = trial = None
            if trial is None:  # every proposal infeasible or tried: a random new feasible point, enqueued
                x = self._random_untried(tried.to(self.device)).cpu()
                trial = self._ask_trial(self.bridge.to_params(self.space.decode(x)[0]))
            with quiet_optuna():
                for bad in refused:
                    self.study.tell(bad, state=TrialState.FAIL)
            # the point the caller receives (ask decodes x the same way) is the key of its trial
            self._asked.append((self.space.decode(x)[0], trial))
            rows.append(x)
        return torch.cat(rows).to(self.device)

    # ------------------------------------------------------------------ tell
    def _on_told(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            trial = self._pop_asked(record["point"])
            ok = record["status"] == "ok"
            if trial is not None:
                self._tell_trial(trial, record["value"] if ok else None)
            else:
                self._add_trial(record["point"], record["value"] if ok else None)

    def _pop_asked(self, point: dict[str, Any]):
        """The trial of an asked ``point`` (removed from the asked list), or None for a point never asked."""
        for i, (asked, _) in enumerate(self._asked):
            if asked == point:
                return self._asked.pop(i)[1]
        if self._asked:  # the same point up to float noise (e.g. a real value re-encoded by the caller)
            x = self.space.encode([point])
            for i, (asked, _) in enumerate(self._asked):
                if torch.allclose(self.space.encode([asked]), x, rtol=0.0, atol=1e-9):
                    return self._asked.pop(i)[1]
        return None

    def _tell_trial(self, trial, value: float | None) -> None:
        from optuna.trial import TrialState

        with quiet_optuna():
            if value is None:
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                self.study.tell(trial, float(value))

    def _add_trial(self, point: Mapping[str, Any], value: float | None) -> None:
        import optuna
        from optuna.trial import TrialState

        kwargs: dict[str, Any] = {"value": float(value)} if value is not None else {"state": TrialState.FAIL}
        trial = optuna.trial.create_trial(params=self.bridge.to_params(point),
                                          distributions=self.bridge.distributions, **kwargs)
        with quiet_optuna():
            self.study.add_trial(trial)

    # -------------------------------------------------------------- save / load
    def _extra_state(self) -> dict[str, Any]:
        attrs = self._storage.get_study_system_attrs(self._study_id)
        return {"sampler": self.sampler_name, "study_system_attrs": {k: v for k, v in attrs.items() if _is_json(v)}}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("sampler", self.sampler_name) != self.sampler_name:
            raise ValueError(f"saved state belongs to Optuna sampler {state.get('sampler')!r}, "
                             f"not {self.sampler_name!r}")
        records, pending = self._records, [p["point"] for p in self._pending]
        if self.sampler_name == "qmc":
            seed = self.seed  # its sequence (seeded scrambling) goes on from the restored position
        else:  # a fresh random stream, not the start of the original one again
            seed = int(np.random.SeedSequence([self.seed, len(records), len(pending)]).generate_state(1)[0])
        self._new_study(seed)
        for key, value in dict(state.get("study_system_attrs", {})).items():
            self._storage.set_study_system_attr(self._study_id, key, value)
        for record in records:
            self._add_trial(record["point"], record["value"] if record["status"] == "ok" else None)
        for point in pending:
            point = self.space.validate(point)
            self._asked.append((point, self._ask_trial(self.bridge.to_params(point))))


def _check_numeric(space: SearchSpace, sampler: str) -> None:
    for p in space.params:
        if not isinstance(p, (Real, Integer, Ordinal)):
            raise ValueError(
                f"optuna sampler {sampler!r} handles numeric parameters only (Real, Integer, Ordinal), but "
                f"parameter {p.name!r} is a {type(p).__name__}; use optuna-tpe or an mcbo solver "
                f"(e.g. casmopolitan) for this space"
            )


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
