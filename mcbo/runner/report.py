"""Reports of a suite results database: ranks, best values, convergence curves, timings.

Follows the evaluation protocol of the MCBO benchmark (Dreczkowski, Grosnit & Bou Ammar, "Framework
and Benchmarks for Combinatorial and Mixed-variable Bayesian Optimization", NeurIPS 2023 Datasets
and Benchmarks): on every task, for every seed and every evaluation index, solvers are ranked on
their best value so far (1 = lowest, ties share the average rank); a solver's rank on a task is the
mean over seeds and evaluation indices, and its overall rank the mean over tasks.

Comparisons are made on equal terms: on each task only the first ``H`` evaluations are used, ``H``
being the shortest run of that task (a warning names unfinished runs), and ranks use only the seeds
that every solver of the task has. A solver's average rank is over the tasks every solver ran (a
warning and the report name the tasks left out). A run with no evaluation is left out. Before its
first successful evaluation a run's best value is ``+inf`` (last in every ranking). The report states
the number of seeds behind every table and plotted band.

Every function returns pandas DataFrames; :func:`write_report` also writes them as CSV and markdown
next to PNG plots.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mcbo.runner.storage import ResultsDB

logger = logging.getLogger(__name__)

_EVAL_COLUMNS = ["run_id", "solver", "task", "seed", "index", "batch", "value", "error", "fit_seconds", "acq_seconds",
                 "eval_seconds"]


def load_evaluations(db: str | Path | ResultsDB) -> pd.DataFrame:
    """Every stored evaluation: run_id, solver, task, seed, index, batch, value (NaN if failed), error,
    failed, fit_seconds, acq_seconds, eval_seconds."""
    if isinstance(db, ResultsDB):
        frame = db.evaluations_frame()
    else:
        with ResultsDB(db, readonly=True) as opened:
            frame = opened.evaluations_frame()
    frame = frame[_EVAL_COLUMNS].copy()
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    frame["failed"] = frame["value"].isna()
    return frame.sort_values(["run_id", "index"]).reset_index(drop=True)


def best_so_far(evaluations: pd.DataFrame) -> pd.DataFrame:
    """``evaluations`` with a ``best`` column: each run's running minimum (``+inf`` before a success)."""
    frame = evaluations.sort_values(["run_id", "index"]).copy()
    frame["best"] = frame["value"].fillna(np.inf).groupby(frame["run_id"]).cummin()
    return frame


def _comparable(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Best-so-far rows cut, per task, to the shortest run's length ``H`` (``index < H``)."""
    frame = best_so_far(evaluations)
    lengths = frame.groupby(["task", "run_id"]).size()
    keep = []
    for task, per_run in lengths.groupby(level="task"):
        horizon = int(per_run.min())
        if per_run.max() > horizon:
            logger.warning("task %r: runs have %d to %d evaluations; comparing the first %d", task,
                           int(per_run.min()), int(per_run.max()), horizon)
        keep.append(frame[(frame["task"] == task) & (frame["index"] < horizon)])
    if not keep:
        return frame.iloc[:0]
    return pd.concat(keep, ignore_index=True)


def _rank_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Rank of every solver in every (task, seed, index) cell of a :func:`_comparable` frame: columns
    task, seed, index, solver, rank."""
    out = []
    for task, sub in frame.groupby("task", sort=True):
        wide = sub.set_index(["seed", "index", "solver"])["best"].unstack("solver")
        complete = wide.dropna(axis=0, how="any")
        dropped = sorted(set(wide.index.get_level_values("seed")) - set(complete.index.get_level_values("seed")))
        if dropped:
            logger.warning("task %r: seeds %s are missing for some solvers; ranking without them", task, dropped)
        ranks = complete.rank(axis=1, method="average", ascending=True)
        long = ranks.stack().rename("rank").reset_index()
        long.insert(0, "task", task)
        out.append(long)
    if not out:
        return pd.DataFrame(columns=["task", "seed", "index", "solver", "rank"])
    return pd.concat(out, ignore_index=True)


def average_ranks(evaluations: pd.DataFrame) -> pd.DataFrame:
    """MCBO average-rank table: rows solvers, a column per task (mean rank over seeds and evaluation
    indices) and ``average`` (mean over the solver's tasks); sorted best first."""
    return _average_ranks(_rank_cells(_comparable(evaluations)))


def _average_ranks(cells: pd.DataFrame) -> pd.DataFrame:
    table = cells.groupby(["solver", "task"])["rank"].mean().unstack("task")
    table.columns.name = None
    common = [task for task in table.columns if table[task].notna().all()]
    partial = [task for task in table.columns if task not in common]
    if partial:
        logger.warning("tasks %s were not run by every solver; the average rank is over the %d tasks every solver "
                       "ran", partial, len(common))
    table["average"] = table[common].mean(axis=1) if common else math.nan
    table.index.name = "solver"
    return table.sort_values("average")


def rank_seeds(evaluations: pd.DataFrame) -> pd.Series:
    """Number of seeds behind each task's ranks (those every solver of the task has), indexed by task."""
    return _rank_seeds(_rank_cells(_comparable(evaluations)))


def _rank_seeds(cells: pd.DataFrame) -> pd.Series:
    return cells.groupby("task")["seed"].nunique().rename("seeds")


def rank_curve(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Mean rank (over tasks and seeds) after each number of evaluations: index ``n_evaluations``
    (1-based), a column per solver."""
    return _rank_curve(_rank_cells(_comparable(evaluations)))


def _rank_curve(cells: pd.DataFrame) -> pd.DataFrame:
    per_task = cells.groupby(["task", "index", "solver"])["rank"].mean()
    curve = per_task.groupby(level=["index", "solver"]).mean().unstack("solver")
    curve.index = curve.index + 1
    curve.index.name = "n_evaluations"
    curve.columns.name = None
    return curve


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error (``std(ddof=1) / sqrt(n)``) of ``values`` ``[n]``; se is NaN for n < 2."""
    values = np.asarray(values, dtype=float)
    mean = float(np.mean(values)) if values.size else math.nan
    if values.size < 2 or not np.all(np.isfinite(values)):
        return mean, math.nan
    return mean, float(np.std(values, ddof=1) / math.sqrt(values.size))


def best_values(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Best value found per solver x task: columns solver, task, mean, se, n_runs, n_evaluations
    (the comparison horizon); ``+inf`` where a run never succeeded."""
    return _best_values(_comparable(evaluations))


def _best_values(frame: pd.DataFrame) -> pd.DataFrame:
    final = frame.groupby(["solver", "task", "run_id"])["best"].last()
    horizon = frame.groupby(["solver", "task"])["index"].max() + 1
    rows = []
    for (solver, task), values in final.groupby(level=["solver", "task"]):
        mean, se = _mean_se(values.to_numpy())
        rows.append({"solver": solver, "task": task, "mean": mean, "se": se, "n_runs": int(values.size),
                     "n_evaluations": int(horizon.loc[(solver, task)])})
    return pd.DataFrame(rows, columns=["solver", "task", "mean", "se", "n_runs", "n_evaluations"])


def convergence(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Mean best-so-far +- standard error over seeds vs evaluations: columns task, solver,
    n_evaluations, mean, se, n_runs (runs with a success by then; the others are left out)."""
    return _convergence(_comparable(evaluations))


def _convergence(frame: pd.DataFrame) -> pd.DataFrame:
    finite = frame.assign(best=frame["best"].replace(np.inf, np.nan))
    grouped = finite.groupby(["task", "solver", "index"])["best"]
    out = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n_runs": grouped.count()})
    out["se"] = out["std"] / np.sqrt(out["n_runs"])
    out = out.drop(columns="std").reset_index()
    out["n_evaluations"] = out.pop("index") + 1
    return out[["task", "solver", "n_evaluations", "mean", "se", "n_runs"]]


def timings(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Seconds per iteration per solver x task: columns solver, task, n_iterations, fit_seconds,
    acq_seconds, seconds_per_iteration (fit + acquisition per ``ask``) and eval_seconds (per evaluation)."""
    batches = evaluations.drop_duplicates(["run_id", "batch"])
    per_iter = batches.groupby(["solver", "task"]).agg(
        n_iterations=("batch", "size"), fit_seconds=("fit_seconds", "mean"), acq_seconds=("acq_seconds", "mean"))
    per_iter["seconds_per_iteration"] = per_iter["fit_seconds"] + per_iter["acq_seconds"]
    per_iter["eval_seconds"] = evaluations.groupby(["solver", "task"])["eval_seconds"].mean()
    return per_iter.reset_index()


@dataclass
class Report:
    """Every table of a suite report (pandas DataFrames), the seeds behind the ranks and the suites read."""

    evaluations: pd.DataFrame
    ranks: pd.DataFrame
    rank_curve: pd.DataFrame
    best_values: pd.DataFrame
    convergence: pd.DataFrame
    timings: pd.DataFrame
    rank_seeds: pd.Series = field(default_factory=lambda: pd.Series(dtype=int, name="seeds"))
    suites: list[dict] = field(default_factory=list)

    @property
    def tasks_not_averaged(self) -> list[str]:
        """Tasks some solver did not run: left out of the average rank."""
        return [str(t) for t in self.ranks.columns if t != "average" and self.ranks[t].isna().any()]

    def best_values_table(self, digits: int = 4) -> pd.DataFrame:
        """Wide table solver x task of ``"mean ± se (n=seeds)"`` strings."""
        table = self.best_values.assign(
            text=[f"{_format_mean_se(m, s, digits)} (n={n})" for m, s, n in
                  zip(self.best_values["mean"], self.best_values["se"], self.best_values["n_runs"])])
        wide = table.pivot(index="solver", columns="task", values="text")
        wide.columns.name = None
        return wide

    def timings_table(self) -> pd.DataFrame:
        """Wide table solver x task of seconds per iteration (fit + acquisition)."""
        wide = self.timings.pivot(index="solver", columns="task", values="seconds_per_iteration")
        wide.columns.name = None
        return wide


def build_report(db: str | Path | ResultsDB) -> Report:
    """Compute every report table from a results database."""
    if isinstance(db, ResultsDB):
        evaluations, suites = load_evaluations(db), db.suites()
    else:
        with ResultsDB(db, readonly=True) as opened:
            evaluations, suites = load_evaluations(opened), opened.suites()
    if evaluations.empty:
        raise ValueError(f"results database {str(getattr(db, 'path', db))!r} holds no evaluations")
    if len(suites) > 1:
        logger.warning("results database %s holds %d suites (%s): the report compares their runs together",
                       getattr(db, "path", db), len(suites), ", ".join(_suite_label(s) for s in suites))
    comparable = _comparable(evaluations)
    cells = _rank_cells(comparable)
    return Report(evaluations=evaluations, ranks=_average_ranks(cells), rank_curve=_rank_curve(cells),
                  best_values=_best_values(comparable), convergence=_convergence(comparable),
                  timings=timings(evaluations), rank_seeds=_rank_seeds(cells), suites=suites)


def _suite_label(suite: dict) -> str:
    return f"{suite['name']!r}" + (f" (from {suite['source']})" if suite.get("source") else "")


# ------------------------------------------------------------------------------- output
def _format_mean_se(mean: float, se: float, digits: int) -> str:
    if not math.isfinite(se):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {se:.2g}"


def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(label)).strip("_") or "task"


def plot_names(labels: list[str]) -> dict[str, str]:
    """A distinct file-name stem per task label: the label itself where it is a safe file name, else its
    safe form plus a short hash of the label (``ack/1`` and ``ack_1`` get different files)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for label in sorted(labels, key=lambda x: (_safe_name(x) != str(x), str(x))):  # safe labels keep their name
        stem = _safe_name(label)
        if stem != str(label) or stem.lower() in used:
            stem = f"{stem}-{hashlib.sha1(str(label).encode()).hexdigest()[:8]}"
        names[label] = stem
        used.add(stem.lower())
    return names


def _seeds_text(seeds: pd.Series) -> str:
    """``t1: 2 seeds, t2: 3 seeds`` (or ``2 seeds on every task``)."""
    values = {int(v) for v in seeds.to_numpy()}
    if not values:
        return "none (no seed is shared by every solver of a task)"
    if len(values) == 1:
        n = values.pop()
        return f"{n} seed{'s' if n != 1 else ''} on every task"
    return ", ".join(f"{task}: {int(n)} seed{'s' if int(n) != 1 else ''}" for task, n in seeds.items())


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A DataFrame (index included) as a GitHub markdown table; floats with ``digits`` significant digits."""
    def fmt(value: object) -> str:
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}g}"
        return str(value)

    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for idx, row in frame.iterrows():
        lines.append("| " + " | ".join([fmt(idx)] + [fmt(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


def plot_convergence(curves: pd.DataFrame, task: str, path: str | Path) -> Path:
    """PNG of mean best-so-far +- s.e. vs evaluations for every solver on ``task``; each label says how many
    seeds are behind its band."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.subplots()
    for solver, sub in curves[curves["task"] == task].groupby("solver", sort=True):
        x, mean, se = sub["n_evaluations"].to_numpy(), sub["mean"].to_numpy(), sub["se"].fillna(0.0).to_numpy()
        seeds = int(sub["n_runs"].max())
        (line,) = ax.plot(x, mean, label=f"{solver} ({seeds} seed{'s' if seeds != 1 else ''})", linewidth=1.5)
        ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_title(f"{task}: best value so far (mean ± s.e. over seeds)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations")
    ax.set_ylabel("best value (minimised)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


def plot_rank_curve(curve: pd.DataFrame, path: str | Path, seeds: pd.Series | None = None) -> Path:
    """PNG of each solver's mean rank (over tasks and seeds) vs evaluations; ``seeds`` (per task) go in the title."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.subplots()
    for solver in curve.columns:
        ax.plot(curve.index.to_numpy(), curve[solver].to_numpy(), label=str(solver), linewidth=1.5)
    ax.set_title("average rank (lower is better)" + (f"\n{_seeds_text(seeds)}" if seeds is not None else ""),
                 fontsize="medium")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations")
    ax.set_ylabel("rank")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path


def write_report(db: str | Path | ResultsDB | Report, out_dir: str | Path) -> dict[str, Path]:
    """Write CSVs, PNG plots and ``report.md`` for a results database (or a built report) into ``out_dir``.

    Returns:
        The written files by role: ``ranks``, ``rank_curve``, ``best_values``, ``convergence``,
        ``timings``, ``markdown``, ``rank_plot`` and ``convergence:<task>`` per task.
    """
    report = db if isinstance(db, Report) else build_report(db)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for role, frame, index in (("ranks", report.ranks, True), ("rank_curve", report.rank_curve, True),
                               ("best_values", report.best_values, False), ("convergence", report.convergence, False),
                               ("timings", report.timings, False)):
        files[role] = out / f"{role}.csv"
        frame.to_csv(files[role], index=index)
    files["rank_plot"] = plot_rank_curve(report.rank_curve, out / "ranks.png", report.rank_seeds)
    tasks = sorted(report.convergence["task"].unique())
    stems = plot_names(tasks)
    for task in tasks:
        files[f"convergence:{task}"] = plot_convergence(report.convergence, task,
                                                        out / f"convergence_{stems[task]}.png")
    evals = report.evaluations
    summary = (f"{evals['run_id'].nunique()} runs, {len(evals)} evaluations ({int(evals['failed'].sum())} failed), "
               f"{evals['solver'].nunique()} solvers, {len(tasks)} tasks.")
    if report.suites:
        summary += (" Suite " if len(report.suites) == 1 else " Suites (compared together) ") + \
            ", ".join(_suite_label(s) for s in report.suites) + "."
    averaged = "The average is over every task."
    if report.tasks_not_averaged:
        averaged = (f"The average is over the tasks every solver ran; left out: "
                    f"{', '.join(report.tasks_not_averaged)}.")
    sections = [
        "# Benchmark report",
        summary,
        "## Average rank (MCBO protocol; lower is better)",
        f"Ranks per task use the seeds every solver of the task has: {_seeds_text(report.rank_seeds)}. {averaged}",
        markdown_table(report.ranks, digits=3),
        "![average rank](ranks.png)",
        "## Best value found (mean ± standard error over n seeds; minimised)",
        markdown_table(report.best_values_table()),
        "## Seconds per iteration (model fit + acquisition per ask)",
        markdown_table(report.timings_table(), digits=3),
        "## Convergence (mean ± standard error over the seeds in each label)",
        *[f"![{task}](convergence_{stems[task]}.png)" for task in tasks],
    ]
    files["markdown"] = out / "report.md"
    files["markdown"].write_text("\n\n".join(sections) + "\n")
    return files
