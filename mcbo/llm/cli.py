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
arguments (nothing sent), 130 when interrupted.

Ctrl-C stops the run with exit status 130 and one line: what is saved (every answer received and
every instruction scored is in the ``--cache``; ``--out`` gets the history so far) and the command
that resumes. Resuming is rerunning the same command with the same ``--cache``: the run is
deterministic given its seed, so it replays the instructions already scored from the cache, without
calls, and goes on from there; the rerun says how many of the pool's instructions are already
scored. With ``--cache none`` nothing is kept and the line says that a rerun starts over.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import re
import shlex
import sys
from dataclasses import dataclass, field
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
    p.set_defaults(func=instruct_command, command_line=functools.partial(command_line, p))


#: Flags that ``command_line`` leaves out: logging (not part of the run) and argparse's help.
_NOT_REPEATED = {"help", "verbose", "quiet"}


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``mcbo instruct`` with the options of ``args`` that differ from their defaults (shell-quoted)."""
    argv = ["mcbo", "instruct"]
    for action in parser._actions:  # every option of the sub-command, in the order of --help
        if not action.option_strings or action.dest in _NOT_REPEATED or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if value is None or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        argv += [flag] if isinstance(action, argparse._StoreTrueAction) else [flag, str(value)]
    return shlex.join(argv)


def _price_table(args: argparse.Namespace) -> Any:
    from mcbo.llm.pricing import PriceTable

    table = PriceTable.from_file(args.prices) if args.prices else PriceTable()
    if (args.price_in is None) != (args.price_out is None):
        raise ValueError("give both --price-in and --price-out, or neither")
    if args.price_in is not None:
        table = table.with_price(args.model, args.price_in, args.price_out)
    return table


#: The :class:`~mcbo.llm.client.LLMClient` arguments that ``instruct`` sets from a flag.
_CLIENT_FLAGS = {"api_key_env": "--api-key-env", "base_url": "--base-url", "max_retries": "--max-retries",
                 "token_param": "--token-param"}


def as_flags(message: str, generator: bool = False) -> str:
    """``message`` (from :mod:`mcbo.llm`) with the client's argument names replaced by ``instruct``'s flags.

    ``generator``: the message is about the generator's client, whose endpoint is ``--generator-base-url``.
    """
    names = dict(_CLIENT_FLAGS, base_url="--generator-base-url") if generator else _CLIENT_FLAGS
    pattern = r"(?<![\w-])(" + "|".join(names) + r")(?![\w-])"
    return re.sub(pattern, lambda m: names[m.group(1)], message)


def _endpoint(base_url: str | None) -> str:
    return base_url or "https://api.openai.com/v1 (the OpenAI default)"


#: Numeric flags checked before anything is built: (attribute, lowest value, whether the lowest is allowed, kind).
_NUMBER_FLAGS = (
    ("n_init", 1, True, "an integer"), ("pool_size", 1, True, "an integer"), ("concurrency", 1, True, "an integer"),
    ("n_examples", 1, True, "an integer"), ("max_calls", 0, True, "an integer"), ("max_tokens", 0, True, "an integer"),
    ("max_retries", 0, True, "an integer"), ("budget_usd", 0, True, "a number"), ("price_in", 0, True, "a number"),
    ("price_out", 0, True, "a number"), ("rpm", 0, False, "a number"), ("tpm", 0, False, "a number"),
    ("timeout", 0, False, "a number of seconds"),
)


def check_args(args: argparse.Namespace) -> None:
    """``ValueError`` naming the flag, the value and what is allowed, for the first bad number of ``args``."""
    from mcbo.runner.config import check_budget

    check_budget(args.evals, "--evals")  # the one rule of every budget of evaluations
    for name, low, inclusive, kind in _NUMBER_FLAGS:
        value = getattr(args, name)
        if value is None:
            continue
        if not math.isfinite(value) or (value < low if inclusive else value <= low):
            raise ValueError(f"--{name.replace('_', '-')}: got {value}; expected {kind} {'>=' if inclusive else '>'} "
                             f"{low}")


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
    gen_model = args.generator_model or args.model
    gen_url = args.generator_base_url or args.base_url
    scorer = None
    try:
        scorer = LLMClient(args.model, args.base_url, **common)
        generator = scorer if (gen_model, gen_url) == (args.model, args.base_url) else LLMClient(gen_model, gen_url,
                                                                                                  **common)
    except ValueError as err:
        if scorer is not None:
            scorer.close()
        if cache is not None:
            cache.close()
        raise ValueError(as_flags(str(err), generator=scorer is not None and args.generator_base_url is not None)
                         ) from None
    return scorer, generator, cache


_PREPARING = "preparing the run"


@dataclass
class _Progress:
    """How far a run got, for the line printed on Ctrl-C."""

    stage: str = _PREPARING
    pool: list[str] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def instruct_command(args: argparse.Namespace) -> int:
    """Run INSTINCT as configured by ``args``; print the report."""
    from mcbo.llm.client import LLMError
    from mcbo.llm.pool import build_embedder, load_pool
    from mcbo.llm.tasks import load_task

    progress = _Progress()
    scorer = generator = cache = None
    try:
        try:
            check_args(args)
            task = load_task(args.task)
            embedder = build_embedder(args.embedder, args.embedder_path, args.gguf_file)
            pool = load_pool(args.pool_file) if args.pool_file else None
            scorer, generator, cache = _clients(args)
        except ValueError as err:
            print(f"error: {as_flags(str(err))}", file=sys.stderr)
            return 2
        try:
            return _run(args, task, embedder, pool, scorer, generator, progress)
        except ValueError as err:
            print(f"error: {as_flags(str(err))}", file=sys.stderr)
            return 1
        except LLMError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print(_interrupted(args, progress, cache), file=sys.stderr, flush=True)
        return 130
    finally:
        for c in {id(c): c for c in (scorer, generator) if c is not None}.values():
            c.close()
        if cache is not None:
            cache.close()


def _interrupted(args: argparse.Namespace, progress: _Progress, cache: Any) -> str:
    """The one line printed on Ctrl-C: what is saved and the command that resumes."""
    command = args.command_line(args) if callable(getattr(args, "command_line", None)) else "the same command"
    rows = progress.rows
    n_failed = sum(r["status"] == "failed" for r in rows)
    done = f"{len(rows)} instruction(s) scored" + (f" ({n_failed} failed)" if n_failed else "")
    written = ""
    if args.out and progress.pool is not None:
        _write_partial(Path(args.out), progress)
        written = f", the history so far in {Path(args.out) / 'history.csv'}"
    if progress.stage == _PREPARING:
        return f"interrupted before any request was sent: nothing to save; run again with: {command}"
    if cache is None:
        return (f"interrupted while {progress.stage} after {done}; nothing is cached (--cache none){written}; "
                f"a rerun starts over: {command}")
    return (f"interrupted while {progress.stage} after {done}; the answers received and the scores are saved in "
            f"{args.cache}{written}; resume with: {command}")


def _write_partial(out: Path, progress: _Progress) -> None:
    """``history.csv`` (the instructions scored so far) and ``pool.json`` of an interrupted run."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    columns = ["index", "pool_id", "instruction", "score", "status", "error", "best_score"]
    pd.DataFrame(progress.rows, columns=columns).to_csv(out / "history.csv", index=False)
    (out / "pool.json").write_text(json.dumps(list(progress.pool or []), indent=1, ensure_ascii=False))


def _already_scored(args: argparse.Namespace, task: Any, pool: Sequence[str], scorer: Any) -> int:
    """How many instructions of ``pool`` have a score in the cache under this run's settings (0 without a cache)."""
    from mcbo.llm.cache import LLMCache
    from mcbo.llm.instinct import InstructionScorer

    if scorer.cache is None:
        return 0
    config = InstructionScorer(scorer, task, "valid", args.n_examples).config
    with LLMCache(args.cache) as look:  # a connection of its own: the run's cache counts hits of the run only
        return sum(look.get_score(text, task.name, "valid", scorer.model, config) is not None for text in pool)


def _run(args: argparse.Namespace, task: Any, embedder: Any, pool: list[str] | None, scorer: Any,
         generator: Any, progress: _Progress) -> int:
    """Generate (if needed) and embed the pool, run INSTINCT, report; the exit status."""
    from mcbo.llm.client import LLMError
    from mcbo.llm.instinct import run_instinct
    from mcbo.llm.pool import generate_instructions

    if pool is None:
        print(f"writing {args.pool_size} candidate instructions with {generator.model} ...", flush=True)
        progress.stage = "writing the candidate pool"
        try:
            pool = generate_instructions(generator, task, args.pool_size, seed=args.seed)
        except LLMError as err:
            raise LLMError(f"writing the candidate pool: {err} (endpoint {_endpoint(generator.base_url)})",
                           err.status) from None
    progress.pool = pool
    if len(pool) < 2:
        print(f"error: the pool has {len(pool)} instruction(s); at least 2 are needed", file=sys.stderr)
        return 1
    progress.stage = "embedding the pool"
    print(f"embedding {len(pool)} instructions with {embedder.name} ...", flush=True)
    embeddings = embedder.embed(pool)
    n_cached = _already_scored(args, task, pool, scorer)
    if n_cached:
        print(f"resuming from {args.cache}: {n_cached} of the {len(pool)} instructions in the pool are already "
              f"scored there (read without calls)", flush=True)
    progress.stage = "scoring instructions"
    result = run_instinct(scorer, task, pool, embeddings, n_evaluations=args.evals, n_init=args.n_init,
                          seed=args.seed, n_examples=args.n_examples, concurrency=args.concurrency,
                          evaluate_test=not args.no_test, progress=not args.no_progress,
                          callback=progress.rows.append)
    progress.stage = "writing the report"
    usage = _total_usage(scorer, generator)
    _print_report(task, result, usage, _endpoint(scorer.base_url))
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


def _print_report(task: Any, result: Any, usage: dict[str, Any], endpoint: str) -> None:
    h = result.history
    failed = h[h["status"] == "failed"] if len(h) else h
    print()
    if result.best_instruction is None:
        print("no instruction could be scored")
    else:
        print(f"best instruction: {result.best_instruction}")
        print(f"validation score ({task.metric}): {result.best_score:.4f}")
        if result.test_score is not None:
            print(f"test score ({task.metric}): {result.test_score:.4f}")
    print(f"instructions scored: {len(h)} ({len(failed)} failed) of a pool of {result.pool_size}; stopped: "
          f"{result.stopped}")
    if len(failed):
        print(f"last failure: {failed['error'].iloc[-1]} (endpoint {endpoint})")
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
