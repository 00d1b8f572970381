"""How BO handles black boxes that crash: failed evaluations imputed at the worst value vs ignored by the model.

Both policies never propose a tried point again (the solver base excludes failed points); the question is
whether the model should also learn *where* evaluations fail. Tasks: ``crash_cat`` and ``crash_mixed``
(``mcbo/tasks/crash.py``), whose best points border the crashing region. Per task and policy: evaluations wasted
on failures and the best value at the budget, mean +- s.e. over seeds, and a paired Wilcoxon test of impute vs
ignore (same seeds, same initial designs).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/failure_policy.py --seeds 10 --budget 60
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import header_markdown, markdown_table, write_markdown  # noqa: E402
from benchmarks.paired import mean_se, paired_test, run_seeds  # noqa: E402

POLICIES = ("impute", "ignore")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--recipes", nargs="+", default=["casmopolitan"])
    parser.add_argument("--tasks", nargs="+", default=["crash_cat", "crash_mixed"])
    parser.add_argument("--out", default="failure_policy.md")
    args = parser.parse_args(argv)

    specs = [{"label": f"{recipe}/{policy}", "task": task, "recipe": recipe, "seed": seed, "budget": args.budget,
              "overrides": {"n_init": args.n_init, "failure_policy": policy}}
             for recipe in args.recipes for task in args.tasks for policy in POLICIES for seed in range(args.seeds)]
    rows = run_seeds(specs)
    table = []
    for recipe in args.recipes:
        for task in args.tasks:
            by = {p: [r for r in rows if r["label"] == f"{recipe}/{p}" and r["task"] == task] for p in POLICIES}
            test = paired_test([r["best"] for r in by["impute"]], [r["best"] for r in by["ignore"]])
            for policy in POLICIES:
                best, best_se = mean_se([r["best"] for r in by[policy]])
                failed, failed_se = mean_se([r["failed"] for r in by[policy]])
                table.append({
                    "recipe": recipe, "task": task, "policy": policy,
                    "best (mean +- s.e.)": f"{best:.3f} +- {best_se:.3f}",
                    "failed evals (mean +- s.e.)": f"{failed:.1f} +- {failed_se:.1f}",
                    "repeated points": sum(r["repeats"] for r in by[policy]),
                    "impute vs ignore: W/T/L, p": (f"{test['wins']}/{test['ties']}/{test['losses']}, "
                                                   f"p={test['p']:.3g}") if policy == "impute" else "",
                })
    text = header_markdown(
        "Failed evaluations: impute vs ignore", __doc__,
        {"seeds": args.seeds, "budget": args.budget, "n_init": args.n_init, "recipes": " ".join(args.recipes),
         "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/failure_policy.py " + " ".join(argv or sys.argv[1:])},
    ) + "\n## Results\n\n" + markdown_table(table) + "\n"
    print(markdown_table(table))
    print(f"written to {write_markdown(args.out, text)}")


if __name__ == "__main__":
    main()
