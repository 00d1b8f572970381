"""Meta-training of the NAP transformer: likelihood pre-training, then PPO with an auxiliary likelihood loss.

Maraval et al., "End-to-End Meta-Bayesian Optimisation with Transformer Neural Processes"
(NeurIPS 2023), with PPO from Schulman et al., "Proximal Policy Optimization Algorithms" (2017).

Phase 1 (likelihood): each step draws ``batch_size`` training tasks, splits a random permutation
of each task's table into a history of ``n`` points (``n`` uniform in ``[2, max_context]``, one
``n`` per step) and ``n_targets`` targets, standardises ``y`` by the history, and minimises the
negative log-likelihood of the targets under the bar distribution (a prior-fitted network,
Müller et al., ICLR 2022). The bucket borders are quantiles of standardised targets drawn the
same way before training starts.

Phase 2 (PPO): each iteration rolls out ``episodes`` BO episodes of ``horizon`` steps on
training tasks, each on a random subset of ``n_candidates`` points of the task's table. At every
step the policy is the softmax of the acquisition values over the candidates not tried yet; the
reward is ``-log10(max(r_t, regret_floor))`` with ``r_t`` the normalised simple regret
``(min_{i<=t} y_i - min y) / (max y - min y)`` over the episode's candidates. Returns are
discounted with ``gamma``; the advantage subtracts the mean return of the same step across the
rollout's episodes (a batch baseline in place of a value network) and is normalised. The loss per
step is the clipped surrogate, minus an entropy bonus, plus ``aux_weight`` times the NLL of
the untried candidates' values given the history (the auxiliary likelihood loss of NAP), summed
over ``minibatch_steps`` steps per gradient step, for ``epochs`` passes.

Every ``checkpoint_every`` likelihood steps (and every ``checkpoint_every / 10`` PPO
iterations) the full training state (weights, optimiser, random generators, metrics) is written
to ``<out_dir>/train_state.pt``; running the same config again resumes from it. At the end of
phase 1 the likelihood-only model is saved as ``<out_dir>/<name>-likelihood.pt`` (the TNP-EI
surrogate) and at the end of training the NAP model as ``<out_dir>/<name>.pt``.

Ctrl-C (SIGINT) while :meth:`Trainer.run` trains in the main thread finishes the step in
progress, saves the state at that step and raises ``KeyboardInterrupt``, so a resumed run ends
with the same weights as an uninterrupted one; a second Ctrl-C stops at once (the last saved state
stays). :attr:`Trainer.saved_at` tells which step the state on disk holds.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mcbo.meta.checkpoint import save_checkpoint
from mcbo.meta.config import MetaTrainConfig
from mcbo.meta.data import TEST_SEED_OFFSET, MetaTask, TableFamily, TaskFamily, build_family
from mcbo.models.tnp import Y_CLAMP, Featuriser, TNPNetwork, standardise

logger = logging.getLogger(__name__)

STATE_FILE = "train_state.pt"
STATE_VERSION = 1


@dataclass
class Rollout:
    """One PPO rollout of ``E`` episodes of ``T`` steps over ``M`` candidates each.

    Attributes:
        features: ``[E, M, p]`` featurised candidates.
        values: ``[E, M]`` candidate values.
        actions: ``[E, T]`` chosen candidate indices.
        log_probs: ``[E, T]`` log-probabilities of the actions under the rollout policy.
        rewards: ``[E, T]`` rewards ``-log10(max(regret, floor))``.
        regrets: ``[E, T]`` normalised simple regret after each step.
    """

    features: torch.Tensor
    values: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    rewards: torch.Tensor
    regrets: torch.Tensor


def make_borders(samples: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """``[n_buckets + 1]`` strictly increasing borders at the quantiles of ``samples`` ``[N]``."""
    q = torch.quantile(samples.double(), torch.linspace(0, 1, n_buckets + 1, dtype=torch.float64))
    gap = max(float(q[-1] - q[0]), 1e-3) * 1e-3
    out = q.clone()
    for i in range(1, len(out)):  # plateaus (e.g. capped table values) give equal quantiles: spread them
        out[i] = max(float(out[i]), float(out[i - 1]) + gap)
    return out.float()


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` ``[E, k]`` of ``t`` ``[E, M, ...]`` -> ``[E, k, ...]``."""
    if t.ndim == 2:
        return t.gather(1, idx)
    return t.gather(1, idx.unsqueeze(-1).expand(*idx.shape, t.shape[-1]))


class Trainer:
    """Runs (or resumes) one meta-training config.

    Args:
        config: the validated config.
        family: the task family (built from ``config.family`` when ``None``).
        progress: show progress bars.
    """

    def __init__(self, config: MetaTrainConfig, family: TaskFamily | None = None, progress: bool = False) -> None:
        self.config = config
        self.progress = progress
        self.family = family if family is not None else build_family(config.family, progress=progress)
        self.space = self.family.space
        self.featuriser = Featuriser(self.space)
        self.out_dir = Path(config.out_dir)
        self.np_rng = np.random.default_rng(config.seed)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.n_train = self.family.n_tasks("train")
        self._tasks: dict[int, MetaTask] = {}
        self.phase = "likelihood"
        self.step = 0
        self.metrics: list[dict[str, float]] = []
        self.seconds = 0.0
        #: ``(phase, step)`` of the training state on disk (``None``: none saved or loaded by this trainer).
        self.saved_at: tuple[str, int] | None = None
        #: Set by the first Ctrl-C during :meth:`run`: stop after the step in progress.
        self.stop_requested = False
        torch.manual_seed(config.seed)
        self.net = TNPNetwork(self.featuriser.n_features, self._initial_borders(), d_model=config.model.d_model,
                              n_heads=config.model.n_heads, n_layers=config.model.n_layers, d_ff=config.model.d_ff)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.likelihood.lr)

    # -------------------------------------------------------------------------------- data
    def _task(self) -> MetaTask:
        """A random training task (cached for finite families)."""
        if self.n_train is None:
            return self.family.task("train", int(self.np_rng.integers(TEST_SEED_OFFSET)))
        i = int(self.np_rng.integers(self.n_train))
        if i not in self._tasks:
            self._tasks[i] = self.family.task("train", i)
        return self._tasks[i]

    def likelihood_batch(self, batch_size: int, n_context: int, n_targets: int) -> tuple[torch.Tensor, ...]:
        """Featurised history ``[B, n, p]``, standardised ``y`` ``[B, n]``, targets ``[B, m, p]`` and ``[B, m]``."""
        xs, ys, xt, yt = [], [], [], []
        for _ in range(batch_size):
            X, y = self._task().table(self.config.likelihood.table_size, self.np_rng)
            m = min(n_targets, X.shape[0] - n_context)
            if m < 1:
                raise ValueError(f"tasks of family {self.family.kind!r} have {X.shape[0]} points; need more than "
                                 f"likelihood.max_context={self.config.likelihood.max_context}")
            perm = torch.from_numpy(self.np_rng.permutation(X.shape[0]))
            ctx, tgt = perm[:n_context], perm[n_context:n_context + n_targets]
            xs.append(X[ctx]), ys.append(y[ctx]), xt.append(X[tgt]), yt.append(y[tgt])
        m = min(len(t) for t in yt)
        y_hist = torch.stack(ys).float()
        shift, scale = standardise(y_hist)
        y_tgt = torch.stack([t[:m] for t in yt]).float()
        return (self.featuriser(torch.stack(xs).float()), (y_hist - shift[:, None]) / scale[:, None],
                self.featuriser(torch.stack([t[:m] for t in xt]).float()),
                ((y_tgt - shift[:, None]) / scale[:, None]).clamp(-Y_CLAMP, Y_CLAMP))

    def _context_size(self) -> int:
        return int(self.np_rng.integers(2, self.config.likelihood.max_context + 1))

    def _initial_borders(self) -> torch.Tensor:
        cfg = self.config.likelihood
        samples = [self.likelihood_batch(1, self._context_size(), cfg.n_targets)[3].reshape(-1)
                   for _ in range(cfg.border_samples)]
        return make_borders(torch.cat(samples), self.config.model.n_buckets)

    # ---------------------------------------------------------------------- likelihood
    def likelihood_step(self) -> dict[str, float]:
        """One likelihood optimiser step; returns its metrics."""
        cfg = self.config.likelihood
        fh, yh, fc, yc = self.likelihood_batch(cfg.batch_size, self._context_size(), cfg.n_targets)
        out = self.net(fh, yh, fc)
        loss = -self.net.log_prob(out.logits, yc).mean()
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        return {"nll": float(loss.detach())}

    # ----------------------------------------------------------------------------- PPO
    def _episode_tables(self, n_episodes: int, n_candidates: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for _ in range(n_episodes):
            X, y = self._task().table(self.config.likelihood.table_size, self.np_rng)
            idx = torch.from_numpy(self.np_rng.permutation(X.shape[0])[:n_candidates])
            xs.append(X[idx]), ys.append(y[idx])
        m = min(len(t) for t in ys)
        return torch.stack([t[:m] for t in xs]).float(), torch.stack([t[:m] for t in ys]).float()

    def _state(self, features: torch.Tensor, values: torch.Tensor, actions: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """History features, standardised history values, shift and scale for ``actions`` ``[E, t]``."""
        y_hist = _gather(values, actions)
        shift, scale = standardise(y_hist)
        return _gather(features, actions), (y_hist - shift[:, None]) / scale[:, None], shift, scale

    def rollout(self, n_episodes: int, horizon: int, n_candidates: int, greedy: bool = False,
                tables: tuple[torch.Tensor, torch.Tensor] | None = None) -> Rollout:
        """Run ``n_episodes`` episodes with the current policy (sampled, or arg-max when ``greedy``)."""
        X, values = tables if tables is not None else self._episode_tables(n_episodes, n_candidates)
        E, M = values.shape
        T = min(horizon, M)
        features = self.featuriser(X)
        y_min, y_max = values.min(1).values, values.max(1).values
        span = (y_max - y_min).clamp(min=1e-12)
        tried = torch.zeros(E, M, dtype=torch.bool)
        actions = torch.zeros(E, 0, dtype=torch.long)
        log_probs, regrets = [], []
        best = torch.full((E,), float("inf"))
        with torch.no_grad():
            for _ in range(T):
                fh, yh, _, _ = self._state(features, values, actions)
                logits = self.net(fh, yh, features).acquisition.masked_fill(tried, -float("inf"))
                logp = torch.log_softmax(logits, -1)
                if greedy:
                    a = logits.argmax(-1)
                else:
                    a = torch.multinomial(logp.exp(), 1, generator=self.gen).squeeze(-1)
                log_probs.append(logp.gather(1, a[:, None]).squeeze(-1))
                tried[torch.arange(E), a] = True
                actions = torch.cat([actions, a[:, None]], 1)
                best = torch.minimum(best, values.gather(1, a[:, None]).squeeze(-1))
                regrets.append((best - y_min) / span)
        regret = torch.stack(regrets, 1)
        rewards = -torch.log10(regret.clamp(min=self.config.ppo.regret_floor))
        return Rollout(features, values, actions, torch.stack(log_probs, 1), rewards, regret)

    def _advantages(self, rewards: torch.Tensor) -> torch.Tensor:
        gamma = self.config.ppo.gamma
        returns = torch.zeros_like(rewards)
        running = torch.zeros(rewards.shape[0])
        for t in range(rewards.shape[1] - 1, -1, -1):
            running = rewards[:, t] + gamma * running
            returns[:, t] = running
        adv = returns - returns.mean(0, keepdim=True)
        return adv / (adv.std() + 1e-8)

    def ppo_iteration(self) -> dict[str, float]:
        """One rollout and its PPO updates; returns the iteration's metrics."""
        cfg = self.config.ppo
        ro = self.rollout(cfg.episodes, cfg.horizon, cfg.n_candidates)
        adv = self._advantages(ro.rewards)
        E, T = ro.actions.shape
        M = ro.values.shape[1]
        totals = {"policy_loss": 0.0, "entropy": 0.0, "aux_nll": 0.0}
        n_terms = 0
        for _ in range(cfg.epochs):
            order = self.np_rng.permutation(T)
            for start in range(0, T, cfg.minibatch_steps):
                steps = order[start:start + cfg.minibatch_steps]
                loss = torch.zeros(())
                for t in steps:
                    prev = ro.actions[:, :t]
                    tried = torch.zeros(E, M, dtype=torch.bool)
                    tried.scatter_(1, prev, True)
                    fh, yh, shift, scale = self._state(ro.features, ro.values, prev)
                    out = self.net(fh, yh, ro.features)
                    logp_all = torch.log_softmax(out.acquisition.masked_fill(tried, -float("inf")), -1)
                    new_logp = logp_all.gather(1, ro.actions[:, t:t + 1]).squeeze(-1)
                    ratio = torch.exp(new_logp - ro.log_probs[:, t])
                    a = adv[:, t]
                    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * a).mean()
                    p = logp_all.exp()
                    entropy = -(p * logp_all.masked_fill(tried, 0.0)).sum(-1).mean()
                    step_loss = -surrogate - cfg.entropy_coef * entropy
                    if t >= 2 and cfg.aux_weight > 0:
                        target = ((ro.values - shift[:, None]) / scale[:, None]).clamp(-Y_CLAMP, Y_CLAMP)
                        nll = -(self.net.log_prob(out.logits, target) * (~tried)).sum() / (~tried).sum()
                        step_loss = step_loss + cfg.aux_weight * nll
                        totals["aux_nll"] += float(nll.detach())
                    totals["policy_loss"] += float(-surrogate.detach())
                    totals["entropy"] += float(entropy.detach())
                    n_terms += 1
                    loss = loss + step_loss / len(steps)
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
                self.opt.step()
        metrics = {k: v / max(n_terms, 1) for k, v in totals.items()}
        metrics["reward"] = float(ro.rewards.mean())
        metrics["final_regret"] = float(ro.regrets[:, -1].mean())
        return metrics

    # --------------------------------------------------------------------- state
    @property
    def state_path(self) -> Path:
        return self.out_dir / STATE_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / f"{self.config.name}.pt"

    @property
    def likelihood_checkpoint_path(self) -> Path:
        return self.out_dir / f"{self.config.name}-likelihood.pt"

    def save_state(self) -> None:
        """Write the resumable training state atomically."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "version": STATE_VERSION, "config": self.config.to_dict(), "phase": self.phase, "step": self.step,
            "net": self.net.state_dict(), "opt": self.opt.state_dict(), "np_rng": self.np_rng.bit_generator.state,
            "torch_gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(), "metrics": self.metrics,
            "seconds": self.seconds,
        }
        tmp = self.state_path.with_name(STATE_FILE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.state_path)
        self.saved_at = (self.phase, self.step)

    def position(self, phase: str | None = None, step: int | None = None) -> str:
        """Where training is (or ``phase``/``step`` are) in words: ``likelihood step 1200 of 3000``."""
        phase = self.phase if phase is None else phase
        step = self.step if step is None else step
        if phase == "likelihood":
            return f"likelihood step {step} of {self.config.likelihood.steps}"
        if phase == "ppo":
            return f"PPO iteration {step} of {self.config.ppo.iterations}"
        return "the end of training"

    def load_state(self) -> bool:
        """Resume from ``train_state.pt`` if present; ``False`` when there is none.

        Raises:
            ValueError: when the saved state belongs to a different config.
        """
        if not self.state_path.is_file():
            return False
        state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"{self.state_path}: training state version {state.get('version')!r}, expected "
                             f"{STATE_VERSION}; remove it or use another out_dir")
        ignored = ("out_dir", "torch_threads")  # where a run is stored and how many threads it uses may change
        saved = {k: v for k, v in dict(state["config"]).items() if k not in ignored}
        if saved != {k: v for k, v in self.config.to_dict().items() if k not in ignored}:
            raise ValueError(f"{self.state_path} holds a run of a different config; use another out_dir or "
                             f"restart (`mcbo meta-train CONFIG --restart`) to discard it")
        self.net = TNPNetwork(self.featuriser.n_features, state["net"]["borders"], d_model=self.config.model.d_model,
                              n_heads=self.config.model.n_heads, n_layers=self.config.model.n_layers,
                              d_ff=self.config.model.d_ff)
        self.net.load_state_dict(state["net"])
        self.phase, self.step = state["phase"], int(state["step"])
        lr = self.config.likelihood.lr if self.phase == "likelihood" else self.config.ppo.lr
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.opt.load_state_dict(state["opt"])
        self.np_rng.bit_generator.state = state["np_rng"]
        self.gen.set_state(state["torch_gen"])
        torch.set_rng_state(state["torch_rng"])
        self.metrics = list(state["metrics"])
        self.seconds = float(state.get("seconds", 0.0))
        self.saved_at = (self.phase, self.step)
        logger.info("resumed %s at phase %s step %d", self.state_path, self.phase, self.step)
        return True

    def _info(self, phase: str) -> dict[str, Any]:
        info = {"name": self.config.name, "phase": phase, "config": self.config.to_dict(),
                "family": self.family.spec(), "train_seconds": round(self.seconds, 1)}
        if isinstance(self.family, TableFamily):  # which tables: a retrained model can be checked against them
            info["tables_sha256"] = self.family.tables_sha256
        return info

    # ------------------------------------------------------------------------ run
    def run(self, resume: bool = True) -> Path:
        """Train to the end (resuming when ``resume`` and a state exists); returns the NAP checkpoint path."""
        cfg = self.config
        if resume:
            self.load_state()
        total = cfg.likelihood.steps + cfg.ppo.iterations
        done = self.step + (cfg.likelihood.steps if self.phase != "likelihood" else 0)
        from tqdm.auto import tqdm

        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.torch_threads)
        bar = tqdm(total=total, initial=min(done, total), desc=f"meta-train {cfg.name}", disable=not self.progress,
                   unit="step")
        try:
            with self._stop_after_step_on_interrupt():
                self._run_phases(bar)
        finally:
            bar.close()
            torch.set_num_threads(threads)
        return self.checkpoint_path

    @contextlib.contextmanager
    def _stop_after_step_on_interrupt(self) -> Iterator[None]:
        """The first SIGINT sets :attr:`stop_requested`; a second raises ``KeyboardInterrupt`` at once.

        Only in the main thread and only where SIGINT has Python's default handler (a process that
        ignores SIGINT, or handles it itself, keeps its own handler).
        """
        self.stop_requested = False
        if (threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _stop_if_requested(self) -> None:
        """After a step: when Ctrl-C asked to stop, save the state at this step and raise ``KeyboardInterrupt``."""
        if not self.stop_requested:
            return
        if self.saved_at != (self.phase, self.step):
            self.save_state()
        raise KeyboardInterrupt

    def _run_phases(self, bar: Any) -> None:
        cfg = self.config
        ppo_every = max(1, cfg.checkpoint_every // 10)
        while self.phase == "likelihood" and self.step < cfg.likelihood.steps:
            start = time.perf_counter()
            row = self.likelihood_step()
            self.seconds += time.perf_counter() - start
            self.step += 1
            self.metrics.append({"phase": "likelihood", "step": self.step, **row})
            bar.update(1)
            bar.set_postfix(nll=f"{row['nll']:.3f}")
            if self.step % cfg.checkpoint_every == 0:
                self.save_state()
            self._stop_if_requested()
        if self.phase == "likelihood":
            save_checkpoint(self.likelihood_checkpoint_path, self.net, self.space, self._info("likelihood"))
            self.phase, self.step = "ppo", 0
            self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.ppo.lr)
            self.save_state()
            self._stop_if_requested()
        while self.phase == "ppo" and self.step < cfg.ppo.iterations:
            start = time.perf_counter()
            row = self.ppo_iteration()
            self.seconds += time.perf_counter() - start
            self.step += 1
            self.metrics.append({"phase": "ppo", "step": self.step, **row})
            bar.update(1)
            bar.set_postfix(reward=f"{row['reward']:.3f}", regret=f"{row['final_regret']:.4f}")
            if self.step % ppo_every == 0:
                self.save_state()
            self._stop_if_requested()
        if self.phase == "ppo":
            self.phase = "done"
            save_checkpoint(self.checkpoint_path, self.net, self.space, self._info("ppo"))
            self.save_state()
            self.metrics_frame().to_csv(self.out_dir / "metrics.csv", index=False)

    def metrics_frame(self) -> pd.DataFrame:
        """One row per likelihood step / PPO iteration."""
        return pd.DataFrame(self.metrics)


def train(config: MetaTrainConfig, family: TaskFamily | None = None, progress: bool = False,
          resume: bool = True) -> Path:
    """Run (or resume) meta-training for ``config``; returns the NAP checkpoint path."""
    return Trainer(config, family=family, progress=progress).run(resume=resume)


def greedy_regret(trainer: Trainer, tasks: list[MetaTask], horizon: int, n_candidates: int,
                  seed: int = 0) -> np.ndarray:
    """Mean normalised simple regret ``[horizon]`` of the greedy policy on ``tasks`` (fixed candidate subsets)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for task in tasks:
        X, y = task.table(trainer.config.likelihood.table_size, rng)
        idx = torch.from_numpy(rng.permutation(X.shape[0])[:n_candidates])
        xs.append(X[idx].float()), ys.append(y[idx].float())
    ro = trainer.rollout(len(tasks), horizon, n_candidates, greedy=True, tables=(torch.stack(xs), torch.stack(ys)))
    return ro.regrets.mean(0).numpy()


__all__ = ["Rollout", "Trainer", "greedy_regret", "make_borders", "train"]
