"""Write a suite results database as Optuna studies (``mcbo export-optuna DB STORAGE_URL``), e.g. for
``optuna-dashboard``::

    mcbo export-optuna results/quick.db sqlite:///results/quick-optuna.db
    optuna-dashboard sqlite:///results/quick-optuna.db

Every run of the database (solver x task x seed) becomes one study, direction ``minimize``, named
``<suite>/<task>/<solver>/seed<seed>`` (``<prefix>/<task>/<solver>/seed<seed>`` with a prefix), with:

* one trial per stored evaluation, in index order (trial number = evaluation index): the point's params
  (through :class:`~mcbo.integrations.optuna.OptunaBridge` from the task's search space), its value, state
  ``COMPLETE`` or ``FAIL`` for a failed evaluation (the error in ``user_attrs["error"]``),
  ``datetime_complete`` = the time the evaluation was stored and ``datetime_start`` = that minus its
  ``eval_seconds``; user attrs ``index``, ``batch``, ``fit_seconds``, ``acq_seconds`` (of the ``ask`` that
  proposed it) and ``eval_seconds``;
* study user attrs ``suite``, ``solver``, ``task``, ``task_name``, ``task_kwargs``, ``seed``, ``budget``,
  ``batch_size``, ``status`` (the run's: pending, running, done, failed), ``n_evaluations`` and
  ``exported_by`` (``"mcbo export-optuna"``, which marks the study as written here).

Parameters Optuna cannot represent (a ``Permutation``) are kept as the trial user attribute
``"param:<name>"`` (the value as JSON) instead, with one logged warning per study; so are every
parameter of a run whose task cannot be built here (a missing tool or module) and of a stored point
that no longer fits the task's space.

The suite of a run: the suites recorded in the database (``mcbo bench`` records each config it runs)
whose config has this run; the earliest recorded one when several have it, the only suite when one
recorded suite does not list it any more, else the database file's stem. The task is rebuilt with the
runner's own code (:func:`mcbo.runner.jobs.build_job_task`) from the suite's job, or from the run's
stored identity (task name and kwargs) when no suite lists it.

Re-exporting into the same storage never duplicates trials. For each study name:

* absent -> created with every evaluation (``created``);
* written by this export with the same trials as the database -> left as it is (``unchanged``: a
  second export of an unchanged database adds nothing);
* written by this export with the first ``k`` evaluations of a run that has grown since (a resumed or
  a longer suite) -> the missing trials are appended (``extended``);
* written by this export but differing otherwise (more trials than stored, other values: the results
  database was rebuilt) -> deleted and written again (``replaced``).

The study user attrs (the run's status) are refreshed in every case. A study of the same name that
this export did not write is never touched: the export stops with an :class:`ExportError` before
writing anything (pick another ``study_prefix``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Value of the study user attribute ``exported_by`` that marks a study written by this module.
EXPORTED_BY = "mcbo export-optuna"
#: Trial user attribute holding a parameter that Optuna cannot represent: ``PARAM_ATTR_PREFIX + name``.
PARAM_ATTR_PREFIX = "param:"
_REQUIRED_TABLES = ("meta", "suites", "runs", "evaluations")


class ExportError(ValueError):
    """The database cannot be exported (missing, not a results database) or the storage cannot be written."""


@dataclass(frozen=True)
class ExportedStudy:
    """One study of an export: its ``name``, ``n_trials`` now in storage, ``n_added`` by this export and
    ``action`` (``created``, ``extended``, ``unchanged`` or ``replaced``)."""

    name: str
    n_trials: int
    n_added: int
    action: str


# --------------------------------------------------------------------------- public API
def export_suite(db_path: str | Path, storage_url: Any, study_prefix: str | None = None) -> list[str]:
    """Write every run of the results database ``db_path`` as an Optuna study in ``storage_url``.

    Args:
        db_path: a results database written by ``mcbo bench`` (:class:`mcbo.runner.storage.ResultsDB`).
        storage_url: any Optuna storage URL (``sqlite:///optuna.db``, ``postgresql://...``) or an
            ``optuna.storages.BaseStorage``.
        study_prefix: replaces the suite name at the front of every study name.

    Returns:
        The names of the studies of every run, in run order, whether this call wrote to them or found
        them up to date (see the module docstring; :func:`export_studies` tells which).

    Raises:
        ExportError: the database is missing or not a results database, the storage cannot be opened,
            or it holds a study of one of these names that this export did not write.
    """
    return [study.name for study in export_studies(db_path, storage_url, study_prefix)]


def export_studies(db_path: str | Path, storage_url: Any, study_prefix: str | None = None) -> list[ExportedStudy]:
    """:func:`export_suite`, returning what happened to each study (:class:`ExportedStudy`)."""
    import optuna

    runs = _read_database(Path(db_path), study_prefix)
    storage = _open_storage(storage_url, Path(db_path))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per study
    try:
        existing = set(optuna.get_all_study_names(storage))
        for run in runs:  # check every name before writing anything
            if run.study_name in existing:
                attrs = optuna.load_study(study_name=run.study_name, storage=storage).user_attrs
                if attrs.get("exported_by") != EXPORTED_BY:
                    raise ExportError(f"Optuna storage already has a study named {run.study_name!r} that "
                                      f"`mcbo export-optuna` did not write; choose another prefix")
        tasks: dict[str, Any] = {}
        return [_export_run(run, storage, run.study_name in existing, tasks) for run in runs]
    finally:
        optuna.logging.set_verbosity(verbosity)


# --------------------------------------------------------------------------- reading the database
@dataclass
class _Run:
    """A run of the database with everything its study needs."""

    row: dict[str, Any]
    suite: str
    job: Any  # mcbo.runner.config.JobSpec
    study_name: str
    evaluations: list[dict[str, Any]]


def _read_database(path: Path, study_prefix: str | None) -> list[_Run]:
    from mcbo.runner.storage import ResultsDB

    if not path.is_file():
        raise ExportError(f"results database {str(path)!r} does not exist")
    try:
        with ResultsDB(path, readonly=True) as db:
            tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in _REQUIRED_TABLES if t not in tables]
            if missing:
                raise ExportError(f"{str(path)!r} is not an mcbo results database (no table {missing[0]!r}); "
                                  f"write one with `mcbo bench CONFIG --db {path}`")
            # ResultsDB has no accessor of the recorded suites: read the table itself
            suites = [(r["name"], r["config"]) for r in
                      db.conn.execute("SELECT name, config FROM suites ORDER BY created_at, name")]
            rows = [dict(r) for r in db.iter_runs()]
            frame = db.evaluations_frame()
    except sqlite3.DatabaseError as err:
        raise ExportError(f"{str(path)!r} is not an mcbo results database ({err})") from None
    evaluations: dict[int, list[dict[str, Any]]] = {}
    for record in frame.to_dict("records"):
        evaluations.setdefault(int(record["run_id"]), []).append(record)

    jobs_of_suites = _suite_jobs(suites)
    imports = sorted({m for _, jobs in jobs_of_suites for job in jobs.values() for m in job.imports})
    runs, names = [], set()
    for row in rows:
        key = (row["solver"], row["task"], int(row["seed"]))
        try:
            identity = json.loads(row["identity"])
        except ValueError:
            identity = None
        suite, job = None, None
        for suite_name, jobs in jobs_of_suites:
            if key in jobs and _plain(jobs[key].identity()) == identity:
                suite, job = suite_name, jobs[key]
                break
        if job is None:
            suite = suites[0][0] if len(suites) == 1 else path.stem
            try:
                job = _job_from_identity(identity, row, imports)
            except (KeyError, TypeError) as err:
                raise ExportError(f"run {key} in {str(path)!r} has an identity that this mcbo cannot read "
                                  f"({type(err).__name__}: {err})") from None
        name = "/".join([(study_prefix.rstrip("/") if study_prefix else suite), row["task"], row["solver"],
                         f"seed{row['seed']}"])
        if name in names:
            raise ExportError(f"two runs of {str(path)!r} would both be exported as study {name!r}")
        names.add(name)
        history = sorted(evaluations.get(int(row["run_id"]), []), key=lambda r: int(r["index"]))
        if [int(r["index"]) for r in history] != list(range(len(history))):
            raise ExportError(f"run {key} in {str(path)!r} has evaluation indices that are not 0..n-1")
        runs.append(_Run(row=row, suite=suite, job=job, study_name=name, evaluations=history))
    return runs


def _suite_jobs(suites: list[tuple[str, str]]) -> list[tuple[str, dict[tuple[str, str, int], Any]]]:
    """The jobs of every recorded suite config (as the runner expands it), keyed by (solver, task, seed)."""
    from mcbo.runner.config import ConfigError, parse_config

    out = []
    for name, config in suites:
        try:
            jobs = parse_config(json.loads(config), default_name=name, source=f"suite {name!r}").jobs()
        except (ConfigError, ValueError) as err:
            logger.warning("cannot read the recorded config of suite %r (%s); naming its runs without it", name, err)
            continue
        out.append((name, {job.key: job for job in jobs}))
    return out


def _job_from_identity(identity: Mapping[str, Any], row: Mapping[str, Any], imports: list[str]):
    """The run's :class:`~mcbo.runner.config.JobSpec` from its stored identity (what ``ensure_run`` recorded)."""
    from mcbo.runner.config import JobSpec, SolverSpec, TaskSpec

    return JobSpec(solver=SolverSpec(**identity["solver"]), task=TaskSpec(**identity["task"]), seed=int(row["seed"]),
                   budget=int(row["budget"]), batch_size=int(row["batch_size"]), n_init=identity.get("n_init"),
                   imports=tuple(imports))


# --------------------------------------------------------------------------- writing a study
def _open_storage(storage_url: Any, db_path: Path):
    import optuna

    if not isinstance(storage_url, str):
        return storage_url
    if storage_url.startswith("sqlite:///") and ":memory:" not in storage_url:
        file = Path(storage_url[len("sqlite:///"):].split("?")[0])
        if file.exists() and file.resolve() == db_path.resolve():
            raise ExportError(f"the Optuna storage {storage_url!r} is the results database itself; "
                              f"give another file, e.g. sqlite:///{db_path.with_name(db_path.stem + '-optuna.db')}")
        file.parent.mkdir(parents=True, exist_ok=True)
    try:
        return optuna.storages.get_storage(storage_url)
    except Exception as err:  # noqa: BLE001 -- sqlalchemy/driver errors of a bad URL, reported in one line
        raise ExportError(f"cannot open Optuna storage {storage_url!r}: {type(err).__name__}: {err}") from None


def _export_run(run: _Run, storage: Any, exists: bool, tasks: dict[str, Any]) -> ExportedStudy:
    import optuna

    trials, notes = _trials(run, tasks)
    attrs = _study_attrs(run)
    action, added = "created", trials
    if exists:
        study = optuna.load_study(study_name=run.study_name, storage=storage)
        old = study.get_trials(deepcopy=False)
        if len(old) <= len(trials) and all(_same_trial(a, b) for a, b in zip(old, trials)):
            action, added = ("unchanged" if len(old) == len(trials) else "extended"), trials[len(old):]
        else:
            optuna.delete_study(study_name=run.study_name, storage=storage)
            action = "replaced"
    if action in ("created", "replaced"):
        study = optuna.create_study(study_name=run.study_name, storage=storage, direction="minimize")
    current = study.user_attrs
    for key, value in attrs.items():
        if current.get(key) != value:
            study.set_user_attr(key, value)
    study.add_trials(added)
    if notes and added:  # one warning per study written, none when it was up to date
        logger.warning("study %r: %s", run.study_name, "; ".join(notes))
    return ExportedStudy(run.study_name, len(trials), len(added), action)


def _study_attrs(run: _Run) -> dict[str, Any]:
    row = run.row
    return {
        "suite": run.suite, "solver": row["solver"], "task": row["task"], "task_name": run.job.task.name,
        "task_kwargs": _plain(run.job.task.kwargs), "seed": int(row["seed"]), "budget": int(row["budget"]),
        "batch_size": int(row["batch_size"]), "status": row["status"], "n_evaluations": len(run.evaluations),
        "exported_by": EXPORTED_BY,
    }


def _same_trial(stored: Any, new: Any) -> bool:
    return (stored.state == new.state and stored.value == new.value and stored.params == new.params
            and stored.user_attrs == new.user_attrs)


class _Converter:
    """Stored points -> Optuna params (+ user attrs for what Optuna cannot hold) for one task's space."""

    def __init__(self, space: Any) -> None:
        from mcbo.integrations.optuna.bridge import OptunaBridge
        from mcbo.space import SearchSpace

        self.bridge = None
        self.unrepresentable: list[str] = []
        self.known = space is not None  # False: the task could not be built, every parameter becomes an attr
        self.why = ""  # why some parameters are not Optuna params (the bridge's or the task's error)
        if space is None:
            return
        representable = []
        for param in space.params:
            try:
                OptunaBridge.from_space(SearchSpace([param]))
                representable.append(param)
            except ValueError as err:
                self.unrepresentable.append(param.name)
                self.why = self.why or str(err).split(";")[0]
        if representable:
            sub = space if len(representable) == len(space.params) else SearchSpace(representable)
            self.bridge = OptunaBridge.from_space(sub)

    def convert(self, point: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(params, user_attrs)`` of a stored point; ``ValueError`` when it does not fit the space."""
        names = self.unrepresentable if self.known else list(point)
        attrs = {PARAM_ATTR_PREFIX + name: json.dumps(point[name]) for name in names if name in point}
        if self.bridge is None:
            return {}, attrs
        sub = {name: point[name] for name in self.bridge.space.names if name in point}
        return self.bridge.to_params(self.bridge.space.validate(sub)), attrs


def _trials(run: _Run, tasks: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The run's stored evaluations as Optuna ``FrozenTrial`` templates, in index order, and notes on what
    could not become Optuna params (for the study's warning)."""
    import optuna
    from optuna.trial import TrialState

    converter = _converter(run, tasks)
    notes = []
    if not converter.known:
        notes.append(f"its params are kept as trial user attrs {PARAM_ATTR_PREFIX}<name> (JSON): {converter.why}")
    elif converter.unrepresentable:
        notes.append(f"parameter(s) {converter.unrepresentable} are kept as trial user attrs "
                     f"{[PARAM_ATTR_PREFIX + n for n in converter.unrepresentable]} (JSON), not as Optuna params: "
                     f"{converter.why}")
    distributions = {} if converter.bridge is None else converter.bridge.distributions
    out = []
    n_unfit = 0
    for record in run.evaluations:
        point = json.loads(record["point"])
        value = _number(record["value"])
        attrs: dict[str, Any] = {
            "index": int(record["index"]), "batch": int(record["batch"]),
            "fit_seconds": _number(record["fit_seconds"]), "acq_seconds": _number(record["acq_seconds"]),
            "eval_seconds": _number(record["eval_seconds"]),
        }
        state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        if state == TrialState.FAIL:
            attrs["error"] = _text(record["error"])
        try:
            params, extra = converter.convert(point)
            trial = optuna.trial.create_trial(state=state, value=value, params=params, distributions=distributions,
                                              user_attrs={**attrs, **extra})
        except (ValueError, KeyError, TypeError):
            n_unfit += 1
            extra = {PARAM_ATTR_PREFIX + name: json.dumps(v) for name, v in point.items()}
            trial = optuna.trial.create_trial(state=state, value=value, user_attrs={**attrs, **extra})
        completed = _time(record["created_at"])
        seconds = attrs["eval_seconds"] or 0.0
        trial.datetime_complete = completed
        trial.datetime_start = completed - datetime.timedelta(seconds=seconds) if completed else None
        out.append(trial)
    if n_unfit:
        notes.append(f"{n_unfit} stored point(s) do not fit the search space of task {run.row['task']!r}; their "
                     f"params are kept as trial user attrs {PARAM_ATTR_PREFIX}<name> (JSON)")
    return out, notes


def _converter(run: _Run, tasks: dict[str, Any]) -> _Converter:
    """The converter of the run's task, built once per task (a space-less one when the task cannot be built)."""
    from mcbo.runner.jobs import build_job_task

    key = json.dumps([run.job.task.name, run.job.task.kwargs, list(run.job.imports)], sort_keys=True, default=str)
    if key not in tasks:
        try:
            tasks[key] = _Converter(build_job_task(run.job).space)
        except Exception as err:  # noqa: BLE001 -- a task that cannot be built here still exports its values
            tasks[key] = _Converter(None)
            tasks[key].why = (f"task {run.job.task.name!r} with {run.job.task.kwargs} cannot be built here "
                              f"({type(err).__name__}: {err})")
    return tasks[key]


def _number(value: Any) -> float | None:
    """A stored REAL as a float, ``None`` for NULL (pandas gives NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _time(created_at: Any) -> datetime.datetime | None:
    seconds = _number(created_at)
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds)


def _plain(obj: Any) -> Any:
    """JSON-able copy (Optuna stores user attrs as JSON)."""
    return json.loads(json.dumps(obj, default=str))


# --------------------------------------------------------------------------- command line
def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export-optuna`` to an argparse ``subparsers`` object (it sets ``func``)."""
    export = subparsers.add_parser(
        "export-optuna", help="write a suite results database as Optuna studies (for optuna-dashboard)",
        description="Write every run (solver x task x seed) of a results database as an Optuna study named "
                    "<suite>/<task>/<solver>/seed<seed>, one trial per evaluation. Exporting again adds only "
                    "the evaluations stored since.")
    export.add_argument("db", help="results database written by `bench`")
    export.add_argument("storage", help="Optuna storage URL, e.g. sqlite:///results/optuna.db")
    export.add_argument("--prefix", default=None,
                        help="study name prefix replacing the suite name: <prefix>/<task>/<solver>/seed<seed>")
    export.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    """Export ``args.db`` into ``args.storage``; print one line per study. Exit status 2 on a user error."""
    try:
        studies = export_studies(args.db, args.storage, study_prefix=args.prefix)
    except ExportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not studies:
        print(f"no runs in {args.db}: nothing to export")
        return 0
    for study in studies:
        done = {"created": "created", "replaced": "written again", "unchanged": "unchanged, nothing added",
                "extended": f"{study.n_added} added"}[study.action]
        print(f"{study.name}: {study.n_trials} trials ({done})")
    print(f"view them with: optuna-dashboard {args.storage}")
    return 0
