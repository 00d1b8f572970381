"""Normalised regret of NAP, TNP-EI, GP-EI and random search on held-out tasks of a trained family.

For each of ``--n-tasks`` held-out tasks of the family of a meta-training config (task ``i`` of
the ``test`` split, seeds disjoint from training) every method runs ``--budget`` sequential
evaluations with seed 0:

* ``nap`` — the ``nap`` solver with the config's NAP checkpoint (acquisition head, greedy);
* ``nap-no-ppo`` — the same solver with the likelihood-only checkpoint: its untrained acquisition
  head ranks candidates by log-EI of the model's own predictive (an ablation: what PPO adds);
* ``tnp-ei`` — the ``tnp-ei`` recipe with the config's likelihood-only checkpoint (EI on the bar
  distribution's mean and variance, ``n_init`` 2);
* ``gp-ei`` — ``build_solver`` with an inline ``bo`` recipe: the default mixed GP, (log-)EI,
  ``n_init`` random points (``--gp-n-init``, default 5);
* ``rs`` — random search (the ``rs`` recipe).

Finite spaces are scored exhaustively (``pool`` optimiser for GP/TNP-EI, the whole space for NAP);
continuous ones on ``--n-candidates`` random points per step (``random`` optimiser / NAP's
sampled candidate set). Normalised regret is ``(best so far - y_min) / (y_max - y_min)`` with the
task's minimum and maximum (exact for tables, estimated from 20,000 random points otherwise), the
measure of HPO-B (Pineda Arango et al., 2021). The table reports its mean and standard error over
tasks at 10, 25 and 50 evaluations, the average rank (ties share ranks) and how many tasks each
method beats GP-EI on. Per-task curves go to ``benchmarks/results/nap_regret.csv``.

Run from the repository root after training::

    OMP_NUM_THREADS=1 .venv/bin/python -m mcbo.meta.cli meta-train configs/meta/hpo_krr_cpu.yaml
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/nap_regret.py --config configs/meta/hpo_krr_cpu.yaml
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch

from benchmarks.common import RESULTS_DIR, header_markdown, markdown_table, write_markdown
from mcbo.acq_optim.pool import enumerate_space
from mcbo.meta.config import load_config
from mcbo.meta.data import MetaTask, build_family
from mcbo.solvers import Solver, build_solver
from mcbo.space import SearchSpace

CHECKPOINTS = (10, 25, 50)
METHODS = ("nap", "nap-no-ppo", "tnp-ei", "gp-ei", "rs")


def _is_finite(space: SearchSpace) -> bool:
    try:
        enumerate_space(space, max_points=50_000)
    except ValueError:
        return False
    return True


def solver_factories(nap_path: Path, tnp_path: Path, space: SearchSpace, n_candidates: int,
                     gp_n_init: int) -> dict[str, Callable[[int], Solver]]:
    """Method name -> ``seed -> solver`` on ``space``."""
    optimiser: dict[str, Any] = {"type": "pool"} if _is_finite(space) else {"type": "random",
                                                                            "n_candidates": n_candidates}
    gp_recipe = {"name": "gp-ei", "solver": "bo", "model": {"type": "gp"}, "acquisition": {"type": "ei"},
                 "acq_optimizer": optimiser, "n_init": gp_n_init, "init_sampler": "uniform"}
    return {
        "nap": lambda seed: build_solver({"name": "nap", "solver": "nap", "checkpoint": str(nap_path),
                                          "n_candidates": n_candidates}, space, seed=seed),
        "nap-no-ppo": lambda seed: build_solver({"name": "nap-no-ppo", "solver": "nap", "checkpoint": str(tnp_path),
                                                 "n_candidates": n_candidates}, space, seed=seed),
        "tnp-ei": lambda seed: build_solver("tnp-ei", space, seed=seed, acq_optimizer=optimiser,
                                            model={"type": "tnp", "checkpoint": str(tnp_path)}),
        "gp-ei": lambda seed: build_solver(gp_recipe, space, seed=seed),
        "rs": lambda seed: build_solver("rs", space, seed=seed),
    }


def run_method(factory: Callable[[int], Solver], task: MetaTask, budget: int, seed: int) -> tuple[np.ndarray, float]:
    """Normalised regret after each evaluation ``[budget]`` and the wall-clock seconds."""
    start = time.perf_counter()
    solver = factory(seed)
    solver.optimize(task, budget)
    best = solver.history["best_value"].to_numpy(dtype=float)
    return task.normalised_regret(best), time.perf_counter() - start


def summarise(curves: pd.DataFrame, methods: list[str], budget: int) -> list[dict[str, Any]]:
    """One row per method: mean (standard error) regret at each checkpoint, average rank, wins vs GP-EI."""
    rows = []
    at = [c for c in CHECKPOINTS if c <= budget]
    ranks = {}
    for c in at:
        table = curves[curves["evaluation"] == c].pivot(index="task", columns="method", values="regret")[methods]
        ranks[c] = table.rank(axis=1, method="average").mean()
    for method in methods:
        row: dict[str, Any] = {"method": method}
        for c in at:
            table = curves[curves["evaluation"] == c].pivot(index="task", columns="method", values="regret")
            values = table[method].to_numpy()
            se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            row[f"regret@{c}"] = f"{values.mean():.4f} ± {se:.4f}"
            row[f"rank@{c}"] = f"{ranks[c][method]:.2f}"
            if "gp-ei" in table and method != "gp-ei":
                better = int((table[method] < table["gp-ei"] - 1e-12).sum())
                worse = int((table[method] > table["gp-ei"] + 1e-12).sum())
                row[f"vs gp-ei@{c} (better/worse)"] = f"{better}/{worse}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/meta/hpo_krr_cpu.yaml", help="meta-training config")
    parser.add_argument("--nap", default=None, help="NAP checkpoint (default: <out_dir>/<name>.pt)")
    parser.add_argument("--tnp", default=None, help="likelihood-only checkpoint (default: <out_dir>/<name>-likelihood.pt)")
    parser.add_argument("--n-tasks", type=int, default=40, help="held-out tasks (at least 30 for the report)")
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gp-n-init", type=int, default=5)
    parser.add_argument("--n-candidates", type=int, default=2000, help="candidates per step on continuous spaces")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder of nap_regret.md / nap_regret.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)

    config = load_config(args.config)
    out_dir = Path(config.out_dir)
    nap_path = Path(args.nap) if args.nap else out_dir / f"{config.name}.pt"
    tnp_path = Path(args.tnp) if args.tnp else out_dir / f"{config.name}-likelihood.pt"
    for path in (nap_path, tnp_path):
        if not path.is_file():
            print(f"error: checkpoint {path} not found; train first: mcbo meta-train {args.config}", file=sys.stderr)
            return 2
    family = build_family(config.family, progress=True)
    n_test = family.n_tasks("test")
    if n_test is not None and args.n_tasks > n_test:
        print(f"error: --n-tasks {args.n_tasks} but the family has {n_test} held-out tasks", file=sys.stderr)
        return 2
    factories = solver_factories(nap_path, tnp_path, family.space, args.n_candidates, args.gp_n_init)
    rows, seconds = [], {m: 0.0 for m in args.methods}
    for i in range(args.n_tasks):
        task = family.task("test", i)
        line = []
        for method in args.methods:
            regret, secs = run_method(factories[method], task, args.budget, args.seed)
            seconds[method] += secs
            rows += [{"task": task.name, "method": method, "evaluation": t + 1, "regret": float(r)}
                     for t, r in enumerate(regret)]
            line.append(f"{method}={regret[min(9, len(regret) - 1)]:.3f}")
        print(f"[{i + 1}/{args.n_tasks}] {task.name} regret@10: {' '.join(line)}", flush=True)
    curves = pd.DataFrame(rows)
    summary = summarise(curves, list(args.methods), args.budget)
    for row in summary:
        row["seconds/run"] = f"{seconds[row['method']] / args.n_tasks:.2f}"
    table = markdown_table(summary)
    print(table)
    settings = {
        "config": args.config, "family": str(family.spec()), "held-out tasks": args.n_tasks, "budget": args.budget,
        "seed": args.seed, "NAP checkpoint": str(nap_path), "TNP-EI checkpoint": str(tnp_path),
        "GP-EI n_init": args.gp_n_init, "candidates": "whole space" if _is_finite(family.space) else args.n_candidates,
    }
    description = (__doc__ or "").split("Run from the repository root")[0].split("\n\n", 1)[-1]
    text = header_markdown("NAP vs TNP-EI vs GP-EI vs random search: normalised regret on held-out tasks",
                           description, settings)
    text += "\n## Results (mean ± standard error over tasks; lower is better)\n\n" + table + "\n"
    Path(args.out).mkdir(parents=True, exist_ok=True)
    curves.to_csv(Path(args.out) / "nap_regret.csv", index=False)
    path = write_markdown("nap_regret.md", text, Path(args.out))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
