"""Meta-training configuration: a YAML file read into validated dataclasses.

Example (``configs/meta/hpo_krr_cpu.yaml``)::

    name: hpo_krr_cpu
    seed: 0
    out_dir: results/meta/hpo_krr_cpu
    family: {type: hpo_krr, n_train_tasks: 80, n_test_tasks: 40}
    model: {d_model: 64, n_heads: 4, n_layers: 3, d_ff: 128, n_buckets: 64}
    likelihood: {steps: 1500, batch_size: 16, max_context: 50, n_targets: 64, lr: 0.001}
    ppo: {iterations: 120, episodes: 8, horizon: 30, n_candidates: 128, epochs: 3, lr: 0.0003}

Every section has defaults; unknown keys and bad values raise ``ValueError`` naming the field,
the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mcbo.models.tnp import DEFAULT_ARCH


@dataclass
class ModelConfig:
    """Transformer sizes (see :class:`mcbo.models.tnp.TNPNetwork`)."""

    d_model: int = DEFAULT_ARCH["d_model"]
    n_heads: int = DEFAULT_ARCH["n_heads"]
    n_layers: int = DEFAULT_ARCH["n_layers"]
    d_ff: int = DEFAULT_ARCH["d_ff"]
    n_buckets: int = DEFAULT_ARCH["n_buckets"]


@dataclass
class LikelihoodConfig:
    """Likelihood pre-training: random context/target splits of training tasks.

    Attributes:
        steps: optimiser steps.
        batch_size: tasks per step.
        max_context: largest history (a uniform draw in ``[2, max_context]`` per step).
        n_targets: candidates whose values are predicted per task.
        table_size: points drawn per continuous task (finite tasks use their whole table).
        lr: Adam learning rate.
        border_samples: batches drawn to place the bucket borders (quantiles of standardised targets).
    """

    steps: int = 1500
    batch_size: int = 16
    max_context: int = 50
    n_targets: int = 64
    table_size: int = 256
    lr: float = 1e-3
    border_samples: int = 200


@dataclass
class PPOConfig:
    """PPO phase (Schulman et al., 2017) with the auxiliary likelihood loss.

    Attributes:
        iterations: rollout-and-update iterations.
        episodes: tasks (episodes) per rollout.
        horizon: evaluations per episode.
        n_candidates: candidate points per episode (a random subset of the task's table).
        epochs: passes over each rollout.
        minibatch_steps: time steps per gradient step inside an epoch.
        clip: PPO ratio clip ``epsilon``.
        lr: Adam learning rate.
        gamma: discount of the per-step reward ``-log10(normalised simple regret)``.
        entropy_coef: entropy bonus weight.
        aux_weight: weight of the likelihood (NLL) loss on the candidates' values.
        regret_floor: normalised regret is floored here before the log (reward at most ``-log10(floor)``).
    """

    iterations: int = 120
    episodes: int = 8
    horizon: int = 30
    n_candidates: int = 128
    epochs: int = 3
    minibatch_steps: int = 10
    clip: float = 0.2
    lr: float = 3e-4
    gamma: float = 0.98
    entropy_coef: float = 0.01
    aux_weight: float = 1.0
    regret_floor: float = 1e-3


@dataclass
class MetaTrainConfig:
    """A whole meta-training run.

    Attributes:
        name: run name (the checkpoint is ``<out_dir>/<name>.pt``).
        family: family spec (``{"type": ..., settings}``), see :mod:`mcbo.meta.data`.
        out_dir: folder of the checkpoint, the resumable training state and the metrics CSV.
        seed: seed of every random draw in training.
        checkpoint_every: likelihood steps (and PPO iterations, divided by 10) between saved states.
        torch_threads: torch intra-op threads while training.
    """

    name: str
    family: dict[str, Any]
    out_dir: str = "results/meta/run"
    seed: int = 0
    checkpoint_every: int = 200
    torch_threads: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    likelihood: LikelihoodConfig = field(default_factory=LikelihoodConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_POSITIVE_INT = {
    "model": ("d_model", "n_heads", "n_layers", "d_ff", "n_buckets"),
    "likelihood": ("steps", "batch_size", "max_context", "n_targets", "table_size", "border_samples"),
    "ppo": ("iterations", "episodes", "horizon", "n_candidates", "epochs", "minibatch_steps"),
}
_ZERO_OK = {("likelihood", "steps"), ("ppo", "iterations")}


def _fail(field_name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{field_name}: got {value!r}; expected {allowed}")


def _section(cls: type, data: Any, name: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise _fail(name, data, "a mapping")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(f"{name}.{unknown[0]}", data[unknown[0]], f"one of the keys {sorted(allowed)}")
    out = cls(**data)
    for f in dataclasses.fields(cls):
        value = getattr(out, f.name)
        label = f"{name}.{f.name}"
        if f.name in _POSITIVE_INT.get(name, ()):
            low = 0 if (name, f.name) in _ZERO_OK else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise _fail(label, value, f"an integer >= {low}")
        elif isinstance(f.default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _fail(label, value, "a number")
            setattr(out, f.name, float(value))
    return out


def _check_ranges(config: MetaTrainConfig) -> None:
    checks = [
        ("likelihood.lr", config.likelihood.lr, config.likelihood.lr > 0, "a number > 0"),
        ("ppo.lr", config.ppo.lr, config.ppo.lr > 0, "a number > 0"),
        ("ppo.clip", config.ppo.clip, 0 < config.ppo.clip < 1, "a number in (0, 1)"),
        ("ppo.gamma", config.ppo.gamma, 0 <= config.ppo.gamma <= 1, "a number in [0, 1]"),
        ("ppo.entropy_coef", config.ppo.entropy_coef, config.ppo.entropy_coef >= 0, "a number >= 0"),
        ("ppo.aux_weight", config.ppo.aux_weight, config.ppo.aux_weight >= 0, "a number >= 0"),
        ("ppo.regret_floor", config.ppo.regret_floor, 0 < config.ppo.regret_floor < 1, "a number in (0, 1)"),
        ("likelihood.max_context", config.likelihood.max_context, config.likelihood.max_context >= 2,
         "an integer >= 2"),
        ("model.n_buckets", config.model.n_buckets, config.model.n_buckets >= 3, "an integer >= 3"),
        ("model.d_model", config.model.d_model, config.model.d_model % config.model.n_heads == 0,
         f"a multiple of model.n_heads ({config.model.n_heads})"),
    ]
    for label, value, ok, allowed in checks:
        if not ok:
            raise _fail(label, value, allowed)


def config_from_dict(data: Mapping[str, Any]) -> MetaTrainConfig:
    """Validate a config mapping (as read from YAML)."""
    if not isinstance(data, Mapping):
        raise _fail("config", data, "a mapping")
    allowed = {f.name for f in dataclasses.fields(MetaTrainConfig)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(unknown[0], data[unknown[0]], f"one of the keys {sorted(allowed)}")
    name = data.get("name")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise _fail("name", name, "a non-empty name without slashes or spaces")
    family = data.get("family")
    if not isinstance(family, Mapping) or "type" not in family:
        raise _fail("family", family, "a mapping with a 'type' key (gp_prior, shifted, hpo_krr)")
    for key in ("seed", "checkpoint_every", "torch_threads"):
        value = data.get(key, 1)
        low = 0 if key == "seed" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise _fail(key, value, f"an integer >= {low}")
    out_dir = data.get("out_dir", f"results/meta/{name}")
    if not isinstance(out_dir, str) or not out_dir:
        raise _fail("out_dir", out_dir, "a folder path")
    config = MetaTrainConfig(
        name=name, family=dict(family), out_dir=out_dir, seed=int(data.get("seed", 0)),
        checkpoint_every=int(data.get("checkpoint_every", 200)), torch_threads=int(data.get("torch_threads", 1)),
        model=_section(ModelConfig, data.get("model"), "model"),
        likelihood=_section(LikelihoodConfig, data.get("likelihood"), "likelihood"),
        ppo=_section(PPOConfig, data.get("ppo"), "ppo"),
    )
    _check_ranges(config)
    return config


def load_config(path: str | Path) -> MetaTrainConfig:
    """Read and validate the YAML config at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"meta-train config {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"meta-train config {str(path)!r} is not valid YAML: {err}") from None
    return config_from_dict(data)


__all__ = ["LikelihoodConfig", "MetaTrainConfig", "ModelConfig", "PPOConfig", "config_from_dict", "load_config"]
