"""Paired comparison of solver variants over seeds, with a run cache so that variants can be added later.

Each variant is a recipe plus overrides; every (task, variant, seed) run goes through
:func:`benchmarks.paired._one_run` (1 torch thread, same seed = same task instance and initial design) in
worker processes, and its best value is appended to a JSON-lines cache keyed on everything that
determines the run (task, kwargs, recipe, overrides, seed, budget, and a ``--tag`` naming the code
version for mcbo variants). The report prints, per task, mean +- s.e. at the budget and a paired Wilcoxon
test of every variant against each ``--against`` variant (wins/ties/losses per seed, lower is better).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/paired_variants.py --tasks pest_control ackley_cat \\
        --seeds 10 --variants benchmarks/variants/default.json --against optuna-gp rs \\
        --out default_vs_optuna_gp.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import header_markdown, markdown_table, write_markdown  # noqa: E402
from benchmarks.paired import _one_run, mean_se, paired_test  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: Baseline recipes whose cache keys carry no ``--tag``: the peers, and casmopolitan as the reference of
#: the variants (the code changes measured with this script left its proposals unchanged).
_UNTAGGED = ("casmopolitan", "optuna-gp", "optuna-tpe", "rs")


def run_key(task: str, task_kwargs: dict, recipe: str, overrides: dict, seed: int, budget: int, tag: str) -> str:
    """Cache key of one run: everything that determines its result."""
    parts: list[Any] = [task, recipe, overrides, seed, budget, task_kwargs]
    if tag and recipe not in _UNTAGGED:
        parts.append(tag)
    return json.dumps(parts, sort_keys=True)


def load_cache(path: Path) -> dict[str, dict]:
    """Rows of the cache file by key (later rows win)."""
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {row["key"]: row for row in rows}


def run_missing(specs: list[dict], cache: dict[str, dict], cache_path: Path, workers: int) -> None:
    """Run the specs whose key is not cached, appending each finished row to ``cache_path``."""
    todo = [s for s in specs if s["key"] not in cache]
    print(f"{len(specs)} runs, {len(todo)} to run", flush=True)
    if not todo:
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_one_run, spec): spec for spec in todo}
        for future in as_completed(futures):
            spec = futures[future]
            row = future.result()
            row = {"key": spec["key"], "task": spec["task"], "seed": spec["seed"], "best": row["best"],
                   "failed": row["failed"], "seconds": row["seconds"]}
            cache[spec["key"]] = row
            with cache_path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(f"{spec['task']} {spec['label']} seed {spec['seed']}: {row['best']:.4g} ({row['seconds']:.0f} s)",
                  flush=True)


def report(specs: list[dict], cache: dict[str, dict], tasks: list[str], labels: list[str],
           against: list[str]) -> list[list[str]]:
    """Table rows: task, variant, mean +- s.e., seconds per run, and the paired test against each peer."""
    rows = []
    for task in tasks:
        values: dict[str, list[float]] = {}
        seconds: dict[str, float] = {}
        for label in labels:
            runs = [cache[s["key"]] for s in specs if s["task"] == task and s["label"] == label and s["key"] in cache]
            if runs:
                values[label] = [r["best"] for r in sorted(runs, key=lambda r: r["seed"])]
                seconds[label] = sum(r["seconds"] for r in runs) / len(runs)
        for label, v in values.items():
            mean, se = mean_se(v)
            cells = [task, label, f"{mean:.3f} ± {se:.3f} (n={len(v)})", f"{seconds[label]:.1f}"]
            for peer in against:
                if peer == label or peer not in values or len(values[peer]) != len(v):
                    cells.append("")
                    continue
                t = paired_test(v, values[peer])
                cells.append(f"{t['wins']}/{t['ties']}/{t['losses']}, p = {t['p']:.2g}")
            rows.append(cells)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", required=True)
    parser.add_argument("--variants", required=True,
                        help="JSON file or string: {label: [recipe, overrides]}")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--task-kwargs", default="{}", help="JSON: {task: kwargs}")
    parser.add_argument("--against", nargs="*", default=[], help="variant labels to test every variant against")
    parser.add_argument("--tag", default="", help="code version of the mcbo variants (part of their cache key)")
    parser.add_argument("--cache", default=str(RESULTS / "paired_runs.jsonl"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="report what the cache holds; run nothing")
    parser.add_argument("--out", default=None, help="markdown file under benchmarks/results/")
    args = parser.parse_args(argv)

    text = Path(args.variants).read_text() if Path(args.variants).is_file() else args.variants
    variants: dict[str, list] = json.loads(text)
    task_kwargs: dict[str, dict] = json.loads(args.task_kwargs)
    specs = [
        {"label": label, "task": task, "recipe": recipe, "seed": seed, "budget": args.budget,
         "overrides": overrides, "task_kwargs": task_kwargs.get(task, {}),
         "key": run_key(task, task_kwargs.get(task, {}), recipe, overrides, seed, args.budget, args.tag)}
        for task in args.tasks for label, (recipe, overrides) in variants.items() for seed in range(args.seeds)
    ]
    cache_path = Path(args.cache)
    cache = load_cache(cache_path)
    if not args.report_only:
        run_missing(specs, cache, cache_path, args.workers)
    head = ["task", "variant", "best at budget, mean ± s.e.", "s/run"] + [f"vs {p} (W/T/L)" for p in args.against]
    rows = report(specs, cache, args.tasks, list(variants), args.against)
    table = markdown_table([dict(zip(head, row)) for row in rows], head)
    print(table)
    if args.out:
        settings = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/paired_variants.py " + " ".join(sys.argv[1:]),
                    "tasks": " ".join(args.tasks), "seeds": args.seeds, "budget": args.budget,
                    "variants": json.dumps(variants), "code tag": args.tag or "(none)"}
        description = ("Best value found at the budget (lower is better), mean ± standard error over seeds; "
                       "W/T/L counts the seeds on which the row's variant beat, tied or lost to the column's, "
                       "p a two-sided Wilcoxon signed-rank test on the paired differences.")
        write_markdown(args.out, header_markdown("Paired comparison of solver variants", description, settings)
                       + "\n## Results\n\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
