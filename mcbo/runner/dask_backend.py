"""Run suite jobs on Dask (``distributed``): a local cluster of worker processes or an existing scheduler.

Each job is one Dask task running :func:`mcbo.runner.jobs.run_job_on_worker`, which puts every
message (evaluation, checkpoint, end) into a :class:`distributed.Queue` named for this suite run.
The client loop drains the queue into the :class:`~mcbo.runner.recording.Recorder` (the only writer
of the database) while watching the job futures; a job whose future errs is recorded as failed
after its queued messages are stored. Tasks are submitted with ``retries=0``: a run that fails is
continued by running the suite again, from what was stored. A job with an ``eval_timeout`` starts its own
worker process on its Dask worker for its evaluations (:class:`mcbo.runner.jobs.IsolatedEvaluator`; the Dask
worker's daemon flag, which forbids that, is lifted meanwhile), so a hung evaluation is ended without
restarting the Dask worker, which would end the whole job.

If a worker process dies, Dask may start the job again on another worker from the history it was
submitted with; the evaluations it sends again carry indices already stored and are ignored (the
database keeps the first copy of each ``(run, index)``), so counts stay exact. With a seeded solver
and a deterministic task the repeated evaluations are the same points and values.

Ctrl-C: the workers of a local cluster are started with SIGINT ignored, so a Ctrl-C at the terminal
(which signals the whole process group) reaches only the client. The client then stores the messages
already queued, cancels the jobs and closes the cluster with Dask's shutdown messages silenced, and
raises ``KeyboardInterrupt`` for :func:`mcbo.runner.executor.run_suite` to report.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import uuid
from collections.abc import Iterator

from distributed import Client, LocalCluster, Queue, wait

from mcbo.runner.config import ConfigError
from mcbo.runner.jobs import run_job_on_worker
from mcbo.runner.recording import Recorder, Todo

logger = logging.getLogger(__name__)

#: Thread-count variables of the BLAS / OpenMP runtimes, set in every local worker's environment.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Loggers of Dask and the libraries under it; they log at INFO to their own handlers (cluster start/stop).
DASK_LOGGERS = ("distributed", "dask", "tornado", "bokeh")


def connect(scheduler: str, timeout: float) -> Client:
    """A client of the Dask scheduler at ``scheduler``, or a :class:`ConfigError` after ``timeout`` seconds."""
    with quiet_dask_logs():
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise ConfigError(f"scheduler: cannot connect to a Dask scheduler at {scheduler!r}: {reason}; expected the "
                              f"address of a running scheduler, e.g. tcp://10.0.0.1:8786") from None


@contextlib.contextmanager
def quiet_dask_logs() -> Iterator[bool]:
    """Raise Dask's loggers to WARNING unless mcbo logs at INFO (``mcbo -v``); yields whether they are quiet.

    ``distributed`` gives its loggers their own stderr handlers at INFO, so the root logger's level does
    not hold them back; their levels are restored on exit.
    """
    quiet = not logging.getLogger("mcbo").isEnabledFor(logging.INFO)
    with _at_least(dict.fromkeys(DASK_LOGGERS, logging.WARNING) if quiet else {}):
        yield quiet


@contextlib.contextmanager
def _at_least(levels: dict[str, int]) -> Iterator[None]:
    """Raise each named logger to at least its level in ``levels``; restore the levels on exit."""
    loggers = {logging.getLogger(name): level for name, level in levels.items()}
    previous = {item: item.level for item in loggers}
    for item, level in loggers.items():
        item.setLevel(max(item.level, level))
    try:
        yield
    finally:
        for item, level in previous.items():
            item.setLevel(level)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this process (main thread only; elsewhere nothing changes); restore it on exit.

    Processes started meanwhile inherit the ignored signal: Python keeps SIGINT ignored when it starts
    with it ignored, so local Dask workers started here leave Ctrl-C to the client.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigint_as_flag() -> Iterator[threading.Event]:
    """While inside, SIGINT sets the yielded event instead of raising ``KeyboardInterrupt`` (main thread only).

    The client loop checks it between two rounds of storing messages, so a Ctrl-C never cuts a write short.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_on_dask(
    todo: list[Todo],
    recorder: Recorder,
    workers: int | None,
    scheduler: str | None,
    checkpoint_seconds: float,
    torch_threads: int | None,
    client: Client | None = None,
    scheduler_timeout: float = 10.0,
) -> None:
    """Run ``todo`` on a new ``LocalCluster(workers)`` or on the cluster at ``scheduler``.

    ``client``, when given, is a client of ``scheduler`` connected before (see :func:`connect`); its
    caller closes it. Dask's own log messages below WARNING are dropped unless mcbo logs at INFO.
    Every job pins ``torch_threads`` itself (:func:`mcbo.runner.jobs.pinned`); local workers also get it
    as their OpenMP / BLAS thread counts before they start.
    """
    with quiet_dask_logs() as quiet:
        cluster, given = None, client
        if scheduler:
            client = client or connect(scheduler, scheduler_timeout)
        else:
            env = {name: str(torch_threads or 1) for name in THREAD_ENV}
            # The workers inherit the ignored SIGINT: Ctrl-C is the client's to handle. (A Ctrl-C during these
            # seconds of start-up is ignored too.) No dashboard; the scheduler's own HTTP server on a free local
            # port (the default, 8787, may be taken by another cluster, which Dask warns about).
            with sigint_ignored():
                cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=True,
                                       dashboard_address=None, env=env,
                                       scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                                       silence_logs=logging.WARNING if quiet else False)
        stopping = False
        try:
            if cluster is not None:
                client = Client(cluster)
            _run(client, todo, recorder, checkpoint_seconds, torch_threads, local=cluster is not None)
        except BaseException:
            stopping = True
            raise
        finally:
            # Stopping early (Ctrl-C, a database that cannot be written): jobs killed mid-way are expected, so
            # Dask's messages about them are dropped, and a Ctrl-C must not cut the shutdown short.
            silence = {"distributed": logging.CRITICAL, "tornado": logging.CRITICAL} if stopping else {}
            nanny = {"distributed.nanny": logging.ERROR} if quiet else {}
            with sigint_ignored() if stopping else contextlib.nullcontext(), _at_least({**nanny, **silence}):
                if client is not None and client is not given:
                    client.close()
                if cluster is not None:  # a nanny killing a slow-to-stop worker at shutdown is no news to the user
                    cluster.close()


def _run(client: Client, todo: list[Todo], recorder: Recorder, checkpoint_seconds: float,
         torch_threads: int | None, local: bool) -> None:
    """Submit every job, store their messages until all end; on Ctrl-C store what arrived, cancel the jobs
    (on a local cluster, its workers told not to log each cancelled job) and raise ``KeyboardInterrupt``."""
    queue = Queue(f"mcbo-suite-{uuid.uuid4().hex}", client=client)
    futures = {}
    for item in todo:
        recorder.start(item.run_id)
        solver, task, seed = item.job.key
        future = client.submit(
            run_job_on_worker, item.job, item.run_id, queue.name, item.history, item.state, checkpoint_seconds,
            torch_threads, key=f"mcbo-run-{item.run_id}-{solver}-{task}-{seed}-{uuid.uuid4().hex[:8]}",
            pure=False, retries=0,
        )
        futures[future] = item
    pending = set(futures)
    with sigint_as_flag() as stop:
        try:
            _wait_all(futures, pending, queue, recorder, stop)
            if stop.is_set():  # Ctrl-C: store what arrived
                _drain(queue, recorder)
        finally:
            if pending:  # stopped early (Ctrl-C, or the database cannot be written): stop the jobs
                if local:
                    with contextlib.suppress(Exception):
                        client.run(_silence_worker_logs)
                client.cancel(list(pending))
                logger.info("stopped early: %d jobs cancelled", len(pending))
    if stop.is_set():
        raise KeyboardInterrupt
    _drain(queue, recorder)
    for future, item in futures.items():
        if future.status == "finished" and item.run_id not in recorder.finished:
            logger.warning("run %s finished without its end message; marking it done", item.run_id)
            recorder.handle({"type": "done", "run_id": item.run_id})
    queue.close()


def _wait_all(futures: dict, pending: set, queue: Queue, recorder: Recorder, stop: threading.Event) -> None:
    """Store the jobs' messages as they arrive until every future in ``pending`` is done (it is emptied) or
    ``stop`` is set."""
    while pending and not stop.is_set():
        try:  # sleep until a job ends or 0.25 s pass, then store what arrived
            wait(list(pending), timeout=0.25, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass
        _drain(queue, recorder)
        for future in [f for f in pending if f.done()]:
            pending.discard(future)
            if future.status == "finished":
                continue  # its "done" message was queued before the future finished
            _drain(queue, recorder)  # store what the job sent before it failed
            item = futures[future]
            try:
                err = future.exception()
            except Exception as cancelled:  # noqa: BLE001 -- a cancelled future raises instead
                err = cancelled
            recorder.fail(item.run_id, item.job, err)


def _silence_worker_logs() -> None:
    """Run on each worker when the suite is stopped: its cancelled jobs are no news to the user."""
    for name in DASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _drain(queue: Queue, recorder: Recorder) -> None:
    """Hand every message waiting in the queue to the recorder, in order (does not block)."""
    for message in queue.get(batch=True):
        recorder.handle(message)
