"""One run of a suite (solver x task x seed): build, restore, ask / evaluate / tell, report back.

:func:`run_job` runs wherever the suite puts it (the client process or a Dask worker) and never
touches the database: it reports every evaluation, solver checkpoint and its end through ``emit``
as a small plain-data message (msgpack-able, so a :class:`distributed.Queue` carries it), and the
client writes them. Messages::

    {"type": "eval",  "run_id", "index", "batch", "point" (JSON), "value" (None if failed), "error",
                      "fit_seconds", "acq_seconds", "eval_seconds"}
    {"type": "state", "run_id", "n_evaluations", "state" (JSON of Solver.state_dict())}
    {"type": "done",  "run_id", "n_evaluations", "best_value"}

Resuming: the solver is rebuilt with the run's seed; if the run has a checkpoint covering the first
``k`` stored evaluations, it is loaded (so random streams continue exactly where they were); the
stored evaluations after it are told batch by batch, in order, with their values and errors.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
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
    seconds = time.perf_counter() - start
    if not math.isfinite(value):
        return None, f"task returned a non-finite value ({value})", seconds
    return value, None, seconds


def restore_solver(
    build: Callable[[], Solver], history: Sequence[Mapping[str, Any]], state: str | None
) -> Solver:
    """A solver from ``build()`` brought up to the run's stored ``history`` (see the module docstring).

    A checkpoint that does not match the stored history (or that the solver rejects) is ignored with a
    warning, and the whole history is told to a freshly built solver instead.
    """
    solver = build()
    start = 0
    if state is not None:
        try:
            start = _load_checkpoint(solver, history, state)
        except (ValueError, KeyError, TypeError) as err:
            logger.warning("ignoring the stored solver checkpoint (%s); telling the stored evaluations instead", err)
            solver, start = build(), 0
    group: list[Mapping[str, Any]] = []
    for record in history[start:]:
        if group and record["batch"] != group[-1]["batch"]:
            _tell_records(solver, group)
            group = []
        group.append(record)
    if group:
        _tell_records(solver, group)
    return solver


def _load_checkpoint(solver: Solver, history: Sequence[Mapping[str, Any]], state: str) -> int:
    """Load a checkpoint that matches the stored history; the number of evaluations it covers."""
    saved = json.loads(state)
    records = saved["records"]
    if len(records) > len(history):
        raise ValueError(f"checkpoint covers {len(records)} evaluations but only {len(history)} are stored")
    for rec, row in zip(records, history):
        if solver.space.validate(rec["point"]) != solver.space.validate(json.loads(row["point"])):
            raise ValueError(f"checkpoint point {rec['index']} differs from the stored one")
    solver.load_state_dict(saved)
    return len(records)


def _tell_records(solver: Solver, records: Sequence[Mapping[str, Any]]) -> None:
    points = [json.loads(r["point"]) for r in records]
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
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """Run (or continue) one job until ``job.budget`` evaluations are stored.

    Args:
        job: what to run.
        run_id: the run's id in the results database (echoed in every message).
        emit: called with every message (see the module docstring), in order.
        history: the run's stored evaluations, in index order.
        state: the run's latest stored solver checkpoint (JSON), if any.
        checkpoint_seconds: emit a solver checkpoint after a batch when this many seconds passed since
            the last one (0: after every batch); one is always emitted at the end.
        torch_threads: if set, ``torch.set_num_threads`` for this process.

    Returns:
        ``{"run_id", "n_evaluations", "best_value"}``.
    """
    if torch_threads is not None:
        import torch

        torch.set_num_threads(int(torch_threads))
    task = build_job_task(job)
    solver = restore_solver(lambda: build_job_solver(job, task.space), history, state)
    n_done = len(history)
    batch = (int(history[-1]["batch"]) + 1) if history else 0
    last_checkpoint = time.monotonic()
    logger.info("run %s %s: starting at evaluation %d of %d", run_id, job.key, n_done, job.budget)
    while n_done < job.budget:
        points = solver.ask(min(job.batch_size, job.budget - n_done))
        if not points:
            raise RuntimeError(f"solver {job.solver.label!r} returned no points from ask()")
        timings = dict(solver.last_timings)
        values, errors, seconds = [], [], []
        for point in points:
            value, error, secs = evaluate_point(task, point)
            emit({
                "type": "eval", "run_id": run_id, "index": n_done, "batch": batch, "point": point_to_json(point),
                "value": value, "error": error, "fit_seconds": float(timings.get("fit_seconds", 0.0)),
                "acq_seconds": float(timings.get("acq_seconds", 0.0)), "eval_seconds": secs,
            })
            values.append(value)
            errors.append(error)
            seconds.append(secs)
            n_done += 1
        solver.tell(points, values, errors=errors, eval_seconds=seconds)
        batch += 1
        if n_done < job.budget and time.monotonic() - last_checkpoint >= checkpoint_seconds:
            emit(_state_message(solver, run_id))
            last_checkpoint = time.monotonic()
    emit(_state_message(solver, run_id))
    best = solver.best[1]
    result = {"run_id": run_id, "n_evaluations": n_done, "best_value": best if math.isfinite(best) else None}
    emit({"type": "done", **result})
    return result


def _state_message(solver: Solver, run_id: int) -> dict[str, Any]:
    return {"type": "state", "run_id": run_id, "n_evaluations": solver.n_evaluations,
            "state": json.dumps(solver.state_dict(), default=_json_default)}


def run_job_on_worker(
    job: JobSpec,
    run_id: int,
    queue_name: str,
    history: Sequence[Mapping[str, Any]] = (),
    state: str | None = None,
    checkpoint_seconds: float = 0.0,
    torch_threads: int | None = None,
) -> dict[str, Any]:
    """:func:`run_job` on a Dask worker, emitting into the :class:`distributed.Queue` ``queue_name``.

    ``Queue.put`` returns once the scheduler holds the message, so every message of a job is queued
    before its future completes.
    """
    from distributed import Queue

    queue = Queue(queue_name)
    return run_job(job, run_id, queue.put, history=history, state=state, checkpoint_seconds=checkpoint_seconds,
                   torch_threads=torch_threads)
