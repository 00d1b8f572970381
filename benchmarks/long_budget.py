"""Sample efficiency at long budgets (issue 21): does the large-n GP regime cost quality?

For each task and seed, the same recipe runs twice for ``--budget`` evaluations (1,000 by default):

* ``exact``: the model refits every hyper-parameter on all data at every ask and conditions on all data
  (``fit_subset_size``, ``max_train_points`` null, ``refit_every`` 1): the model before issue 21;
* ``large_n``: the recipe's model with ``--large-n`` merged in (default: the shipped recipe's settings,
  ``fit_subset_size: 300, refit_every: 3, max_train_points: 1000``): above 300 observations,
  hyper-parameters are fitted on 300 of them, refitted every 3rd observation; above 1,000 the model sees
  the 500 best and the 500 most recent.

Both variants are identical until the data outgrow ``fit_subset_size``, so only long budgets can
show a difference. Reported: best value at the budget (mean +- s.e. over seeds), a paired Wilcoxon
signed-rank test (seeds pair the runs; ``large_n`` against ``exact``), and the wall time per run.
Every finished run is appended to ``--cache`` (JSON lines), so an interrupted run resumes where it
stopped; runs go to ``--workers`` processes with one torch thread each.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_budget.py --seeds 10 --workers 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/long_budget.py --tasks pest_control --seeds 2 --budget 600
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import fmt_num, header_markdown, markdown_table, write_markdown  # noqa: E402
from benchmarks.paired import _one_run, mean_se, paired_test  # noqa: E402

DEFAULT_LARGE_N = {"fit_subset_size": 300, "refit_every": 3, "max_train_points": 1000}
#: The model settings of the ``exact`` baseline: every fit and every posterior on all observations.
EXACT = {"fit_subset_size": None, "refit_every": 1, "max_train_points": None}
CACHE = Path(__file__).resolve().parent / "results" / "long_budget_runs.jsonl"


def _specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    from mcbo.solvers.registry import load_recipe

    model = load_recipe(args.recipe)["model"]
    variants = {"exact": {**model, **EXACT}, "large_n": {**model, **args.large_n}}
    return [{"label": label, "task": task, "recipe": args.recipe, "seed": seed, "budget": args.budget,
             "overrides": {"model": spec}}
            for seed in range(args.seeds) for task in args.tasks for label, spec in variants.items()]


def _key(spec: dict[str, Any]) -> str:
    return json.dumps([spec["label"], spec["task"], spec["recipe"], spec["seed"], spec["budget"],
                       spec["overrides"]], sort_keys=True)


def _load(cache: Path) -> dict[str, dict[str, Any]]:
    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["key"]] = row
    return done


def _summary(rows: list[dict[str, Any]], tasks: list[str]) -> list[dict[str, Any]]:
    out = []
    for task in tasks:
        by = {(r["label"], r["seed"]): r for r in rows if r["task"] == task}
        seeds = sorted({s for (label, s) in by if (("exact", s) in by and ("large_n", s) in by)})
        if not seeds:
            continue
        exact = [by["exact", s]["best"] for s in seeds]
        large = [by["large_n", s]["best"] for s in seeds]
        (me, se), (ml, sl) = mean_se(exact), mean_se(large)
        test = paired_test(large, exact)
        out.append({"task": task, "seeds (pairs)": len(seeds),
                    "exact: best at budget": f"{fmt_num(me)} +- {fmt_num(se)}",
                    "large_n: best at budget": f"{fmt_num(ml)} +- {fmt_num(sl)}",
                    "large_n wins/ties/losses": f"{test['wins']}/{test['ties']}/{test['losses']}",
                    "Wilcoxon p": test["p"],
                    "exact: s per run": sum(by["exact", s]["seconds"] for s in seeds) / len(seeds),
                    "large_n: s per run": sum(by["large_n", s]["seconds"] for s in seeds) / len(seeds)})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["pest_control", "ackley53"])
    parser.add_argument("--recipe", default="casmopolitan")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--large-n", type=json.loads, default=DEFAULT_LARGE_N,
                        help=f"JSON model options of the large_n variant (default {json.dumps(DEFAULT_LARGE_N)})")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--cache", type=Path, default=CACHE, help="JSON lines of finished runs (resumable)")
    parser.add_argument("--name", default="long_budget.md", help="results file name")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    specs = _specs(args)
    done = _load(args.cache)
    todo = [s for s in specs if _key(s) not in done]
    print(f"{len(specs) - len(todo)} of {len(specs)} runs cached in {args.cache}; running {len(todo)}", flush=True)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    if todo:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(_one_run, s): s for s in todo}
            for fut in as_completed(futures):
                spec, row = futures[fut], fut.result()
                row["key"] = _key(spec)
                done[row["key"]] = row
                with args.cache.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{row['task']:14s} {row['label']:8s} seed {row['seed']}: best {row['best']:.6g} "
                      f"in {row['seconds']:.0f} s", flush=True)
    rows = [done[_key(s)] for s in specs if _key(s) in done]
    summary = _summary(rows, args.tasks)
    for r in summary:
        print(", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in r.items()))
    per_run = [{"task": r["task"], "variant": r["label"], "seed": r["seed"], "best": r["best"],
                "seconds": r["seconds"]} for r in sorted(rows, key=lambda r: (r["task"], r["seed"], r["label"]))]
    settings = {"recipe": args.recipe, "tasks": " ".join(args.tasks), "seeds": args.seeds, "budget": args.budget,
                "large_n options": json.dumps(args.large_n), "workers": args.workers,
                "command": " ".join(["benchmarks/long_budget.py", *(argv or sys.argv[1:])])}
    text = header_markdown("Sample efficiency at long budgets: exact refit vs the large-n regime",
                           (__doc__ or "").split("\n\n")[1].replace("\n", " "), settings)
    text += "\n## Best value at the budget (minimised; lower is better)\n\n" + markdown_table(summary)
    text += "\n\n## Runs\n\n" + markdown_table(per_run)
    if any(math.isinf(r["best"]) for r in rows):
        text += "\n\nA best of inf: the run had no successful evaluation.\n"
    print(f"wrote {write_markdown(args.name, text, args.out)}")


if __name__ == "__main__":
    main()
