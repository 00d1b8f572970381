"""One run of a suite (solver x task x seed): build, restore, ask / evaluate / tell, report back.

:func:`run_job` runs wherever the suite puts it (the client process or a Dask worker) and never
touches the database: it reports what it pinned, every evaluation, solver checkpoints and its end
through ``emit`` as small plain-data messages (msgpack-able, so a :class:`distributed.Queue` carries
them), and the client writes them. Messages::

    {"type": "start", "run_id", "environment"}  (the settings pinned for this job, see below)
    {"type": "eval",  "run_id", "index", "batch", "point" (JSON), "value" (None if failed), "error",
                      "fit_seconds", "acq_seconds", "eval_seconds"[, "checkpoint"]}
    {"type": "state", "run_id", "n_evaluations", "state" (JSON of Solver.state_dict())}
    {"type": "done",  "run_id", "n_evaluations", "best_value"}

The last evaluation of a batch is sent once the batch is told, with ``"checkpoint": {"n_evaluations",
"state"}`` (the solver's state after that batch) when one is due, and the client stores the two in one
transaction; a ``state`` message is sent only where a batch ended without a new evaluation.

Pinned per job, whichever executor runs it (a run must not depend on where it ran): torch and the BLAS /
OpenMP pools to ``torch_threads`` threads (default 1; restored afterwards), and the global ``random``,
``numpy`` and ``torch`` generators seeded from the run's seed and the batch number before every ``ask``
(mcbo's solvers use their own generators; this holds third-party code that draws from the global ones).

Evaluations (:func:`job_evaluator`): without ``eval_timeout``, in the job's own process, one point at a time
(:func:`evaluate_point`; a raise or a non-finite value is a failed evaluation and the run goes on). With it, in
a worker process of the job (:class:`IsolatedEvaluator`, the local pool of :mod:`mcbo.solvers.parallel`) that
is ended when an evaluation passes the limit, in-process and on Dask workers alike: such an evaluation is
failed with an error starting ``timeout:``, one whose process dies (a segfault, ``os._exit``) with one
starting ``crashed:``, as in :meth:`mcbo.solvers.base.Solver.optimize`, and the run goes on.

Resuming (:func:`restore_run`): the solver is rebuilt with the run's seed; if the run has a checkpoint
covering the first ``k`` stored evaluations, it is loaded, so random streams continue exactly where they
were. Each batch stored after it is asked for again and told its stored values (the solver must ask the
same points again: it is checked); a batch cut short by the kill is asked for again whole and only its
missing points are evaluated. The resumed run thus asks exactly what the uninterrupted run asked. A solver
that does not ask the same points again (or a changed batch size) is told the stored evaluations instead,
with a warning that the run will differ from an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcbo.runner.config import JobSpec, SolverSpec
from mcbo.solvers.base import Solver
from mcbo.space import SearchSpace

logger = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], None]


def import_modules(modules: Sequence[str]) -> None:
    """Import the config's ``imports`` (modules that register tasks or solver kinds)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"imports: cannot import module {module!r}: {err}") from None


def build_job_task(job: JobSpec):
    """The job's task: ``mcbo.tasks.build_task(name, **kwargs)``."""
    from mcbo.tasks import build_task

    import_modules(job.imports)
    return build_task(job.task.name, **job.task.kwargs)


def solver_overrides(spec: SolverSpec, n_init: int | None) -> dict[str, Any]:
    """Keyword overrides for :func:`mcbo.solvers.build_solver`: the spec's own, plus the suite's
    ``n_init`` for recipes that declare an ``n_init`` (baselines such as ``rs`` have none)."""
    from mcbo.solvers.registry import load_recipe

    overrides = dict(spec.overrides)
    if n_init is not None and "n_init" not in overrides:
        recipe = load_recipe(spec.recipe) if isinstance(spec.recipe, str) else spec.recipe
        if "n_init" in recipe:
            overrides["n_init"] = n_init
    return overrides


def build_job_solver(job: JobSpec, space: SearchSpace) -> Solver:
    """The job's solver: ``build_solver(recipe, space, seed=job.seed, **overrides)``."""
    from mcbo.solvers import build_solver

    return build_solver(job.solver.recipe, space, seed=job.seed, **solver_overrides(job.solver, job.n_init))


def point_to_json(point: Mapping[str, Any]) -> str:
    """A decoded point as JSON (numpy scalars become Python numbers)."""
    return json.dumps(dict(point), default=_json_default, sort_keys=False)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot store a value of type {type(obj).__name__} in a point")


def evaluate_point(task, point: Mapping[str, Any]) -> tuple[float | None, str | None, float]:
    """Evaluate one point; a raise or a non-finite value is a failure. Returns ``(value, error, seconds)``."""
    start = time.perf_counter()
    try:
        value = float(task.evaluate([dict(point)])[0])
    except Exception as err:  # noqa: BLE001 -- any black-box failure is recorded and the run goes on
        return None, f"{type(err).__name__}: {err}", time.perf_counter() - start
    return _finite(value, time.perf_counter() - start)


def _finite(value: float, seconds: float) -> tuple[float | None, str | None, float]:
    """``(value, None, seconds)``, or a failure when ``value`` is not finite."""
    if not math.isfinite(value):
        return None, f"task returned a non-finite value ({value})", seconds
    return value, None, seconds


class _TaskCall:
    """The black box a worker process of :class:`IsolatedEvaluator` runs: ``float(task.evaluate([point])[0])``.

    It travels to the worker pickled; a task that does not pickle travels as its :class:`JobSpec` instead and
    is built in the worker. On its first call the worker pins torch and the BLAS / OpenMP pools to ``threads``
    threads and seeds its global generators from the run's seed, as the job's own process does.
    """

    def __init__(self, task: Any, job: JobSpec, threads: int) -> None:
        self.task, self.job, self.threads = task, job, threads
        self._ready = False

    def __call__(self, point: dict[str, Any]) -> float:
        if not self._ready:
            import torch
            from threadpoolctl import threadpool_limits

            torch.set_num_threads(self.threads)
            threadpool_limits(limits=self.threads)
            seed_globals(self.job.seed, 0)
            if self.task is None:
                self.task = build_job_task(self.job)
            self._ready = True
        return float(self.task.evaluate([point])[0])


class IsolatedEvaluator:
    """Evaluates a job's points one at a time in a worker process that is ended after ``eval_timeout`` seconds.

    The worker is :class:`mcbo.solvers.parallel.LocalProcessPool`'s (one process, started on the first point
    and kept for the next ones): an evaluation past the limit has the worker's process group killed and is a
    failure with an error starting ``timeout:``, one whose worker dies (segfault, ``os._exit``, out of memory)
    a failure starting ``crashed:``; a new worker takes over and the run goes on. A raise or a non-finite value
    is a failure with the error :func:`evaluate_point` gives it. Call as ``evaluate(point) -> (value, error,
    seconds)``; :meth:`close` ends the worker.

    In a daemonic process (a Dask worker under its nanny), which ``multiprocessing`` does not let start
    processes, the daemon flag is lifted while the evaluator lives: the worker ends with the process that
    started it anyway (it watches it), which is what the rule guards against.

    Args:
        task: the job's task (built in this process).
        job: the job (its seed, and how to build the task where ``task`` does not pickle).
        eval_timeout: seconds one evaluation may run.
        threads: torch and BLAS threads of the worker process.
    """

    def __init__(self, task: Any, job: JobSpec, eval_timeout: float, threads: int = 1) -> None:
        self.task, self.job, self.eval_timeout, self.threads = task, job, float(eval_timeout), int(threads)
        self._pool: Any = None
        self._key = 0

    def __call__(self, point: Mapping[str, Any]) -> tuple[float | None, str | None, float]:
        if self._pool is None:
            self._pool = self._start()
        self._key += 1
        self._pool.submit(self._key, dict(point))
        outcomes = []
        while not outcomes:
            outcomes = [o for o in self._pool.wait() if o.key == self._key]
        outcome = outcomes[0]
        if outcome.error is not None:
            return None, outcome.error, outcome.seconds
        return _finite(outcome.value, outcome.seconds)

    def _start(self) -> Any:
        from mcbo.solvers.parallel import BlackBoxPicklingError, LocalProcessPool

        _lift_daemon(+1)
        try:
            try:
                return LocalProcessPool(_TaskCall(self.task, self.job, self.threads), 1, self.eval_timeout)
            except BlackBoxPicklingError as err:
                logger.info("task %r does not pickle (%s); its worker process builds it", self.job.task.label, err)
                return LocalProcessPool(_TaskCall(None, self.job, self.threads), 1, self.eval_timeout)
        except BaseException:
            _lift_daemon(-1)
            raise

    def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                pool.close()
            finally:
                _lift_daemon(-1)

    def __enter__(self) -> IsolatedEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_daemon_lock = threading.Lock()
_daemon_lifts = [0, False]  # evaluators alive in this process; whether it was daemonic before the first


def _lift_daemon(change: int) -> None:
    """Count an :class:`IsolatedEvaluator` starting (+1) or ending (-1); clear this process's daemon flag while
    one lives and put it back after the last."""
    import multiprocessing

    process = multiprocessing.current_process()
    with _daemon_lock:
        if change > 0 and _daemon_lifts[0] == 0:
            _daemon_lifts[1] = bool(process.daemon)
            if _daemon_lifts[1]:
                process.daemon = False
        _daemon_lifts[0] += change
        if change < 0 and _daemon_lifts[0] == 0 and _daemon_lifts[1]:
            process.daemon = True


@contextlib.contextmanager
def job_evaluator(task, job: JobSpec, threads: int = 1) -> Iterator[Callable[[Mapping[str, Any]], tuple]]:
    """How a job evaluates one point, ``(value, error, seconds)``: :func:`evaluate_point` in this process, or an
    :class:`IsolatedEvaluator` when ``job.eval_timeout`` is set (ended on exit)."""
    if job.eval_timeout is None:
        yield lambda point: evaluate_point(task, point)
        return
    with IsolatedEvaluator(task, job, job.eval_timeout, threads) as evaluate:
        yield evaluate


@contextlib.contextmanager
def pinned(threads: int = 1, restore: bool = True) -> Iterator[dict[str, Any]]:
    """Pin what a job's results must not depend on; yields the settings.

    torch's intra-op threads and the BLAS / OpenMP pools (threadpoolctl) are set to ``threads``. With
    ``restore`` (in-process jobs) they and the global ``random`` / ``numpy`` / ``torch`` generator states (which
    :func:`seed_globals` reseeds) are put back on exit; a Dask worker keeps them (its jobs all pin the same, and
    a restore from one of two jobs sharing a worker process would unpin the other).
    """
    import torch
    from threadpoolctl import threadpool_limits

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"torch_threads: got {threads!r}; expected a positive integer")
    previous_threads = torch.get_num_threads()
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    torch.set_num_threads(threads)
    limits = threadpool_limits(limits=threads)
    try:
        yield {"torch_threads": threads, "blas_threads": threads, "global_rngs": "seeded per batch"}
    finally:
        if restore:
            limits.restore_original_limits()
            torch.set_num_threads(previous_threads)
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.set_rng_state(states[2])


def seed_globals(seed: int, batch: int) -> None:
    """Seed the global ``random``, ``numpy`` and ``torch`` generators from a run's seed and a batch number."""
    import torch

    value = int(np.random.SeedSequence([int(seed), int(batch)]).generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


@dataclass
class Restored:
    """A solver brought up to a run's stored evaluations (see :func:`restore_run`).

    Attributes:
        solver: the solver, told every stored evaluation before the partial batch.
        next_batch: the number of the batch to ask next (the partial batch's when there is one).
        partial_points, partial_stored, partial_timings: the batch the run was in when it stopped, asked
            again: its points (empty when there is none), the stored evaluations of its first points, and the
            timings of that ``ask``.
        exact: whether the solver repeated every batch it was asked for again (``False``: it was told the
            stored evaluations instead, and the run now differs from an uninterrupted one).
    """

    solver: Solver
    next_batch: int = 0
    partial_points: list[dict[str, Any]] = field(default_factory=list)
    partial_stored: list[Mapping[str, Any]] = field(default_factory=list)
    partial_timings: dict[str, float] = field(default_factory=dict)
    exact: bool = True


def restore_run(
    build: Callable[[], Solver],
    history: Sequence[Mapping[str, Any]],
    state: str | None,
    batch_size: int,
    budget: int,
    seed: int = 0,
) -> Restored:
    """A solver from ``build()`` brought up to the run's stored ``history`` (see the module docstring).

    A checkpoint that does not match the stored history (or that the solver rejects) is ignored with a
    warning, and every stored batch is asked for again from a freshly built solver instead.

    Args:
        build: builds the run's solver (same recipe, space and seed as when it ran).
        history: the run's stored evaluations, in index order.
        state: the run's latest checkpoint (JSON), or ``None``.
        batch_size, budget: the run's; the batch in progress is asked for again with
            ``min(batch_size, budget - told)`` points, as it was first.
        seed: the run's seed (for :func:`seed_globals` before each ``ask``).
    """
    solver, start = _from_checkpoint(build, history, state)
    groups = _batches(history[start:])
    told = start
    for i, group in enumerate(groups):
        last = i == len(groups) - 1
        size = min(batch_size, budget - told) if last else len(group)
        batch = int(group[0]["batch"])
        reason = None
        if size < len(group):
            reason = f"its batch {batch} holds {len(group)} evaluations, more than the {max(size, 0)} asked now"
        else:
            seed_globals(seed, batch)
            try:
                points = solver.ask(size)
            except Exception as err:  # noqa: BLE001 -- any failure: fall back to telling the stored points
                reason = f"asking batch {batch} again failed: {type(err).__name__}: {err}"
            else:
                asked = [point_to_json(p) for p in points[:len(group)]]
                if asked != [r["point"] for r in group]:
                    reason = f"it did not ask the stored points of batch {batch} again"
        if reason is not None:
            logger.warning("resuming from the stored evaluations (%s); the run continues from them but now "
                           "differs from an uninterrupted run", reason)
            solver, start = _from_checkpoint(build, history, state)
            for stored in _batches(history[start:]):
                _tell_records(solver, stored)
            return Restored(solver, next_batch=int(history[-1]["batch"]) + 1, exact=False)
        if last and len(group) < size:
            return Restored(solver, next_batch=batch, partial_points=points, partial_stored=group,
                            partial_timings=dict(solver.last_timings))
        _tell_records(solver, group, points)
        told += len(group)
    return Restored(solver, next_batch=(int(history[-1]["batch"]) + 1) if history else 0)


def _from_checkpoint(build: Callable[[], Solver], history: Sequence[Mapping[str, Any]],
                     state: str | None) -> tuple[Solver, int]:
    """A built solver with the checkpoint loaded when it matches ``history``; the evaluations it covers."""
    solver = build()
    if state is None:
        return solver, 0
    try:
        return solver, _load_checkpoint(solver, history, state)
    except (ValueError, KeyError, TypeError) as err:
        logger.warning("ignoring the stored solver checkpoint (%s); asking the stored batches again instead", err)
        return build(), 0


def _batches(records: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Consecutive records grouped by their batch number."""
    groups: list[list[Mapping[str, Any]]] = []
    for record in records:
        if groups and record["batch"] == groups[-1][-1]["batch"]:
            groups[-1].append(record)
        else:
            groups.append([record])
    return groups


def _load_checkpoint(solver: Solver, history: Sequence[Mapping[str, Any]], state: str) -> int:
    """Load a checkpoint that matches the stored history; the number of evaluations it covers."""
    saved = json.loads(state)
    records = saved["records"]
    if len(records) > len(history):
        raise ValueError(f"checkpoint covers {len(records)} evaluations but only {len(history)} are stored")
    for rec, row in zip(records, history):
        if solver.space.validate(rec["point"]) != solver.space.validate(json.loads(row["point"])):
            raise ValueError(f"checkpoint point {rec['index']} differs from the stored one")
    covered = len(records)
    if 0 < covered < len(history) and history[covered - 1]["batch"] == history[covered]["batch"]:
        raise ValueError(f"checkpoint covers {covered} evaluations, part of batch {history[covered]['batch']}")
    solver.load_state_dict(saved)
    return len(records)


def _tell_records(solver: Solver, records: Sequence[Mapping[str, Any]],
                  points: Sequence[Mapping[str, Any]] | None = None) -> None:
    points = [json.loads(r["point"]) for r in records] if points is None else list(points)
    values = [r["value"] for r in records]
    errors = [r["error"] or None for r in records]
    seconds = [float("nan") if r["eval_seconds"] is None else float(r["eval_seconds"]) for r in records]
    solver.tell(points, values, errors=errors, eval_seconds=seconds)


def run_job(
    job: JobSpec,
    run_id: int,
    emit: Emit,
    history: Sequence[Mapping[str, Any]] = (),
    state: str | None = None,
    checkpoint_seconds: float = 0.0,
    torch_threads: int | None = 1,
    restore_settings: bool = True,
) -> dict[str, Any]:
    """Run (or continue) one job until ``job.budget`` evaluations are stored.

    Args:
        job: what to run.
        run_id: the run's id in the results database (echoed in every message).
        emit: called with every message (see the module docstring), in order.
        history: the run's stored evaluations, in index order.
        state: the run's latest stored solver checkpoint (JSON), if any.
        checkpoint_seconds: send a solver checkpoint with a batch when this many seconds passed since the
            last one (0: with every batch, which a resume needs to repeat no ``ask`` but the one in
            progress); one is always sent with the last batch.
        torch_threads: torch and BLAS threads for this job (``None``: 1).
        restore_settings: put the process's thread counts and global generators back afterwards (see
            :func:`pinned`; ``False`` on Dask workers).

    Returns:
        ``{"run_id", "n_evaluations", "best_value"}``.
    """
    with pinned(1 if torch_threads is None else torch_threads, restore=restore_settings) as environment:
        emit({"type": "start", "run_id": run_id, "environment": environment})
        task = build_job_task(job)
        with job_evaluator(task, job, environment["torch_threads"]) as evaluate:
            return _run_pinned(job, run_id, emit, history, state, checkpoint_seconds, task, evaluate)


def _run_pinned(job: JobSpec, run_id: int, emit: Emit, history: Sequence[Mapping[str, Any]], state: str | None,
                checkpoint_seconds: float, task: Any,
                evaluate: Callable[[Mapping[str, Any]], tuple[float | None, str | None, float]]) -> dict[str, Any]:
    restored = restore_run(lambda: build_job_solver(job, task.space), history, state, job.batch_size, job.budget,
                           seed=job.seed)
    solver = restored.solver
    n_done = len(history)
    batch = restored.next_batch
    partial = bool(restored.partial_points)
    last_checkpoint = time.monotonic()
    logger.info("run %s %s: starting at evaluation %d of %d", run_id, job.key, n_done, job.budget)
    while n_done < job.budget or partial:
        if partial:
            points, stored, timings = restored.partial_points, restored.partial_stored, restored.partial_timings
            partial = False
        else:
            seed_globals(job.seed, batch)
            points = solver.ask(min(job.batch_size, job.budget - n_done))
            stored, timings = [], dict(solver.last_timings)
            if not points:
                raise RuntimeError(f"solver {job.solver.label!r} returned no points from ask()")
        values = [r["value"] for r in stored]
        errors = [r["error"] or None for r in stored]
        seconds = [float("nan") if r["eval_seconds"] is None else float(r["eval_seconds"]) for r in stored]
        held: dict[str, Any] | None = None  # the batch's last evaluation waits for the tell and its checkpoint
        for i in range(len(stored), len(points)):
            value, error, secs = evaluate(points[i])
            message = {
                "type": "eval", "run_id": run_id, "index": n_done, "batch": batch, "point": point_to_json(points[i]),
                "value": value, "error": error, "fit_seconds": float(timings.get("fit_seconds", 0.0)),
                "acq_seconds": float(timings.get("acq_seconds", 0.0)), "eval_seconds": secs,
            }
            if i < len(points) - 1:
                emit(message)
            else:
                held = message
            values.append(value)
            errors.append(error)
            seconds.append(secs)
            n_done += 1
        try:
            solver.tell(points, values, errors=errors, eval_seconds=seconds)
        except BaseException:
            if held is not None:  # stored without a checkpoint: a resume asks this batch again
                emit(held)
            raise
        batch += 1
        checkpoint = None
        if n_done >= job.budget or time.monotonic() - last_checkpoint >= checkpoint_seconds:
            checkpoint = {"n_evaluations": solver.n_evaluations,
                          "state": json.dumps(solver.state_dict(), default=_json_default)}
            last_checkpoint = time.monotonic()
        if held is not None:
            emit({**held, "checkpoint": checkpoint} if checkpoint else held)
        elif checkpoint is not None:
            emit({"type": "state", "run_id": run_id, **checkpoint})
    best = solver.best[1]
    result = {"run_id": run_id, "n_evaluations": n_done, "best_value": best if math.isfinite(best) else None}
    emit({"type": "done", **result})
    return result


def run_job_on_worker(
    job: JobSpec,
    run_id: int,
    queue_name: str,
    history: Sequence[Mapping[str, Any]] = (),
    state: str | None = None,
    checkpoint_seconds: float = 0.0,
    torch_threads: int | None = 1,
) -> dict[str, Any]:
    """:func:`run_job` on a Dask worker, emitting into the :class:`distributed.Queue` ``queue_name``.

    ``Queue.put`` returns once the scheduler holds the message, so every message of a job is queued
    before its future completes.
    """
    from distributed import Queue

    queue = Queue(queue_name)
    return run_job(job, run_id, queue.put, history=history, state=state, checkpoint_seconds=checkpoint_seconds,
                   torch_threads=torch_threads, restore_settings=False)
