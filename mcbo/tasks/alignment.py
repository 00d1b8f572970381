"""Alignment hyper-parameter tasks: DPO-family and GRPO training of a log-linear policy (simulated).

The environment is a contextual bandit standing in for an LLM: ``P`` prompts, each with ``R``
candidate responses described by feature vectors ``phi(x, y)`` (``[P, R, d]``). The policy is
log-linear, ``pi_theta(y | x) = softmax_y(theta . phi(x, y))``, the reference policy is
``pi_ref = pi_theta_ref`` and the true reward is linear, ``r(x, y) = w* . phi(x, y)``.

Both tasks score a trained policy by its exact **regret** in the KL-regularised objective at a
fixed evaluation temperature ``beta_eval``:

    J(pi) = E_x [ E_{y ~ pi} r(x, y) - beta_eval KL(pi(. | x) || pi_ref(. | x)) ],

whose maximiser is ``pi*(y | x) ∝ pi_ref(y | x) exp(r(x, y) / beta_eval)`` with value
``J* = E_x [ beta_eval log E_{y ~ pi_ref} exp(r(x, y) / beta_eval) ]`` (Rafailov et al., DPO,
NeurIPS 2023, eq. 4). ``regret = J* - J(pi) >= 0``; since ``r`` and ``log pi_ref`` are linear in
``phi``, ``pi*`` is in the policy class (``theta* = theta_ref + w* / beta_eval``) and the
regret can be driven to zero.

``dpo_alignment`` learns from a fixed data set of pairwise preferences: two responses drawn
from ``pi_ref``, labelled by the Bradley-Terry model of the true reward, a fraction of labels
then flipped at random. Losses, with ``h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l)``:

* ``dpo``: ``-log sigmoid(beta h)`` (Rafailov et al., 2023);
* ``cdpo``: label-smoothed / conservative DPO, ``-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)``
  (Mitchell, "A note on DPO with noisy preferences", 2023);
* ``rdpo``: robust DPO, ``[(1 - eps) l(beta h) - eps l(-beta h)] / (1 - 2 eps)`` with
  ``l(z) = -log sigmoid(z)``, unbiased for labels flipped at rate ``eps`` (Chowdhury, Kini &
  Natarajan, "Provably Robust DPO", ICML 2024);
* ``ipo``: ``(h - 1 / (2 beta))^2`` (Azar et al., "A General Theoretical Paradigm to Understand
  Learning from Human Preferences", AISTATS 2024);
* ``hinge``: ``max(0, 1 - beta h)`` (SLiC-HF, Zhao et al., 2023).

``grpo_alignment`` learns on-policy from a reward model (true reward plus Gaussian noise) with
Group Relative Policy Optimization (Shao et al., DeepSeekMath, 2024): per prompt a group of
``G`` responses from the current policy, group-relative advantages (optionally divided by the
group's standard deviation; "mean_only" drops that division, as Dr. GRPO, Liu et al. 2025,
recommends), the PPO clipped surrogate and the ``k3`` estimator of KL to the reference
(``pi_ref/pi - log(pi_ref/pi) - 1``), under a fixed budget of sampled responses.

Training uses torch (float64, Adam); all data and sampling noise come from the task seed, and
every evaluation re-seeds its sampler, so the same point gives the same regret.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from scipy.special import log_softmax, logsumexp

from mcbo.space import Categorical, Integer, Real, SearchSpace
from mcbo.tasks._arg_checks import check_int, check_real
from mcbo.tasks.base import Task, register_task

logger = logging.getLogger(__name__)

DPO_LOSSES = ["dpo", "cdpo", "rdpo", "ipo", "hinge"]
ADVANTAGE_NORMS = ["std", "mean_only"]

#: Offset between the task seed and the seed of the training sampler.
_TRAIN_SEED_OFFSET = 7919


# ================================================================ the bandit and its regret
@dataclass(frozen=True)
class LogLinearBandit:
    """Prompts x responses with features, a reference policy and a true reward.

    Attributes:
        features: ``phi(x, y)``, ``[P, R, d]``.
        theta_ref: parameters of the reference policy, ``[d]``.
        w_true: parameters of the true reward, ``[d]``.
        beta_eval: KL weight of the evaluation objective.
    """

    features: np.ndarray
    theta_ref: np.ndarray
    w_true: np.ndarray
    beta_eval: float

    @property
    def reward(self) -> np.ndarray:
        """True reward ``r(x, y)``, ``[P, R]``."""
        return self.features @ self.w_true

    @property
    def log_ref(self) -> np.ndarray:
        """``log pi_ref(y | x)``, ``[P, R]``."""
        return self.log_policy(self.theta_ref)

    def log_policy(self, theta: np.ndarray) -> np.ndarray:
        """``log pi_theta(y | x)``, ``[P, R]``, for parameters ``theta`` ``[d]``."""
        return log_softmax(self.features @ np.asarray(theta, dtype=float), axis=1)

    def oracle_theta(self) -> np.ndarray:
        """Parameters of ``pi*``: ``theta_ref + w* / beta_eval``, ``[d]``."""
        return self.theta_ref + self.w_true / self.beta_eval

    def optimal_log_policy(self) -> np.ndarray:
        """``log pi*(y | x)`` with ``pi* ∝ pi_ref exp(r / beta_eval)``, ``[P, R]``."""
        return log_softmax(self.log_ref + self.reward / self.beta_eval, axis=1)

    def optimal_value(self) -> float:
        """``J* = E_x beta_eval log sum_y pi_ref(y | x) exp(r(x, y) / beta_eval)``."""
        return float(np.mean(self.beta_eval * logsumexp(self.log_ref + self.reward / self.beta_eval, axis=1)))

    def kl_regularised_return(self, log_pi: np.ndarray) -> float:
        """Exact ``J(pi)`` of a policy given by ``log pi(y | x)`` ``[P, R]`` (prompts uniform)."""
        pi = np.exp(log_pi)
        kl = np.sum(pi * (log_pi - self.log_ref), axis=1)
        return float(np.mean(np.sum(pi * self.reward, axis=1) - self.beta_eval * kl))

    def regret(self, log_pi: np.ndarray) -> float:
        """``J* - J(pi)`` (>= 0 up to rounding) of a policy ``log pi`` ``[P, R]``."""
        return self.optimal_value() - self.kl_regularised_return(log_pi)


def make_bandit(
    rng: np.random.Generator,
    n_prompts: int,
    n_responses: int,
    n_features: int,
    reward_scale: float,
    ref_scale: float,
    beta_eval: float,
) -> LogLinearBandit:
    """Draw a bandit: features ``N(0, 1)``; ``w* ~ N(0, reward_scale^2 / d)``; ``theta_ref ~ N(0, ref_scale^2 / d)``.

    Returns a bandit with ``features`` ``[n_prompts, n_responses, n_features]``.
    """
    features = rng.standard_normal((n_prompts, n_responses, n_features))
    w_true = reward_scale / np.sqrt(n_features) * rng.standard_normal(n_features)
    theta_ref = ref_scale / np.sqrt(n_features) * rng.standard_normal(n_features)
    return LogLinearBandit(features, theta_ref, w_true, beta_eval)


@dataclass(frozen=True)
class Preferences:
    """Pairwise preference data: ``prompt``, ``chosen``, ``rejected`` indices, each ``[n_pairs]``."""

    prompt: np.ndarray
    chosen: np.ndarray
    rejected: np.ndarray


def sample_preferences(
    rng: np.random.Generator, bandit: LogLinearBandit, n_pairs: int, flip_rate: float
) -> tuple[Preferences, np.ndarray]:
    """Bradley-Terry preferences on pairs of distinct responses from ``pi_ref``, labels flipped at ``flip_rate``.

    Returns:
        the data and a ``[n_pairs]`` bool mask of the flipped labels.
    """
    n_prompts, n_responses = bandit.reward.shape
    prompt = rng.integers(n_prompts, size=n_pairs)
    ref = np.exp(bandit.log_ref[prompt])  # [n_pairs, R]
    first = _inverse_cdf(ref, rng.random(n_pairs))
    ref_wo_first = ref.copy()
    ref_wo_first[np.arange(n_pairs), first] = 0.0
    second = _inverse_cdf(ref_wo_first / ref_wo_first.sum(axis=1, keepdims=True), rng.random(n_pairs))
    r = bandit.reward[prompt]
    margin = r[np.arange(n_pairs), first] - r[np.arange(n_pairs), second]
    first_wins = rng.random(n_pairs) < 1.0 / (1.0 + np.exp(-margin))
    flipped = rng.random(n_pairs) < flip_rate
    first_wins ^= flipped
    chosen = np.where(first_wins, first, second)
    rejected = np.where(first_wins, second, first)
    return Preferences(prompt, chosen, rejected), flipped


def _inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn from each row of ``probs`` ``[n, R]`` by uniforms ``u`` ``[n]``."""
    cdf = np.cumsum(probs, axis=1)
    return np.minimum((u[:, None] > cdf).sum(axis=1), probs.shape[1] - 1)


# ================================================================================ DPO family
def _preference_loss(h: torch.Tensor, loss: str, beta: float, eps: float) -> torch.Tensor:
    """Mean loss over a batch of log-ratio margins ``h`` ``[B]``."""
    logsig = torch.nn.functional.logsigmoid
    z = beta * h
    if loss == "dpo":
        per_pair = -logsig(z)
    elif loss == "cdpo":
        per_pair = -(1.0 - eps) * logsig(z) - eps * logsig(-z)
    elif loss == "rdpo":
        per_pair = (-(1.0 - eps) * logsig(z) + eps * logsig(-z)) / (1.0 - 2.0 * eps)
    elif loss == "ipo":
        per_pair = (h - 1.0 / (2.0 * beta)) ** 2
    elif loss == "hinge":
        per_pair = torch.relu(1.0 - z)
    else:
        raise ValueError(f"parameter 'loss': invalid value {loss!r}; allowed values are {DPO_LOSSES!r}")
    return per_pair.mean()


def train_preference_policy(
    bandit: LogLinearBandit,
    data: Preferences,
    loss: str,
    beta: float,
    learning_rate: float,
    steps: int,
    batch_size: int,
    label_smoothing: float,
    seed: int,
) -> np.ndarray:
    """Train ``theta`` ``[d]`` from ``theta_ref`` with Adam on minibatches of a DPO-family loss."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.as_tensor(bandit.features)
    log_ref = torch.as_tensor(bandit.log_ref)
    prompt, chosen, rejected = (torch.as_tensor(a) for a in (data.prompt, data.chosen, data.rejected))
    theta = torch.tensor(bandit.theta_ref, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=learning_rate)
    n_pairs = prompt.shape[0]
    for _ in range(steps):
        batch = torch.randint(n_pairs, (min(batch_size, n_pairs),), generator=gen)
        x, yw, yl = prompt[batch], chosen[batch], rejected[batch]
        log_ratio = torch.log_softmax(features @ theta, dim=1) - log_ref  # [P, R]
        h = log_ratio[x, yw] - log_ratio[x, yl]
        opt.zero_grad()
        _preference_loss(h, loss, beta, label_smoothing).backward()
        opt.step()
    return theta.detach().numpy().copy()


# ======================================================================================= GRPO
def train_grpo_policy(
    bandit: LogLinearBandit,
    reward_noise: float,
    group_size: int,
    kl_coef: float,
    clip_eps: float,
    advantage_norm: str,
    learning_rate: float,
    n_updates: int,
    prompts_per_step: int,
    inner_steps: int,
    seed: int,
) -> np.ndarray:
    """Train ``theta`` ``[d]`` from ``theta_ref`` with GRPO (Shao et al., 2024) and Adam."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.as_tensor(bandit.features)
    log_ref = torch.as_tensor(bandit.log_ref)
    reward = torch.as_tensor(bandit.reward)
    theta = torch.tensor(bandit.theta_ref, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=learning_rate)
    n_prompts = features.shape[0]
    for _ in range(n_updates):
        x = torch.randint(n_prompts, (prompts_per_step,), generator=gen)  # [B]
        with torch.no_grad():
            log_old = torch.log_softmax(features[x] @ theta, dim=1)  # [B, R]
            rows = x[:, None]
            y = torch.multinomial(log_old.exp(), group_size, replacement=True, generator=gen)  # [B, G]
            r = reward[rows, y] + reward_noise * torch.randn(y.shape, generator=gen, dtype=reward.dtype)
            adv = r - r.mean(dim=1, keepdim=True)
            if advantage_norm == "std":
                adv = adv / (r.std(dim=1, keepdim=True) + 1e-8)
            lp_old = log_old.gather(1, y)
            lp_ref = log_ref[rows, y]
        for _ in range(inner_steps):
            lp = torch.log_softmax(features @ theta, dim=1)[rows, y]  # [B, G]
            ratio = torch.exp(lp - lp_old)
            surrogate = torch.minimum(ratio * adv, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv)
            log_ref_ratio = lp_ref - lp
            kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1.0
            opt.zero_grad()
            (-(surrogate - kl_coef * kl).mean()).backward()
            opt.step()
    return theta.detach().numpy().copy()


# ====================================================================================== tasks
class _AlignmentTask(Task):
    """Shared construction of the bandit; subclasses train a policy and report its regret."""

    def __init__(
        self,
        seed: int,
        n_prompts: int,
        n_responses: int,
        n_features: int,
        reward_scale: float,
        ref_scale: float,
        beta_eval: float,
    ) -> None:
        super().__init__(seed)
        self.beta_eval = check_real("beta_eval", beta_eval, 0.0, 1e3, low_open=True)
        self._rng = np.random.default_rng(self.seed)
        self.bandit = make_bandit(
            self._rng,
            check_int("n_prompts", n_prompts, 1),
            check_int("n_responses", n_responses, 2),
            check_int("n_features", n_features, 1),
            check_real("reward_scale", reward_scale, 0.0, 1e3),
            check_real("ref_scale", ref_scale, 0.0, 1e3),
            self.beta_eval,
        )

    @property
    def space(self) -> SearchSpace:
        return self._space

    def regret_of(self, theta: np.ndarray) -> float:
        """Regret ``J* - J(pi_theta)`` of policy parameters ``theta`` ``[d]``."""
        return self.bandit.regret(self.bandit.log_policy(theta))

    @abstractmethod
    def train(self, point: dict[str, Any]) -> np.ndarray:
        """Trained policy parameters ``[d]`` for one point of the space."""

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        regrets = np.array([self.regret_of(self.train(p)) for p in points])
        logger.debug("%s: regrets %s", self.name, regrets)
        return regrets


@register_task("dpo_alignment")
class DPOAlignment(_AlignmentTask):
    """DPO-family preference optimisation of a log-linear policy; objective = KL-regularised regret.

    Parameters of the space: ``loss`` (dpo, cdpo, rdpo, ipo, hinge), ``beta`` (log), ``learning_rate``
    (log), ``steps`` (log), ``batch_size`` (log) and ``label_smoothing`` (the smoothing of cdpo and
    the assumed flip rate of rdpo; read only by those two losses).

    Args:
        seed: seed of the bandit, the preference data and the minibatch sampler.
        n_prompts, n_responses, n_features: size of the bandit.
        n_pairs: preference pairs in the data set.
        flip_rate: fraction of labels flipped at random after Bradley-Terry labelling, in [0, 0.5).
        reward_scale: standard deviation of the true reward across responses.
        ref_scale: standard deviation of the reference policy's logits.
        beta_eval: KL weight of the evaluation objective.
    """

    name = "dpo_alignment"
    optimum = 0.0

    def __init__(
        self,
        seed: int = 0,
        n_prompts: int = 64,
        n_responses: int = 8,
        n_features: int = 8,
        n_pairs: int = 512,
        flip_rate: float = 0.2,
        reward_scale: float = 2.0,
        ref_scale: float = 1.0,
        beta_eval: float = 0.5,
    ) -> None:
        super().__init__(seed, n_prompts, n_responses, n_features, reward_scale, ref_scale, beta_eval)
        self.flip_rate = check_real("flip_rate", flip_rate, 0.0, 0.5, high_open=True)
        self.data, self.flipped = sample_preferences(
            self._rng, self.bandit, check_int("n_pairs", n_pairs, 1), self.flip_rate
        )
        self._space = SearchSpace([
            Categorical("loss", DPO_LOSSES),
            Real("beta", 0.01, 10.0, log=True),
            Real("learning_rate", 1e-3, 1.0, log=True),
            Integer("steps", 10, 500, log=True),
            Integer("batch_size", 8, 256, log=True),
            Real("label_smoothing", 0.0, 0.45),
        ])

    def train(self, point: dict[str, Any]) -> np.ndarray:
        point = self._space.validate(point)
        smoothing = float(point["label_smoothing"]) if point["loss"] in ("cdpo", "rdpo") else 0.0
        return train_preference_policy(
            self.bandit,
            self.data,
            point["loss"],
            float(point["beta"]),
            float(point["learning_rate"]),
            int(point["steps"]),
            int(point["batch_size"]),
            smoothing,
            self.seed + _TRAIN_SEED_OFFSET,
        )


@register_task("grpo_alignment")
class GRPOAlignment(_AlignmentTask):
    """GRPO on a log-linear policy under a fixed sample budget; objective = KL-regularised regret.

    Parameters of the space: ``group_size`` (log), ``kl_coef`` (log), ``clip_eps``,
    ``advantage_norm`` (std, mean_only) and ``learning_rate`` (log). The number of updates is
    ``sample_budget // (group_size * prompts_per_step)`` (at least one), each of
    ``inner_steps`` gradient steps on the same group.

    Args:
        seed: seed of the bandit and of the on-policy sampler.
        n_prompts, n_responses, n_features: size of the bandit.
        sample_budget: sampled responses allowed in all of training.
        prompts_per_step: prompts per update.
        inner_steps: gradient steps per sampled batch (``mu`` of Shao et al.).
        reward_noise: standard deviation of the reward model's error.
        reward_scale: standard deviation of the true reward across responses.
        ref_scale: standard deviation of the reference policy's logits.
        beta_eval: KL weight of the evaluation objective.
    """

    name = "grpo_alignment"
    optimum = 0.0

    def __init__(
        self,
        seed: int = 0,
        n_prompts: int = 64,
        n_responses: int = 8,
        n_features: int = 8,
        sample_budget: int = 4096,
        prompts_per_step: int = 8,
        inner_steps: int = 2,
        reward_noise: float = 1.0,
        reward_scale: float = 2.0,
        ref_scale: float = 1.0,
        beta_eval: float = 0.5,
    ) -> None:
        super().__init__(seed, n_prompts, n_responses, n_features, reward_scale, ref_scale, beta_eval)
        self.sample_budget = check_int("sample_budget", sample_budget, 1)
        self.prompts_per_step = check_int("prompts_per_step", prompts_per_step, 1)
        self.inner_steps = check_int("inner_steps", inner_steps, 1)
        self.reward_noise = check_real("reward_noise", reward_noise, 0.0, 1e3)
        self._space = SearchSpace([
            Integer("group_size", 2, 32, log=True),
            Real("kl_coef", 1e-3, 3.0, log=True),
            Real("clip_eps", 0.05, 0.5),
            Categorical("advantage_norm", ADVANTAGE_NORMS),
            Real("learning_rate", 1e-3, 1.0, log=True),
        ])

    def n_updates(self, group_size: int) -> int:
        """Updates the budget allows with groups of ``group_size``: ``budget // (G * prompts_per_step)``, >= 1."""
        return max(1, self.sample_budget // (group_size * self.prompts_per_step))

    def train(self, point: dict[str, Any]) -> np.ndarray:
        point = self._space.validate(point)
        group_size = int(point["group_size"])
        return train_grpo_policy(
            self.bandit,
            self.reward_noise,
            group_size,
            float(point["kl_coef"]),
            float(point["clip_eps"]),
            point["advantage_norm"],
            float(point["learning_rate"]),
            self.n_updates(group_size),
            self.prompts_per_step,
            self.inner_steps,
            self.seed + _TRAIN_SEED_OFFSET,
        )
