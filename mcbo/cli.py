"""The ``mcbo`` command, the one entry point of the command line (also ``python -m mcbo``).

Sub-commands: ``run`` (one solver on one task), ``demo`` (``run`` with defaults), ``solvers``,
``tasks``, ``bench``, ``report``, ``export-optuna``, ``instruct`` and ``meta-train``. The last five
come from the ``add_commands`` of :mod:`mcbo.runner.cli`, :mod:`mcbo.integrations.optuna.export`,
:mod:`mcbo.llm.cli` and :mod:`mcbo.meta.cli`. :func:`main` alone sets up logging (``-v``/``-q``,
before or after the sub-command) and turns input errors into one ``error: ...`` line with exit
status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("mcbo.cli")


def _run(args: argparse.Namespace) -> int:
    """Run one solver on one task (``run`` and ``demo``): progress bar, history CSV, convergence PNG, best point."""
    if args.evals < 0:
        raise ValueError(f"--evals must be >= 0, got {args.evals}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    from mcbo.api import minimize
    from mcbo.plotting import plot_histories
    from mcbo.solvers import load_recipe
    from mcbo.tasks import build_task

    load_recipe(args.solver)  # an unknown recipe fails here, before the task is built
    task = build_task(args.task, seed=args.seed)
    print(f"{args.solver} on {task.describe()}", flush=True)
    result = minimize(task, task.space, args.evals, solver=args.solver, seed=args.seed,
                      batch_size=args.batch_size, progress=not args.quiet)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.solver}_{args.task}_seed{args.seed}"
    csv_path = out / f"{stem}.csv"
    result.history.to_csv(csv_path, index=False)
    png_path = plot_histories({result.solver.name: result.history}, out / f"{stem}.png",
                              title=f"{result.solver.name} on {task.name}", optimum=task.optimum)
    print(f"best value after {result.n_evaluations} evaluations ({result.n_failed} failed): "
          f"{result.best_value:.6g}")
    print(format_point(result.best_point))
    print(f"history: {csv_path}\nconvergence plot: {png_path}")
    return 0


def format_point(point: dict[str, Any] | None, limit: int = 20) -> str:
    """``best point:`` then one ``name = value`` line per parameter; past ``limit`` of them, a count of the rest."""
    if point is None:
        return "best point: none (every evaluation failed)"
    lines = [f"best point ({len(point)} parameters):"]
    width = max((len(str(name)) for name in list(point)[:limit]), default=0)
    for name, value in list(point.items())[:limit]:
        lines.append(f"  {str(name):<{width}} = {_format_value(value)}")
    if len(point) > limit:
        lines.append(f"  ... and {len(point) - limit} more (see the history CSV)")
    return "\n".join(lines)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)) and len(value) > 20:
        return f"{list(value[:20])}... ({len(value)} items)"
    return repr(value) if isinstance(value, str) else str(value)


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


def _add_run_arguments(parser: argparse.ArgumentParser, demo: bool) -> None:
    """The options of ``run`` (all but --seed/--batch-size/--out required) and ``demo`` (all defaulted)."""
    required = {} if demo else {"required": True}
    parser.add_argument("--solver", default="casmopolitan" if demo else None, **required,
                        help="recipe name (see `mcbo solvers`)" + (" (default: casmopolitan)" if demo else ""))
    parser.add_argument("--task", default="ackley53" if demo else None, **required,
                        help="task name (see `mcbo tasks`)" + (" (default: ackley53)" if demo else ""))
    parser.add_argument("--evals", type=int, default=60 if demo else None, **required,
                        help="number of evaluations" + (" (default: 60)" if demo else ""))
    parser.add_argument("--seed", type=int, default=0, help="seed of the task and the solver (default: 0)")
    parser.add_argument("--batch-size", type=int, default=1, help="points per ask (default: 1)")
    out = "results/demo" if demo else "results/run"
    parser.add_argument("--out", default=out, help=f"output folder for the CSV and PNG (default: {out})")
    parser.set_defaults(func=_run)


def _add_logging_arguments(parser: argparse.ArgumentParser, default: Any) -> None:
    """-v/--verbose and -q/--quiet; on the sub-commands their default is SUPPRESS, so the top-level value stays."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="log at INFO level (-vv: DEBUG, with the traceback of an error)")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="log errors only and hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``mcbo`` argument parser with every sub-command; each sets ``func`` (args -> exit status)."""
    from mcbo import __version__

    parser = argparse.ArgumentParser(prog="mcbo", description="Bayesian optimisation of mixed and combinatorial "
                                                              "black boxes")
    parser.add_argument("--version", action="version", version=f"mcbo {__version__}")
    _add_logging_arguments(parser, default=None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one solver on one task: progress bar, history CSV, best point",
                         description="Run one solver recipe on one registered task; write the history CSV and a "
                                     "convergence PNG under --out and print the best value and point.")
    _add_run_arguments(run, demo=False)
    demo = sub.add_parser("demo", help="`run` with defaults: Casmopolitan on Ackley-53, 60 evaluations",
                          description="The README's demo: `mcbo run` with every option defaulted.")
    _add_run_arguments(demo, demo=True)

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
    for command in sub.choices.values():  # `mcbo run -v ...` as well as `mcbo -v run ...`
        _add_logging_arguments(command, default=argparse.SUPPRESS)
    return parser


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is now (it may be swapped, e.g. by pytest's capsys)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _quiet_dask(record: logging.LogRecord) -> bool:
    """Drop Dask's and tornado's own info messages (cluster start/stop chatter); keep their warnings."""
    return record.levelno >= logging.WARNING or not record.name.startswith(("distributed", "tornado"))


def _setup_logging(verbose: int, quiet: bool) -> Callable[[], None]:
    """Log to stderr at the level of -v/-q (default WARNING); returns the function that undoes it."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose
                                           else "%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_quiet_dask)
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    return undo


def _user_error(err: BaseException) -> str | None:
    """The one-line message of an error caused by the command's input (bad name, value, file); else None."""
    from mcbo.tasks.base import MissingToolError

    if isinstance(err, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return f"{err.strerror or err}: {err.filename}" if err.filename else str(err)
    if isinstance(err, (ValueError, MissingToolError)):  # ConfigError, SuiteError, ExportError are ValueErrors
        return " ".join(str(err).split()) or type(err).__name__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mcbo`` command (also ``python -m mcbo``); returns the exit status.

    0: done; 1: the command ran but some of its work failed (it says which); 2: bad input (one
    ``error: ...`` line on stderr, no traceback unless -vv); 130: interrupted.
    """
    args = build_parser().parse_args(argv)
    verbose, quiet = int(args.verbose or 0), bool(args.quiet)
    args.verbose, args.quiet = verbose, quiet
    undo = _setup_logging(verbose, quiet)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        message = _user_error(err)
        if message is None:
            raise
        logger.debug("the error's traceback", exc_info=True)
        print(f"error: {message}", file=sys.stderr)
        return 2
    finally:
        undo()


if __name__ == "__main__":
    sys.exit(main())
