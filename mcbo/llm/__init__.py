"""Hosted-LLM tooling: an OpenAI-compatible client with retries, rate limits, cost accounting, a hard
budget and caching, instruction-induction tasks, candidate pools, and INSTINCT instruction optimisation.

Nothing here is imported by ``import mcbo``; the ``openai`` SDK and the embedding libraries are
imported only when a client or an embedder is built (``pip install mcbo[llm]``).

Quick start::

    from mcbo.llm import Budget, LLMCache, LLMClient, load_task
    from mcbo.llm.pool import SentenceTransformerEmbedder, generate_instructions
    from mcbo.llm.instinct import run_instinct

    client = LLMClient("gpt-4o-mini", budget=Budget(max_usd=1.0), cache=LLMCache("llm_cache.db"))
    task = load_task("antonyms")
    pool = generate_instructions(client, task, 200)
    result = run_instinct(client, task, pool, SentenceTransformerEmbedder().embed(pool))
    print(result.best_instruction, result.best_score, result.usage["cost_usd"])
"""

from __future__ import annotations

from typing import Any

from mcbo.llm.budget import Budget, BudgetExceeded
from mcbo.llm.cache import LLMCache
from mcbo.llm.pricing import DEFAULT_PRICES, Price, PriceTable
from mcbo.llm.rate_limit import RateLimiter
from mcbo.llm.tasks import InstructionTask, list_tasks, load_task

_LAZY = {"LLMClient": "mcbo.llm.client", "LLMError": "mcbo.llm.client", "ChatResult": "mcbo.llm.client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mcbo.llm' has no attribute {name!r}")


__all__ = [
    "Budget", "BudgetExceeded", "ChatResult", "DEFAULT_PRICES", "InstructionTask", "LLMCache", "LLMClient", "LLMError",
    "Price", "PriceTable", "RateLimiter", "list_tasks", "load_task",
]
