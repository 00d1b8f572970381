"""The ``mcbo`` command, the one entry point of the command line (also ``python -m mcbo``).

Sub-commands: ``run`` (one solver on one task), ``demo`` (``run`` with defaults), ``solvers``,
``tasks``, ``bench``, ``report``, ``export-optuna``, ``instruct`` and ``meta-train``. The last five
come from the ``add_commands`` of :mod:`mcbo.runner.cli`, :mod:`mcbo.integrations.optuna.export`,
:mod:`mcbo.llm.cli` and :mod:`mcbo.meta.cli`. :func:`main` alone sets up logging (``-v``/``-q``,
before or after the sub-command; other libraries' messages below WARNING only with ``-v``) and
turns input errors, argparse's included, into one ``error: ...`` line with exit status 2. Output
cut short by its reader (``mcbo solvers | head``) ends quietly with exit status 141, as for SIGPIPE.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import logging
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

logger = logging.getLogger("mcbo.cli")


def _run(args: argparse.Namespace) -> int:
    """Run one solver on one task (``run`` and ``demo``): progress bar, history CSV, convergence PNG, best point."""
    from mcbo.runner.config import check_budget
    from mcbo.solvers import list_recipes, load_recipe
    from mcbo.tasks import TASKS, build_task

    check_budget(args.evals, "--evals")
    _check_int(args.batch_size, "--batch-size", 1)
    _check_int(args.seed, "--seed", 0)
    _check_name(args.solver, "--solver", "solver recipe", list_recipes())
    _check_name(args.task, "--task", "task", sorted(TASKS))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: got {args.out!r}, an existing file; expected a folder (created if missing)")
    recipe = load_recipe(args.solver)
    task = build_task(args.task, seed=args.seed)
    stem = f"{args.solver}_{args.task}_seed{args.seed}"
    n_init = initial_design_size(recipe, task.space)
    print(describe_plan(args, recipe, task, n_init, out / stem), flush=True)

    from mcbo.api import minimize
    from mcbo.plotting import plot_histories

    result = minimize(task, task.space, args.evals, solver=args.solver, seed=args.seed,
                      batch_size=args.batch_size, progress=not (args.quiet or args.no_progress))
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{stem}.csv"
    result.history.to_csv(csv_path, index=False)
    png_path = plot_histories({result.solver.name: result.history}, out / f"{stem}.png",
                              title=f"{result.solver.name} on {task.name}", optimum=task.optimum, n_init=n_init)
    print(f"best value after {result.n_evaluations} evaluations ({result.n_failed} failed): "
          f"{result.best_value:.6g}")
    print(format_point(result.best_point))
    print(f"history: {csv_path}\nconvergence plot: {png_path}")
    return 0


def _check_int(value: int, flag: str, low: int) -> None:
    if value < low:
        raise ValueError(f"{flag}: got {value}; expected an integer >= {low}")


def _check_name(value: str, flag: str, what: str, available: Sequence[str]) -> None:
    """``ValueError`` naming ``flag``, the unknown ``value``, the closest name and every allowed one."""
    if value in available:
        return
    close = difflib.get_close_matches(value, available, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{flag}: unknown {what} {value!r}{hint}; expected one of: {', '.join(available)}")


def initial_design_size(recipe: dict[str, Any], space: Any) -> int | None:
    """Evaluations a recipe's solver makes on ``space`` before using a model (its ``n_init``; for the ``default``
    recipe, that of the configuration it picks for the space), or ``None`` if it has none."""
    from mcbo.solvers.auto import space_kind
    from mcbo.solvers.registry import SOLVER_KINDS

    default = SOLVER_KINDS.settings(recipe["solver"]).get("n_init") if recipe.get("solver") in SOLVER_KINDS else None
    chosen = recipe.get("by_space", {}).get(space_kind(space), {}) if isinstance(recipe.get("by_space"), dict) else {}
    value = recipe.get("n_init", chosen.get("n_init", default))
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def describe_plan(args: argparse.Namespace, recipe: dict[str, Any], task: Any, n_init: int | None,
                  stem: Path) -> str:
    """What ``run``/``demo`` is about to do: the task and its variables, the solver, the budget and the outputs."""
    from mcbo.tasks.base import doc_line, space_kinds

    def block(label: str, *lines: str) -> list[str]:
        wrapped = [part for line in lines if line for part in textwrap.wrap(line, 88)]
        return [f"  {label if i == 0 else '':<8}{part}" for i, part in enumerate(wrapped)]

    batches = "one point at a time" if args.batch_size == 1 else f"batches of {args.batch_size} points"
    design = (f"the first {min(n_init, args.evals)} evaluations are its initial design (no model yet)"
              if n_init else "")
    lines = [f"{recipe['name']} on {task.name}: {args.evals} evaluations, {batches}, seed {args.seed}"]
    lines += block("task", doc_line(type(task)), space_kinds(task.space))
    lines += block("solver", str(recipe.get("description") or recipe.get("solver", "")).strip(), design)
    lines += block("writes", f"{stem}.csv (one row per evaluation) and {stem.name}.png (convergence plot)")
    return "\n".join(lines)


def format_point(point: dict[str, Any] | None, width: int = 100, limit: int = 120) -> str:
    """``best point (n parameters):`` then ``name = value`` cells in aligned columns fitting ``width``.

    Long values (sequences) get a line each; past ``limit`` parameters, a count of the rest.
    """
    if point is None:
        return "best point: none (every evaluation failed)"
    items = list(point.items())[:limit]
    name_width = max((len(str(name)) for name, _ in items), default=0)
    cells = [f"{str(name):<{name_width}} = {_format_value(value)}" for name, value in items]
    cell_width = max((len(cell) for cell in cells), default=0) + 3
    per_row = max(1, (width - 2) // cell_width) if cell_width <= 40 else 1
    lines = [f"best point ({len(point)} parameters):"]
    for start in range(0, len(cells), per_row):
        lines.append("  " + "".join(cell.ljust(cell_width) for cell in cells[start:start + per_row]).rstrip())
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
    """List the registered tasks: name, number and kinds of variables, and a one-line description."""
    from mcbo.tasks import TASKS
    from mcbo.tasks.base import summarize_task

    width = max(len(name) for name in TASKS)
    for name in sorted(TASKS):
        summary = summarize_task(name)
        print(f"{name:<{width}}  {summary.variables or 'variables set by its arguments'}")
        print(f"{'':<{width}}  {summary.description}")
    return 0


def _add_run_arguments(parser: argparse.ArgumentParser, demo: bool) -> None:
    """The options of ``run`` (all but --seed/--batch-size/--out required) and ``demo`` (all defaulted)."""
    required = {} if demo else {"required": True}
    parser.add_argument("--solver", default="default" if demo else None, **required,
                        help="recipe name (see `mcbo solvers`)")
    parser.add_argument("--task", default="ackley53" if demo else None, **required,
                        help="task name (see `mcbo tasks`)")
    parser.add_argument("--evals", type=int, default=60 if demo else None, **required,
                        help="number of evaluations (>= 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task and the solver (>= 0)")
    parser.add_argument("--batch-size", type=int, default=1, help="points per ask (>= 1)")
    parser.add_argument("--out", default="results/demo" if demo else "results/run",
                        help="output folder for the CSV and PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (as -q does)")
    parser.set_defaults(func=_run)


def _add_logging_arguments(parser: argparse.ArgumentParser, default: Any) -> None:
    """-v/--verbose and -q/--quiet; on the sub-commands their default is SUPPRESS, so the top-level value stays."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="log at INFO level (-vv: DEBUG, with the traceback of an error)")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="log errors only and hide progress bars")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error:`` line with exit status 2, like other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} (see `{self.prog} --help`)\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: ...)`` to every option's help that has a default and does not mention it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        no_default = any(action.default is value for value in (None, False, argparse.SUPPRESS))
        if not action.option_strings or no_default or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The ``mcbo`` argument parser with every sub-command; each sets ``func`` (args -> exit status)."""
    from mcbo import __version__

    parser = _Parser(prog="mcbo", description="Bayesian optimisation of mixed and combinatorial black boxes",
                     formatter_class=_HelpFormatter)
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
    tasks = sub.add_parser("tasks", help="list the registered tasks: variables and a one-line description")
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
        command.formatter_class = _HelpFormatter
    return parser


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is now (it may be swapped, e.g. by pytest's capsys)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _setup_logging(verbose: int, quiet: bool) -> Callable[[], None]:
    """Log to stderr at the level of -v/-q (default WARNING); returns the function that undoes it.

    The level is the handler's, so a library that sets its own loggers to INFO (Dask does) is held to
    WARNING too unless -v asks for INFO. Dask's own handlers are quieted where a suite runs on Dask
    (:func:`mcbo.runner.dask_backend.quiet_dask_logs`).
    """
    level = logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    handler = _StderrHandler()
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose
                                           else "%(levelname)s %(name)s: %(message)s"))
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(level)

    def undo() -> None:
        root.removeHandler(handler)
        root.setLevel(previous_level)

    return undo


#: ``OSError`` numbers that come from the user's files and disks, not from a bug.
_USER_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
                errno.ELOOP, errno.EFBIG}


def _user_error(err: BaseException) -> str | None:
    """The one-line message of an error caused by the command's input (bad name, value, file); else None."""
    from mcbo.tasks.base import MissingToolError

    if isinstance(err, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)) \
            or (isinstance(err, OSError) and err.errno in _USER_ERRNOS):  # a full disk, read-only media, ...
        return f"{err.strerror or err}: {err.filename}" if err.filename else str(err)
    if isinstance(err, (ValueError, MissingToolError)):  # ConfigError, SuiteError, ExportError are ValueErrors
        return " ".join(str(err).split()) or type(err).__name__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mcbo`` command (also ``python -m mcbo``); returns the exit status.

    0: done; 1: the command ran but some of its work failed (it says which); 2: bad input (one
    ``error: ...`` line on stderr, no traceback unless -vv); 130: interrupted; 141: the reader of
    the output went away (``mcbo solvers | head``).
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except KeyboardInterrupt:  # while the parser is built (its imports take seconds) or after the command
        print("interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    verbose, quiet = int(args.verbose or 0), bool(args.quiet)
    args.verbose, args.quiet = verbose, quiet
    undo = _setup_logging(verbose, quiet)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except Exception as err:
        message = _user_error(err)
        if message is None:
            raise
        logger.debug("the error's traceback", exc_info=True)
        print(f"error: {message}", file=sys.stderr)
        return 2
    finally:
        undo()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of a closed pipe does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured in a test): nothing to flush
        pass


if __name__ == "__main__":
    sys.exit(main())
