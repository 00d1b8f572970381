"""``mcbo instruct``: INSTINCT instruction optimisation against an OpenAI-compatible endpoint.

Example (OpenAI, at most 2 US dollars, key in ``OPENAI_API_KEY``)::

    mcbo instruct --task antonyms --model gpt-4o-mini --budget-usd 2

Example (a local llama.cpp / vLLM / Ollama server; no key needed on loopback)::

    mcbo instruct --task first_letter --base-url http://127.0.0.1:8080/v1 --model local --price-in 0 --price-out 0

The run generates ``--pool-size`` candidate instructions from the task's exemplars (or reads
``--pool-file``), embeds them (``--embedder``, default all-MiniLM-L6-v2), runs the ``instinct``
recipe for ``--evals`` instructions or until the budget is spent, and prints the best instruction
with its scores and the spend. ``--out`` receives ``history.csv``, ``pool.json``, ``calls.csv`` and
``report.json``. Exit status: 0 when an instruction was scored, 1 when none could be, 2 for bad
arguments (nothing sent).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Sequence

logger = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``instruct`` to an argparse ``subparsers`` object (sets ``func``)."""
    p = subparsers.add_parser(
        "instruct", help="optimise the instruction given to a hosted LLM (INSTINCT) within a budget",
        description="INSTINCT (Lin et al., ICML 2024): NeuralUCB over a pool of candidate instructions, each "
                    "scored by the LLM on the task's validation examples; stops cleanly at the budget.")
    from mcbo.llm.tasks import list_tasks

    p.add_argument("--task", required=True,
                   help=f"shipped task ({', '.join(list_tasks())}) or the path of a task JSON file")
    p.add_argument("--model", required=True, help="model name at the endpoint, e.g. gpt-4o-mini")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (default: OpenAI)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key (default OPENAI_API_KEY; optional on loopback)")
    budget = p.add_argument_group("budget (hard limits over generation and scoring; the run stops cleanly)")
    budget.add_argument("--budget-usd", type=float, default=None, help="most US dollars to spend")
    budget.add_argument("--max-calls", type=int, default=None, help="most API calls")
    budget.add_argument("--max-tokens", type=int, default=None, help="most prompt + completion tokens")
    prices = p.add_argument_group("prices (USD per 1M tokens; defaults: OpenAI list prices, see mcbo.llm.pricing)")
    prices.add_argument("--prices", default=None, help="JSON/YAML file {model: {input: x, output: y}}")
    prices.add_argument("--price-in", type=float, default=None, help="input price of --model")
    prices.add_argument("--price-out", type=float, default=None, help="output price of --model")
    pool = p.add_argument_group("candidate pool")
    pool.add_argument("--pool-file", default=None, help="candidate instructions: JSON list or one per line")
    pool.add_argument("--pool-size", type=int, default=500, help="instructions to generate (default 500)")
    pool.add_argument("--generator-model", default=None, help="model writing the pool (default: --model)")
    pool.add_argument("--generator-base-url", default=None, help="endpoint of the generator (default: --base-url)")
    pool.add_argument("--embedder", default="minilm", choices=["minilm", "sentence-transformers", "last-token",
                                                               "hashing"], help="candidate representation")
    pool.add_argument("--embedder-path", default=None, help="local model folder of the embedder")
    pool.add_argument("--gguf-file", default=None, help="GGUF file in --embedder-path (last-token embedder)")
    run = p.add_argument_group("optimisation")
    run.add_argument("--evals", type=int, default=165, help="instructions scored at most (paper: 165)")
    run.add_argument("--n-init", type=int, default=40, help="initial random instructions (paper: 40)")
    run.add_argument("--n-examples", type=int, default=None, help="validation examples per score (default all)")
    run.add_argument("--no-test", action="store_true", help="skip scoring the best instruction on the test split")
    run.add_argument("--seed", type=int, default=0)
    client = p.add_argument_group("client")
    client.add_argument("--cache", default="results/llm_cache.db", help="SQLite cache of responses and scores "
                                                                        "('none' to disable)")
    client.add_argument("--rpm", type=float, default=None, help="client-side limit: requests per minute")
    client.add_argument("--tpm", type=float, default=None, help="client-side limit: tokens per minute")
    client.add_argument("--concurrency", type=int, default=4, help="parallel requests while scoring")
    client.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP attempt")
    client.add_argument("--max-retries", type=int, default=5, help="retries per call (429, 5xx, timeouts)")
    client.add_argument("--token-param", default="max_tokens", choices=["max_tokens", "max_completion_tokens"],
                        help="name of the completion-length field the endpoint expects")
    p.add_argument("--out", default=None, help="folder for history.csv, pool.json, calls.csv, report.json")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=instruct_command)


def _price_table(args: argparse.Namespace) -> Any:
    from mcbo.llm.pricing import PriceTable

    table = PriceTable.from_file(args.prices) if args.prices else PriceTable()
    if (args.price_in is None) != (args.price_out is None):
        raise ValueError("give both --price-in and --price-out, or neither")
    if args.price_in is not None:
        table = table.with_price(args.model, args.price_in, args.price_out)
    return table


def _clients(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The scoring client, the generator client (maybe the same), and the cache."""
    from mcbo.llm.budget import Budget
    from mcbo.llm.cache import LLMCache
    from mcbo.llm.client import LLMClient
    from mcbo.llm.rate_limit import RateLimiter

    prices = _price_table(args)
    budget = Budget(max_calls=args.max_calls, max_tokens=args.max_tokens, max_usd=args.budget_usd)
    cache = None if str(args.cache).lower() == "none" else LLMCache(args.cache)
    limiter = RateLimiter(args.rpm, args.tpm) if (args.rpm or args.tpm) else None
    common = dict(api_key_env=args.api_key_env, prices=prices, budget=budget, cache=cache, rate_limiter=limiter,
                  timeout=args.timeout, max_retries=args.max_retries, token_param=args.token_param, seed=args.seed)
    scorer = LLMClient(args.model, args.base_url, **common)
    gen_model = args.generator_model or args.model
    gen_url = args.generator_base_url or args.base_url
    generator = scorer if (gen_model, gen_url) == (args.model, args.base_url) else LLMClient(gen_model, gen_url,
                                                                                              **common)
    return scorer, generator, cache


def instruct_command(args: argparse.Namespace) -> int:
    """Run INSTINCT as configured by ``args``; print the report."""
    from mcbo.llm.client import LLMError
    from mcbo.llm.pool import build_embedder, load_pool
    from mcbo.llm.tasks import load_task

    try:
        for name in ("evals", "n_init", "pool_size", "concurrency"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        if args.n_examples is not None and args.n_examples < 1:
            raise ValueError(f"--n-examples must be >= 1, got {args.n_examples}")
        task = load_task(args.task)
        embedder = build_embedder(args.embedder, args.embedder_path, args.gguf_file)
        pool = load_pool(args.pool_file) if args.pool_file else None
        scorer, generator, cache = _clients(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return _run(args, task, embedder, pool, scorer, generator)
    except (LLMError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        for c in {id(scorer): scorer, id(generator): generator}.values():
            c.close()
        if cache is not None:
            cache.close()


def _run(args: argparse.Namespace, task: Any, embedder: Any, pool: list[str] | None, scorer: Any,
         generator: Any) -> int:
    """Generate (if needed) and embed the pool, run INSTINCT, report; the exit status."""
    from mcbo.llm.instinct import run_instinct
    from mcbo.llm.pool import generate_instructions

    if pool is None:
        print(f"writing {args.pool_size} candidate instructions with {generator.model} ...", flush=True)
        pool = generate_instructions(generator, task, args.pool_size, seed=args.seed)
    if len(pool) < 2:
        print(f"error: the pool has {len(pool)} instruction(s); at least 2 are needed", file=sys.stderr)
        return 1
    print(f"embedding {len(pool)} instructions with {embedder.name} ...", flush=True)
    embeddings = embedder.embed(pool)
    result = run_instinct(scorer, task, pool, embeddings, n_evaluations=args.evals, n_init=args.n_init,
                          seed=args.seed, n_examples=args.n_examples, concurrency=args.concurrency,
                          evaluate_test=not args.no_test, progress=not args.no_progress)
    usage = _total_usage(scorer, generator)
    _print_report(task, result, usage)
    if args.out:
        _write_outputs(Path(args.out), args, task, pool, result, usage, scorer, generator)
    return 0 if result.best_instruction is not None else 1


def _total_usage(scorer: Any, generator: Any) -> dict[str, Any]:
    parts = [scorer.usage()] + ([generator.usage()] if generator is not scorer else [])
    keys = ("calls", "failed_calls", "cache_hits", "attempts", "retries", "prompt_tokens", "completion_tokens",
            "charged_attempts", "charged_tokens", "cost_usd")
    total: dict[str, Any] = {k: sum(p[k] for p in parts) for k in keys}
    total["by_model"] = parts
    if scorer.budget is not None:
        total["budget"] = scorer.budget.summary()
    if scorer.cache is not None:
        total["cache"] = scorer.cache.counts()
    return total


def _print_report(task: Any, result: Any, usage: dict[str, Any]) -> None:
    h = result.history
    n_failed = int((h["status"] == "failed").sum()) if len(h) else 0
    print()
    if result.best_instruction is None:
        print("no instruction could be scored")
    else:
        print(f"best instruction: {result.best_instruction}")
        print(f"validation score ({task.metric}): {result.best_score:.4f}")
        if result.test_score is not None:
            print(f"test score ({task.metric}): {result.test_score:.4f}")
    print(f"instructions scored: {len(h)} ({n_failed} failed) of a pool of {result.pool_size}; stopped: "
          f"{result.stopped}")
    cost = usage["cost_usd"]
    money = f"${cost:.4f}" if not math.isnan(cost) else "unknown (no price)"
    print(f"spend: {usage['calls']} calls, {usage['prompt_tokens']} prompt + {usage['completion_tokens']} "
          f"completion tokens, {money}; retries: {usage['retries']}")
    if usage["charged_attempts"]:
        print(f"charged at their worst case ({usage['charged_tokens']} tokens, included in the spend): "
              f"{usage['charged_attempts']} attempts whose outcome was unknown (timeouts, dropped connections, "
              f"unreadable answers)")
    if "cache" in usage:
        print(f"cache hits: {usage['cache_hits']} responses, {usage['cache']['score_hits']} instruction scores")
    limit = usage.get("budget", {}).get("max_usd")
    if limit is not None:
        print(f"budget: ${limit:.4f}")
    overrun = usage.get("budget", {}).get("overrun")
    if overrun:
        print(f"budget stopped early: {overrun}")


def _write_outputs(out: Path, args: argparse.Namespace, task: Any, pool: Sequence[str], result: Any,
                   usage: dict[str, Any], scorer: Any, generator: Any) -> None:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    result.history.to_csv(out / "history.csv", index=False)
    (out / "pool.json").write_text(json.dumps(list(pool), indent=1, ensure_ascii=False))
    calls = [scorer.calls_table()] + ([generator.calls_table()] if generator is not scorer else [])
    pd.concat(calls, ignore_index=True).to_csv(out / "calls.csv", index=False)
    report = {"task": task.name, "metric": task.metric, "model": args.model, "base_url": args.base_url,
              "best_instruction": result.best_instruction, "valid_score": _num(result.best_score),
              "test_score": result.test_score, "stopped": result.stopped, "n_scored": len(result.history),
              "pool_size": result.pool_size, "seed": args.seed,
              "usage": {k: (_num(v) if isinstance(v, float) else v) for k, v in usage.items()}}
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))
    print(f"outputs: {out}")


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


if __name__ == "__main__":  # the same as `mcbo ...`
    from mcbo.cli import main

    sys.exit(main())
