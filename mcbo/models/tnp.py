"""Transformer neural process (TNP) for meta-learned BO: predictive head and acquisition head.

Maraval et al., "End-to-End Meta-Bayesian Optimisation with Transformer Neural Processes"
(NAP, NeurIPS 2023). One transformer reads a *history* of observed points (``x``, ``y`` tokens)
and a set of *candidates* (``x`` tokens) and returns, per candidate:

* a predictive distribution of ``y``: a Riemann ("bar") distribution over fixed buckets, as in
  prior-fitted networks (Müller et al., "Transformers Can Do Bayesian Inference", ICLR 2022),
  with half-normal tails on the outer buckets so every ``y`` has a finite likelihood;
* an acquisition value (a policy logit): the candidate with the highest value is evaluated next.

Attention (per layer, shared weights for both token kinds): history tokens attend to every
history token; each candidate attends to the history **and itself only**, never to another
candidate, so a candidate's outputs do not depend on which other candidates are scored
(``[B, m]`` candidates cost ``O(m n)`` for a history of ``n`` points, not ``O((m + n)^2)``).

Choices where the paper leaves room (documented and tested):

* ``y`` is standardised with the history's mean and standard deviation (``n >= 2``; with fewer
  points the shift is the single value or 0 and the scale 1), so a trained model is invariant to
  the objective's units; the bucket borders live on that standardised scale.
* The acquisition head reads the candidate's final token and (detached) summary statistics of
  its own predictive distribution (mean, log-std, standardised improvement over the incumbent,
  log expected improvement, ``log(1 + n)``). Its output is ``w * logEI + MLP(...)`` with the
  MLP's last layer initialised to zero and ``w`` learned, so a fresh acquisition head ranks like
  expected improvement under the model's own predictive and PPO learns the correction and the
  temperature (Schulman et al., 2017; MetaBO, Volpp et al., ICLR 2020, also feeds the policy the
  predictive mean and deviation).

Inputs are featurised per column kind: numeric columns (real, integer, ordinal; in ``[0, 1]``)
map to ``2 x - 1``, nominal and permutation columns are one-hot encoded.

A trained network is saved as a *checkpoint* (:func:`save_checkpoint`, :func:`load_checkpoint`): one
``torch.save`` file of plain data (tensors, numbers, strings, lists, dicts), read back with
``torch.load(weights_only=True)`` so loading never runs pickled code::

    {"format": "mcbo-tnp", "version": 1, "space": <SearchSpace.to_dict()>,
     "space_signature": <SearchSpace.signature()>, "arch": {...}, "state_dict": {...}, "info": {...}}

A network trained for one search space reads inputs of that space only: loading it for another space
raises ``ValueError`` naming both spaces' parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mcbo.models.base import Model, Posterior, register_model
from mcbo.space import SearchSpace

#: Default architecture of the network (a small model that trains on a CPU in minutes).
DEFAULT_ARCH: dict[str, int] = {"d_model": 64, "n_heads": 4, "n_layers": 3, "d_ff": 128, "n_buckets": 64}

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_STD_FLOOR = 1e-9
#: Standardised values are clamped to this range before they enter the network or the loss.
Y_CLAMP = 100.0


# ---------------------------------------------------------------------------------------------- inputs
class Featuriser:
    """Encoded points ``[..., d]`` -> network inputs ``[..., p]`` (numeric ``2x-1``, nominal one-hot)."""

    def __init__(self, space: SearchSpace) -> None:
        kinds = space.column_kinds
        self.numeric = torch.tensor([c for c, k in enumerate(kinds) if k.is_numeric], dtype=torch.long)
        self.nominal = torch.tensor([c for c, k in enumerate(kinds) if not k.is_numeric], dtype=torch.long)
        cards = space.cardinalities[self.nominal].clamp(min=1) if len(self.nominal) else torch.zeros(0, dtype=torch.long)
        self.cards = cards
        self.offsets = torch.cumsum(cards, 0) - cards
        self.n_features = len(self.numeric) + int(cards.sum())
        if self.n_features == 0:
            raise ValueError("tnp: the search space has no encoded columns to read")

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        parts = [2.0 * X[..., self.numeric.to(X.device)] - 1.0] if len(self.numeric) else []
        if len(self.nominal):
            cards = self.cards.to(X.device)
            idx = torch.round(X[..., self.nominal.to(X.device)].detach()).long()
            idx = torch.minimum(idx.clamp(min=0), cards - 1) + self.offsets.to(X.device)
            onehot = torch.zeros(*X.shape[:-1], int(self.cards.sum()), dtype=X.dtype, device=X.device)
            parts.append(onehot.scatter_(-1, idx, 1.0))
        return torch.cat(parts, dim=-1)


def standardise(y_hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift and scale ``[B]`` from histories ``y_hist`` ``[B, n]`` (see the module notes)."""
    B, n = y_hist.shape
    if n == 0:
        return y_hist.new_zeros(B), y_hist.new_ones(B)
    if n == 1:
        return y_hist[:, 0], y_hist.new_ones(B)
    mean = y_hist.mean(-1)
    std = y_hist.std(-1, correction=0)
    return mean, torch.where(std > _STD_FLOOR * (1.0 + mean.abs()), std, torch.ones_like(std))


# ---------------------------------------------------------------------------------- bar distribution
class BarDistribution:
    """Riemann distribution over ``K`` buckets with half-normal tails (Müller et al., ICLR 2022).

    Inner bucket ``k`` (``0 < k < K-1``) spreads its probability uniformly over
    ``[b_k, b_{k+1})``; the first bucket is a half-normal extending from ``b_1`` down to ``-inf`` and
    the last one from ``b_{K-1}`` up to ``+inf``, each with the scale of its nominal width.

    Args:
        borders: strictly increasing ``[K + 1]`` bucket borders (``K >= 3``).
    """

    def __init__(self, borders: torch.Tensor) -> None:
        if borders.ndim != 1 or borders.numel() < 4 or not bool((borders[1:] > borders[:-1]).all()):
            raise ValueError(f"bar distribution borders must be a strictly increasing 1-d tensor of at least 4 "
                             f"values, got shape {tuple(borders.shape)}")
        self.borders = borders
        widths = borders[1:] - borders[:-1]
        self.widths = widths
        K = widths.numel()
        mid = 0.5 * (borders[1:] + borders[:-1])
        var = widths**2 / 12.0
        mid[0] = borders[1] - widths[0] * _SQRT_2_OVER_PI
        mid[K - 1] = borders[K - 1] + widths[K - 1] * _SQRT_2_OVER_PI
        var[0] = widths[0] ** 2 * (1.0 - 2.0 / math.pi)
        var[K - 1] = widths[K - 1] ** 2 * (1.0 - 2.0 / math.pi)
        self.bucket_mean, self.bucket_var = mid, var

    @property
    def n_buckets(self) -> int:
        return self.widths.numel()

    def log_prob(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Log density of ``y`` ``[...]`` under the distributions of ``logits`` ``[..., K]``."""
        b = self.borders.to(logits)
        w = self.widths.to(logits)
        K = w.numel()
        logp = torch.log_softmax(logits, -1)
        k = torch.searchsorted(b[1:-1].contiguous(), y.detach().contiguous(), right=True)
        inner = logp.gather(-1, k.unsqueeze(-1)).squeeze(-1) - torch.log(w[k])
        left = (logp[..., 0] + math.log(2.0) - _LOG_SQRT_2PI - torch.log(w[0])
                - 0.5 * ((b[1] - y) / w[0]) ** 2)
        right = (logp[..., K - 1] + math.log(2.0) - _LOG_SQRT_2PI - torch.log(w[K - 1])
                 - 0.5 * ((y - b[K - 1]) / w[K - 1]) ** 2)
        return torch.where(k == 0, left, torch.where(k == K - 1, right, inner))

    def mean_var(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance ``[...]`` of the distributions of ``logits`` ``[..., K]``."""
        p = torch.softmax(logits, -1)
        m, v = self.bucket_mean.to(logits), self.bucket_var.to(logits)
        mean = (p * m).sum(-1)
        second = (p * (v + m**2)).sum(-1)
        return mean, (second - mean**2).clamp(min=1e-12)

    def sample(self, logits: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Independent draws ``[n_samples, ...]`` from the distributions of ``logits`` ``[..., K]``."""
        p = torch.softmax(logits.detach().double().cpu(), -1).reshape(-1, self.n_buckets)
        k = torch.multinomial(p, n_samples, replacement=True, generator=generator).T  # [s, M]
        u = torch.rand(k.shape, generator=generator, dtype=torch.float64)
        b, w = self.borders.double().cpu(), self.widths.double().cpu()
        K = self.n_buckets
        inner = b[k] + u * w[k]
        half = torch.abs(torch.randn(k.shape, generator=generator, dtype=torch.float64))
        out = torch.where(k == 0, b[1] - half * w[0], torch.where(k == K - 1, b[K - 1] + half * w[K - 1], inner))
        return out.reshape(n_samples, *logits.shape[:-1]).to(logits)


# ---------------------------------------------------------------------------------------- network
class _Attention(nn.Module):
    """Multi-head attention: history <-> history, candidate -> history + itself."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"tnp d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
        self.h, self.dh = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _split(self, t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        B, L, _ = t.shape
        q, k, v = self.qkv(t).reshape(B, L, 3, self.h, self.dh).permute(2, 0, 3, 1, 4)
        return q, k, v  # each [B, H, L, dh]

    def forward(self, hist: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``hist`` ``[B, n, D]``, ``cand`` ``[B, m, D]`` -> updated ``(hist, cand)``."""
        B, n, D = hist.shape
        m = cand.shape[1]
        qc, kc, vc = self._split(cand)
        scale = 1.0 / math.sqrt(self.dh)
        self_score = (qc * kc).sum(-1, keepdim=True) * scale  # [B, H, m, 1]
        if n:
            qh, kh, vh = self._split(hist)
            hist_out = torch.nn.functional.scaled_dot_product_attention(qh, kh, vh)
            scores = torch.cat([qc @ kh.transpose(-1, -2) * scale, self_score], -1)  # [B, H, m, n + 1]
            weights = torch.softmax(scores, -1)
            cand_out = weights[..., :n] @ vh + weights[..., n:] * vc
            hist_out = self.out(hist_out.transpose(1, 2).reshape(B, n, D))
        else:
            cand_out, hist_out = vc, hist
        return hist_out, self.out(cand_out.transpose(1, 2).reshape(B, m, D))


class _Block(nn.Module):
    """Pre-norm transformer block shared by history and candidate tokens."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = _Attention(d_model, n_heads)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, hist: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dh, dc = self.attn(self.norm1(hist), self.norm1(cand))
        hist = hist + dh if hist.shape[1] else hist
        cand = cand + dc
        return hist + self.ff(self.norm2(hist)), cand + self.ff(self.norm2(cand))


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


@dataclass
class TNPOutput:
    """Outputs for ``[B, m]`` candidates (``y`` on the history-standardised scale).

    Attributes:
        logits: ``[B, m, K]`` bucket logits of the predictive bar distribution.
        mean: ``[B, m]`` predictive means.
        var: ``[B, m]`` predictive variances.
        acquisition: ``[B, m]`` acquisition values (policy logits; higher is better).
    """

    logits: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor
    acquisition: torch.Tensor


class TNPNetwork(nn.Module):
    """The NAP transformer: embedders, masked attention blocks, bar-distribution and acquisition heads.

    Args:
        n_features: input features ``p`` per point (see :class:`Featuriser`).
        borders: ``[K + 1]`` bucket borders of the predictive head (standardised ``y``).
        d_model, n_heads, n_layers, d_ff: transformer sizes.
    """

    N_STATS = 5

    def __init__(self, n_features: int, borders: torch.Tensor, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 3, d_ff: int = 128) -> None:
        super().__init__()
        for name, value in (("n_features", n_features), ("d_model", d_model), ("n_heads", n_heads),
                            ("n_layers", n_layers), ("d_ff", d_ff)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"tnp {name} must be a positive integer, got {value!r}")
        self.arch = {"n_features": n_features, "d_model": d_model, "n_heads": n_heads, "n_layers": n_layers,
                     "d_ff": d_ff, "n_buckets": int(borders.numel()) - 1}
        self.register_buffer("borders", borders.detach().to(torch.float32).clone())
        BarDistribution(self.borders)  # validates the borders
        self.x_embed = _mlp(n_features, d_model, d_model)
        self.y_embed = _mlp(1, d_model, d_model)
        self.query = nn.Parameter(torch.zeros(d_model))
        self.blocks = nn.ModuleList([_Block(d_model, n_heads, d_ff) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.likelihood_head = _mlp(d_model, d_ff, int(borders.numel()) - 1)
        self.acquisition_head = _mlp(d_model + self.N_STATS, d_ff, 1)
        nn.init.zeros_(self.acquisition_head[-1].weight)
        nn.init.zeros_(self.acquisition_head[-1].bias)
        self.ei_weight = nn.Parameter(torch.ones(()))

    @property
    def bar(self) -> BarDistribution:
        """The predictive head's bar distribution (built from the current ``borders`` buffer)."""
        return BarDistribution(self.borders)

    def forward(self, x_hist: torch.Tensor, y_hist: torch.Tensor, x_cand: torch.Tensor) -> TNPOutput:
        """Run on featurised history ``[B, n, p]`` with standardised ``y_hist`` ``[B, n]`` and candidates ``[B, m, p]``."""
        hist = self.x_embed(x_hist) + self.y_embed(y_hist.clamp(-Y_CLAMP, Y_CLAMP).unsqueeze(-1))
        cand = self.x_embed(x_cand) + self.query
        for block in self.blocks:
            hist, cand = block(hist, cand)
        h = self.norm(cand)
        logits = self.likelihood_head(h)
        mean, var = self.bar.mean_var(logits)
        stats = self._stats(mean.detach(), var.detach(), y_hist)
        acq = self.acquisition_head(torch.cat([h, stats], -1)).squeeze(-1) + self.ei_weight * stats[..., 3]
        return TNPOutput(logits=logits, mean=mean, var=var, acquisition=acq)

    @staticmethod
    def _stats(mean: torch.Tensor, var: torch.Tensor, y_hist: torch.Tensor) -> torch.Tensor:
        """``[B, m, 5]``: mean, log-std, standardised improvement ``z``, log-EI, ``log(1 + n)``."""
        B, n = y_hist.shape
        std = var.sqrt()
        best = y_hist.min(-1).values if n else y_hist.new_zeros(B)
        z = (best.unsqueeze(-1) - mean) / std
        ei = std * (z * torch.special.ndtr(z) + torch.exp(-0.5 * z**2 - _LOG_SQRT_2PI))
        log_ei = torch.log(ei.clamp(min=1e-30))
        count = torch.full_like(mean, math.log1p(n))
        return torch.stack([mean, torch.log(std), z.clamp(-10, 10), log_ei, count], -1)

    def log_prob(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Log-likelihood ``[...]`` of standardised targets ``y`` under the bucket ``logits`` ``[..., K]``."""
        return self.bar.log_prob(logits, y.clamp(-Y_CLAMP, Y_CLAMP))


def predict(
    net: TNPNetwork, featuriser: Featuriser, X_hist: torch.Tensor, y_hist: torch.Tensor, X_cand: torch.Tensor,
    chunk_size: int = 4096,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean ``[m]``, variance ``[m]`` (units of ``y_hist``) and acquisition ``[m]`` of candidates ``X_cand`` ``[m, d]``.

    ``X_hist`` ``[n, d]`` and ``y_hist`` ``[n]`` are the observations. Candidates are scored in
    chunks of ``chunk_size``; since a candidate sees only the history and itself, chunking does not
    change any output.
    """
    dtype = net.borders.dtype
    device = net.borders.device
    yh = y_hist.to(device=device, dtype=dtype).reshape(1, -1)
    shift, scale = standardise(yh)
    fh = featuriser(X_hist.to(device=device, dtype=dtype)).unsqueeze(0)
    ys = (yh - shift.unsqueeze(-1)) / scale.unsqueeze(-1)
    means, variances, acqs = [], [], []
    Xc = X_cand.to(device=device, dtype=dtype)
    for i in range(0, max(Xc.shape[0], 1), chunk_size):
        out = net(fh, ys, featuriser(Xc[i:i + chunk_size]).unsqueeze(0))
        means.append(out.mean[0])
        variances.append(out.var[0])
        acqs.append(out.acquisition[0])
    mean = torch.cat(means) * scale + shift
    var = torch.cat(variances) * scale**2
    return mean, var, torch.cat(acqs)


# -------------------------------------------------------------------------------------- checkpoints
#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_VERSION = 1
_FORMAT = "mcbo-tnp"
#: Folder of the checkpoints shipped with mcbo (found by name, e.g. ``"hpo_krr"``).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "nap"


def shipped_checkpoints() -> list[str]:
    """Names of the checkpoints shipped in ``mcbo/data/nap/``."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.pt"))


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """Path of ``checkpoint``: an existing file, or the name of a shipped checkpoint.

    Raises:
        ValueError: when neither exists.
    """
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    shipped = SHIPPED_DIR / f"{Path(str(checkpoint)).stem}.pt"
    if not path.suffix and shipped.is_file():
        return shipped
    raise ValueError(f"checkpoint {str(checkpoint)!r} is neither a file nor a shipped checkpoint name; "
                     f"shipped: {shipped_checkpoints()} (train one with `mcbo meta-train CONFIG`)")


def save_checkpoint(path: str | Path, net: TNPNetwork, space: SearchSpace, info: dict[str, Any] | None = None) -> Path:
    """Write ``net`` for ``space`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "space": space.to_dict(),
        "space_signature": space.signature(),
        "arch": dict(net.arch),
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "info": dict(info or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw payload of a checkpoint, after checking its format and version."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any unreadable file gets one clear message
        raise ValueError(f"checkpoint {str(path)!r} could not be read as a TNP checkpoint: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not a TNP checkpoint written by mcbo (format "
                         f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has version {payload.get('version')!r}; this mcbo reads "
                         f"version {CHECKPOINT_VERSION}; retrain it with `mcbo meta-train`")
    _check_payload(payload, f"checkpoint {str(path)!r}")
    return payload


def _check_payload(payload: dict[str, Any], where: str) -> None:
    """Raise one ``ValueError`` naming the first malformed field of a checkpoint payload and what is allowed."""
    def bad(field: str, allowed: str, got: Any) -> ValueError:
        return ValueError(f"{where} is malformed: field {field!r} must be {allowed}, got {got!r:.120}")

    if not isinstance(payload.get("space"), dict):
        raise bad("space", "a search-space dict (SearchSpace.to_dict())", payload.get("space"))
    try:
        SearchSpace.from_dict(payload["space"])
    except ValueError as err:
        raise ValueError(f"{where} is malformed: field 'space' is not a valid search space: {err}") from None
    if not isinstance(payload.get("space_signature"), str):
        raise bad("space_signature", "a string (SearchSpace.signature())", payload.get("space_signature"))
    arch = payload.get("arch")
    if not isinstance(arch, dict):
        raise bad("arch", f"a dict with keys {sorted(DEFAULT_ARCH)} and 'n_features'", arch)
    allowed = {"n_features", *DEFAULT_ARCH}
    unknown = sorted(set(arch) - allowed, key=str)
    if unknown:
        raise bad("arch", f"a dict with keys among {sorted(allowed)}", f"unknown key(s) {unknown}")
    for key, value in arch.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(f"arch.{key}", "a positive integer", value)
    if "n_features" not in arch:
        raise bad("arch.n_features", "a positive integer", None)
    weights = payload.get("state_dict")
    if not isinstance(weights, dict) or not weights:
        raise bad("state_dict", "a non-empty dict of tensors (the network's weights)", type(weights).__name__)
    for key, value in weights.items():
        if not isinstance(value, torch.Tensor):
            raise bad(f"state_dict.{key}", "a tensor", type(value).__name__)
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise bad(f"state_dict.{key}", "a tensor of finite numbers", "non-finite values (NaN or inf)")
    if "borders" not in weights:
        raise bad("state_dict.borders", "the predictive head's bucket borders (a tensor)", None)
    if not isinstance(payload.get("info", {}), dict):
        raise bad("info", "a dict", payload.get("info"))


def check_space(payload: dict[str, Any], space: SearchSpace, where: str = "checkpoint") -> None:
    """Raise ``ValueError`` when ``space`` is not the space the checkpoint was trained on."""
    if payload["space_signature"] == space.signature():
        return
    trained = SearchSpace.from_dict(payload["space"])
    raise ValueError(
        f"{where} was trained on a different search space: it reads parameters {_describe(trained)} "
        f"but got {_describe(space)}; train a model for this space with `mcbo meta-train`"
    )


def _describe(space: SearchSpace) -> str:
    return "[" + ", ".join(f"{p.name}:{type(p).__name__}" for p in space.params) + "]"


def load_checkpoint(
    path: str | Path, space: SearchSpace | None = None, map_location: str | torch.device = "cpu"
) -> tuple[TNPNetwork, dict[str, Any]]:
    """The network stored at ``path`` and its ``info`` dict.

    Args:
        path: a checkpoint file or a shipped checkpoint's name.
        space: when given, must be the space the network was trained on.

    Raises:
        ValueError: for an unreadable file, another format or version, or a mismatched space.
    """
    payload = read_checkpoint(path)
    if space is not None:
        check_space(payload, space, where=f"checkpoint {str(path)!r}")
    trained_space = SearchSpace.from_dict(payload["space"])
    arch = dict(payload["arch"])
    n_features = arch.pop("n_features")
    n_buckets = arch.pop("n_buckets", None)
    if n_features != Featuriser(trained_space).n_features:
        raise ValueError(f"checkpoint {str(path)!r}: stored n_features={n_features} does not match its space")
    borders = payload["state_dict"]["borders"]
    if n_buckets is not None and borders.numel() != n_buckets + 1:
        raise ValueError(f"checkpoint {str(path)!r} is malformed: field 'state_dict.borders' must hold "
                         f"arch.n_buckets + 1 = {n_buckets + 1} values, got {borders.numel()}")
    try:
        net = TNPNetwork(n_features, borders, **arch)
        net.load_state_dict(payload["state_dict"])
    except (ValueError, RuntimeError) as err:  # bad borders or arch; weights of the wrong names or shapes
        detail = " ".join(str(err).split())
        raise ValueError(f"checkpoint {str(path)!r} is malformed: its 'state_dict' does not fit its 'arch' (the "
                         f"weights save_checkpoint writes for that architecture are allowed): "
                         f"{detail[:400]}") from None
    net.to(map_location)
    info = dict(payload.get("info", {}))
    info["space"] = trained_space
    return net, info


# ------------------------------------------------------------------------------------------- model
@register_model("tnp")
class TNPModel(Model):
    """A trained TNP used as a surrogate: ``fit`` stores the history, ``posterior`` reads it.

    No gradient step happens at ``fit``: a neural process conditions on the data in its forward
    pass. The posterior is the mean and variance of the bar distribution, in the units of ``y``.

    Args:
        space: the search space; must match the checkpoint's space (else ``ValueError``).
        checkpoint: path of a checkpoint written by ``mcbo meta-train``, or the name of a checkpoint
            shipped in ``mcbo/data/nap/``.
        chunk_size: candidates per forward pass.
    """

    def __init__(
        self,
        space: SearchSpace,
        checkpoint: str | Path = "hpo_krr",
        chunk_size: int = 4096,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(device, dtype)
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ValueError(f"tnp chunk_size must be a positive integer, got {chunk_size!r}")
        self.space = space
        self.net, self.info = load_checkpoint(checkpoint, space, map_location=self.device)
        self.net.eval()
        self.featuriser = Featuriser(space)
        self.chunk_size = chunk_size
        self.X_hist = torch.empty(0, space.d, dtype=dtype, device=self.device)
        self.y_hist = torch.empty(0, dtype=dtype, device=self.device)

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        X, y = self._to(X).reshape(-1, self.space.d), self._to(y).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
        self.X_hist, self.y_hist = X, y

    def condition_on(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X_hist = torch.cat([self.X_hist, self._to(X).reshape(-1, self.space.d)])
        self.y_hist = torch.cat([self.y_hist, self._to(y).reshape(-1)])

    def _predict(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = X.reshape(-1, self.space.d)
        mean, var, acq = predict(self.net, self.featuriser, self.X_hist, self.y_hist, flat, self.chunk_size)
        shape = X.shape[:-1]
        return (self._to(mean).reshape(shape), self._to(var).reshape(shape), self._to(acq).reshape(shape))

    def posterior(self, X: torch.Tensor) -> Posterior:
        mean, var, _ = self._predict(X)
        return Posterior(mean=mean, variance=var)

    def acquisition(self, X: torch.Tensor) -> torch.Tensor:
        """The acquisition head's values ``[..., m]`` of candidates ``X`` ``[..., m, d]`` (higher is better)."""
        return self._predict(X)[2]

    def sample(self, X: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws ``[n_samples, m]`` at ``X`` ``[m, d]``; independent across points (the TNP gives marginals)."""
        flat = self._to(X).reshape(-1, self.space.d)
        with torch.no_grad():
            yh = self.y_hist.to(self.net.borders).reshape(1, -1)
            shift, scale = standardise(yh)
            fh = self.featuriser(self.X_hist.to(self.net.borders)).unsqueeze(0)
            ys = (yh - shift.unsqueeze(-1)) / scale.unsqueeze(-1)
            logits = self.net(fh, ys, self.featuriser(flat.to(self.net.borders)).unsqueeze(0)).logits[0]
            draws = self.net.bar.sample(logits, n_samples, generator=generator)
        return self._to(draws * scale + shift)


__all__ = ["CHECKPOINT_VERSION", "DEFAULT_ARCH", "SHIPPED_DIR", "BarDistribution", "Featuriser", "TNPModel",
           "TNPNetwork", "TNPOutput", "check_space", "load_checkpoint", "predict", "read_checkpoint",
           "resolve_checkpoint", "save_checkpoint", "shipped_checkpoints", "standardise"]
