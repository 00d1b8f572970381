"""Tasks for the ``eval_timeout`` tests of suites: one whose evaluations hang or crash at chosen points, one
that does not pickle.

Importing this module registers :data:`HANG_TASK` and :data:`UNPICKLABLE_TASK`; a config lists this module
under ``imports`` so that Dask workers register them too.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np

from mcbo.space import Categorical, SearchSpace
from mcbo.tasks import TASKS, Task, register_task

HANG_TASK = "runner_test_hang"
#: The levels of the task's one variable: two that evaluate, one that hangs, one that kills its process.
LEVELS = ["a", "b", "hang", "crash"]

if HANG_TASK not in TASKS:

    @register_task(HANG_TASK)
    class HangingTask(Task):
        """One categorical variable: ``a`` is 1, ``b`` is 2, ``hang`` sleeps an hour, ``crash`` segfaults."""

        name = HANG_TASK

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed)
            self._space = SearchSpace([Categorical("x", LEVELS)])

        @property
        def space(self) -> SearchSpace:
            return self._space

        def _evaluate(self, points):
            for p in points:
                if p["x"] == "hang":
                    time.sleep(3600)
                elif p["x"] == "crash":
                    os.kill(os.getpid(), signal.SIGSEGV)
            return np.array([1.0 + LEVELS.index(p["x"]) for p in points])


UNPICKLABLE_TASK = "runner_test_unpicklable"

if UNPICKLABLE_TASK not in TASKS:

    @register_task(UNPICKLABLE_TASK)
    class UnpicklableTask(Task):
        """:data:`HANG_TASK`'s space and values for ``a`` and ``b``, holding a lock (which does not pickle)."""

        name = UNPICKLABLE_TASK

        def __init__(self, seed: int = 0) -> None:
            super().__init__(seed)
            self._space = SearchSpace([Categorical("x", LEVELS)])
            self._lock = threading.Lock()

        @property
        def space(self) -> SearchSpace:
            return self._space

        def _evaluate(self, points):
            with self._lock:
                return np.array([1.0 + LEVELS.index(p["x"]) for p in points])
