"""The ``mcbo`` command: ``demo``, ``solvers``, ``tasks``, ``bench``, ``report``, ``instruct`` and ``meta-train``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence


def _demo(args: argparse.Namespace) -> int:
    """Run one solver on one task with a progress bar; write the history CSV and a convergence PNG."""
    from mcbo.plotting import plot_histories
    from mcbo.solvers import build_solver
    from mcbo.tasks import build_task

    task = build_task(args.task, seed=args.seed)
    solver = build_solver(args.solver, task.space, seed=args.seed)
    print(f"{solver.name} on {task.describe()}")
    point, value = solver.optimize(task, args.evals, batch_size=args.batch_size, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{args.solver}_{args.task}_seed{args.seed}.csv"
    history = solver.history
    history.to_csv(csv_path, index=False)
    png_path = plot_histories({solver.name: history}, out / f"{args.solver}_{args.task}_seed{args.seed}.png",
                              title=f"{solver.name} on {task.name}", optimum=task.optimum)
    n_failed = int((history["status"] == "failed").sum())
    print(f"best value after {len(history)} evaluations ({n_failed} failed): {value:.6g}")
    print(f"best point: {point}")
    print(f"history: {csv_path}\nconvergence plot: {png_path}")
    return 0


def _solvers(args: argparse.Namespace) -> int:
    """List the named solver recipes with what they are built from."""
    from mcbo.solvers import list_recipes, load_recipe

    for name in list_recipes():
        recipe = load_recipe(name)
        parts = []
        for key in ("model", "acquisition", "acq_optimizer", "trust_region"):
            part = recipe.get(key)
            if isinstance(part, dict) and "type" in part:
                kernels = [part[k] for k in ("numeric_kernel", "nominal_kernel") if k in part]
                parts.append(f"{key}={part['type']}" + (f"({'+'.join(kernels)})" if kernels else ""))
        if "sampler" in recipe:  # the optuna kind: which of Optuna's samplers
            parts.append(f"sampler={recipe['sampler']}")
        print(f"{name:14s} {recipe.get('solver', '?'):4s} {' '.join(parts)}")
        if args.verbose:
            print(f"{'':14s} {recipe.get('paper', '')}")
    return 0


def _tasks(args: argparse.Namespace) -> int:
    """List the registered tasks."""
    from mcbo.tasks import TASKS

    for name in sorted(TASKS):
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcbo", description="Bayesian optimisation of mixed and combinatorial "
                                                              "black boxes")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a solver on a task (default: Casmopolitan on Ackley-53, 60 evaluations)")
    demo.add_argument("--solver", default="casmopolitan", help="recipe name (see `mcbo solvers`)")
    demo.add_argument("--task", default="ackley53", help="task name (see `mcbo tasks`)")
    demo.add_argument("--evals", type=int, default=60, help="number of evaluations")
    demo.add_argument("--batch-size", type=int, default=1, help="points per ask")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="results/demo", help="output folder for the CSV and PNG")
    demo.set_defaults(func=_demo)

    solvers = sub.add_parser("solvers", help="list the named solver recipes")
    solvers.set_defaults(func=_solvers)
    tasks = sub.add_parser("tasks", help="list the registered tasks")
    tasks.set_defaults(func=_tasks)

    from mcbo.integrations.optuna.export import add_commands as add_export_commands
    from mcbo.llm.cli import add_commands as add_llm_commands
    from mcbo.meta.cli import add_commands as add_meta_commands
    from mcbo.runner.cli import add_commands as add_suite_commands

    add_suite_commands(sub)
    add_export_commands(sub)
    add_llm_commands(sub)
    add_meta_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
