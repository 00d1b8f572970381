"""INSTINCT end to end on a local model: pool written by the model, scores through the OpenAI API, NeuralUCB vs random.

Lin et al., "Use Your INSTINCT: INSTruction optimization for LLMs usIng Neural bandits Coupled with
Transformers", ICML 2024, run entirely on this machine: llama.cpp's OpenAI-compatible server
(:mod:`mcbo.llm.local_server`) serves SmolLM2-135M-Instruct; the model itself writes the candidate pool;
all-MiniLM-L6-v2 embeds the pool; every instruction is scored by the model answering the task's validation
questions through :class:`~mcbo.llm.client.LLMClient` (greedy decoding, so a score is a deterministic function of the
instruction). Then, per seed, the ``instinct`` recipe (NeuralUCB over the pool) and random search (the
same loop with every evaluation drawn by the initial design) each get the same number of evaluations.

The pool: a 135M-parameter model cannot induce an instruction from demonstrations (APE's first step,
:func:`mcbo.llm.pool.generate_instructions`; ``--pool-method induce``): in trials every instruction it
wrote that way scored 0. By default (``--pool-method vary``) it writes variations of the data set's own
instruction instead, with APE's resampling prompt (Zhou et al., "Large Language Models Are Human-Level
Prompt Engineers", ICLR 2023, iterative Monte Carlo search): "Generate a variation of the following
instruction while keeping the semantic meaning." at temperature 1, one seed per request. Most
variations drift (score 0), a few keep the task: a pool with a few needles, which is what the
optimiser has to find. The seed instruction itself is not in the pool.

Every pool instruction is also scored once up front (cached, so the runs read the same scores without
calls): this gives the pool's best score, against which each run's regret is measured. A run only sees
the scores of the instructions it asks for.

Usage (starts and stops its own server unless ``--base-url`` is given)::

    python benchmarks/instinct_local.py                        # writes benchmarks/results/instinct_local.md
    python benchmarks/instinct_local.py --seeds 3 --pool-size 30 --evals 10 --n-init 4
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import header_markdown, markdown_table, write_markdown  # noqa: E402

logger = logging.getLogger("instinct_local")
MODEL = "smollm2-135m-instruct"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", default=None, help="use this server instead of starting one")
    p.add_argument("--dataset", default="plural", help="shipped decoding data set (mcbo/data/decoding)")
    p.add_argument("--metric", default="contains", help="instruction-task metric (contains, exact_match, f1)")
    p.add_argument("--pool-size", type=int, default=30)
    p.add_argument("--pool-method", default="vary", choices=["vary", "induce"],
                   help="vary: variations of the data set's instruction (APE resampling); induce: from demonstrations")
    p.add_argument("--n-valid", type=int, default=8, help="validation questions per instruction score")
    p.add_argument("--evals", type=int, default=10, help="instructions scored per run")
    p.add_argument("--n-init", type=int, default=4, help="INSTINCT's random initial instructions")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=16, help="answer length when scoring")
    p.add_argument("--embedder", default="minilm", choices=["minilm", "hashing"])
    p.add_argument("--cache", default=str(REPO_ROOT / "results" / "instinct_local_cache.db"))
    p.add_argument("--out", default=None, help="results folder (default: benchmarks/results)")
    return p.parse_args(argv)


def mean_se(values: list[float]) -> str:
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return f"{x.mean():.3f}"
    return f"{x.mean():.3f} ± {x.std(ddof=1) / math.sqrt(len(x)):.3f}"


#: APE's resampling prompt (Zhou et al., ICLR 2023).
VARIATION_TEMPLATE = ("Generate a variation of the following instruction while keeping the semantic meaning.\n\n"
                      "Input: {instruction}\n\nOutput:")


def vary_instructions(client: Any, instruction: str, n: int, seed: int = 0,
                      max_attempts: int | None = None) -> list[str]:
    """Up to ``n`` distinct variations of ``instruction`` written by ``client``'s model (request ``i``: seed
    ``seed + i``; at most ``max_attempts``, default ``3 n``, requests)."""
    from mcbo.llm.pool import clean_instruction
    from mcbo.llm.tasks import normalize

    seen, out = {normalize(instruction)}, []
    for i in range(max_attempts or 3 * n):
        if len(out) >= n:
            break
        reply = client.complete(VARIATION_TEMPLATE.format(instruction=instruction), max_tokens=48, temperature=1.0,
                                seed=seed + i)
        text = clean_instruction(reply.text)
        if text and normalize(text) not in seen:
            seen.add(normalize(text))
            out.append(text)
    return out


def run(args: argparse.Namespace, base_url: str) -> str:
    from mcbo.llm import LLMCache, LLMClient, PriceTable
    from mcbo.llm.instinct import InstructionScorer, run_instinct
    from mcbo.llm.pool import HashingEmbedder, SentenceTransformerEmbedder, generate_instructions
    from mcbo.tasks.llm_decoding_api import instruction_task

    client = LLMClient(MODEL, base_url, prices=PriceTable().with_price(MODEL, 0.0, 0.0), cache=LLMCache(args.cache))
    task = instruction_task(args.dataset, args.metric, args.n_valid)

    start = time.perf_counter()
    calls_before = client.usage()["calls"]
    if args.pool_method == "vary":
        pool = vary_instructions(client, task.description, args.pool_size, seed=0)
    else:
        pool = generate_instructions(client, task, args.pool_size, seed=0)
    t_pool = time.perf_counter() - start
    pool_time = f"{t_pool:.0f}s" if client.usage()["calls"] > calls_before else "read from the cache"
    logger.info("pool: %d instructions in %.0fs", len(pool), t_pool)
    embedder = SentenceTransformerEmbedder() if args.embedder == "minilm" else HashingEmbedder()
    embeddings = embedder.embed(pool)

    scorer = InstructionScorer(client, task, "valid", args.n_valid, args.max_tokens, concurrency=1)
    start = time.perf_counter()
    calls_before = client.usage()["calls"]
    valid = [scorer(instruction) for instruction in pool]
    t_score = time.perf_counter() - start
    n_scored_calls = client.usage()["calls"] - calls_before
    pool_best = max(valid)
    order = np.argsort(valid)[::-1]
    logger.info("pool scored in %.0fs (%d calls); best %.3f", t_score, n_scored_calls, pool_best)

    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for method, n_init in (("INSTINCT (NeuralUCB)", args.n_init), ("random search", args.evals)):
            result = run_instinct(client, task, pool, embeddings, n_evaluations=args.evals, n_init=n_init, seed=seed,
                                  n_examples=args.n_valid, max_tokens=args.max_tokens, concurrency=1,
                                  evaluate_test=True)
            curve = result.history["best_score"].to_numpy()
            rows.append({"method": method, "seed": seed, "best": result.best_score,
                         "regret": pool_best - result.best_score, "test": result.test_score,
                         "found_best": float(result.best_score >= pool_best),
                         "half": float(curve[len(curve) // 2 - 1]), "instruction": result.best_instruction})
            logger.info("%s seed %d: best %.3f test %s", method, seed, result.best_score, result.test_score)

    summary = []
    for method in ("INSTINCT (NeuralUCB)", "random search"):
        own = [r for r in rows if r["method"] == method]
        summary.append({
            "method": method,
            f"best valid score after {args.evals // 2}": mean_se([r["half"] for r in own]),
            f"best valid score after {args.evals}": mean_se([r["best"] for r in own]),
            "regret to pool best": mean_se([r["regret"] for r in own]),
            "test score of incumbent": mean_se([r["test"] for r in own if r["test"] is not None]),
            "runs that found the pool best": f"{int(sum(r['found_best'] for r in own))}/{len(own)}",
        })
    usage = client.usage()
    seconds_per_call = t_score / max(n_scored_calls, 1)
    settings = {
        "command": "python " + " ".join(["benchmarks/instinct_local.py", *sys.argv[1:]]),
        "model": f"{MODEL} (SmolLM2-135M-Instruct Q4_1 GGUF) on llama.cpp's server (llama-cpp-python), 1 thread",
        "task": f"{args.dataset} (mcbo/data/decoding), metric {args.metric}; {args.n_valid} validation, "
                f"{len(task.splits['test'])} test questions",
        "pool": f"{len(pool)} instructions written by the model (requested {args.pool_size}; method "
                f"{args.pool_method!r}, from {task.description!r}), {pool_time}; "
                f"embedder {embedder.name}",
        "budget per run": f"{args.evals} instructions (INSTINCT: {args.n_init} random + {args.evals - args.n_init} "
                          f"NeuralUCB); random search: {args.evals} random",
        "seeds": args.seeds,
        "scoring": f"greedy, max_tokens {args.max_tokens}; " + (
            f"{seconds_per_call:.2f}s per call, {t_score / max(len(pool), 1):.1f}s per instruction (whole pool: "
            f"{t_score:.0f}s, {n_scored_calls} calls)" if n_scored_calls else
            f"scores read from the cache {args.cache} (no timing: rerun with a fresh cache to measure)"),
        "calls to the server in this invocation": f"{usage['calls']} ({usage['cache_hits']} cache hits)",
    }
    pool_rows = [{"rank": i + 1, "valid score": valid[j], "instruction": pool[j]} for i, j in enumerate(order)]
    nonzero = sum(v > 0 for v in valid)
    text = [header_markdown(
        "INSTINCT on a local LLM: NeuralUCB vs random search", __doc__.split("Usage")[0], settings),
        "## Results (mean ± standard error over seeds)", "", markdown_table(summary), "",
        "## Runs", "", markdown_table(rows, ["method", "seed", "best", "regret", "test", "instruction"]), "",
        f"## Pool ({len(pool)} instructions; {nonzero} score above 0; best {pool_best:.3f})", "",
        markdown_table(pool_rows), ""]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for name in ("httpx", "httpx2", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    if args.base_url is not None:
        text = run(args, args.base_url)
    else:
        from mcbo.llm.local_server import LocalServer

        with LocalServer(n_threads=1) as server:
            text = run(args, server.base_url)
    path = write_markdown("instinct_local.md", text, Path(args.out) if args.out else None)
    print(text.split("## Results", 1)[1].split("## Runs", 1)[0])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
