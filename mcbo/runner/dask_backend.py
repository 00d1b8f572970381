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

import logging
import uuid
from typing import Any

from distributed import Client, LocalCluster, Queue, WorkerPlugin, wait

from mcbo.runner.jobs import run_job_on_worker
from mcbo.runner.recording import Recorder, Todo

logger = logging.getLogger(__name__)

#: Thread-count variables of the BLAS / OpenMP runtimes, set in every local worker's environment.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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
) -> None:
    """Run ``todo`` on a new ``LocalCluster(workers)`` or on the cluster at ``scheduler``."""
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        env = {name: str(torch_threads or 1) for name in THREAD_ENV}
        cluster = LocalCluster(n_workers=int(workers or 1), threads_per_worker=1, processes=True,
                               dashboard_address=None, env=env, silence_logs=logging.WARNING)
        client = Client(cluster)
    try:
        if torch_threads is not None:
            client.register_plugin(TorchThreadsPlugin(torch_threads))
        _run(client, todo, recorder, checkpoint_seconds, torch_threads)
    finally:
        client.close()
        if cluster is not None:
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
