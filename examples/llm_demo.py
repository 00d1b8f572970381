"""Tune the decoding configuration of a served LLM on a small data set with mcbo's default solver.

``make llm-demo`` starts llama.cpp's server with SmolLM2-135M-Instruct, runs this script against it
and stops the server. By hand::

    URL=$(python -m mcbo.llm.local_server start --pid-file .llm-server.pid)
    python examples/llm_demo.py --base-url "$URL"
    python -m mcbo.llm.local_server stop --pid-file .llm-server.pid

The script evaluates the default configuration (one sample at temperature 1, no system prompt, no
examples), tells it to the default solver as its first observation, spends ``--evals`` more
evaluations (with a progress bar), prints the best configuration against the default one (accuracy
and tokens per question), and writes a PNG of the run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # a checkout need not have mcbo installed
    sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", default=os.environ.get("MCBO_LLM_BASE_URL"),
                   help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (default: $MCBO_LLM_BASE_URL)")
    p.add_argument("--model", default="smollm2-135m-instruct", help="model name sent to the server")
    p.add_argument("--dataset", default="plural", help="shipped data set name or a JSONL path")
    p.add_argument("--evals", type=int, default=16, help="evaluations after the default configuration")
    p.add_argument("--n-questions", type=int, default=8, help="questions per evaluation")
    p.add_argument("--max-samples", type=int, default=3, help="largest number of samples per question")
    p.add_argument("--price-per-token", type=float, default=1e-4, help="accuracy given up per token")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/llm_demo", help="folder for the plot and the history CSV")
    return p.parse_args(argv)


def describe(point: dict[str, Any]) -> str:
    return (f"T={point['temperature']:.2f} top_p={point['top_p']:.2f} max_tokens={point['max_tokens']} "
            f"n={point['n_samples']} {point['selector']} system={point['system_prompt']} shots={point['n_shots']}")


def plot(path: Path, rows: list[dict[str, Any]], default: Any, best: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    values = [r["objective"] for r in rows]
    best_so_far = [min(values[: i + 1]) for i in range(len(values))]
    ax1.plot(range(len(values)), values, "o", alpha=0.6, label="evaluation")
    ax1.plot(range(len(values)), best_so_far, "-", label="best so far")
    ax1.axhline(default.objective, ls="--", color="grey", label="default configuration")
    ax1.set_xlabel("evaluation")
    ax1.set_ylabel("-(accuracy - price x tokens)  (lower is better)")
    ax1.legend()
    ax2.scatter([r["tokens"] for r in rows], [r["accuracy"] for r in rows], alpha=0.6, label="evaluated")
    ax2.scatter([default.tokens_per_question], [default.accuracy], marker="s", s=80, color="grey", label="default")
    ax2.scatter([best.tokens_per_question], [best.accuracy], marker="*", s=200, color="red", label="best")
    ax2.set_xlabel("tokens per question")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    fig.suptitle("Decoding configuration of a served LLM, tuned with mcbo's default solver")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.base_url:
        print("error: --base-url is required (or set MCBO_LLM_BASE_URL); start a server with "
              "`python -m mcbo.llm.local_server start --pid-file .llm-server.pid`", file=sys.stderr)
        return 2
    import pandas as pd

    from mcbo import minimize
    from mcbo.solvers import build_solver
    from mcbo.tasks.llm_decoding_api import DEFAULT_CONFIG, LLMDecodingAPI

    try:
        task = LLMDecodingAPI(args.base_url, args.model, args.dataset, n_questions=args.n_questions,
                              max_samples=args.max_samples, price_per_token=args.price_per_token, seed=args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []

    def black_box(point: dict[str, Any]) -> float:
        result = task.run(point)
        rows.append({**point, "accuracy": result.accuracy, "tokens": result.tokens_per_question,
                     "objective": result.objective, "calls": result.calls, "seconds": result.seconds})
        return result.objective

    start = time.perf_counter()
    print(f"data set {task.dataset.name!r} ({task.n_questions} questions), model {args.model!r} at {args.base_url}")
    default_point = task.space.validate(DEFAULT_CONFIG)
    default = task.run(default_point)
    print(f"default configuration: accuracy {default.accuracy:.2f}, {default.tokens_per_question:.0f} tokens/question "
          f"({default.seconds:.1f}s)")
    solver = build_solver("default", task.space, seed=args.seed)
    solver.tell([default_point], [default.objective])  # the default is the first observation
    result = minimize(black_box, task.space, n_evaluations=args.evals, solver=solver, progress=True)
    best_point = result.best_point if result.best_value < default.objective else default_point
    best = task.run(best_point)  # answered from the cache

    width = max(len(describe(default_point)), len(describe(best_point)))
    print()
    print(f"{'config':<13} | {'settings':<{width}} | accuracy | tokens/question | objective")
    for label, point, res in (("default", default_point, default), ("best", best_point, best)):
        print(f"{label:<13} | {describe(point):<{width}} | {res.accuracy:8.2f} | {res.tokens_per_question:15.1f} | "
              f"{res.objective:9.4f}")
    usage = task.client.usage()
    print(f"\n{len(rows) + 1} evaluations, {usage['calls']} calls to the server, {usage['cache_hits']} cache hits, "
          f"{usage['prompt_tokens'] + usage['completion_tokens']} tokens, {time.perf_counter() - start:.0f}s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "history.csv", index=False)
    plot(out / "llm_demo.png", rows, default, best)
    print(f"wrote {out / 'llm_demo.png'} and {out / 'history.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
