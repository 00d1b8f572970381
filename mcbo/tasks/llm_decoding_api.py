"""Decoding configuration of a real LLM behind an OpenAI-compatible API, tuned on a small labelled data set.

The simulated ``best_of_k`` task (:mod:`mcbo.tasks.llm_decoding`) models repeated sampling with a
selector; this task measures it: every evaluation asks a served model (llama.cpp's server running
SmolLM2-135M locally, or any hosted endpoint) the questions of a data set under one decoding
configuration and scores the answers.

Search space:

* ``temperature`` in [0, 1.5] and ``top_p`` in [0.05, 1] (nucleus sampling, Holtzman et al., ICLR 2020);
* ``max_tokens``, the answer length limit (log scale);
* ``n_samples``, answers drawn per question, and the ``selector`` that combines them:
  ``majority_vote`` (self-consistency, Wang et al., "Self-Consistency Improves Chain of Thought
  Reasoning in Language Models", ICLR 2023), ``first_valid`` (the first answer that parses), or
  ``max_logprob`` (the answer with the highest mean token log-probability, which the server returns
  on request);
* ``system_prompt``, one of the shipped variants :data:`SYSTEM_PROMPTS`;
* ``n_shots``, worked examples from the data set's demonstration records shown as earlier chat turns.

Objective (minimised): ``-(accuracy - price_per_token * tokens per question)``, where tokens are the
prompt and completion tokens the server reports, summed over the samples of a question.

Every request goes through :meth:`LLMClient.chat <mcbo.llm.client.LLMClient.chat>` (retries, cost,
hard budget, SQLite cache; ``top_p`` and ``logprobs`` are its own arguments) and carries a seed
(sample ``j`` of an evaluation: ``seed * 1000 + j``), so an evaluation is reproducible on a server
that honours seeds (llama.cpp does) and, through the cache, everywhere. At ``temperature == 0``
decoding is greedy: the configuration's ``top_p`` and the sample seed are then not used (every
sample is sent ``top_p = 1`` and the seed of sample 0), so the ``n`` identical requests are one call
and the others cache hits; their tokens still count in the objective, as a deployment would pay for them.

Data sets are JSONL, one ``{"input": str, "outputs": [str, ...]}`` record per line (``"output": str``
also accepted); records with ``"split": "demo"`` are the few-shot pool (without any, the first
``max_shots`` records are), the rest are the questions. Shipped ones (:data:`SHIPPED_DATASETS`,
``mcbo/data/decoding/``) were written for mcbo; a user's own file is given by path with a scorer
(:data:`SCORERS`: ``exact``, ``normalized``, ``regex``, ``numeric``) and an instruction.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from mcbo.llm.cache import LLMCache
from mcbo.llm.client import ChatResult, LLMClient
from mcbo.llm.pricing import PriceTable
from mcbo.llm.tasks import METRICS, Example, InstructionTask, normalize
from mcbo.space import Categorical, Integer, Real, SearchSpace
from mcbo.tasks._arg_checks import check_choice, check_int, check_real
from mcbo.tasks.base import Task, register_task

logger = logging.getLogger(__name__)

SELECTORS = ["majority_vote", "first_valid", "max_logprob"]
SCORERS = ["exact", "normalized", "regex", "numeric"]

#: System-prompt variants; ``none`` sends no system message.
SYSTEM_PROMPTS: dict[str, str | None] = {
    "none": None,
    "assistant": "You are a helpful assistant.",
    "concise": "Reply with the answer only: a single word or number, with no explanation and no punctuation.",
    "expert": "You are an expert at language and general knowledge. Read the instruction carefully and give "
              "only the final answer.",
}

#: Shipped data sets: name -> (scorer, instruction). Files: ``mcbo/data/decoding/<name>.jsonl``.
SHIPPED_DATASETS: dict[str, tuple[str, str]] = {
    "plural": ("normalized", "Write the plural form of the word."),
    "past_tense": ("normalized", "Write the past tense of the verb."),
    "antonyms": ("normalized", "Write a word that means the opposite of the word."),
    "capitals": ("normalized", "Write the capital city of the country."),
    "first_letter": ("normalized", "Write the first letter of the word."),
    "arithmetic": ("numeric", "Compute the result of the arithmetic expression."),
}

#: Prompt of one question (the few-shot turns use it too).
USER_TEMPLATE = "{instruction}\nInput: {input}"

_LABEL = re.compile(r"^\s*(?:output|answer|a)\s*[:\-]\s*", re.IGNORECASE)
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?")
_WHOLE_NUMBER = re.compile(r"\s*[-+]?\d+(?:[.,]\d+)?\s*")
#: Sample ``j`` of an evaluation is sent seed ``seed * _SEED_STRIDE + j``.
_SEED_STRIDE = 1000


# ============================================================================ answers and scorers
def extract_answer(text: str) -> str:
    """The answer in a completion: its first non-empty line, without an ``Output:``/``Answer:`` label,
    quotes or a final full stop."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip().rstrip(".").strip()
    return line.strip("\"'`*").rstrip(".").strip()


def _number(text: str) -> float | None:
    match = _NUMBER.search(text)
    return float(match.group().replace(",", ".")) if match else None


@dataclass(frozen=True)
class Scorer:
    """How an answer is checked against a record's accepted outputs.

    Attributes:
        name: the scorer's name in :data:`SCORERS`.
        canonical: the answer's canonical form (what majority voting counts), or ``None`` if the answer
            is not valid (empty, or no number for ``numeric``).
        correct: whether an answer matches one of the accepted outputs.
    """

    name: str
    canonical: Callable[[str], Any]
    correct: Callable[[str, Sequence[str]], bool]


def _scorer(name: str, tolerance: float = 1e-6) -> Scorer:
    """The scorer ``name`` (``numeric`` accepts ``|answer - output| <= tolerance``)."""
    if name == "exact":
        return Scorer(name, lambda a: a or None, lambda a, outs: any(a == o.strip() for o in outs))
    if name == "normalized":
        return Scorer(name, lambda a: normalize(a) or None,
                      lambda a, outs: bool(normalize(a)) and any(normalize(a) == normalize(o) for o in outs))
    if name == "regex":
        return Scorer(name, lambda a: a or None,
                      lambda a, outs: any(re.fullmatch(o, a, flags=re.IGNORECASE) for o in outs))
    if name == "numeric":
        def correct(a: str, outs: Sequence[str]) -> bool:
            x = _number(a)
            return x is not None and any(abs(x - (_number(o) or 0.0)) <= tolerance for o in outs)
        return Scorer(name, _number, correct)
    raise ValueError(f"argument 'scorer': invalid value {name!r}; allowed values are {SCORERS!r}")



# ==================================================================================== data sets
#: One question and its accepted outputs (regular expressions for the ``regex`` scorer).
Record = Example


@dataclass(frozen=True)
class DecodingDataset:
    """A labelled data set: the instruction, the scorer, the few-shot pool and the questions."""

    name: str
    instruction: str
    scorer: str
    demos: tuple[Record, ...]
    questions: tuple[Record, ...]


def _outputs(raw: Any) -> list[str] | None:
    """The accepted outputs of a JSONL record (``outputs`` list or ``output`` string), ``None`` if malformed."""
    if not isinstance(raw, dict) or not isinstance(raw.get("input"), str):
        return None
    outputs = raw.get("outputs", raw.get("output"))
    if isinstance(outputs, str):
        outputs = [outputs]
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, str) for o in outputs):
        return None
    return outputs


def data_dir() -> Path:
    """Folder of the shipped data sets."""
    return Path(str(resources.files("mcbo") / "data" / "decoding"))


def load_dataset(name_or_path: str | Path, *, scorer: str | None = None, instruction: str | None = None,
                 max_shots: int = 4) -> DecodingDataset:
    """A shipped data set by name (:data:`SHIPPED_DATASETS`), or a JSONL file by path.

    Args:
        name_or_path: shipped name, or path of a JSONL file.
        scorer: one of :data:`SCORERS`; required for a file, overrides a shipped set's.
        instruction: the task instruction; required for a file, overrides a shipped set's.
        max_shots: demonstrations needed; without ``"split": "demo"`` records, the first ``max_shots``
            records are the demonstrations.
    """
    key = str(name_or_path)
    if key in SHIPPED_DATASETS:
        default_scorer, default_instruction = SHIPPED_DATASETS[key]
        path, name = data_dir() / f"{key}.jsonl", key
        scorer, instruction = scorer or default_scorer, instruction or default_instruction
    else:
        path, name = Path(name_or_path), Path(name_or_path).stem
        if path.suffix.lower() not in (".jsonl", ".json") or not path.is_file():
            raise ValueError(f"argument 'dataset': invalid value {key!r}; expected one of "
                             f"{sorted(SHIPPED_DATASETS)!r} or the path of an existing JSONL file")
        if scorer is None or instruction is None:
            raise ValueError(f"argument 'dataset': a data set of your own ({key!r}) needs 'scorer' (one of "
                             f"{SCORERS!r}) and 'instruction' (the task, e.g. 'Write the plural of the word.')")
    check_choice("scorer", scorer, SCORERS)
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"argument 'instruction': invalid value {instruction!r}; expected a non-empty string")
    demos, questions = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        outputs = _outputs(raw)
        if outputs is None:
            raise ValueError(f"{path}:{lineno}: expected {{\"input\": str, \"outputs\": [str, ...]}} "
                             f"(or \"output\": str), got {line[:120]!r}")
        if scorer == "numeric" and not all(_WHOLE_NUMBER.fullmatch(o) for o in outputs):
            raise ValueError(f"{path}:{lineno}: the numeric scorer needs numbers as outputs, got {outputs!r}")
        if scorer == "regex":
            for o in outputs:
                try:
                    re.compile(o)
                except re.error as err:
                    raise ValueError(f"{path}:{lineno}: output {o!r} is not a regular expression ({err})") from None
        record = Record(raw["input"], tuple(outputs))
        (demos if raw.get("split") == "demo" else questions).append(record)
    if not demos:
        demos, questions = questions[:max_shots], questions[max_shots:]
    if not questions:
        raise ValueError(f"{path}: no questions (records without \"split\": \"demo\")")
    if len(demos) < max_shots:
        raise ValueError(f"{path}: {len(demos)} demonstration records, fewer than max_shots={max_shots}")
    return DecodingDataset(name, instruction.strip(), scorer, tuple(demos), tuple(questions))


def instruction_task(dataset: DecodingDataset | str, metric: str = "contains", n_valid: int = 8) -> InstructionTask:
    """The data set as an instruction-induction task for INSTINCT (:mod:`mcbo.llm.instinct`).

    ``train`` holds the demonstrations (what candidate instructions are written from), ``valid`` the first
    ``n_valid`` questions (what instructions are scored on) and ``test`` the rest. ``metric`` is one of
    :data:`mcbo.llm.tasks.METRICS`; ``contains`` suits small models, which answer in sentences.
    """
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    check_choice("metric", metric, sorted(METRICS))
    n_valid = check_int("n_valid", n_valid, 1, len(data.questions) - 1)

    return InstructionTask(data.name, metric, data.instruction,
                           {"train": data.demos, "valid": data.questions[:n_valid],
                            "test": data.questions[n_valid:]},
                           license="MIT (same as mcbo)", provenance="written for mcbo (mcbo/data/decoding)")


# ==================================================================================== samples
@dataclass(frozen=True)
class Sample:
    """One completion: its text, the usage the server reported, and its mean token log-probability."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    mean_logprob: float | None
    cached: bool

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, result: ChatResult) -> Sample:
        """The sample of a :meth:`~mcbo.llm.client.LLMClient.chat` result."""
        return cls(result.text, result.prompt_tokens, result.completion_tokens, result.mean_logprob, result.cached)


# ========================================================================================= task
@dataclass(frozen=True)
class DecodingResult:
    """What one decoding configuration achieved on the questions.

    Attributes:
        accuracy: share of questions whose selected answer is correct.
        tokens_per_question: prompt + completion tokens per question, over all its samples.
        objective: ``-(accuracy - price_per_token * tokens_per_question)``.
        calls: requests sent to the server (cache hits excluded).
        seconds: wall-clock time of the evaluation.
        answers: the selected answer of each question.
    """

    accuracy: float
    tokens_per_question: float
    objective: float
    calls: int
    seconds: float
    answers: tuple[str, ...]


#: A configuration a user would start from: one sample, the model's default temperature and top-p,
#: a generous answer length, no system prompt and no examples.
DEFAULT_CONFIG: dict[str, Any] = {"temperature": 1.0, "top_p": 1.0, "max_tokens": 32, "n_samples": 1,
                                  "selector": "first_valid", "system_prompt": "none", "n_shots": 0}


@register_task("llm_decoding_api")
class LLMDecodingAPI(Task):
    """Decoding configuration (temperature, top-p, length, samples and selector, system prompt, shots) of a served LLM.

    See the module docstring for the space, the objective and the data sets.

    Args:
        base_url: OpenAI-compatible endpoint, e.g. ``http://127.0.0.1:8080/v1`` (required unless
            ``client`` is given).
        model: model name sent to the server.
        dataset: a shipped data set name (:data:`SHIPPED_DATASETS`) or a JSONL path.
        scorer, instruction: for a JSONL file of your own (override a shipped set's).
        n_questions: questions asked per evaluation (the first ``n`` of the set).
        price_per_token: accuracy given up per token (the objective's trade-off), >= 0.
        max_samples: largest ``n_samples`` in the space.
        max_shots: largest ``n_shots``.
        max_tokens: largest ``max_tokens`` in the space (the smallest is 1).
        stop: stop sequences sent with every request (default: end of line; the answer is the first line).
        tolerance: absolute tolerance of the ``numeric`` scorer.
        logprobs: ask for token log-probabilities; without them the space has no ``max_logprob`` selector.
        seed: seed of the sampling (sent to the server).
        cache: SQLite path or :class:`~mcbo.llm.cache.LLMCache` for responses (default: in memory, so repeated
            configurations and greedy repeats cost no calls); ``None`` for none. Ignored with ``client``.
        budget: hard budget (:class:`~mcbo.llm.budget.Budget`) of the client; an evaluation it refuses fails.
        api_key_env: environment variable with the API key (loopback servers need none).
        timeout: seconds per HTTP attempt.
        concurrency: requests in flight at once.
        client: a :class:`~mcbo.llm.client.LLMClient` to use instead of building one.
    """

    name = "llm_decoding_api"

    def __init__(
        self,
        base_url: str | None = None,
        model: str = "smollm2-135m-instruct",
        dataset: str | Path = "plural",
        *,
        scorer: str | None = None,
        instruction: str | None = None,
        n_questions: int = 12,
        price_per_token: float = 1e-4,
        max_samples: int = 5,
        max_shots: int = 4,
        max_tokens: int = 32,
        stop: Sequence[str] | None = ("\n",),
        tolerance: float = 1e-6,
        logprobs: bool = True,
        seed: int = 0,
        cache: Any = ":memory:",
        budget: Any = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        concurrency: int = 1,
        client: Any = None,
    ) -> None:
        super().__init__(check_int("seed", seed, 0, 2**31 // _SEED_STRIDE - 1))
        self.max_samples = check_int("max_samples", max_samples, 2, _SEED_STRIDE)
        self.max_shots = check_int("max_shots", max_shots, 1, 64)
        self.max_tokens = check_int("max_tokens", max_tokens, 2, 4096)
        self.price_per_token = check_real("price_per_token", price_per_token, 0.0, 1.0)
        self.tolerance = check_real("tolerance", tolerance, 0.0, 1e300)
        self.concurrency = check_int("concurrency", concurrency, 1, 64)
        if not isinstance(logprobs, bool):
            raise ValueError(f"argument 'logprobs': invalid value {logprobs!r}; expected True or False")
        if stop is not None and (isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop)):
            raise ValueError(f"argument 'stop': invalid value {stop!r}; expected a list of non-empty strings or None")
        self.stop = tuple(stop) if stop else None
        self.logprobs = logprobs
        self.dataset = load_dataset(dataset, scorer=scorer, instruction=instruction, max_shots=self.max_shots)
        self.n_questions = check_int("n_questions", n_questions, 1, len(self.dataset.questions))
        self.questions = self.dataset.questions[: self.n_questions]
        self._scorer = _scorer(self.dataset.scorer, self.tolerance)
        if client is None:
            if base_url is None:
                raise ValueError("argument 'base_url': required (an OpenAI-compatible endpoint such as "
                                 "'http://127.0.0.1:8080/v1'), or pass client=")
            if isinstance(cache, (str, Path)):
                cache = LLMCache(cache)
            prices = PriceTable()
            if prices.get(model) is None:  # a local model: free, and no "unknown price" warning
                prices = prices.with_price(model, 0.0, 0.0)
            client = LLMClient(model, base_url, api_key_env=api_key_env, prices=prices, budget=budget, cache=cache,
                               timeout=timeout, seed=self.seed)
        elif not isinstance(client, LLMClient):
            raise ValueError(f"argument 'client': expected a mcbo.llm.LLMClient, got {type(client).__name__}")
        self.client = client
        self._warned_no_logprobs = False
        selectors = SELECTORS if logprobs else [s for s in SELECTORS if s != "max_logprob"]
        self._space = SearchSpace([
            Real("temperature", 0.0, 1.5),
            Real("top_p", 0.05, 1.0),
            Integer("max_tokens", 1, self.max_tokens, log=True),
            Integer("n_samples", 1, self.max_samples),
            Categorical("selector", selectors),
            Categorical("system_prompt", list(SYSTEM_PROMPTS)),
            Integer("n_shots", 0, self.max_shots),
        ])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def messages(self, question: Record, system_prompt: str, n_shots: int) -> list[dict[str, str]]:
        """The chat of one question: the system prompt, ``n_shots`` worked examples, the question."""
        out: list[dict[str, str]] = []
        system = SYSTEM_PROMPTS[system_prompt]
        if system is not None:
            out.append({"role": "system", "content": system})
        for demo in self.dataset.demos[:n_shots]:
            out.append({"role": "user", "content": USER_TEMPLATE.format(instruction=self.dataset.instruction,
                                                                        input=demo.input)})
            out.append({"role": "assistant", "content": demo.outputs[0]})
        out.append({"role": "user", "content": USER_TEMPLATE.format(instruction=self.dataset.instruction,
                                                                    input=question.input)})
        return out

    def select(self, samples: Sequence[Sample], selector: str) -> str:
        """The answer ``selector`` picks among a question's samples (``""`` when none is valid)."""
        answers = [extract_answer(s.text) for s in samples]
        keys = [self._scorer.canonical(a) for a in answers]
        valid = [i for i, k in enumerate(keys) if k is not None]
        if not valid:
            return ""
        if selector == "first_valid":
            return answers[valid[0]]
        if selector == "max_logprob":
            scored = [i for i in valid if samples[i].mean_logprob is not None]
            if not scored:
                if not self._warned_no_logprobs:  # once per task: the server ignores the request
                    logger.warning("max_logprob: the server returned no log-probabilities; the first valid answer "
                                   "is taken instead (build the task with logprobs=False to drop this selector)")
                    self._warned_no_logprobs = True
                return answers[valid[0]]
            return answers[max(scored, key=lambda i: samples[i].mean_logprob)]  # type: ignore[arg-type,return-value]
        votes = Counter(keys[i] for i in valid)
        top = max(votes.values())
        return next(answers[i] for i in valid if votes[keys[i]] == top)  # ties: the answer seen first

    def run(self, point: Mapping[str, Any]) -> DecodingResult:
        """Ask every question under configuration ``point`` and score the answers."""
        point = self._space.validate(dict(point))
        start = time.perf_counter()
        temperature, n = float(point["temperature"]), int(point["n_samples"])
        greedy = temperature == 0.0
        top_p = 1.0 if greedy else float(point["top_p"])
        calls_before = self._paid_calls()
        jobs = [(q, j, self.messages(q, point["system_prompt"], int(point["n_shots"])))
                for q in self.questions for j in range(n)]

        def ask(job: tuple[Record, int, list[dict[str, str]]]) -> Sample:
            _, j, messages = job
            seed = self.seed * _SEED_STRIDE + (0 if greedy else j)
            return Sample.of(self.client.chat(messages, max_tokens=int(point["max_tokens"]), temperature=temperature,
                                              top_p=top_p, seed=seed, stop=self.stop, logprobs=self.logprobs))

        if self.concurrency == 1:
            samples = [ask(job) for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                samples = list(pool.map(ask, jobs))
        answers, correct, tokens = [], [], []
        for i, question in enumerate(self.questions):
            own = samples[i * n:(i + 1) * n]
            answer = self.select(own, point["selector"])
            answers.append(answer)
            correct.append(bool(answer) and self._scorer.correct(answer, question.outputs))
            tokens.append(sum(s.tokens for s in own))
        accuracy, per_question = float(np.mean(correct)), float(np.mean(tokens))
        objective = -(accuracy - self.price_per_token * per_question)
        result = DecodingResult(accuracy, per_question, objective, self._paid_calls() - calls_before,
                                time.perf_counter() - start, tuple(answers))
        logger.info("llm_decoding_api %s: accuracy %.3f, %.1f tokens/question, %d calls, %.1fs", point,
                    accuracy, per_question, result.calls, result.seconds)
        return result

    def _paid_calls(self) -> int:
        return int(self.client.usage()["calls"])

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.array([self.run(p).objective for p in points])


__all__ = ["DEFAULT_CONFIG", "DecodingDataset", "DecodingResult", "LLMDecodingAPI", "Record", "SCORERS", "SELECTORS",
           "SHIPPED_DATASETS", "SYSTEM_PROMPTS", "Sample", "Scorer", "USER_TEMPLATE", "data_dir",
           "extract_answer", "instruction_task", "load_dataset"]
