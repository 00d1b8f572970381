"""Simulated LLM decoding-budget tasks: adaptive best-of-k sampling and speculative decoding.

Both tasks are cheap, seeded simulators of well-studied phenomena, so that solvers can be
compared on realistic decoding-configuration landscapes without a GPU or an API key. Every
random quantity is drawn once in ``__init__`` from the task seed and reused by every evaluation
(common random numbers): the same point always gives the same value, and nearby points are
compared on the same simulated problems.

``best_of_k`` — repeated sampling with a selector.
    A population of problems, each with a Beta-distributed competence, a correct answer, a few
    distractors and a set of reasoning paths (Dirichlet weights at temperature 1) that each end
    in one answer. A sample follows one path. Temperature tempers the path distribution
    (``w^(1/T)``) and ``top_p`` keeps its nucleus: low temperature collapses every sample onto
    the modal (greedy) path, so extra samples add nothing; high temperature spreads the
    samples, lowering single-sample accuracy but letting a selector marginalise over paths,
    which is why self-consistency beats greedy decoding (Wang et al., ICLR 2023). At the token
    level, temperature inflates the mass of the unreliable tail of the next-token distribution
    and ``top_p`` cuts it (Holtzman et al., "The Curious Case of Neural Text Degeneration",
    ICLR 2020): a sample that draws a degenerate tail token derails and rambles until
    ``max_tokens`` without a final answer.
    Lengths are log-normal per problem; a sample longer than ``max_tokens`` is truncated and
    has no answer. Selectors: majority vote (self-consistency, Wang et al., ICLR 2023), best
    of a noisy verifier / reward model with per-answer systematic bias (over-optimisation as in
    Gao et al., "Scaling Laws for Reward Model Overoptimization", ICML 2023), and the first
    valid sample. Adaptive allocation draws samples one at a time after an initial batch of
    ``k`` and stops when the vote is confident — the Beta stopping criterion of
    Adaptive-Consistency (Aggarwal et al., "Let's Sample Step by Step", EMNLP 2023) — or when
    ``k_max`` samples are drawn. Objective (minimised):
    ``-(accuracy - token_cost * mean tokens per problem / 1000)``.

``speculative_decoding`` — the candidate length of speculative decoding.
    Leviathan, Kalman & Matias, "Fast Inference from Transformers via Speculative Decoding",
    ICML 2023: a draft model proposes tokens, the target model scores them in one forward pass
    and accepts each with probability ``alpha_t`` (one minus the total-variation distance of the
    two next-token distributions) until the first rejection, then adds one token of its own.
    A static policy drafts ``k`` tokens; the SpecDec++ policy (Huang, Guo & Wang, "SpecDec++:
    Boosting Speculative Decoding via Adaptive Candidate Lengths", 2024) stops drafting once an
    acceptance-prediction head says the candidate block is unlikely to be accepted in full.
    Time is counted in target forward passes, a draft forward pass costing ``draft_cost``.
    Objective (minimised): ``-(generated tokens per unit time)``, i.e. minus the walltime
    improvement factor over plain autoregressive decoding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.special import expit, log_softmax, logit
from scipy.stats import beta as beta_dist

from mcbo.space import Boolean, Categorical, Integer, Real, SearchSpace
from mcbo.tasks._arg_checks import check_choice, check_int, check_real
from mcbo.tasks.base import Task, register_task

logger = logging.getLogger(__name__)

SELECTORS = ["majority_vote", "best_of_reward_model", "first_valid"]
DRAFT_POLICIES = ["static", "threshold"]
ALPHA_VARIANTS = ["iid", "contextual"]

#: Sample slots simulated per problem: the largest ``k`` / ``k_max`` the space allows.
_MAX_SAMPLES = 32
#: Reasoning paths per problem.
_N_PATHS = 16
#: Token-level tail model: at temperature 1 the unreliable tail holds ``_TAIL_MASS`` of the
#: next-token probability, spread over ``_N_TAIL_TOKENS`` tokens; a fraction
#: ``_DERAIL_FRACTION`` of tail draws derail the sample.
_TAIL_MASS = 1e-3
_N_TAIL_TOKENS = 1000
_DERAIL_FRACTION = 0.1


# ====================================================================== best-of-k: numerics
def _path_distribution(log_w1: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    """Tempered, nucleus-truncated distribution ``[n, p]`` over paths, from log-weights ``[n, p]`` at T = 1.

    Tempering acts on whole paths (``w^(1/T)``, renormalised) and the nucleus keeps the smallest
    set of most probable paths whose mass reaches ``top_p`` (the modal path is always kept): a
    path-level reading of token-level temperature and nucleus sampling.
    """
    probs = np.exp(log_softmax(log_w1 / temperature, axis=1))
    order = np.argsort(-probs, axis=1, kind="stable")
    sorted_p = np.take_along_axis(probs, order, axis=1)
    mass_before = np.cumsum(sorted_p, axis=1) - sorted_p
    keep_sorted = mass_before < top_p
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    truncated = np.where(keep, probs, 0.0)
    return truncated / truncated.sum(axis=1, keepdims=True)


def _derail_hazard(temperature: float, top_p: float) -> float:
    """Per-token probability of derailing under temperature and nucleus sampling.

    Two-group next-token model: a head of mass ``1 - m`` and ``n`` tail tokens of mass ``m / n``
    at temperature 1. Tempering by ``T`` gives tail mass ``n q^(1/T) / (h^(1/T) + n q^(1/T))``;
    the nucleus keeps the head first and only ``max(0, top_p - head)`` of the tail.
    """
    log_head = np.log1p(-_TAIL_MASS) / temperature
    log_tail = np.log(_N_TAIL_TOKENS) + np.log(_TAIL_MASS / _N_TAIL_TOKENS) / temperature
    tail = float(expit(log_tail - log_head))
    kept_tail = max(0.0, top_p - (1.0 - tail))
    return _DERAIL_FRACTION * kept_tail / max(top_p, 1e-12)


def _beta_confidence_table(n_max: int) -> np.ndarray:
    """``table[c1, c2] = P(p1 > p2 | c1, c2 votes)`` under a uniform prior, ``[n_max + 1, n_max + 1]``.

    The Beta stopping criterion of Adaptive-Consistency (Aggarwal et al., 2023): the top answer's
    share of the top-two votes has posterior ``Beta(c1 + 1, c2 + 1)``.
    """
    c = np.arange(n_max + 1)
    return beta_dist.sf(0.5, c[:, None] + 1, c[None, :] + 1)


@dataclass(frozen=True)
class DecodingOutcome:
    """Aggregate result of one decoding configuration on the problem population."""

    accuracy: float
    mean_tokens: float
    mean_samples: float
    objective: float


# ========================================================================= best-of-k: task
@register_task("best_of_k")
class BestOfK(Task):
    """Adaptive best-of-k decoding: sample budget, temperature, top-p, max tokens and selector (simulated).

    Parameters of the space: ``k`` (samples, or the initial batch when adaptive), ``temperature``,
    ``top_p``, ``max_tokens`` (log scale), ``selector``, ``adaptive`` and ``k_max``. ``k_max`` is a
    conditional parameter: it is always present (the space has no conditionals) but only read
    when ``adaptive`` is true, so with ``adaptive=False`` its value never changes the objective.
    When adaptive, at least ``k`` and at most ``max(k, k_max)`` samples are drawn; majority vote and
    the reward model stop once the vote is confident, ``first_valid`` once it has a valid sample
    (its answer can no longer change).

    Args:
        seed: seed of the problem population and of all sampling noise.
        n_problems: number of simulated problems.
        n_distractors: wrong answers per problem.
        difficulty: ``(a, b)`` of the Beta law of a problem's competence (the chance that a
            reasoning path ends in the correct answer, before the bias towards favoured paths).
        median_length: median answer length in tokens.
        length_sigma: log-normal spread of a sample's length around its problem's median.
        verifier_separation: reward-model score margin of a correct over a wrong answer, in
            units of the per-sample score noise.
        verifier_bias: standard deviation of the per-(problem, answer) systematic verifier bias.
        confidence: stopping threshold of the adaptive Beta criterion, in (0.5, 1).
        token_cost: ``lambda``, accuracy traded per 1000 generated tokens.
    """

    name = "best_of_k"

    def __init__(
        self,
        seed: int = 0,
        n_problems: int = 500,
        n_distractors: int = 5,
        difficulty: tuple[float, float] = (1.2, 1.0),
        median_length: float = 300.0,
        length_sigma: float = 0.5,
        verifier_separation: float = 2.0,
        verifier_bias: float = 0.7,
        confidence: float = 0.95,
        token_cost: float = 0.02,
    ) -> None:
        super().__init__(seed)
        self.n_problems = check_int("n_problems", n_problems, 1)
        self.n_distractors = check_int("n_distractors", n_distractors, 1)
        if not isinstance(difficulty, (tuple, list)) or len(difficulty) != 2:
            raise ValueError(f"argument 'difficulty': invalid value {difficulty!r}; expected a pair (a, b) > 0")
        a = check_real("difficulty", difficulty[0], 0.0, np.inf, low_open=True, high_open=True)
        b = check_real("difficulty", difficulty[1], 0.0, np.inf, low_open=True, high_open=True)
        self.median_length = check_real("median_length", median_length, 1.0, 1e6)
        self.length_sigma = check_real("length_sigma", length_sigma, 0.0, 5.0)
        self.verifier_separation = check_real("verifier_separation", verifier_separation, 0.0, 100.0)
        self.verifier_bias = check_real("verifier_bias", verifier_bias, 0.0, 100.0)
        self.confidence = check_real("confidence", confidence, 0.5, 1.0, low_open=True, high_open=True)
        self.token_cost = check_real("token_cost", token_cost, 0.0, 1e3)
        self._space = SearchSpace([
            Integer("k", 1, 16),
            Real("temperature", 0.05, 2.0),
            Real("top_p", 0.1, 1.0),
            Integer("max_tokens", 64, 4096, log=True),
            Categorical("selector", SELECTORS),
            Boolean("adaptive"),
            Integer("k_max", 2, _MAX_SAMPLES),
        ])
        self._draw_population(a, b)
        self._conf_table = _beta_confidence_table(_MAX_SAMPLES)

    def _draw_population(self, a: float, b: float) -> None:
        """Draw problems and per-sample noise once (common random numbers) from the seed.

        Each problem has ``_N_PATHS`` reasoning paths with Dirichlet(0.3) weights at T = 1; a path
        ends in the correct answer with probability ``sigmoid(logit(p) + 0.5 z)``, ``p`` the
        problem's Beta-distributed competence and ``z`` the path's standardised log-weight (the
        model is right more often on the paths it favours), and otherwise in one of the
        distractors (Dirichlet(0.7) shares, so wrong paths pile up on attractive distractors).
        Greedy decoding follows the modal path; sampling marginalises over paths, which is what
        self-consistency exploits (Wang et al., 2023).
        """
        rng = np.random.default_rng(self.seed)
        n, s, m = self.n_problems, _MAX_SAMPLES, self.n_distractors
        competence = np.clip(rng.beta(a, b, size=n), 1e-4, 1 - 1e-4)
        log_w = np.log(np.clip(rng.dirichlet(np.full(_N_PATHS, 0.3), size=n), 1e-300, None))
        z = (log_w - log_w.mean(axis=1, keepdims=True)) / (log_w.std(axis=1, keepdims=True) + 1e-12)
        path_correct = rng.random((n, _N_PATHS)) < expit(logit(competence)[:, None] + 0.5 * z)
        distractor_cdf = np.cumsum(rng.dirichlet(np.full(m, 0.7), size=n), axis=1)
        distractor = 1 + np.minimum((rng.random((n, _N_PATHS, 1)) > distractor_cdf[:, None, :]).sum(-1), m - 1)
        self._log_w1 = log_w  # [n, paths]
        self._path_answer = np.where(path_correct, 0, distractor)  # [n, paths]; answer 0 is correct
        # Harder problems take longer answers.
        log_median = np.log(self.median_length) + 0.3 * rng.standard_normal(n) + 0.6 * (0.5 - competence)
        self._lengths = np.ceil(np.exp(log_median[:, None] + self.length_sigma * rng.standard_normal((n, s))))
        self._u_path = rng.random((n, s))  # inverse-CDF draws of the path of each sample
        self._e_derail = rng.exponential(size=(n, s))  # derailment clock of each sample
        self._rm_noise = rng.standard_normal((n, s))
        self._rm_bias = self.verifier_bias * rng.standard_normal((n, 1 + m))

    @property
    def space(self) -> SearchSpace:
        return self._space

    def simulate(self, point: dict[str, Any]) -> DecodingOutcome:
        """Accuracy, mean tokens and mean samples per problem of one configuration."""
        point = self._space.validate(point)
        k, adaptive = int(point["k"]), bool(point["adaptive"])
        n_slots = max(k, int(point["k_max"])) if adaptive else k
        max_tokens, selector = int(point["max_tokens"]), point["selector"]

        # Per-sample outcome: answer, validity, tokens spent.                       [n, n_slots]
        q = _path_distribution(self._log_w1, float(point["temperature"]), float(point["top_p"]))
        cdf = np.cumsum(q, axis=1)
        path = np.minimum((self._u_path[:, :n_slots, None] > cdf[:, None, :]).sum(-1), _N_PATHS - 1)
        answers = np.take_along_axis(self._path_answer, path, axis=1)
        n_answers = 1 + self.n_distractors
        hazard = _derail_hazard(float(point["temperature"]), float(point["top_p"]))
        lengths = self._lengths[:, :n_slots]
        derailed = self._e_derail[:, :n_slots] < hazard * np.minimum(lengths, max_tokens)
        valid = ~derailed & (lengths <= max_tokens)
        tokens = np.where(valid, lengths, max_tokens)

        # Running vote counts over valid samples.                               [n, n_slots, a]
        one_hot = (answers[..., None] == np.arange(n_answers)) & valid[..., None]
        counts = np.cumsum(one_hot, axis=1)
        n_drawn = self._samples_drawn(counts, valid, k, n_slots, adaptive, selector)
        drawn = np.arange(n_slots)[None, :] < n_drawn[:, None]
        usable = valid & drawn
        correct = self._select(answers, usable, counts, n_drawn, selector)

        accuracy = float(correct.mean())
        mean_tokens = float(np.where(drawn, tokens, 0.0).sum(axis=1).mean())
        objective = -(accuracy - self.token_cost * mean_tokens / 1000.0)
        logger.debug("best_of_k %s: accuracy %.4f, %.1f tokens/problem", point, accuracy, mean_tokens)
        return DecodingOutcome(accuracy, mean_tokens, float(n_drawn.mean()), objective)

    def _samples_drawn(
        self, counts: np.ndarray, valid: np.ndarray, k: int, n_slots: int, adaptive: bool, selector: str
    ) -> np.ndarray:
        """Samples drawn per problem ``[n]``: ``k``, or the adaptive stopping time in ``[k, n_slots]``."""
        n = counts.shape[0]
        if not adaptive:
            return np.full(n, k)
        if selector == "first_valid":
            stop = np.cumsum(valid, axis=1) > 0  # the answer is fixed by the first valid sample
        else:
            top2 = -np.sort(-counts, axis=2)[..., :2]
            stop = self._conf_table[top2[..., 0], top2[..., 1]] >= self.confidence
        stop[:, : k - 1] = False
        stop[:, -1] = True
        return np.argmax(stop, axis=1) + 1

    def _select(
        self, answers: np.ndarray, usable: np.ndarray, counts: np.ndarray, n_drawn: np.ndarray, selector: str
    ) -> np.ndarray:
        """Whether the selected answer of each problem is correct, ``[n]`` bool."""
        n, n_slots = answers.shape
        rows = np.arange(n)
        if selector == "first_valid":
            first = np.argmax(usable, axis=1)
            return usable[rows, first] & (answers[rows, first] == 0)
        if selector == "best_of_reward_model":
            score = (
                self.verifier_separation * (answers == 0)
                + self._rm_bias[rows[:, None], answers]
                + self._rm_noise[:, :n_slots]
            )
            best = np.argmax(np.where(usable, score, -np.inf), axis=1)
            return usable[rows, best] & (answers[rows, best] == 0)
        # Majority vote; ties go to the answer seen first.
        final_counts = counts[rows, n_drawn - 1]  # [n, a]
        slot = np.arange(n_slots)[None, :, None]
        seen = (answers[..., None] == np.arange(counts.shape[2])) & usable[..., None]
        first_seen = np.where(seen, slot, n_slots).min(axis=1)  # [n, a]
        winner = np.argmax(final_counts * (n_slots + 1) - first_seen, axis=1)
        return (winner == 0) & (final_counts[rows, winner] > 0)

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        return np.array([self.simulate(p).objective for p in points])


# ============================================================ speculative decoding: numerics
def leviathan_expected_tokens(alpha: float, k: int) -> float:
    """Expected tokens per target call with i.i.d. acceptance ``alpha`` and ``k`` drafts (Leviathan et al., eq. 1)."""
    if alpha == 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)


def leviathan_speedup(alpha: float, k: int, draft_cost: float) -> float:
    """Expected walltime improvement factor ``(1 - a^(k+1)) / ((1 - a)(k c + 1))`` (Leviathan et al., thm 3.8)."""
    return leviathan_expected_tokens(alpha, k) / (k * draft_cost + 1.0)


@dataclass(frozen=True)
class SpeculationTrace:
    """What a speculative-decoding simulation produced.

    Attributes:
        tokens_per_call: tokens produced by each target call (each iteration), ``[n_calls]``.
        drafted_per_call: draft tokens proposed in each iteration, ``[n_calls]``.
        draft_cost: cost of one draft forward pass relative to one target forward pass.
    """

    tokens_per_call: np.ndarray
    drafted_per_call: np.ndarray
    draft_cost: float

    @property
    def mean_tokens_per_call(self) -> float:
        return float(self.tokens_per_call.mean())

    @property
    def tokens_per_time(self) -> float:
        """Tokens per unit time (one target forward pass = 1), the walltime improvement factor."""
        time = self.tokens_per_call.size + self.draft_cost * self.drafted_per_call.sum()
        return float(self.tokens_per_call.sum() / time)


def simulate_speculation(
    alpha: np.ndarray,
    uniforms: np.ndarray,
    n_positions: int,
    k: int,
    draft_cost: float,
    predicted: np.ndarray | None = None,
    threshold: float = 0.0,
) -> SpeculationTrace:
    """Run speculative decoding over ``n_seq`` sequences in parallel.

    Args:
        alpha: acceptance probability of a draft token at each sequence position, ``[n_seq, L]``
            with ``L >= n_positions + k + 1``.
        uniforms: uniform draws ``[n_seq, L]``; the draft token at position ``t`` is accepted when
            ``uniforms[t] < alpha[t]`` (the modified rejection sampling of Leviathan et al.).
        n_positions: each sequence is decoded until it holds at least this many tokens.
        k: draft length (static policy) or the cap on it (threshold policy).
        draft_cost: cost of a draft forward pass relative to a target one.
        predicted: the acceptance-prediction head's estimate of ``alpha``, ``[n_seq, L]``; with it,
            drafting stops after the token at which the predicted probability that the whole
            block is accepted (the product of predictions) falls below ``threshold``.
        threshold: stopping threshold of the predicted block acceptance, in [0, 1].

    Returns:
        the per-iteration trace over all sequences.
    """
    n_seq, length = alpha.shape
    if length < n_positions + k + 1:
        raise ValueError(f"argument 'alpha': {length} positions cannot hold {n_positions} tokens with k={k}")
    pos = np.zeros(n_seq, dtype=int)
    rows = np.arange(n_seq)[:, None]
    offsets = np.arange(k)[None, :]
    tokens_log: list[np.ndarray] = []
    drafted_log: list[np.ndarray] = []
    active = np.ones(n_seq, dtype=bool)
    while active.any():
        idx = pos[active, None] + offsets  # [n_active, k]
        r = rows[active]
        if predicted is None:
            n_draft = np.full(idx.shape[0], k)
        else:
            below = np.cumprod(predicted[r, idx], axis=1) < threshold
            n_draft = np.where(below.any(axis=1), np.argmax(below, axis=1) + 1, k)
        rejected = (uniforms[r, idx] >= alpha[r, idx]) & (offsets < n_draft[:, None])
        n_accepted = np.where(rejected.any(axis=1), np.argmax(rejected, axis=1), n_draft)
        produced = n_accepted + 1  # accepted prefix plus the target's correction or bonus token
        tokens_log.append(produced)
        drafted_log.append(n_draft)
        pos[active] += produced
        active = pos < n_positions
    return SpeculationTrace(np.concatenate(tokens_log), np.concatenate(drafted_log), draft_cost)


def _contextual_alpha(rng: np.random.Generator, n_seq: int, length: int) -> np.ndarray:
    """Bursty per-position acceptance rates ``[n_seq, length]`` from a sticky two-regime Markov chain.

    "Easy" spans (copying, boilerplate, formulaic continuations) have acceptance ~ Beta(18, 2)
    (mean 0.9); "hard" spans (novel content) ~ Beta(3, 3) (mean 0.5). Regimes persist: leave easy
    with probability 0.05 and hard with 0.1 per token (two thirds of tokens easy on average).
    """
    leave = np.array([0.05, 0.10])  # P(switch) from easy (0), hard (1)
    regime = np.empty((n_seq, length), dtype=int)
    regime[:, 0] = rng.random(n_seq) < 1.0 / 3.0
    switches = rng.random((n_seq, length))
    for t in range(1, length):
        prev = regime[:, t - 1]
        regime[:, t] = np.where(switches[:, t] < leave[prev], 1 - prev, prev)
    easy = rng.beta(18.0, 2.0, size=(n_seq, length))
    hard = rng.beta(3.0, 3.0, size=(n_seq, length))
    return np.where(regime == 0, easy, hard)


# ============================================================== speculative decoding: task
@register_task("speculative_decoding")
class SpeculativeDecoding(Task):
    """Candidate-length policy of speculative decoding: static K or SpecDec++ threshold (simulated).

    Parameters of the space: ``policy`` (``static`` or ``threshold``), ``k`` (the draft length of
    the static policy, the cap of the threshold policy) and ``threshold`` (stop drafting once
    the predicted probability that the whole block is accepted falls below it; SpecDec++'s rule
    with ``h = 1 - threshold``). ``threshold`` is conditional: read only by the threshold policy.

    Args:
        seed: seed of the acceptance process and of the prediction head's errors.
        variant: ``"iid"`` (every token accepted with probability ``alpha``, the setting of
            Leviathan et al.'s closed forms) or ``"contextual"`` (bursty position-dependent rates).
        alpha: acceptance rate of the ``iid`` variant, in (0, 1).
        draft_cost: ``c``, draft forward time over target forward time, in [0, 1].
        n_sequences: sequences decoded per evaluation.
        n_positions: tokens generated per sequence.
        predictor_noise: standard deviation, on the logit scale, of the acceptance head's error.
    """

    name = "speculative_decoding"

    def __init__(
        self,
        seed: int = 0,
        variant: str = "contextual",
        alpha: float = 0.8,
        draft_cost: float = 0.05,
        n_sequences: int = 64,
        n_positions: int = 512,
        predictor_noise: float = 0.5,
    ) -> None:
        super().__init__(seed)
        self.variant = check_choice("variant", variant, ALPHA_VARIANTS)
        self.alpha = check_real("alpha", alpha, 0.0, 1.0, low_open=True, high_open=True)
        self.draft_cost = check_real("draft_cost", draft_cost, 0.0, 1.0)
        self.n_sequences = check_int("n_sequences", n_sequences, 1)
        self.n_positions = check_int("n_positions", n_positions, 1)
        self.predictor_noise = check_real("predictor_noise", predictor_noise, 0.0, 100.0)
        self._k_max = 16
        self._space = SearchSpace([
            Categorical("policy", DRAFT_POLICIES),
            Integer("k", 1, self._k_max),
            Real("threshold", 0.05, 0.95),
        ])
        rng = np.random.default_rng(self.seed)
        length = self.n_positions + self._k_max + 1
        if self.variant == "iid":
            self._alpha = np.full((self.n_sequences, length), self.alpha)
        else:
            self._alpha = _contextual_alpha(rng, self.n_sequences, length)
        self._uniforms = rng.random((self.n_sequences, length))
        noise = self.predictor_noise * rng.standard_normal((self.n_sequences, length))
        self._predicted = expit(logit(np.clip(self._alpha, 1e-6, 1 - 1e-6)) + noise)

    @property
    def space(self) -> SearchSpace:
        return self._space

    def simulate(self, point: dict[str, Any]) -> SpeculationTrace:
        """Trace of one configuration on the task's sequences."""
        point = self._space.validate(point)
        threshold_policy = point["policy"] == "threshold"
        return simulate_speculation(
            self._alpha,
            self._uniforms,
            self.n_positions,
            int(point["k"]),
            self.draft_cost,
            predicted=self._predicted if threshold_policy else None,
            threshold=float(point["threshold"]) if threshold_policy else 0.0,
        )

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        speedups = np.array([self.simulate(p).tokens_per_time for p in points])
        logger.debug("speculative_decoding: speed-ups %s", speedups)
        return -speedups
