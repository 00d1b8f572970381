"""Run suite jobs on Dask (``distributed``): a local cluster of worker processes or an existing scheduler.

Each job is one Dask task running :func:`mcbo.runner.jobs.run_job_on_worker`, which puts every
message (evaluation, checkpoint, end) into a :class:`distributed.Queue` named for this suite run.
The client loop drains the queue into the :class:`~mcbo.runner.recording.Recorder` (the only writer
of the database) while watching the job futures; a job whose future errs is recorded as failed
after its queued messages are stored. Tasks are submitted with ``retries=0``: a run that fails is
continued by running the suite again, from what was stored.

If a worker process dies, Dask may start the job again on another worker from the history it was
submitted with; the evaluations it sends again carry indices already stored and are ignored (the
database keeps the first copy of each ``(run, index)``), so counts stay exact. With a seeded solver
and a deterministic task the repeated evaluations are the same points and values.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from distributed import Client, LocalCluster, Queue, WorkerPlugin, wait

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


class TorchThreadsPlugin(WorkerPlugin):
    """Worker plugin: ``torch.set_num_threads(n)`` in every worker process when it starts."""

    name = "mcbo-torch-threads"

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def setup(self, worker: Any) -> None:
        import torch

        torch.set_num_threads(self.n)


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
    """
    with quiet_dask_logs() as quiet:
        cluster, given = None, client
        if scheduler:
            client = client or connect(scheduler, scheduler_timeout)
        else:
            env = {name: str(torch_threads or 1) for name in THREAD_ENV}
            cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=True,
                                   dashboard_address=None, env=env, silence_logs=logging.WARNING if quiet else False)
            client = Client(cluster)
        try:
            if torch_threads is not None:
                client.register_plugin(TorchThreadsPlugin(torch_threads))
            _run(client, todo, recorder, checkpoint_seconds, torch_threads)
        finally:
            if client is not given:
                client.close()
            if cluster is not None:  # a nanny killing a slow-to-stop worker at shutdown is no news to the user
                with _at_least({"distributed.nanny": logging.ERROR} if quiet else {}):
                    cluster.close()


def _run(client: Client, todo: list[Todo], recorder: Recorder, checkpoint_seconds: float,
         torch_threads: int | None) -> None:
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
    while pending:
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
    _drain(queue, recorder)
    for future, item in futures.items():
        if future.status == "finished" and item.run_id not in recorder.finished:
            logger.warning("run %s finished without its end message; marking it done", item.run_id)
            recorder.handle({"type": "done", "run_id": item.run_id})
    queue.close()


def _drain(queue: Queue, recorder: Recorder) -> None:
    """Hand every message waiting in the queue to the recorder, in order (does not block)."""
    for message in queue.get(batch=True):
        recorder.handle(message)
