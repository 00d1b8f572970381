"""Command-line front end of suites: ``bench`` runs (or resumes) a suite, ``report`` summarises a database.

``mcbo.cli`` adds these commands with :func:`add_commands`; run them through the ``mcbo`` command
(``python -m mcbo.runner.cli`` is the same as ``mcbo``)::

    mcbo bench configs/quick.yaml --workers 2 --db results/quick.db
    mcbo report results/quick.db --out results/quick_report

Each command's ``func`` takes the parsed arguments and returns an exit status: 0 when everything
ran, 1 when some runs failed (the table printed says which), 130 when stopped by Ctrl-C (after one
line saying what is stored and the command that resumes). Bad input (a bad config, a missing recipe
or task, an unreachable scheduler, a file that is not a results database, a database another process
writes or that cannot be written) raises a ``ValueError``, which :func:`mcbo.cli.main` prints as one
``error:`` line with exit status 2.

``bench`` says when it resumes a suite (and from how many stored evaluations) and when there is
nothing left to do.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mcbo.runner.config import load_config

if TYPE_CHECKING:
    from mcbo.runner.executor import SuiteProgress

logger = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``report`` to an argparse ``subparsers`` object (each sets ``func``)."""
    bench = subparsers.add_parser(
        "bench", help="run or resume a benchmark suite (solvers x tasks x seeds) from a YAML config",
        description="Run every (solver, task, seed) of a suite config, storing each evaluation in SQLite. "
                    "Re-running the same command resumes: finished runs are skipped, unfinished ones continue.")
    bench.add_argument("config", help="suite config YAML, or the name of a shipped config (quick, mcbo-mixed, "
                                      "mcbo-combinatorial, ...: the files of configs/)")
    where = bench.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="run on a local Dask cluster of N worker processes (default: in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on an existing Dask cluster, e.g. tcp://10.0.0.1:8786")
    bench.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="how long to wait for --scheduler to answer before giving up")
    bench.add_argument("--db", default=None, help="results database (default: results/<suite name>.db)")
    bench.add_argument("--torch-threads", type=int, default=1,
                       help="torch and BLAS threads of every run, in this process or on a worker (results may "
                            "differ with another count)")
    bench.add_argument("--no-progress", action="store_true", help="hide the progress bars (as -q does)")
    bench.set_defaults(func=bench_command)

    report = subparsers.add_parser(
        "report", help="rank tables, best values, timings and plots of a results database",
        description="Write ranks.csv, best_values.csv, convergence.csv, timings.csv, rank_curve.csv, "
                    "PNG plots and report.md for a suite results database.")
    report.add_argument("db", help="results database written by `bench`")
    report.add_argument("--out", default=None, help="output folder (default: <db folder>/<db name>_report)")
    report.set_defaults(func=report_command)


def bench_command(args: argparse.Namespace) -> int:
    """Run the suite of ``args.config``; print the runs table.

    Raises:
        ValueError: ``ConfigError`` / ``SuiteError`` for bad input (nothing was run or written), or the
            database cannot be used (another writer, another suite, a full disk, ...).
    """
    from mcbo.runner.executor import SuiteInterrupted, run_suite

    if args.torch_threads is not None and args.torch_threads < 1:
        raise ValueError(f"--torch-threads: got {args.torch_threads}; expected an integer >= 1")
    config = load_config(args.config)
    db = Path(args.db) if args.db else Path("results") / f"{config.name}.db"
    quiet = bool(getattr(args, "quiet", False))
    progress = not (args.no_progress or quiet)

    def announce(state: SuiteProgress) -> None:
        if not quiet:
            line = describe_start(state)
            if line:
                print(line, flush=True)

    try:
        runs = run_suite(config, db, workers=args.workers, scheduler=args.scheduler, progress=progress,
                         torch_threads=args.torch_threads, scheduler_timeout=args.scheduler_timeout,
                         on_start=announce)
    except SuiteInterrupted as stop:
        print(f"interrupted: {describe_stored(stop.progress)}; resume with: {resume_command(args, db)}",
              file=sys.stderr, flush=True)
        return 130
    except KeyboardInterrupt:
        print(f"interrupted; run again with: {resume_command(args, db)}", file=sys.stderr, flush=True)
        return 130
    failed = runs[runs["status"] != "done"]
    shown = runs[["solver", "task", "seed", "status", "n_evaluations", "n_failed", "best_value"]]
    print(shown.to_string(index=False))
    print(f"results: {db}")
    if not failed.empty:
        for _, row in failed.iterrows():
            last = (row["error"] or "").strip().splitlines()
            print(f"run {row['solver']} / {row['task']} / seed {row['seed']} failed: {last[-1] if last else ''}",
                  file=sys.stderr)
        return 1
    return 0


def describe_stored(state: SuiteProgress) -> str:
    """``37 of 240 evaluations of suite 'quick' are stored in results/quick.db (3 of 8 runs done)``."""
    return (f"{state.evaluations} of {state.total_evaluations} evaluations of suite {state.name!r} are stored in "
            f"{state.db_path} ({state.runs_done} of {state.runs} runs done)")


def describe_start(state: SuiteProgress) -> str | None:
    """What ``bench`` says as a suite starts: a resume and from where, nothing left to do, or nothing (new)."""
    if state.finished:
        return (f"suite {state.name!r} in {state.db_path} is complete ({state.runs} runs, "
                f"{state.total_evaluations} evaluations): nothing left to do")
    if state.evaluations == 0:
        return None
    part = f", {state.runs_started} part-way" if state.runs_started else ""
    return (f"resuming suite {state.name!r} from {state.db_path}: {state.evaluations} of {state.total_evaluations} "
            f"evaluations stored ({state.runs_done} of {state.runs} runs done{part}); continuing from there")


def resume_command(args: argparse.Namespace, db: Path) -> str:
    """The ``mcbo bench`` command line that continues this suite on the same database."""
    argv = ["mcbo", "bench", str(args.config), "--db", str(db)]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    if args.scheduler:
        argv += ["--scheduler", args.scheduler, "--scheduler-timeout", f"{args.scheduler_timeout:g}"]
    if args.torch_threads not in (None, 1):
        argv += ["--torch-threads", str(args.torch_threads)]
    if args.no_progress:
        argv.append("--no-progress")
    return shlex.join(argv)


def report_command(args: argparse.Namespace) -> int:
    """Write the report of ``args.db``; print the average-rank table.

    Raises:
        ValueError: ``args.db`` is missing, or not a results database written by ``bench``.
    """
    from mcbo.runner.report import build_report, markdown_table, write_report

    db = Path(args.db)
    out = Path(args.out) if args.out else db.parent / f"{db.stem}_report"
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: got {str(out)!r}, an existing file; expected a folder (created if missing)")
    report = build_report(db)
    try:
        files = write_report(report, out)
    except OSError as err:
        raise ValueError(f"cannot write the report to {str(out)!r} ({err.strerror or err}); pass --out with a "
                         f"writable folder") from None
    print(markdown_table(report.ranks, digits=3))
    print(f"report: {files['markdown']}")
    return 0


if __name__ == "__main__":  # the same as `mcbo ...`
    from mcbo.cli import main

    sys.exit(main())
