"""Sample-efficiency statistics shared by the benchmarks: run solvers over seeds, mean +- s.e., paired tests.

* :func:`run_seeds` -- one solver configuration on one task for several seeds, in worker processes
  (1 torch thread each); returns one row per (seed) with the best value, failures and seconds.
* :func:`mean_se` -- mean and standard error of the mean.
* :func:`paired_test` -- Wilcoxon signed-rank test on per-seed differences (two-sided), with the win/tie/loss
  count; the seeds pair the runs (same seed, same task instance, same initial design where a solver has one).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
from scipy.stats import wilcoxon


def _one_run(spec: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from mcbo.solvers import build_solver
    from mcbo.tasks import build_task

    task = build_task(spec["task"], seed=spec["seed"], **spec.get("task_kwargs", {}))
    solver = build_solver(spec["recipe"], task.space, seed=spec["seed"], **spec.get("overrides", {}))
    start = time.perf_counter()
    solver.optimize(task, spec["budget"])
    history = solver.history
    best = history["value"].where(history["status"] == "ok").min()
    return {
        "label": spec["label"], "task": spec["task"], "seed": spec["seed"],
        "best": float(best) if best == best else math.inf,
        "failed": int((history["status"] == "failed").sum()),
        "repeats": int(len(history) - len(history.drop_duplicates(subset=task.space.names))),
        "seconds": time.perf_counter() - start,
        "curve": history["best_value"].tolist(),
    }


def run_seeds(specs: Sequence[Mapping[str, Any]], workers: int | None = None) -> list[dict[str, Any]]:
    """Run every spec (``label, task, recipe, seed, budget[, overrides, task_kwargs]``); rows in spec order."""
    workers = workers or min(2, os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one_run, specs))


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean of ``values``."""
    arr = np.asarray(values, dtype=float)
    se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return float(arr.mean()), se


def paired_test(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Wilcoxon signed-rank test of ``a`` vs ``b`` paired by seed (lower is better).

    Returns ``p`` (two-sided; 1.0 when every pair ties) and ``wins``/``ties``/``losses`` of ``a`` against ``b``.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a_arr - b_arr
    wins, ties, losses = int((diff < 0).sum()), int((diff == 0).sum()), int((diff > 0).sum())
    p = 1.0 if wins + losses == 0 else float(wilcoxon(a_arr, b_arr, zero_method="zsplit").pvalue)
    return {"p": p, "wins": wins, "ties": ties, "losses": losses}
