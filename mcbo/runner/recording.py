"""The client side of a suite run: the jobs still to run, and the recorder that stores what they send.

Both the in-process executor (:mod:`mcbo.runner.executor`) and the Dask backend
(:mod:`mcbo.runner.dask_backend`) hand every job message to one :class:`Recorder`, the only writer of
the results database.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from mcbo.runner.config import JobSpec
from mcbo.runner.storage import ResultsDB

logger = logging.getLogger(__name__)


@dataclass
class Todo:
    """A job to run: its spec, run id, stored evaluations (in order) and latest checkpoint."""

    job: JobSpec
    run_id: int
    history: list[dict[str, Any]] = field(default_factory=list)
    state: str | None = None


class Recorder:
    """The client side: turns job messages into database rows and progress-bar updates."""

    def __init__(self, db: ResultsDB, n_jobs: int, jobs_done: int, n_evals: int, evals_done: int,
                 progress: bool) -> None:
        self.db = db
        self.job_bar = tqdm(total=n_jobs, initial=jobs_done, desc="runs", unit="run", disable=not progress,
                            position=0)
        self.eval_bar = tqdm(total=n_evals, initial=evals_done, desc="evaluations", unit="eval",
                             disable=not progress, position=1)
        self.finished: set[int] = set()

    def handle(self, message: dict[str, Any]) -> None:
        """Store one job message (see :mod:`mcbo.runner.jobs`): what a job pinned, an evaluation (with the
        checkpoint of its batch, in one transaction), a checkpoint or a run's end."""
        kind = message.get("type")
        if kind == "eval":
            checkpoint = message.get("checkpoint")
            state = (int(checkpoint["n_evaluations"]), checkpoint["state"]) if checkpoint else None
            if self.db.add_evaluation(message, state=state):
                self.eval_bar.update(1)
        elif kind == "start":
            self._started(int(message["run_id"]), message.get("environment") or {})
        elif kind == "state":
            self.db.save_state(message["run_id"], int(message["n_evaluations"]), message["state"])
        elif kind == "done":
            self._finish(int(message["run_id"]), "done", None)
        else:
            raise ValueError(f"unknown job message type {kind!r}")

    def _started(self, run_id: int, environment: dict[str, Any]) -> None:
        previous = self.db.set_environment(run_id, environment)
        if previous is not None and previous != environment and self.db.count(run_id) > 0:
            logger.warning("run %s continues with other settings than it started with (%s, now %s); it may "
                           "differ from an uninterrupted run", run_id, previous, environment)

    def start(self, run_id: int) -> None:
        self.db.set_status(run_id, "running")

    def fail(self, run_id: int, job: JobSpec, err: BaseException) -> None:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__)).strip()
        logger.error("run %s %s failed: %s: %s", run_id, job.key, type(err).__name__, err)
        self._finish(run_id, "failed", text)

    def _finish(self, run_id: int, status: str, error: str | None) -> None:
        if run_id in self.finished:
            return
        self.finished.add(run_id)
        self.db.set_status(run_id, status, error)
        self.job_bar.update(1)

    def interrupted(self, run_ids: list[int]) -> None:
        """Set the runs that were running back to ``pending`` (the suite was stopped, not the runs)."""
        for run_id in run_ids:
            if run_id not in self.finished and self.db.status(run_id) == "running":
                self.db.set_status(run_id, "pending")

    def close(self) -> None:
        self.eval_bar.close()
        self.job_bar.close()


__all__ = ["Recorder", "Todo"]
