"""Instruction-induction tasks and their metrics.

A task is a set of input/output examples in three splits: ``train`` (exemplars shown to the LLM
that writes candidate instructions), ``valid`` (scores instructions during the optimisation) and
``test`` (the final, held-out report). An instruction's score on a split is the mean metric of the
LLM's answers to the examples, each prompted with :data:`EVAL_TEMPLATE` (the instruction, then one
input, then ``Output:``), as in INSTINCT (Lin et al., ICML 2024) and APE (Zhou et al., ICLR 2023).

Metrics (each takes the prediction and the list of accepted answers, returns a value in [0, 1],
the best over the accepted answers), after SQuAD normalisation (Rajpurkar et al., 2016: lower
case, no punctuation, no articles, single spaces):

* ``exact_match``: the normalised prediction equals an accepted answer;
* ``f1``: token-level F1 between the prediction and an accepted answer;
* ``contains``: an accepted answer occurs in the prediction as whole words.

Shipped tasks (``mcbo/data/instruction_induction/*.json``, see the README there): small data sets
written for mcbo (MIT licence) after the task families of Honovich et al., "Instruction Induction"
(2022): antonyms, larger_animal, first_letter, word_sorting, sentence_length, synonyms, categories.
A user task is a JSON file of the same form, given by path.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

#: Prompt used to score an instruction on one example (INSTINCT's evaluation template).
EVAL_TEMPLATE = "Instruction: {instruction}\n\nInput: {input}\nOutput:"
SPLITS = ("train", "valid", "test")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize(text: str) -> str:
    """SQuAD-style normalisation: lower case, punctuation and articles removed, single spaces."""
    text = text.lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1 if the normalised prediction equals a normalised accepted answer, else 0."""
    pred = normalize(prediction)
    return float(any(pred == normalize(a) for a in answers))


def f1(prediction: str, answers: Sequence[str]) -> float:
    """Best token-level F1 between the prediction and an accepted answer."""
    pred = normalize(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize(answer).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains(prediction: str, answers: Sequence[str]) -> float:
    """1 if a normalised accepted answer occurs in the normalised prediction as whole words, else 0."""
    pred = f" {normalize(prediction)} "
    return float(any(normalize(a) and f" {normalize(a)} " in pred for a in answers))


METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "exact_match": exact_match,
    "f1": f1,
    "contains": contains,
}


def first_line(text: str) -> str:
    """The answer part of a completion: its first non-empty line, stripped."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


@dataclass(frozen=True)
class Example:
    """One input and its accepted outputs."""

    input: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class InstructionTask:
    """An instruction-induction task: examples per split and a metric.

    Attributes:
        name: task name.
        metric: one of :data:`METRICS`.
        description: what the ideal instruction asks for (documentation only; never sent).
        splits: ``{"train": (...), "valid": (...), "test": (...)}`` examples.
        license, provenance: where the data comes from.
    """

    name: str
    metric: str
    description: str
    splits: dict[str, tuple[Example, ...]]
    license: str = ""
    provenance: str = ""

    def examples(self, split: str, n: int | None = None) -> tuple[Example, ...]:
        """The first ``n`` (default all) examples of ``split``."""
        if split not in self.splits:
            raise ValueError(f"task {self.name!r}: unknown split {split!r}; allowed: {sorted(self.splits)}")
        out = self.splits[split]
        if n is not None:
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                raise ValueError(f"number of examples must be a positive integer, got {n!r}")
            out = out[:n]
        return out

    def score(self, prediction: str, example: Example) -> float:
        """Metric of one completion (its first line) against the example's accepted outputs."""
        return METRICS[self.metric](first_line(prediction), example.outputs)

    def prompt(self, instruction: str, example: Example) -> str:
        """The scoring prompt of ``instruction`` on ``example``."""
        return EVAL_TEMPLATE.format(instruction=instruction.strip(), input=example.input)

    def fingerprint(self, split: str, n: int | None, extra: str = "") -> str:
        """Hash of everything besides the instruction and model that fixes a score (cache key part)."""
        payload = json.dumps({"template": EVAL_TEMPLATE, "metric": self.metric, "extra": extra,
                              "examples": [[e.input, list(e.outputs)] for e in self.examples(split, n)]},
                             sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _data_dir() -> Path:
    return Path(str(resources.files("mcbo") / "data" / "instruction_induction"))


def list_tasks() -> list[str]:
    """Names of the shipped instruction-induction tasks."""
    return sorted(p.stem for p in _data_dir().glob("*.json"))


def load_task(name_or_path: str | Path) -> InstructionTask:
    """A shipped task by name, or a task JSON file by path.

    The file holds ``name``, ``metric`` and the ``train``/``valid``/``test`` lists of
    ``{"input": str, "outputs": [str, ...]}`` (optional ``description``, ``license``, ``provenance``).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = _data_dir() / f"{name_or_path}.json"
        if not path.is_file():
            raise ValueError(f"unknown instruction task {str(name_or_path)!r}; shipped: {list_tasks()} "
                             f"(or give the path of a task JSON file)")
    elif not path.is_file():
        raise ValueError(f"task file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"task file {str(path)!r} is not valid JSON: {err}") from None
    return _task_from_dict(data, str(path))


def _task_from_dict(data: object, where: str) -> InstructionTask:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a task must be a JSON object")
    metric = data.get("metric")
    if metric not in METRICS:
        raise ValueError(f"{where}: metric {metric!r} is not one of {sorted(METRICS)}")
    splits = {}
    for split in SPLITS:
        raw = data.get(split)
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"{where}: split {split!r} must be a non-empty list of examples")
        examples = []
        for i, ex in enumerate(raw):
            ok = (isinstance(ex, dict) and isinstance(ex.get("input"), str) and isinstance(ex.get("outputs"), list)
                  and ex["outputs"] and all(isinstance(o, str) for o in ex["outputs"]))
            if not ok:
                raise ValueError(f"{where}: {split}[{i}] must be {{'input': str, 'outputs': [str, ...]}}, got {ex!r}")
            examples.append(Example(ex["input"], tuple(ex["outputs"])))
        splits[split] = tuple(examples)
    name = data.get("name") or Path(where).stem
    return InstructionTask(name=str(name), metric=metric, description=str(data.get("description", "")),
                           splits=splits, license=str(data.get("license", "")),
                           provenance=str(data.get("provenance", "")))


__all__ = ["EVAL_TEMPLATE", "Example", "InstructionTask", "METRICS", "contains", "exact_match", "f1", "first_line",
           "list_tasks", "load_task", "normalize"]
