"""Run a suite: check it, expand it into jobs, run them in-process or on Dask, record every evaluation.

Where jobs run:

* ``workers`` None or 0 -- one after another in this process;
* ``workers`` >= 1 -- on a :class:`distributed.LocalCluster` of that many worker *processes*, one
  thread each, with ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` set to
  ``torch_threads`` in every worker;
* ``scheduler`` an address -- on an existing Dask cluster.

Wherever it runs, every job pins torch and the BLAS pools to ``torch_threads`` threads (default 1) and
seeds the global generators per batch (:func:`mcbo.runner.jobs.pinned`), and records what it pinned with
its run: the same suite gives the same stored evaluations in-process, on any number of workers and after
any number of interruptions. A job with an ``eval_timeout`` (suite or task key) evaluates in a worker process
of its own wherever it runs, so that a hung evaluation is stopped and stored as failed (``timeout:``) while
its run goes on (:class:`mcbo.runner.jobs.IsolatedEvaluator`).

How results travel: each job runs whole on one worker (the solver's model fits and acquisition
optimisation are the expensive part, so they stay with the evaluations) and puts every evaluation
into a :class:`distributed.Queue` as soon as it is made. The client drains the queue and is the only
writer of the SQLite database, committing each evaluation on its own; a queue was chosen over
futures per batch because it streams single evaluations without the client holding the solver, and
over pub/sub because queued messages are kept by the scheduler until the client takes them.

Resume: running the same suite on the same database skips runs that have their budget of
evaluations and continues the others from their stored evaluations (see :mod:`mcbo.runner.jobs`).
A database holds one suite: another suite (another ``name``) is refused, naming both; the same suite
with a changed config goes on with a warning naming what changed.

Stopping: Ctrl-C (``KeyboardInterrupt``) stores what already arrived, stops the jobs (and the local
cluster) and raises :class:`SuiteInterrupted`, which says how much is stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mcbo.runner.config import ConfigError, JobSpec, SuiteConfig, load_config
from mcbo.runner.jobs import build_job_solver, build_job_task, import_modules, run_job
from mcbo.runner.recording import Recorder, Todo
from mcbo.runner.storage import ResultsDB, StorageError

logger = logging.getLogger(__name__)


class SuiteError(ValueError):
    """A suite cannot start: the message lists every missing recipe/task or solver that cannot be built."""


class SuiteMismatch(ValueError):
    """The database holds another suite; the message names both and what to do."""


@dataclass(frozen=True)
class SuiteProgress:
    """Where a suite stands in its database: runs and evaluations done out of the suite's total.

    ``evaluations`` counts each run's stored evaluations up to its budget; ``runs_started`` the runs with
    some evaluations stored but not all.
    """

    name: str
    db_path: Path
    runs: int
    runs_done: int
    runs_started: int
    evaluations: int
    total_evaluations: int

    @property
    def finished(self) -> bool:
        return self.runs_done == self.runs


class SuiteInterrupted(KeyboardInterrupt):
    """The suite was stopped (Ctrl-C) after storing what had arrived; ``progress`` says what is stored."""

    def __init__(self, progress: SuiteProgress) -> None:
        super().__init__(f"suite {progress.name!r} interrupted: {progress.evaluations} of "
                         f"{progress.total_evaluations} evaluations stored in {str(progress.db_path)!r}")
        self.progress = progress


# --------------------------------------------------------------------------- preflight
def preflight(config: SuiteConfig, build: bool = True) -> None:
    """Check, before anything runs, that every solver recipe and task of ``config`` exists.

    With ``build`` each task is built once and each solver is built on the space of each task it runs
    on, which also catches bad recipe settings and solvers that do not support a space (add an
    ``exclude`` entry for those).

    Raises:
        SuiteError: naming every missing recipe or task and every failed build.
    """
    from mcbo.solvers.registry import list_recipes, load_recipe
    from mcbo.tasks import TASKS

    try:
        import_modules(config.imports)
    except ValueError as err:
        raise SuiteError(f"suite {config.name!r}: {err}") from None
    problems: list[str] = []
    for spec in config.solvers:
        if isinstance(spec.recipe, str):
            try:
                load_recipe(spec.recipe)
            except ValueError:
                problems.append(f"solver {spec.label!r}: no recipe named {spec.recipe!r} "
                                f"(available recipes: {list_recipes()})")
    for spec in config.tasks:
        if spec.name not in TASKS:
            problems.append(f"task {spec.label!r}: no registered task named {spec.name!r} "
                            f"(registered tasks: {sorted(TASKS)})")
    if problems or not build:
        _raise_problems(config, problems)
        return
    spaces = {}
    for spec in config.tasks:
        job = JobSpec(solver=config.solvers[0], task=spec, seed=0, budget=1, imports=tuple(config.imports))
        try:
            spaces[spec.label] = build_job_task(job).space
        except Exception as err:  # noqa: BLE001 -- reported to the user with the task's name
            problems.append(f"task {spec.label!r}: cannot be built with kwargs {spec.kwargs}: "
                            f"{type(err).__name__}: {err}")
    pairs = {(job.solver.label, job.task.label): job for job in config.jobs()}
    for (solver_label, task_label), job in pairs.items():
        if task_label not in spaces:
            continue
        try:
            build_job_solver(job, spaces[task_label])
        except Exception as err:  # noqa: BLE001 -- reported to the user with the solver and task names
            problems.append(f"solver {solver_label!r} on task {task_label!r}: cannot be built: "
                            f"{type(err).__name__}: {err}")
    _raise_problems(config, problems)


def _raise_problems(config: SuiteConfig, problems: list[str]) -> None:
    if problems:
        lines = "\n  - ".join(problems)
        raise SuiteError(f"suite {config.name!r} cannot run; nothing was started:\n  - {lines}")


# --------------------------------------------------------------------------- run_suite
def run_suite(
    config: SuiteConfig | str | Path,
    db_path: str | Path,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    torch_threads: int | None = None,
    checkpoint_seconds: float = 0.0,
    check_build: bool = True,
    scheduler_timeout: float = 10.0,
    on_start: Callable[[SuiteProgress], None] | None = None,
) -> pd.DataFrame:
    """Run (or resume) every job of a suite, storing each evaluation in the SQLite file ``db_path``.

    Args:
        config: a :class:`SuiteConfig` or the path of its YAML file.
        db_path: results database (created if missing; reused to resume). This process is its only writer
            while the suite runs.
        workers: None/0 runs in-process; n >= 1 starts a local Dask cluster of n worker processes.
        scheduler: address of an existing Dask scheduler (instead of ``workers``).
        progress: show tqdm bars over runs and evaluations.
        torch_threads: torch and BLAS threads of every job, whichever executor runs it (default 1); the
            calling process's settings are restored after in-process jobs.
        checkpoint_seconds: how often (at most) a job stores its solver checkpoint (see :func:`run_job`).
        check_build: let :func:`preflight` build every task and solver before running.
        scheduler_timeout: seconds to wait for ``scheduler`` to answer; it is reached before the database
            is opened, so an unreachable one leaves nothing behind.
        on_start: called once the database is open with where the suite stands (a resume, a finished suite).

    Returns:
        :meth:`ResultsDB.runs_frame` restricted to the suite's runs (status, counts, best value).

    Raises:
        ConfigError: a malformed config or bad arguments (an unreachable ``scheduler`` too).
        SuiteError: a missing recipe or task (nothing is run or written).
        SuiteMismatch: the database holds another suite.
        ValueError: the database holds one of the runs made with other settings, is written by another
            process (:class:`~mcbo.runner.lock.DatabaseBusy`) or cannot be written
            (:class:`~mcbo.runner.storage.StorageError`).
        SuiteInterrupted: Ctrl-C; what had arrived is stored.
    """
    if not isinstance(config, SuiteConfig):
        config = load_config(config)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ConfigError(f"workers: got {workers!r}; expected None or an integer >= 0")
    if workers and scheduler:
        raise ConfigError(f"give either workers ({workers}) or scheduler ({scheduler!r}), not both")
    if torch_threads is not None and (isinstance(torch_threads, bool) or not isinstance(torch_threads, int)
                                      or torch_threads < 1):
        raise ConfigError(f"torch_threads: got {torch_threads!r}; expected a positive integer")
    if isinstance(checkpoint_seconds, bool) or not isinstance(checkpoint_seconds, (int, float)) \
            or not checkpoint_seconds >= 0:
        raise ConfigError(f"checkpoint_seconds: got {checkpoint_seconds!r}; expected a number >= 0")
    if isinstance(scheduler_timeout, bool) or not isinstance(scheduler_timeout, (int, float)) \
            or not scheduler_timeout > 0:
        raise ConfigError(f"scheduler_timeout: got {scheduler_timeout!r}; expected a number of seconds > 0")
    if workers or scheduler:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ConfigError("running on Dask (workers >= 1 or a scheduler) needs the `distributed` package: "
                              "pip install distributed") from None
    preflight(config, build=check_build)
    client = None
    if scheduler:
        from mcbo.runner.dask_backend import connect

        client = connect(scheduler, scheduler_timeout)
    try:
        return _run_suite(config, Path(db_path), workers, scheduler, progress, torch_threads or 1,
                          checkpoint_seconds, client, on_start)
    finally:
        if client is not None:
            client.close()


def check_suite(db: ResultsDB, config: SuiteConfig) -> None:
    """Refuse a database that holds another suite, or a run of this one built differently (writing nothing);
    warn when this suite's config changed since it last ran.

    Raises:
        SuiteMismatch: naming the suite the database holds, the config it came from and what to do.
        ValueError: a stored run was made with another recipe, task kwargs or ``n_init``.
    """
    recorded = db.suites()
    others = [s for s in recorded if s["name"] != config.name]
    if others:
        names = ", ".join(f"{s['name']!r}" + (f" (from {s['source']})" if s["source"] else "") for s in others)
        raise SuiteMismatch(
            f"results database {str(db.path)!r} holds suite {names}, not suite {config.name!r} (from "
            f"{config.source}); a database holds one suite, so that its report compares runs of one config. Pass "
            f"another --db (without --db each suite gets results/<name>.db), or give this config `name: "
            f"{others[0]['name']}` to add its runs to that suite")
    for job in config.jobs():
        db.check_run(job)
    same = next((s for s in recorded if s["name"] == config.name), None)
    now = json.loads(json.dumps(config.raw, sort_keys=True, default=str))
    if same is None or same["config"] is None or same["config"] == now:
        return
    before = same["config"]
    changed = [key for key in sorted(set(before) | set(now))
               if before.get(key) != now.get(key) and key not in _QUIET_CHANGES]
    if not changed:
        return
    details = "; ".join(f"{key}: {_short(before.get(key))} -> {_short(now.get(key))}" for key in changed)
    logger.warning("suite %r in %s was last run from %s with another config (%s); its runs stored go on, and "
                   "runs this config no longer lists stay in the database and in its report", config.name,
                   db.path, same["source"] or "a config", details)


#: Config keys whose change is how a suite grows, not another experiment (no warning).
_QUIET_CHANGES = ("budget", "description")


def _short(value: Any, width: int = 60) -> str:
    text = "(none)" if value is None else json.dumps(value, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def _run_suite(config: SuiteConfig, db_path: Path, workers: int | None, scheduler: str | None, progress: bool,
               torch_threads: int, checkpoint_seconds: float, client: Any,
               on_start: Callable[[SuiteProgress], None] | None) -> pd.DataFrame:
    """:func:`run_suite` once its arguments are checked (and ``client`` is connected to ``scheduler``)."""
    with ResultsDB(db_path) as db:
        check_suite(db, config)
        db.register_suite(config.name, config.raw, config.source)
        jobs = config.jobs()
        run_ids = [db.ensure_run(job) for job in jobs]
        todo: list[Todo] = []
        evals_done = started = 0
        for job, run_id in zip(jobs, run_ids):
            n = db.count(run_id)
            evals_done += min(n, job.budget)
            if n >= job.budget:
                if db.status(run_id) != "done":
                    db.set_status(run_id, "done")
                continue
            started += n > 0
            todo.append(Todo(job, run_id, db.history(run_id), db.load_state(run_id)))
        total = sum(j.budget for j in jobs)
        logger.info("suite %r: %d runs, %d to run (%d evaluations stored)", config.name, len(jobs), len(todo),
                    evals_done)
        if on_start is not None:
            on_start(SuiteProgress(config.name, db_path, len(jobs), len(jobs) - len(todo), started, evals_done,
                                   total))
        recorder = Recorder(db, len(jobs), len(jobs) - len(todo), total, evals_done, progress)
        try:
            if todo and not workers and not scheduler:
                _run_in_process(todo, recorder, checkpoint_seconds, torch_threads)
            elif todo:
                from mcbo.runner.dask_backend import run_on_dask

                run_on_dask(todo, recorder, workers, scheduler, checkpoint_seconds, torch_threads, client=client)
        except KeyboardInterrupt:
            recorder.close()
            raise SuiteInterrupted(_interrupted(db, recorder, config, db_path, jobs, run_ids)) from None
        finally:
            recorder.close()
        frame = db.runs_frame()
    return frame[frame["run_id"].isin(run_ids)].reset_index(drop=True)


def _interrupted(db: ResultsDB, recorder: Recorder, config: SuiteConfig, db_path: Path, jobs: list[JobSpec],
                 run_ids: list[int]) -> SuiteProgress:
    """Where an interrupted suite stands (its running runs set back to pending)."""
    recorder.interrupted(run_ids)
    counts = [min(db.count(run_id), job.budget) for job, run_id in zip(jobs, run_ids)]
    done = sum(n >= job.budget for n, job in zip(counts, jobs))
    started = sum(0 < n < job.budget for n, job in zip(counts, jobs))
    return SuiteProgress(config.name, db_path, len(jobs), done, started, sum(counts), sum(j.budget for j in jobs))


def _run_in_process(todo: list[Todo], recorder: Recorder, checkpoint_seconds: float, torch_threads: int) -> None:
    for item in todo:
        recorder.start(item.run_id)
        try:
            run_job(item.job, item.run_id, recorder.handle, history=item.history, state=item.state,
                    checkpoint_seconds=checkpoint_seconds, torch_threads=torch_threads)
        except StorageError:
            raise  # the database cannot be written: the suite stops (rerunning it resumes)
        except Exception as err:  # noqa: BLE001 -- a failed run is recorded and the suite goes on
            recorder.fail(item.run_id, item.job, err)
