"""INSTINCT: instruction optimisation for a black-box LLM with a neural bandit over a candidate pool.

Lin et al., "Use Your INSTINCT: INSTruction optimization for LLMs usIng Neural bandits Coupled with
Transformers", ICML 2024. Here, for hosted LLM APIs:

1. a pool of candidate instructions (written by an LLM from exemplars, or given), each embedded by
   a pre-trained transformer (:mod:`mcbo.llm.pool`);
2. the search space is one ``Categorical("instruction", range(K))``; category ``i`` is pool item
   ``i`` and the NeuralUCB model (:class:`~mcbo.models.neural_ucb.NeuralUCBModel`) maps it to row
   ``i`` of the embedding table;
3. the ``instinct`` recipe (``solvers/instinct.yaml``: 40 initial points, NeuralUCB, LCB with
   ``beta = 1`` = UCB, exact arg-max over the untried pool) proposes one instruction at a time;
4. :class:`InstructionScorer` scores it: the LLM answers the task's ``valid`` examples under the
   instruction, the task metric is averaged (values told to the solver are negated scores, as mcbo
   minimises);
   an instruction whose scoring fails (the LLM keeps erroring) is recorded as failed in the run's
   history and left pending in the solver, so that it is not proposed again;
5. the loop stops after ``n_evaluations`` (paper: 40 + 125 = 165) or, cleanly, when the budget
   cannot pay for the next instruction; the incumbent is returned either way.

Responses and scores are cached (:class:`~mcbo.llm.cache.LLMCache`), so a rerun with the same
settings repeats the same run without calls.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from mcbo.llm.budget import BudgetExceeded
from mcbo.llm.client import LLMClient, LLMError, prompt_token_bound
from mcbo.llm.tasks import InstructionTask

logger = logging.getLogger(__name__)

#: Paper budget: initial design and total number of queries.
N_INIT, N_EVALUATIONS = 40, 165


class InstructionScorer:
    """Mean task metric of an LLM's answers under an instruction, on one split.

    Args:
        client: the LLM that answers (its cache, if any, also stores scores).
        task: the instruction-induction task.
        split: ``"valid"`` during optimisation, ``"test"`` for the final report.
        n_examples: use the first ``n`` examples of the split (default all).
        max_tokens: answer length limit.
        concurrency: examples answered in parallel.
    """

    def __init__(self, client: LLMClient, task: InstructionTask, split: str = "valid", n_examples: int | None = None,
                 max_tokens: int = 32, concurrency: int = 4) -> None:
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
        self.client, self.task, self.split = client, task, split
        self.examples = task.examples(split, n_examples)
        self.max_tokens, self.concurrency = max_tokens, concurrency
        self.config = task.fingerprint(split, n_examples, extra=f"max_tokens={max_tokens}")

    def _messages(self, instruction: str) -> list[list[dict[str, str]]]:
        return [[{"role": "user", "content": self.task.prompt(instruction, e)}] for e in self.examples]

    def cached(self, instruction: str) -> float | None:
        """The stored score of ``instruction``, if it was scored before with these settings."""
        cache = self.client.cache
        if cache is None:
            return None
        hit = cache.get_score(instruction, self.task.name, self.split, self.client.model, self.config)
        return None if hit is None else hit[0]

    def affordable(self, instruction: str) -> bool:
        """Whether the budget can pay for every answer of ``instruction`` in the worst case."""
        budget = self.client.budget
        if budget is None:
            return True
        bounds = [prompt_token_bound(m) for m in self._messages(instruction)]
        price = self.client.price
        usd = sum(price.cost(b, self.max_tokens) for b in bounds) if price is not None else 0.0
        return budget.can_afford(len(bounds), sum(bounds) + len(bounds) * self.max_tokens, usd)

    def __call__(self, instruction: str) -> float:
        """Score in [0, 1] of ``instruction``.

        Raises:
            BudgetExceeded: the budget ran out part-way (answers obtained so far stay cached).
            LLMError: an answer could not be obtained.
        """
        hit = self.cached(instruction)
        return hit if hit is not None else self.evaluate(instruction)

    def evaluate(self, instruction: str) -> float:
        """Score ``instruction`` by querying the LLM (no score-cache lookup; the score is stored)."""
        messages = self._messages(instruction)

        def answer(m: list[dict[str, str]]) -> str:
            return self.client.chat(m, max_tokens=self.max_tokens, temperature=0.0).text

        if self.concurrency == 1:
            texts = [answer(m) for m in messages]
        else:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                futures = [pool.submit(answer, m) for m in messages]
                texts, first_error = [], None
                for f in futures:
                    try:
                        texts.append(f.result())
                    except (BudgetExceeded, LLMError) as err:
                        first_error = first_error or err
                if first_error is not None:
                    raise first_error
        score = float(np.mean([self.task.score(t, e) for t, e in zip(texts, self.examples)]))
        if self.client.cache is not None:
            self.client.cache.put_score(instruction, self.task.name, self.split, self.client.model, self.config,
                                        score, len(self.examples))
        return score


@dataclass
class InstinctResult:
    """Outcome of :func:`run_instinct`.

    Attributes:
        best_instruction: the incumbent (``None`` if nothing was scored).
        best_score: its score on the scoring split.
        test_score: its score on the ``test`` split, when asked for and affordable.
        history: one row per evaluation: index, pool id, instruction, score, status, error, best score so far.
        stopped: ``"completed"``, ``"budget"`` or ``"pool exhausted"``.
        usage: calls, tokens, dollars, cache hits (see :meth:`LLMClient.usage`) and the budget's state.
        pool_size: number of candidates.
    """

    best_instruction: str | None
    best_score: float
    test_score: float | None
    history: pd.DataFrame
    stopped: str
    usage: dict[str, Any] = field(default_factory=dict)
    pool_size: int = 0


def instinct_solver(embeddings: np.ndarray, seed: int = 0, n_init: int = N_INIT,
                    recipe: str | dict[str, Any] = "instinct", model: dict[str, Any] | None = None) -> Any:
    """The ``instinct`` solver over a pool with feature table ``embeddings`` ``[K, p]``.

    The space is ``Categorical("instruction", list(range(K)))``; ``model`` entries override the
    recipe's model settings.
    """
    from mcbo.solvers import build_solver, load_recipe
    from mcbo.space import Categorical, SearchSpace

    table = np.asarray(embeddings, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError(f"embeddings must be a [K, p] table with K >= 2 candidates, got shape {table.shape}")
    spec = load_recipe(recipe) if isinstance(recipe, str) else dict(recipe)
    spec["model"] = {**spec.get("model", {}), "seed": seed, **(model or {}), "features": table}
    spec["n_init"] = int(min(n_init, table.shape[0]))
    space = SearchSpace([Categorical("instruction", list(range(table.shape[0])))])
    return build_solver(spec, space, seed=seed)


def run_instinct(
    client: LLMClient,
    task: InstructionTask,
    pool: Sequence[str],
    embeddings: np.ndarray,
    *,
    n_evaluations: int = N_EVALUATIONS,
    n_init: int = N_INIT,
    seed: int = 0,
    n_examples: int | None = None,
    max_tokens: int = 32,
    concurrency: int = 4,
    evaluate_test: bool = False,
    recipe: str | dict[str, Any] = "instinct",
    model: dict[str, Any] | None = None,
    progress: bool = False,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> InstinctResult:
    """Optimise the instruction of ``task`` for ``client``'s model over ``pool`` (see the module doc).

    Args:
        client: the LLM scored (its budget bounds the whole run).
        task: the task.
        pool: candidate instructions, ``K`` distinct strings.
        embeddings: their features ``[K, p]``, row ``i`` for ``pool[i]``.
        n_evaluations: instructions scored at most (capped at ``K``).
        n_init: initial design size.
        seed: seed of the solver and the network initialisation.
        n_examples: ``valid`` examples per score (default all).
        max_tokens, concurrency: see :class:`InstructionScorer`.
        evaluate_test: also score the final incumbent on the ``test`` split (if affordable).
        recipe, model: solver recipe and model-setting overrides.
        progress: show a progress bar.
        callback: called after each evaluation with its history row.
    """
    from tqdm.auto import tqdm

    pool = list(pool)
    if len(pool) != len(set(pool)):
        raise ValueError("pool holds duplicate instructions; deduplicate it (mcbo.llm.pool.dedupe)")
    if len(pool) != np.asarray(embeddings).shape[0]:
        raise ValueError(f"pool has {len(pool)} instructions but embeddings has {np.asarray(embeddings).shape[0]} rows")
    if not isinstance(n_evaluations, int) or isinstance(n_evaluations, bool) or n_evaluations < 1:
        raise ValueError(f"n_evaluations must be a positive integer, got {n_evaluations!r}")
    if n_evaluations > len(pool):
        logger.warning("n_evaluations=%d exceeds the pool size %d; scoring at most the whole pool", n_evaluations,
                       len(pool))
    n_total = min(n_evaluations, len(pool))
    solver = instinct_solver(embeddings, seed=seed, n_init=min(n_init, n_total), recipe=recipe, model=model)
    scorer = InstructionScorer(client, task, "valid", n_examples, max_tokens, concurrency)
    rows: list[dict[str, Any]] = []
    stopped = "completed"
    best = -math.inf
    bar = tqdm(total=n_total, disable=not progress, desc=f"instinct {task.name}", unit="instr")
    scored: dict[int, float] = {}
    while len(rows) < n_total:
        point = solver.ask(1)[0]
        i = int(point["instruction"])
        if i in scored:  # a repeat within the random initial design: tell the known score, no call, no row
            solver.tell([point], [-scored[i]])
            continue
        instruction = pool[i]
        hit = scorer.cached(instruction)
        if hit is None and not scorer.affordable(instruction):
            stopped = "budget"
            break
        row: dict[str, Any] = {"index": len(rows), "pool_id": i, "instruction": instruction}
        try:
            score = hit if hit is not None else scorer.evaluate(instruction)
        except BudgetExceeded as err:
            logger.info("stopping: %s", err)
            stopped = "budget"
            break
        except LLMError as err:
            # Not told: the point stays pending in the solver, so it is never proposed again.
            row.update(score=float("nan"), status="failed", error=str(err))
        else:
            solver.tell([point], [-score])
            scored[i] = score
            row.update(score=score, status="ok", error="")
            best = max(best, score)
        row["best_score"] = best if math.isfinite(best) else float("nan")
        rows.append(row)
        bar.update(1)
        spent = client.budget.usd if client.budget is not None else client.usage()["cost_usd"]
        bar.set_postfix(best=f"{best:.3f}", usd=f"{spent:.4f}" if not math.isnan(spent) else "n/a")
        if callback is not None:
            callback(dict(row))
    bar.close()
    history = pd.DataFrame(rows, columns=["index", "pool_id", "instruction", "score", "status", "error",
                                          "best_score"])
    best_point, best_value = solver.best
    best_instruction = pool[int(best_point["instruction"])] if best_point is not None else None
    best_score = -best_value if best_point is not None else float("nan")
    test_score = None
    if evaluate_test and best_instruction is not None:
        test_scorer = InstructionScorer(client, task, "test", None, max_tokens, concurrency)
        test_score = test_scorer.cached(best_instruction)
        if test_score is None and test_scorer.affordable(best_instruction):
            try:
                test_score = test_scorer.evaluate(best_instruction)
            except (BudgetExceeded, LLMError) as err:
                logger.warning("test score not obtained: %s", err)
        elif test_score is None:
            logger.warning("test score skipped: the budget cannot pay for it")
    if stopped == "completed" and n_total < n_evaluations:
        stopped = "pool exhausted"
    usage = client.usage()
    if client.budget is not None:
        usage["budget"] = client.budget.summary()
    if client.cache is not None:
        usage["cache"] = client.cache.counts()
    return InstinctResult(best_instruction, best_score, test_score, history, stopped, usage, len(pool))


__all__ = ["InstinctResult", "InstructionScorer", "N_EVALUATIONS", "N_INIT", "instinct_solver", "run_instinct"]
