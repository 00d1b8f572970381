"""Parallel evaluation: wall-clock speed-up of ``Solver.optimize`` with worker processes, and the sample
efficiency of asynchronous batches against sequential BO.

Speed-up: a black box that sleeps 1 s and then evaluates ``ackley_cat`` (waiting dominates, as with a remote
simulator or a queue) gets ``--speedup-evals`` evaluations from random search (``rs``, whose ask takes
microseconds, so the figure is the evaluation machinery's, not the solver's) with 1 worker (the in-process
loop) and with 2, 4 and 8 local worker processes. Speed-up = T(1) / T(k), efficiency = speed-up / k. The
forkserver is started once before the timings (as in any program past its first parallel run); starting the
workers themselves is timed. ``--speedup-recipes rs casmopolitan`` adds BO, whose ask (a GP fit and an
acquisition search, ~0.1-1 s here) bounds how many workers it keeps busy.

Sample efficiency: ``casmopolitan`` on ``ackley_cat`` and ``pest_control``, ``--seeds`` seeds, ``--budget``
evaluations: sequential (the in-process loop, one point per ask) against asynchronous with ``--async-workers``
workers and a zero-sleep black box (each ask sees the points still running as pending: Kriging-believer
fantasies). Best value at the budget, mean +- s.e. over seeds, and a paired Wilcoxon test (same seeds, same
task instances and initial designs). With a zero-sleep black box most evaluations end while the next point is
being chosen, so asks take several points at once; the table gives the mean number of points pending at an
ask and of points per ask, to say which regime was measured.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/parallel_speedup.py
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import header_markdown, markdown_table, warn_if_threads_unset, write_markdown  # noqa: E402
from benchmarks.paired import mean_se, paired_test  # noqa: E402


class SleepyTask:
    """A registered task behind a sleep: ``seconds`` of waiting, then the task's value (picklable)."""

    def __init__(self, name: str, seed: int, seconds: float) -> None:
        from mcbo.tasks import build_task

        self.task = build_task(name, seed=seed)
        self.seconds = seconds

    def __call__(self, point: dict[str, Any]) -> float:
        if self.seconds:
            time.sleep(self.seconds)
        return self.task(point)


def _recording_asks(solver: Any) -> list[tuple[int, int]]:
    """Note ``(points pending, points asked)`` at every ask of ``solver`` (an instance attribute over ``ask``)."""
    asks: list[tuple[int, int]] = []
    ask = solver.ask

    def noted(n: int = 1) -> list[dict[str, Any]]:
        asks.append((len(solver.pending), n))
        return ask(n)

    solver.ask = noted
    return asks


# --------------------------------------------------------------------------------------- speed-up
def speedup(recipes: list[str], workers: list[int], n_evals: int, sleep: float, n_init: int) -> list[dict[str, Any]]:
    from mcbo.solvers import RandomSearch, build_solver

    black_box = SleepyTask("ackley_cat", 0, sleep)
    RandomSearch(black_box.task.space, seed=0).optimize(black_box, 2, n_workers=2)  # start the forkserver
    rows = []
    for recipe in recipes:
        base = None
        for k in workers:
            overrides = {"n_init": n_init} if recipe != "rs" else {}
            solver = build_solver(recipe, black_box.task.space, seed=0, **overrides)
            start = time.perf_counter()
            solver.optimize(black_box, n_evals, n_workers=k)
            seconds = time.perf_counter() - start
            base = seconds if k == 1 else base
            history = solver.history
            rows.append({
                "recipe": recipe, "workers": k, "evaluations": len(history),
                "failed": int((history["status"] == "failed").sum()), "wall s": f"{seconds:.2f}",
                "ideal s": f"{n_evals * sleep / k:.1f}",
                "speed-up": f"{base / seconds:.2f}x" if base else "n/a",
                "efficiency (speed-up / workers)": f"{base / seconds / k:.2f}" if base else "n/a",
            })
            print(rows[-1], flush=True)
    return rows


# ------------------------------------------------------------------------------ sample efficiency
def _one_run(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from mcbo.solvers import build_solver

    black_box = SleepyTask(spec["task"], spec["seed"], 0.0)
    solver = build_solver(spec["recipe"], black_box.task.space, seed=spec["seed"], n_init=spec["n_init"])
    asks = _recording_asks(solver)
    start = time.perf_counter()
    if spec["workers"] > 1:
        solver.optimize(black_box, spec["budget"], n_workers=spec["workers"])
    else:
        solver.optimize(black_box, spec["budget"])
    history = solver.history
    best = history["value"].where(history["status"] == "ok").min()
    return {
        "mode": spec["mode"], "task": spec["task"], "seed": spec["seed"],
        "best": float(best) if best == best else math.inf, "n": len(history),
        "distinct": len(history.drop_duplicates(subset=black_box.task.space.names)),
        "seconds": time.perf_counter() - start,
        "pending": [p for p, _ in asks], "asked": [n for _, n in asks],
    }


def sample_efficiency(tasks: list[str], seeds: int, budget: int, n_init: int, workers: int,
                      processes: int) -> list[dict[str, Any]]:
    modes = {"sequential": 1, f"async x{workers}": workers}
    specs = [{"mode": mode, "task": task, "seed": seed, "recipe": "casmopolitan", "budget": budget,
              "n_init": n_init, "workers": k}
             for task in tasks for seed in range(seeds) for mode, k in modes.items()]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # spawn: fresh interpreters, so each run's worker processes use a forkserver of its own
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
        runs = []
        for run in pool.map(_one_run, specs):
            print({k: v for k, v in run.items() if k not in ("pending", "asked")}, flush=True)
            runs.append(run)
    assert all(r["n"] == budget and r["distinct"] == budget for r in runs), "a run lost or repeated evaluations"
    rows = []
    seq_mode, async_mode = list(modes)
    for task in tasks:
        by = {m: sorted((r for r in runs if r["mode"] == m and r["task"] == task), key=lambda r: r["seed"])
              for m in modes}
        test = paired_test([r["best"] for r in by[async_mode]], [r["best"] for r in by[seq_mode]])
        for mode in modes:
            best, se = mean_se([r["best"] for r in by[mode]])
            secs, secs_se = mean_se([r["seconds"] for r in by[mode]])
            pending = [p for r in by[mode] for p in r["pending"]]
            asked = [n for r in by[mode] for n in r["asked"]]
            rows.append({
                "task": task, "mode": mode, "best at budget (mean +- s.e.)": f"{best:.3f} +- {se:.3f}",
                "wall s per run": f"{secs:.0f} +- {secs_se:.0f}",
                "asks per run": f"{len(asked) / len(by[mode]):.1f}",
                "points per ask": f"{sum(asked) / len(asked):.2f}",
                "pending at ask": f"{sum(pending) / len(pending):.2f}",
                "async vs sequential: W/T/L, p": (f"{test['wins']}/{test['ties']}/{test['losses']}, p={test['p']:.3g}"
                                                  if mode == async_mode else ""),
            })
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speedup-recipes", nargs="+", default=["rs"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--speedup-evals", type=int, default=64, help="evaluations per speed-up run")
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds the speed-up black box waits")
    parser.add_argument("--tasks", nargs="+", default=["ackley_cat", "pest_control"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--async-workers", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2, help="sample-efficiency runs at once")
    parser.add_argument("--skip-speedup", action="store_true")
    parser.add_argument("--skip-efficiency", action="store_true")
    parser.add_argument("--out", default="parallel_speedup.md")
    args = parser.parse_args(argv)
    warn_if_threads_unset()

    sections = []
    if not args.skip_efficiency:  # first: its pool forks nothing from a process with a forkserver
        rows = sample_efficiency(args.tasks, args.seeds, args.budget, args.n_init, args.async_workers,
                                 args.processes)
        sections.append("## Sample efficiency: asynchronous batches vs sequential BO\n\n" + markdown_table(rows))
        print(markdown_table(rows), flush=True)
    if not args.skip_speedup:
        rows = speedup(args.speedup_recipes, args.workers, args.speedup_evals, args.sleep, args.n_init)
        sections.insert(0, "## Wall-clock speed-up (black box: sleep "
                        f"{args.sleep:g} s + ackley_cat, {args.speedup_evals} evaluations)\n\n" + markdown_table(rows))
        print(markdown_table(rows), flush=True)
    command = "OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/parallel_speedup.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    text = header_markdown(
        "Parallel evaluation: speed-up and sample efficiency", __doc__,
        {"command": command.strip(), "speed-up recipes": " ".join(args.speedup_recipes),
         "workers": " ".join(map(str, args.workers)), "speed-up evaluations": args.speedup_evals,
         "sleep (s)": args.sleep, "tasks": " ".join(args.tasks), "seeds": args.seeds, "budget": args.budget,
         "n_init": args.n_init, "async workers": args.async_workers, "runs at once": args.processes},
    ) + "\n" + "\n\n".join(sections) + "\n"
    print(f"written to {write_markdown(args.out, text)}")


if __name__ == "__main__":
    main()
