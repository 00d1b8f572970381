"""Sample-efficiency harness: a suite run by ``mcbo bench``, summarised against Optuna's GPSampler.

Runs (or resumes) ``configs/sample-efficiency.yaml`` -- optionally only some of its tasks and solvers -- into a
results database, then prints and writes (``benchmarks/results/<out>``):

* the MCBO average-rank table (rank per task, evaluation and seed on best-so-far values; ``mcbo report``'s);
* best value at the budget per task, mean +- s.e. over seeds;
* per task and solver, a paired Wilcoxon signed-rank test against the peer (``optuna-gp`` by default), seeds
  pairing the runs, with wins/ties/losses; and the same against random search.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_efficiency.py --workers 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_efficiency.py --tasks ackley53 pest_control \\
        --solvers casmopolitan optuna-gp rs --seeds 5 --db results/se-subset.db --out se_subset.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import header_markdown, markdown_table, write_markdown  # noqa: E402
from benchmarks.paired import paired_test  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "sample-efficiency.yaml"


def _label(entry: object, key: str) -> str:
    return entry if isinstance(entry, str) else str(entry.get("name") or entry.get(key))


def subset_config(config: dict, tasks: list[str] | None, solvers: list[str] | None, seeds: int | None,
                  budget: int | None) -> dict:
    """``config`` restricted to the named tasks / solvers (labels), with other seeds or budget."""
    out = dict(config)
    if tasks:
        out["tasks"] = [t for t in config["tasks"] if _label(t, "task") in tasks]
    if solvers:
        out["solvers"] = [s for s in config["solvers"] if _label(s, "recipe") in solvers]
    kept_t = {_label(t, "task") for t in out["tasks"]}
    kept_s = {_label(s, "recipe") for s in out["solvers"]}
    out["exclude"] = [e for e in config.get("exclude", []) if e["task"] in kept_t and e["solver"] in kept_s]
    if seeds:
        out["seeds"] = seeds
    if budget:
        out["budget"] = budget
    return out


def summarise(db: Path, peer: str) -> tuple[str, dict]:
    """Markdown tables (ranks, mean +- s.e., paired tests) of the suite database ``db``."""
    from mcbo.runner.report import average_ranks, best_values, load_evaluations

    evaluations = load_evaluations(db)
    ranks = average_ranks(evaluations).round(2).reset_index()
    best = best_values(evaluations)
    final = (evaluations.assign(value=evaluations["value"].fillna(float("inf")))
             .groupby(["solver", "task", "seed"])["value"].min())
    rows = []
    for (solver, task), group in best.groupby(["solver", "task"]):
        row = {"task": task, "solver": solver, "best (mean +- s.e.)": f"{group['mean'].iloc[0]:.4g} +- "
               f"{group['se'].iloc[0]:.2g}", "seeds": int(group["n_runs"].iloc[0])}
        mine = final.loc[(solver, task)]
        for other, column in ((peer, f"vs {peer}: W/T/L p"), ("rs", "vs rs: W/T/L p")):
            if solver == other or (other, task) not in final.index:
                row[column] = ""
                continue
            theirs = final.loc[(other, task)]
            seeds = sorted(set(mine.index) & set(theirs.index))
            test = paired_test(mine.loc[seeds].to_numpy(), theirs.loc[seeds].to_numpy())
            row[column] = f"{test['wins']}/{test['ties']}/{test['losses']} p={test['p']:.2g}"
        rows.append(row)
    rows.sort(key=lambda r: (r["task"], float(r["best (mean +- s.e.)"].split()[0])))
    text = ("## MCBO average ranks (lower is better)\n\n" + markdown_table(ranks.to_dict("records")) +
            "\n\n## Best value at the budget, and paired tests (W/T/L: wins/ties/losses of the row's solver)\n\n"
            + markdown_table(rows))
    return text, {"ranks": ranks, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(CONFIG))
    parser.add_argument("--tasks", nargs="+", help="task labels of the config to run (default: all)")
    parser.add_argument("--solvers", nargs="+", help="solver labels of the config to run (default: all)")
    parser.add_argument("--seeds", type=int, help="number of seeds (default: the config's)")
    parser.add_argument("--budget", type=int, help="evaluations per run (default: the config's)")
    parser.add_argument("--workers", type=int, default=None, help="Dask workers (default: in process)")
    parser.add_argument("--db", default="results/sample-efficiency.db")
    parser.add_argument("--peer", default="optuna-gp")
    parser.add_argument("--report-only", action="store_true", help="summarise --db without running")
    parser.add_argument("--out", default="sample_efficiency.md")
    args = parser.parse_args(argv)

    config = subset_config(yaml.safe_load(Path(args.config).read_text()), args.tasks, args.solvers, args.seeds,
                           args.budget)
    if not args.report_only:
        from mcbo.cli import main as mcbo_main

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "suite.yaml"
            path.write_text(yaml.safe_dump(config))
            command = ["bench", str(path), "--db", args.db] + (["--workers", str(args.workers)] if args.workers else [])
            status = mcbo_main(command)
        if status not in (0, 1):
            raise SystemExit(status)
    text, _ = summarise(Path(args.db), args.peer)
    settings = {"config": args.config, "tasks": " ".join(args.tasks or ["all"]),
                "solvers": " ".join(args.solvers or ["all"]), "seeds": config["seeds"], "budget": config["budget"],
                "n_init": config.get("n_init"), "database": args.db,
                "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sample_efficiency.py "
                           + " ".join(argv if argv is not None else sys.argv[1:])}
    print(text)
    path = write_markdown(args.out, header_markdown("Sample efficiency", __doc__, settings) + "\n" + text)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
