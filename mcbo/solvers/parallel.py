"""Where :meth:`mcbo.solvers.base.Solver.optimize` evaluates points, and where it keeps a durable run.

Evaluators (one interface, :class:`Evaluator`: ``submit`` a point, ``wait`` for finished ones):

* :class:`LocalProcessPool` -- ``n`` worker processes on this machine, each evaluating one point at a
  time. An evaluation that runs past ``eval_timeout`` seconds has its worker's process group killed
  and is reported with reason ``timeout``; a worker that dies (segfault, ``os._exit``, out of memory)
  is reported with reason ``crashed`` and the signal or exit code. Either way a fresh worker takes
  its place. Workers are started by ``forkserver`` (``spawn`` where there is none) with this module
  preloaded, so a replacement starts in milliseconds and never inherits the caller's threads; each
  worker ends itself when the process that started it dies (``kill -9`` included).
* :class:`DaskPool` -- evaluations as tasks on an existing Dask cluster through a
  :class:`distributed.Client`. A task whose worker dies is never run again (a scheduler-side
  :class:`distributed.Event` per evaluation marks it started; a rescheduled copy reports ``crashed``
  at once), and a task past ``eval_timeout`` is cancelled and its worker restarted by its nanny.

The black box travels to the workers pickled (``cloudpickle`` when installed, so lambdas and functions
of ``__main__`` or a notebook work too; otherwise ``pickle``, which needs a module-level function or
an instance of a module-level class): :func:`dump_black_box` says so at once when it cannot.

:class:`RunStore` is the SQLite file of one durable run (``storage=`` of ``optimize``): every told
evaluation as a row, the solver's latest :meth:`~mcbo.solvers.base.Solver.state_dict` (without its
records, which are the rows) and the points in flight, each change committed in one transaction.

This module knows nothing of solvers: the ask/tell loop that drives it is ``Solver.optimize``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import pickle
import signal
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_objects
from pathlib import Path
from typing import Any, Callable, Mapping

logger = logging.getLogger(__name__)

#: Reason prefixes of evaluations that failed for a reason other than the black box's own error.
TIMEOUT, CRASHED, INTERRUPTED = "timeout", "crashed", "interrupted"
#: Workers that may die before they are ready, in a row, before the pool gives up.
_MAX_START_FAILURES = 3
#: Seconds between the checks a worker makes that the process which started it is still alive.
_WATCHDOG_SECONDS = 0.5
#: Most seconds between two checks of the local time-out monitor.
_TIMEOUT_POLL_SECONDS = 0.05
#: Seconds between the polls of the Dask evaluator (start messages, time-outs).
_DASK_POLL_SECONDS = 0.1


class BlackBoxPicklingError(ValueError):
    """The black box cannot be sent to worker processes (it does not pickle), or they cannot load it."""


@dataclass
class Outcome:
    """One finished evaluation: its key (given to :meth:`Evaluator.submit`), the raw value the black box
    returned (``None`` when it failed), the error (``None`` when it did not fail) and its wall-clock seconds."""

    key: int
    value: Any
    error: str | None
    seconds: float


def evaluate_point(black_box: Callable[[dict[str, Any]], Any],
                   point: Mapping[str, Any]) -> tuple[Any, str | None, float]:
    """Call ``black_box`` on a copy of ``point``: ``(value, None, seconds)``, or ``(None, "Type: message", seconds)``
    when it raises."""
    start = time.perf_counter()
    try:
        value, error = black_box(dict(point)), None
    except Exception as err:  # noqa: BLE001 -- any black-box failure is recorded, not raised
        value, error = None, f"{type(err).__name__}: {err}"
    return value, error, time.perf_counter() - start


def dump_black_box(black_box: Callable[..., Any]) -> bytes:
    """``black_box`` pickled for worker processes (cloudpickle when installed, else pickle).

    Raises:
        BlackBoxPicklingError: naming the black box, the pickling error and what to do instead.
    """
    try:
        import cloudpickle

        dumps, how = cloudpickle.dumps, "cloudpickle"
    except ImportError:
        dumps, how = pickle.dumps, "pickle"
    try:
        return dumps(black_box)
    except Exception as err:  # noqa: BLE001 -- pickling raises many types (TypeError, PicklingError, ...)
        raise BlackBoxPicklingError(
            f"black_box {black_box!r:.120} cannot be sent to worker processes: {how} fails with "
            f"{type(err).__name__}: {err}. Evaluating in worker processes (n_workers > 1, eval_timeout or executor) "
            "needs a picklable black box: a module-level function, or an instance of a module-level class whose "
            "attributes pickle (open files, locks, sockets and database connections do not: open them inside the "
            "call). Without cloudpickle installed, lambdas and nested functions do not pickle either."
        ) from None


class Evaluator(ABC):
    """Evaluates points somewhere else; at most :attr:`capacity` at a time are worth submitting."""

    #: Evaluations that run at once.
    capacity: int = 1
    #: Words for logs and progress bars ("2 local processes", "Dask cluster at tcp://...").
    where: str = ""

    @abstractmethod
    def submit(self, key: int, point: Mapping[str, Any]) -> None:
        """Start evaluating ``point`` (queued until a worker is free); its :class:`Outcome` carries ``key``."""

    @abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted evaluation has finished (or failed); their outcomes."""

    @abstractmethod
    def close(self) -> None:
        """Stop every worker (running evaluations are ended, not waited for)."""

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- local worker processes
def _worker_main(conn: Connection, payload: bytes, owner_pid: int) -> None:
    """Body of a local worker process: load the black box, then evaluate points sent over ``conn`` until ``None``.

    Messages sent back: ``("ready",)`` once the black box is loaded, ``("broken", error)`` when it cannot be,
    ``("result", key, value, error, seconds)`` per evaluation.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the owner's to handle; it ends the workers
    with contextlib.suppress(AttributeError, OSError):
        os.setpgid(0, 0)  # own process group: a time-out ends the black box's own children too
    _die_with_owner(owner_pid)
    try:
        black_box = pickle.loads(payload)
    except BaseException as err:  # noqa: BLE001 -- reported to the owner, which raises it
        conn.send(("broken", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, point = message
        value, error, seconds = evaluate_point(black_box, point)
        try:
            conn.send(("result", key, value, error, seconds))
        except Exception as err:  # noqa: BLE001 -- pickling the value failed; nothing was written
            conn.send(("result", key, None, f"the black box returned a {type(value).__name__} that cannot be sent "
                                            f"back from the worker process ({type(err).__name__}: {err})", seconds))


def _die_with_owner(owner_pid: int) -> None:
    """End this worker when ``owner_pid`` (the optimising process) dies, even while the black box runs.

    Linux: the kernel sends SIGKILL when the parent (the forkserver, which exits with the owner) dies. Everywhere:
    a daemon thread checks every :data:`_WATCHDOG_SECONDS` that the parent is unchanged and the owner alive.
    """
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass

    def watch() -> None:
        while True:
            time.sleep(_WATCHDOG_SECONDS)
            try:
                os.kill(owner_pid, 0)
                alive = os.getppid() == parent
            except ProcessLookupError:
                alive = False
            except OSError:
                alive = True
            if not alive:
                os._exit(1)

    threading.Thread(target=watch, name="mcbo-owner-watchdog", daemon=True).start()


def _context() -> Any:
    """The multiprocessing context of local workers: forkserver (this module preloaded) where there is one."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["__main__", __name__])  # no effect once the forkserver runs
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    job: tuple[int, Mapping[str, Any]] | None = None
    started: float = 0.0
    timed_out: float | None = None  # when the time-out monitor killed it
    dead: bool = False


def _shown(point: Mapping[str, Any]) -> str:
    """``point`` for a log line (at most 160 characters)."""
    text = repr(dict(point))
    return text if len(text) <= 160 else text[:157] + "..."


def _death(exitcode: int | None) -> str:
    if exitcode is None:
        return "it stopped answering"
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class LocalProcessPool(Evaluator):
    """``n_workers`` local worker processes evaluating ``black_box``, one point each at a time.

    A monitor thread (only with ``eval_timeout``) kills a worker's process group as soon as its evaluation
    passes the limit, whatever the calling thread is doing (fitting a model for the next ask, say); the
    calling thread sees the death in :meth:`wait`, reports the time-out and starts a new worker.

    Args:
        black_box: the function to evaluate (pickled once, loaded once per worker).
        n_workers: worker processes (>= 1).
        eval_timeout: seconds an evaluation may run before its worker is killed (``None``: no limit).

    Raises:
        BlackBoxPicklingError: the black box does not pickle (at once), or the workers cannot load it (from
            :meth:`wait`, e.g. a function of a ``__main__`` the workers cannot import).
    """

    def __init__(self, black_box: Callable[..., Any], n_workers: int, eval_timeout: float | None = None) -> None:
        self._payload = dump_black_box(black_box)
        self._ctx = _context()
        self.capacity = int(n_workers)
        self.eval_timeout = eval_timeout
        self.where = f"{n_workers} local worker process{'es' if n_workers > 1 else ''}"
        self._queue: deque[tuple[int, Mapping[str, Any]]] = deque()
        self._done: list[Outcome] = []
        self._start_failures = 0
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # the workers' jobs, between the calling thread and the monitor
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        try:
            for _ in range(self.capacity):
                self._workers.append(self._spawn())
        except BaseException:
            self.close()
            raise
        if eval_timeout:
            self._monitor = threading.Thread(target=self._enforce_timeouts, name="mcbo-eval-timeouts", daemon=True)
            self._monitor.start()

    def _spawn(self) -> _Worker:
        parent_end, child_end = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker_main, args=(child_end, self._payload, os.getpid()),
                                    name="mcbo-eval-worker", daemon=False)
        try:
            process.start()
        except ChildProcessError:
            # This process was fork()ed from one whose forkserver it cannot reach (a CPython limitation): spawn.
            parent_end.close()
            child_end.close()
            if self._ctx.get_start_method() != "forkserver":
                raise
            logger.info("cannot use the forkserver of the process this one was forked from; spawning workers")
            self._ctx = multiprocessing.get_context("spawn")
            return self._spawn()
        child_end.close()
        return _Worker(process, parent_end)

    # ------------------------------------------------------------------ submit / wait
    def submit(self, key: int, point: Mapping[str, Any]) -> None:
        with self._lock:
            self._queue.append((key, dict(point)))
            self._dispatch()

    def _dispatch(self) -> None:
        """Send queued points to idle ready workers (the lock held)."""
        for worker in self._workers:
            if not self._queue:
                return
            if worker.ready and worker.job is None and not worker.dead:
                key, point = self._queue[0]
                try:
                    worker.conn.send((key, point))
                except (BrokenPipeError, EOFError, OSError):
                    worker.dead = True  # replaced by the next _check
                    continue
                self._queue.popleft()
                worker.job, worker.started = (key, point), time.monotonic()

    def wait(self) -> list[Outcome]:
        with self._lock:
            if not self._done and not self._queue and not any(w.job for w in self._workers):
                return []
        while True:
            with self._lock:
                if self._done:
                    done, self._done = self._done, []
                    return done
                watched = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
            wait_for_objects(watched, 1.0)  # the monitor's kills wake it through the sentinels
            with self._lock:
                for i in range(len(self._workers)):
                    self._check(i)
                self._dispatch()

    def _check(self, i: int) -> None:
        """Read what worker ``i`` sent; replace it when it died, reporting its evaluation (the lock held)."""
        worker = self._workers[i]
        while not worker.dead:
            try:
                if not worker.conn.poll():
                    break
                message = worker.conn.recv()
            except (EOFError, OSError):
                worker.dead = True
                break
            if message[0] == "ready":
                worker.ready, self._start_failures = True, 0
            elif message[0] == "broken":
                raise BlackBoxPicklingError(
                    f"the worker processes cannot load the black box: {message[1]}. Define it in a module the "
                    "workers can import (not in an interactive session's __main__, unless cloudpickle is "
                    "installed), and guard the script's entry point with `if __name__ == \"__main__\":`")
            elif message[0] == "result" and worker.job is not None and worker.job[0] == message[1]:
                _, key, value, error, seconds = message
                self._done.append(Outcome(key, value, error, seconds))
                worker.job = None
        if not worker.dead and worker.process.is_alive():
            return
        worker.process.join(timeout=1)
        if worker.process.is_alive():  # its pipe broke but it lingers
            _kill(worker)
        reason = _death(worker.process.exitcode)
        if worker.job is not None and worker.timed_out is not None:
            key, point = worker.job
            logger.warning("the evaluation of %s ran past eval_timeout=%g s; its worker process was ended",
                           _shown(point), self.eval_timeout)
            self._done.append(Outcome(key, None, f"{TIMEOUT}: the evaluation ran longer than eval_timeout="
                                                 f"{self.eval_timeout:g} s; its worker process was ended",
                                      worker.timed_out - worker.started))
        elif worker.job is not None:
            key, point = worker.job
            logger.warning("the worker process evaluating %s died (%s); a new worker replaces it", _shown(point),
                           reason)
            self._done.append(Outcome(key, None, f"{CRASHED}: the worker process died during the evaluation "
                                                 f"({reason}); a new worker replaced it",
                                      time.monotonic() - worker.started))
        elif not worker.ready:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                raise RuntimeError(f"{_MAX_START_FAILURES} worker processes in a row died while starting "
                                   f"(last: {reason}); cannot evaluate in worker processes")
        elif worker.timed_out is None:  # else: killed at its deadline just after its result came in
            logger.warning("an idle worker process died (%s); a new worker replaces it", reason)
        worker.conn.close()
        self._workers[i] = self._spawn()

    def _enforce_timeouts(self) -> None:
        """Monitor thread: SIGKILL the process group of every worker whose evaluation passed ``eval_timeout``."""
        assert self.eval_timeout
        while not self._closing.is_set():
            pause = _TIMEOUT_POLL_SECONDS
            with self._lock:
                now = time.monotonic()
                for worker in self._workers:
                    if worker.job is None or worker.timed_out is not None or worker.dead:
                        continue
                    left = worker.started + self.eval_timeout - now
                    if left <= 0:
                        worker.timed_out = now
                        _signal_group(worker)
                    else:
                        pause = min(pause, left)
            self._closing.wait(pause)

    def close(self) -> None:
        self._closing.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        with self._lock:
            for worker in self._workers:
                if worker.job is not None or not worker.ready or worker.dead:
                    _kill(worker)
                else:
                    with contextlib.suppress(OSError, ValueError):
                        worker.conn.send(None)
            deadline = time.monotonic() + 2.0
            for worker in self._workers:
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
                if worker.process.is_alive():
                    _kill(worker)
                with contextlib.suppress(OSError):
                    worker.conn.close()
            self._workers, self._queue = [], deque()


def _signal_group(worker: _Worker) -> None:
    """SIGKILL the worker's process group (the black box's children too), or the worker alone."""
    pid = worker.process.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)  # the group exists only if the worker made it (setpgid)
    except (AttributeError, ProcessLookupError, PermissionError, OSError):
        with contextlib.suppress(OSError, ValueError):
            worker.process.kill()


def _kill(worker: _Worker) -> None:
    """:func:`_signal_group` and reap the worker."""
    if worker.process.is_alive():
        _signal_group(worker)
    worker.process.join(timeout=5)
    worker.dead = True


# --------------------------------------------------------------------------- Dask
def _dask_evaluate(black_box: Callable[..., Any], point: Mapping[str, Any], key: int, started: str,
                   queue: str | None) -> tuple[Any, str | None, float]:
    """Body of one evaluation on a Dask worker; reports its start (worker address) through the Queue ``queue``.

    The :class:`distributed.Event` ``started`` is set before the black box runs: if it is already set, a
    worker that ran this evaluation died and the scheduler gave the task to another one, so the evaluation
    is reported as crashed instead of being run again.
    """
    from distributed import Event, Queue, get_worker

    event = Event(started)
    if event.is_set():
        return None, (f"{CRASHED}: the Dask worker running the evaluation died (a segfault, os._exit or out of "
                      "memory); it is not run again"), float("nan")
    event.set()
    if queue is not None:
        Queue(queue).put([key, get_worker().address])
    value, error, seconds = evaluate_point(black_box, point)
    try:
        pickle.dumps(value)
    except Exception as err:  # noqa: BLE001 -- the value could not travel back
        return None, (f"the black box returned a {type(value).__name__} that cannot be sent back from the Dask "
                      f"worker ({type(err).__name__}: {err})"), seconds
    return value, error, seconds


@dataclass
class _Task:
    key: int
    point: Mapping[str, Any]
    event: str
    address: str | None = None
    started: float | None = None
    submitted: float = field(default_factory=time.monotonic)


class DaskPool(Evaluator):
    """Evaluations as tasks on the Dask cluster of ``client`` (an existing :class:`distributed.Client`).

    With ``eval_timeout``, each task reports its start and worker through a :class:`distributed.Queue`, and a
    monitor thread cancels a task that runs past the limit and restarts its worker through the worker's nanny
    (workers started without a nanny cannot be restarted: the evaluation is recorded as timed out, but keeps
    that worker's thread busy until it ends). Start workers with ``--nthreads 1``: a restart ends every
    evaluation on that worker.

    Args:
        client: a connected :class:`distributed.Client`; it is not closed here.
        black_box: the function to evaluate (serialised by Dask, with cloudpickle).
        n_workers: evaluations in flight at once; ``None``: the cluster's threads when the run starts.
        eval_timeout: seconds an evaluation may run, from its start on a worker.
    """

    def __init__(self, client: Any, black_box: Callable[..., Any], n_workers: int | None = None,
                 eval_timeout: float | None = None) -> None:
        from distributed import Queue

        dump_black_box(black_box)
        self.client = client
        self.black_box = black_box
        self.eval_timeout = eval_timeout
        threads = sum(client.nthreads().values())
        self.capacity = int(n_workers) if n_workers is not None else max(1, threads)
        if threads == 0:
            logger.warning("the Dask cluster has no workers yet; evaluations wait for one")
        self.where = f"the Dask cluster at {getattr(client.scheduler, 'address', '?')} ({threads} threads)"
        self._token = uuid.uuid4().hex[:12]
        self._queue = Queue(f"mcbo-eval-{self._token}", client=client) if eval_timeout else None
        self._tasks: dict[Any, _Task] = {}
        self._expired: list[Outcome] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        if eval_timeout:
            self._monitor = threading.Thread(target=self._enforce_timeouts, name="mcbo-dask-timeouts", daemon=True)
            self._monitor.start()

    def submit(self, key: int, point: Mapping[str, Any]) -> None:
        event = f"mcbo-eval-{self._token}-{key}-started"
        future = self.client.submit(_dask_evaluate, self.black_box, dict(point), key, event,
                                    None if self._queue is None else self._queue.name,
                                    key=f"mcbo-eval-{self._token}-{key}", pure=False, retries=0)
        with self._lock:
            self._tasks[future] = _Task(key, dict(point), event)

    def wait(self) -> list[Outcome]:
        from distributed import wait as dask_wait

        while True:
            with self._lock:
                futures = list(self._tasks)
                if not futures and not self._expired:
                    return []
            if futures:
                try:
                    dask_wait(futures, timeout=_DASK_POLL_SECONDS, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
            else:
                self._closing.wait(_DASK_POLL_SECONDS)
            with self._lock:
                finished = [(f, self._tasks.pop(f)) for f in [f for f in self._tasks if f.done()]]
                done, self._expired = self._expired, []
            done += [self._finish(future, task) for future, task in finished]
            if done:
                return done

    def _finish(self, future: Any, task: _Task) -> Outcome:
        from distributed.scheduler import KilledWorker

        self._forget(task)
        elapsed = time.monotonic() - (task.started or task.submitted)
        if future.status == "finished":
            value, error, seconds = future.result()
            return Outcome(task.key, value, error, elapsed if seconds != seconds else seconds)
        try:
            err = future.exception()
        except Exception as cancelled:  # noqa: BLE001 -- a cancelled future raises instead
            err = cancelled
        if isinstance(err, KilledWorker):
            logger.warning("the Dask workers evaluating %s died: %s", _shown(task.point), err)
            return Outcome(task.key, None, f"{CRASHED}: the Dask workers running the evaluation died "
                                           f"({type(err).__name__}: {err})", elapsed)
        raise RuntimeError(f"an evaluation task failed on the Dask cluster before the black box could run "
                           f"({type(err).__name__}: {err}); the workers must be able to import the black box's "
                           f"module and mcbo") from err

    def _enforce_timeouts(self) -> None:
        """Monitor thread: note where tasks started; cancel those past ``eval_timeout`` and restart their worker."""
        assert self.eval_timeout and self._queue is not None
        while not self._closing.wait(_DASK_POLL_SECONDS):
            try:
                starts = self._queue.get(batch=True)
            except Exception as err:  # noqa: BLE001 -- the client is closing, or the scheduler is slow to answer
                if self._closing.is_set():
                    return
                logger.warning("cannot read the start messages of evaluations (%s: %s); trying again",
                               type(err).__name__, err)
                continue
            now, expired = time.monotonic(), []
            with self._lock:
                by_key = {task.key: task for task in self._tasks.values()}
                for key, address in starts:
                    task = by_key.get(int(key))
                    if task is not None and task.started is None:
                        task.address, task.started = address, now
                for future, task in list(self._tasks.items()):
                    if task.started is not None and now - task.started >= self.eval_timeout and not future.done():
                        del self._tasks[future]
                        expired.append((future, task))
                        self._expired.append(Outcome(
                            task.key, None, f"{TIMEOUT}: the evaluation ran longer than eval_timeout="
                                            f"{self.eval_timeout:g} s; its worker {task.address} was restarted",
                            now - task.started))
            for future, task in expired:
                logger.warning("the evaluation of %s ran past eval_timeout=%g s on %s; restarting that worker",
                               _shown(task.point), self.eval_timeout, task.address)
                future.cancel()
                try:
                    status = self.client.restart_workers([task.address], raise_for_error=False)
                    if status.get(task.address) != "OK":
                        logger.warning("Dask worker %s was not restarted (%s); the timed-out evaluation may keep "
                                       "running there", task.address, status.get(task.address))
                except Exception as err:  # noqa: BLE001 -- no nanny, or the worker is gone: the run goes on
                    logger.warning("could not restart Dask worker %s (%s: %s); the timed-out evaluation may keep "
                                   "running there", task.address, type(err).__name__, err)
                self._forget(task)

    def _forget(self, task: _Task) -> None:
        from distributed import Event

        with contextlib.suppress(Exception):
            Event(task.event, client=self.client).clear()

    def close(self) -> None:
        self._closing.set()
        if self._monitor is not None:
            self._monitor.join(timeout=30)
        with self._lock:
            tasks, self._tasks = self._tasks, {}
        if tasks:
            with contextlib.suppress(Exception):
                self.client.cancel(list(tasks))
            for task in tasks.values():
                self._forget(task)
        if self._queue is not None:
            with contextlib.suppress(Exception):
                self._queue.close()


def make_evaluator(black_box: Callable[..., Any], n_workers: int | None, executor: Any = None,
                   eval_timeout: float | None = None) -> Evaluator:
    """A :class:`DaskPool` on ``executor`` (a :class:`distributed.Client`), else a :class:`LocalProcessPool`."""
    if executor is None:
        return LocalProcessPool(black_box, n_workers or 1, eval_timeout)
    try:
        from distributed import Client
    except ImportError:
        Client = None  # noqa: N806 -- nothing can be a Client then
    if Client is None or not isinstance(executor, Client):
        raise ValueError(f"executor must be a distributed.Client connected to a Dask cluster (pip install "
                         f"distributed), got {type(executor).__name__}")
    return DaskPool(executor, black_box, n_workers, eval_timeout)


# --------------------------------------------------------------------------- durable runs
_STORE_FORMAT = "1"
_STORE_TABLES = {"optimize_run", "optimize_evaluations", "optimize_state", "optimize_inflight"}
_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS optimize_run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS optimize_evaluations (
    idx INTEGER PRIMARY KEY,
    point TEXT NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    error TEXT NOT NULL,
    ask_seconds REAL,
    eval_seconds REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS optimize_state (id INTEGER PRIMARY KEY CHECK (id = 0), n_records INTEGER NOT NULL,
                                           state TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS optimize_inflight (point TEXT PRIMARY KEY, attempts INTEGER NOT NULL);
"""
_SQLITE_HEADER = b"SQLite format 3\x00"


def storage_path(storage: str | os.PathLike[str]) -> Path:
    """The file of ``storage``: ``"sqlite:///run.db"`` (relative), ``"sqlite:////abs/run.db"`` or a plain path."""
    if isinstance(storage, os.PathLike):
        return Path(storage)
    if not isinstance(storage, str) or not storage:
        raise ValueError(f"storage must be a path or 'sqlite:///path.db', got {storage!r}")
    if "://" in storage:
        scheme, _, rest = storage.partition("://")
        if scheme != "sqlite" or not rest.startswith("/") or rest == "/":
            raise ValueError(f"storage {storage!r}: only SQLite files are supported, written 'sqlite:///run.db' "
                             f"(relative) or 'sqlite:////abs/path/run.db', or as a plain path")
        return Path(rest[1:])
    return Path(storage)


@dataclass
class StoredRun:
    """What a :class:`RunStore` holds: the run's identity, its rows in index order, the latest solver state
    (without ``records``) and the points in flight when it was written (point JSON -> attempts)."""

    identity: dict[str, str]
    rows: list[dict[str, Any]]
    state: str | None
    inflight: dict[str, int]


class RunStore:
    """The SQLite file of one durable ``optimize`` run, locked against a second concurrent run.

    Args:
        path: the file (created with its folder when missing). A file that is not SQLite, or an SQLite
            database of another program (an ``mcbo bench`` results database included), is refused.

    Raises:
        ValueError: the file is not an optimize storage, or another process runs on it now.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"storage {str(self.path)!r} is a folder; expected an SQLite file")
        if self.path.is_file() and self.path.stat().st_size > 0:
            with self.path.open("rb") as handle:
                if handle.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                    raise ValueError(f"storage {str(self.path)!r} is not an SQLite file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_file(self.path.with_name(self.path.name + ".lock"))
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not tables <= _STORE_TABLES:
                raise ValueError(f"storage {str(self.path)!r} is an SQLite database of another program (tables "
                                 f"{sorted(tables - _STORE_TABLES)}); give optimize a file of its own")
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives a killed process
            self.conn.executescript(_STORE_SCHEMA)
        except BaseException:
            self.close()
            raise
        self.n_rows = int(self.conn.execute("SELECT COUNT(*) FROM optimize_evaluations").fetchone()[0])

    def load(self) -> StoredRun | None:
        """The stored run, or ``None`` when the file holds none yet."""
        identity = dict(self.conn.execute("SELECT key, value FROM optimize_run").fetchall())
        if not identity:
            return None
        if identity.get("format") != _STORE_FORMAT:
            raise ValueError(f"storage {str(self.path)!r} has format {identity.get('format')!r}; this mcbo reads "
                             f"format {_STORE_FORMAT!r}")
        cursor = self.conn.execute("SELECT idx, point, value, status, error, ask_seconds, eval_seconds "
                                   "FROM optimize_evaluations ORDER BY idx")
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        state = self.conn.execute("SELECT n_records, state FROM optimize_state").fetchone()
        if state is not None and int(state[0]) != len(rows):
            raise ValueError(f"storage {str(self.path)!r} is inconsistent: its solver state covers {state[0]} "
                             f"evaluations but {len(rows)} are stored")
        inflight = dict(self.conn.execute("SELECT point, attempts FROM optimize_inflight").fetchall())
        return StoredRun(identity, rows, None if state is None else state[1], inflight)

    def commit(self, rows: list[tuple[Any, ...]], state: str, inflight: Mapping[str, int],
               identity: Mapping[str, str] | None = None) -> None:
        """In one transaction: append ``rows`` (``idx, point JSON, value, status, error, ask_seconds,
        eval_seconds``), replace the solver ``state`` and the points in flight (point JSON -> attempts), and
        write the run's ``identity`` (solver, space, seed, ...) when given (the first commit of a run)."""
        now = time.time()
        with self._transaction():
            if identity is not None:
                self.conn.executemany("INSERT OR REPLACE INTO optimize_run (key, value) VALUES (?, ?)",
                                      [("format", _STORE_FORMAT), *((k, str(v)) for k, v in identity.items())])
            self.conn.executemany("INSERT INTO optimize_evaluations (idx, point, value, status, error, ask_seconds, "
                                  "eval_seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  [(*row, now) for row in rows])
            self.n_rows += len(rows)
            self.conn.execute("INSERT OR REPLACE INTO optimize_state (id, n_records, state, updated_at) "
                              "VALUES (0, ?, ?, ?)", (self.n_rows, state, now))
            self.conn.execute("DELETE FROM optimize_inflight")
            self.conn.executemany("INSERT INTO optimize_inflight (point, attempts) VALUES (?, ?)",
                                  list(inflight.items()))

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            self.n_rows = int(self.conn.execute("SELECT COUNT(*) FROM optimize_evaluations").fetchone()[0])
            raise
        self.conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
            self.conn = None
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_file(path: Path) -> Any:
    """An open file holding an exclusive ``flock`` on ``path`` (released when closed or the process dies)."""
    handle = path.open("a+")
    try:
        import fcntl
    except ImportError:  # no flock (Windows): concurrent runs on one storage are not detected
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ValueError(f"storage {str(path)[:-5]!r} is in use by another running optimize (lock {str(path)!r}); "
                         "wait for it to end or give another storage") from None
    return handle


def finite_or_none(number: float) -> float | None:
    """``number`` for SQLite: ``None`` in place of NaN."""
    return None if number is None or (isinstance(number, float) and math.isnan(number)) else float(number)


__all__ = [
    "BlackBoxPicklingError", "CRASHED", "DaskPool", "Evaluator", "INTERRUPTED", "LocalProcessPool", "Outcome",
    "RunStore", "StoredRun", "TIMEOUT", "dump_black_box", "evaluate_point", "finite_or_none", "make_evaluator",
    "storage_path",
]
