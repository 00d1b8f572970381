"""NeuralUCB surrogate: a one-hidden-layer ReLU network with a diagonal gradient covariance.

Zhou, Li & Gu, "Neural Contextual Bandits with UCB-based Exploration", ICML 2020, in the variant
used by Lin et al., "Use Your INSTINCT: INSTruction optimization for LLMs usIng Neural bandits
Coupled with Transformers", ICML 2024 (width 100, diagonal ``Z``, ``lambda = 0.1``, ``nu = 1``).

Network (NTK parametrisation, input ``x`` of ``p`` features, ``m`` hidden units)::

    a = W x / sqrt(p) + b,   h = relu(a),   f(x; theta) = v . h / sqrt(m) + c,   theta = (W, b, v, c)

with the symmetric initialisation of Zhou et al. (the second half of the hidden units copies the
first half with negated output weights), so that ``f(x; theta_0) = 0``. Training minimises, by
full-batch Adam from ``theta_0`` on every fit (so a fit depends on the data only)::

    L(theta) = (1 / n) [ sum_i (f(x_i; theta) - y_i)^2 + lambda |theta - theta_0|^2 ]

on standardised targets. The posterior of ``f(x)`` has mean ``f(x; theta)`` and variance::

    sigma^2(x) = lambda nu^2 g(x)^T Z^-1 g(x),   Z = lambda I + sum_i g(x_i) g(x_i)^T   (diagonal part kept)

where ``g(x) = d f(x; theta) / d theta``. For this network ``g`` has a closed form (``u = v * 1[a > 0]``)::

    df/dv_j = h_j / sqrt(m),  df/dc = 1,  df/db_j = u_j / sqrt(m),  df/dW_jk = u_j x_k / sqrt(m p)

so ``g^T Z^-1 g`` with diagonal ``Z`` is computed for a whole batch without forming any ``[n, P]``
Jacobian: the ``W`` block is ``sum_j (u_j^2 / m) sum_k (x_k^2 / p) / Z_W[j, k]``, a ``[n, p] @ [p, m]``
product. With the full ``Z`` this is the posterior variance of a GP with the network's empirical
tangent kernel, noise variance ``lambda`` and prior scale ``nu^2``; the diagonal keeps it linear in
the number of parameters. The UCB score ``mean + sigma`` of NeuralUCB (maximisation) is the
negated ``mean - sigma`` lower confidence bound (minimisation), i.e. :class:`LowerConfidenceBound`
with ``beta = 1``; no extra acquisition is needed.

Choices where the papers leave room (documented, tested):

* ``Z`` is rebuilt at every fit from the gradients of all observed points at the fitted ``theta``
  (Zhou et al. accumulate each selected point's gradient at the ``theta`` of its round). A fit is
  then a pure function of the data, so a saved solver resumes exactly; between fits,
  :meth:`NeuralUCBModel.condition_on` adds pending points' gradients to ``Z`` exactly as the
  selection-time update of Zhou et al. (used by the batch/pending logic of the BO loop).
* INSTINCT's code uses ``lambda nu`` where Zhou et al.'s confidence width gives ``lambda nu^2``; the
  two agree at the default ``nu = 1``.
* Training: 100 full-batch Adam steps at learning rate 0.01 per fit, regularised towards
  ``theta_0`` as in Zhou et al. (INSTINCT's code takes 30 steps at 1e-3 with weight decay ``lambda / n``
  towards 0); the loss gradient uses the same closed-form per-sample gradients, so a step is a few
  matrix products.
* Targets are standardised (``nu`` is in units of the observed standard deviation); features are
  standardised with the statistics of the whole feature table when one is given (INSTINCT
  standardises with the training rows), else with those of the training inputs.

Inputs: with ``features`` (a ``[K, p]`` table: one row per candidate, e.g. sentence embeddings of
candidate instructions) the space must be a single :class:`~mcbo.space.Categorical` with ``K``
categories, and row ``i`` is the feature vector of the ``i``-th category (encoded value ``i``).
Without ``features`` the encoded point is the input, with nominal and permutation columns one-hot
encoded, so the model also works on ordinary mixed spaces.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcbo.models.base import Model, Posterior, register_model
from mcbo.space import Categorical, SearchSpace

logger = logging.getLogger(__name__)

_STD_FLOOR = 1e-12


@register_model("neural_ucb")
class NeuralUCBModel(Model):
    """NeuralUCB: one-hidden-layer ReLU network, diagonal gradient covariance (Zhou et al., 2020).

    Args:
        space: the search space (a single categorical when ``features`` is given).
        features: ``[K, p]`` feature table (tensor, array, nested list, or a path to a ``.npy``
            file), row ``i`` describing category ``i``; ``None`` uses the encoded points.
        width: hidden units ``m`` (even; INSTINCT: 100).
        lam: regularisation ``lambda`` of the loss and of ``Z`` (INSTINCT: 0.1).
        nu: exploration scale ``nu`` of the confidence width (INSTINCT: 1).
        lr: Adam learning rate.
        n_steps: full-batch Adam steps per fit.
        seed: seed of the initial weights ``theta_0``.
        chunk_size: candidates scored per block in :meth:`posterior`.
    """

    def __init__(
        self,
        space: SearchSpace,
        features: Any = None,
        width: int = 100,
        lam: float = 0.1,
        nu: float = 1.0,
        lr: float = 0.01,
        n_steps: int = 100,
        seed: int = 0,
        chunk_size: int = 8192,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(device, dtype)
        if not isinstance(width, int) or isinstance(width, bool) or width < 2 or width % 2:
            raise ValueError(f"neural_ucb width must be an even integer >= 2, got {width!r}")
        for name, value in (("lam", lam), ("lr", lr)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"neural_ucb {name} must be a positive number, got {value!r}")
        if not isinstance(nu, (int, float)) or not math.isfinite(nu) or nu < 0:
            raise ValueError(f"neural_ucb nu must be a number >= 0, got {nu!r}")
        for name, value in (("n_steps", n_steps), ("chunk_size", chunk_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"neural_ucb {name} must be a positive integer, got {value!r}")
        self.space = space
        self.width, self.lam, self.nu, self.lr = width, float(lam), float(nu), float(lr)
        self.n_steps, self.seed, self.chunk_size = n_steps, int(seed), chunk_size
        self.table: torch.Tensor | None = None
        if features is not None:
            self.table = self._to(_load_table(features))
            _check_table_space(space, self.table)
            self._x_mean, self._x_std = _column_stats(self.table)
        self.n_features = self.table.shape[1] if self.table is not None else _n_onehot_features(space)
        self.theta0 = _init_params(self.n_features, width, self.seed, self.dtype, self.device)
        self.theta: dict[str, torch.Tensor] | None = None
        self._Z: dict[str, torch.Tensor] | None = None
        self._y_mean, self._y_std = 0.0, 1.0
        self.train_loss: float = float("nan")

    # ------------------------------------------------------------ features
    def features(self, X: torch.Tensor) -> torch.Tensor:
        """Raw (unstandardised) features ``[n, p]`` of encoded points ``X`` ``[n, d]``."""
        X = self._to(X)
        if self.table is not None:
            idx = torch.round(X[:, 0]).long()
            if bool(((idx < 0) | (idx >= self.table.shape[0])).any()):
                raise ValueError(f"neural_ucb: category index out of range [0, {self.table.shape[0] - 1}]")
            return self.table[idx]
        return _onehot_features(self.space, X)

    def _inputs(self, X: torch.Tensor) -> torch.Tensor:
        """Standardised network inputs ``[n, p]``."""
        return (self.features(X) - self._x_mean) / self._x_std

    # ------------------------------------------------------------------ fit
    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Train from ``theta_0`` on ``X`` ``[n, d]``, ``y`` ``[n]`` and rebuild the diagonal ``Z``."""
        X, y = self._to(X).reshape(-1, self.space.d), self._to(y).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
        if X.shape[0] == 0:
            raise ValueError("neural_ucb fit needs at least one observation")
        if self.table is None:
            self._x_mean, self._x_std = _column_stats(self.features(X))
        self._y_mean = float(y.mean())
        std = float(y.std()) if len(y) > 1 else 0.0
        self._y_std = std if math.isfinite(std) and std > _STD_FLOOR * max(1.0, abs(self._y_mean)) else 1.0
        inputs = self._inputs(X)
        targets = (y - self._y_mean) / self._y_std
        self.theta, self.train_loss = _train(inputs, targets, self.theta0, self.lam, self.lr, self.n_steps)
        self._Z = {k: torch.full_like(v, self.lam) for k, v in self.theta.items()}
        self._accumulate(inputs)
        logger.debug("neural_ucb fit: n=%d, final loss %.4g", len(y), self.train_loss)

    def _accumulate(self, inputs: torch.Tensor) -> None:
        """``Z += diag(sum_i g(x_i) g(x_i)^T)`` for standardised inputs ``[n, p]`` (closed form)."""
        assert self.theta is not None and self._Z is not None
        for i in range(0, inputs.shape[0], self.chunk_size):
            sq = _squared_gradient_sums(inputs[i:i + self.chunk_size], self.theta)
            for k in self._Z:
                self._Z[k] = self._Z[k] + sq[k]

    def condition_on(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Add pending points ``X`` ``[k, d]`` to ``Z`` (NeuralUCB's selection-time update); the mean
        is unchanged, as the network is not retrained on fantasy values ``y``."""
        if self.theta is None:
            raise RuntimeError("condition_on() called before fit()")
        self._accumulate(self._inputs(self._to(X).reshape(-1, self.space.d)))

    # ------------------------------------------------------------- predict
    def posterior(self, X: torch.Tensor) -> Posterior:
        """Mean and variance ``[..., m]`` of ``f`` at ``X`` ``[..., m, d]`` (in units of ``y``)."""
        if self.theta is None or self._Z is None:
            raise RuntimeError("neural_ucb model used before fit()")
        batch = X.shape[:-1]
        flat = self._to(X).reshape(-1, X.shape[-1])
        means, variances = [], []
        for i in range(0, flat.shape[0], self.chunk_size):
            inputs = self._inputs(flat[i:i + self.chunk_size])
            f, quad = _mean_and_quadratic_form(inputs, self.theta, self._Z)
            means.append(f)
            variances.append(self.lam * self.nu**2 * quad)
        mean = torch.cat(means) if means else flat.new_empty(0)
        var = torch.cat(variances) if variances else flat.new_empty(0)
        mean = mean * self._y_std + self._y_mean
        var = (var * self._y_std**2).clamp(min=1e-12)
        return Posterior(mean=mean.reshape(batch), variance=var.reshape(batch))

    def sample(self, X: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """NeuralTS-style draws ``[n_samples, m]`` at ``X`` ``[m, d]``: independent normals with the
        posterior mean and variance of each point (Zhang et al., "Neural Thompson Sampling", ICLR 2021)."""
        post = self.posterior(X.reshape(-1, X.shape[-1]))
        noise = torch.randn(n_samples, post.mean.shape[0], generator=generator, dtype=torch.float64)
        return post.mean + post.std * noise.to(post.mean)

    def gradient_variance_terms(self, X: torch.Tensor) -> torch.Tensor:
        """``g(x)^T Z^-1 g(x)`` ``[m]`` at ``X`` ``[m, d]`` (standardised units; exposed for tests)."""
        if self.theta is None or self._Z is None:
            raise RuntimeError("neural_ucb model used before fit()")
        return _mean_and_quadratic_form(self._inputs(self._to(X)), self.theta, self._Z)[1]


# ---------------------------------------------------------------- numerics
def _load_table(features: Any) -> torch.Tensor:
    """The feature table ``[K, p]`` from a tensor, an array, nested lists or a ``.npy`` path."""
    if isinstance(features, (str, Path)):
        path = Path(features)
        if not path.is_file():
            raise ValueError(f"neural_ucb features: file {str(path)!r} does not exist")
        features = np.load(path)
    table = torch.as_tensor(np.asarray(features, dtype=np.float64) if not isinstance(features, torch.Tensor)
                            else features.detach().to(torch.float64))
    if table.ndim != 2 or table.shape[0] < 1 or table.shape[1] < 1:
        raise ValueError(f"neural_ucb features must be a [K, p] table, got shape {tuple(table.shape)}")
    if not bool(torch.isfinite(table).all()):
        raise ValueError("neural_ucb features must be finite")
    return table


def _check_table_space(space: SearchSpace, table: torch.Tensor) -> None:
    if len(space.params) != 1 or not isinstance(space.params[0], Categorical):
        raise ValueError(
            f"neural_ucb with a features table needs a space of one Categorical parameter (one category "
            f"per table row), got parameters {space.names}"
        )
    k = len(space.params[0].categories)
    if k != table.shape[0]:
        raise ValueError(f"neural_ucb features: table has {table.shape[0]} rows but parameter "
                         f"{space.names[0]!r} has {k} categories")


def _n_onehot_features(space: SearchSpace) -> int:
    return sum(1 if kind.is_numeric else max(int(space.cardinalities[c]), 1)
               for c, kind in enumerate(space.column_kinds))


def _onehot_features(space: SearchSpace, X: torch.Tensor) -> torch.Tensor:
    """Numeric columns as they are, nominal/permutation columns one-hot: ``[n, p]``."""
    parts = []
    for c, kind in enumerate(space.column_kinds):
        if kind.is_numeric:
            parts.append(X[:, c:c + 1])
        else:
            k = max(int(space.cardinalities[c]), 1)
            idx = torch.round(X[:, c]).long().clamp(0, k - 1)
            parts.append(torch.nn.functional.one_hot(idx, k).to(X.dtype))
    return torch.cat(parts, dim=1)


def _column_stats(F: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations ``[p]`` (constant columns get std 1)."""
    mean = F.mean(0)
    std = F.std(0, correction=0) if F.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std > _STD_FLOOR, std, torch.ones_like(std))
    return mean, std


def _init_params(p: int, width: int, seed: int, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """Symmetric standard-normal initialisation (Zhou et al., 2020): ``f(x; theta_0) = 0`` for all ``x``."""
    gen = torch.Generator().manual_seed(seed)
    half = width // 2
    W = torch.randn(half, p, generator=gen, dtype=torch.float64)
    b = torch.randn(half, generator=gen, dtype=torch.float64)
    v = torch.randn(half, generator=gen, dtype=torch.float64)
    theta = {"W": torch.cat([W, W]), "b": torch.cat([b, b]), "v": torch.cat([v, -v]),
             "c": torch.zeros(1, dtype=torch.float64)}
    return {k: t.to(device=device, dtype=dtype) for k, t in theta.items()}


def network(inputs: torch.Tensor, theta: dict[str, torch.Tensor]) -> torch.Tensor:
    """``f(x; theta)`` ``[n]`` of standardised inputs ``[n, p]`` (NTK parametrisation)."""
    m, p = theta["W"].shape
    a = inputs @ theta["W"].T / math.sqrt(p) + theta["b"]
    return torch.relu(a) @ theta["v"] / math.sqrt(m) + theta["c"]


def _train(
    inputs: torch.Tensor, targets: torch.Tensor, theta0: dict[str, torch.Tensor], lam: float, lr: float, n_steps: int,
    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
) -> tuple[dict[str, torch.Tensor], float]:
    """Full-batch Adam (Kingma & Ba, 2015) on ``(1/n)[sum (f - y)^2 + lam |theta - theta_0|^2]`` from ``theta_0``.

    The loss gradient uses the closed-form per-sample gradients of the network (see
    :func:`_loss_gradient`) on one flat parameter vector, which keeps a step to a handful of
    matrix products (no autograd graph).
    """
    shapes = {k: v.shape for k, v in theta0.items()}
    flat0 = torch.cat([v.reshape(-1) for v in theta0.values()])
    flat = flat0.clone()
    grad = torch.empty_like(flat)
    theta, gviews = _views(flat, shapes), _views(grad, shapes)
    m1, m2 = torch.zeros_like(flat), torch.zeros_like(flat)
    b1, b2 = betas
    for t in range(1, n_steps + 1):
        _loss_gradient(inputs, targets, theta, gviews)
        grad.add_(flat - flat0, alpha=2.0 * lam / inputs.shape[0])
        m1.mul_(b1).add_(grad, alpha=1.0 - b1)
        m2.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
        denom = (m2 / (1.0 - b2**t)).sqrt_().add_(eps)
        flat.addcdiv_(m1, denom, value=-lr / (1.0 - b1**t))
    resid = network(inputs, theta) - targets
    loss = float((resid @ resid + lam * ((flat - flat0) ** 2).sum()) / inputs.shape[0])
    return {k: v.clone() for k, v in theta.items()}, loss


def _views(flat: torch.Tensor, shapes: dict[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Named views into a flat parameter vector, in the order of ``shapes``."""
    out, start = {}, 0
    for k, shape in shapes.items():
        n = math.prod(shape)
        out[k] = flat[start:start + n].view(shape)
        start += n
    return out


def _loss_gradient(
    inputs: torch.Tensor, targets: torch.Tensor, theta: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
) -> None:
    """Write ``d/dtheta (1/n) sum_i (f(x_i) - y_i)^2`` into ``out`` (closed form, ``[n, p]`` inputs)."""
    m, p = theta["W"].shape
    a = inputs @ theta["W"].T / math.sqrt(p) + theta["b"]
    h = torch.relu(a)
    r = (h @ theta["v"] / math.sqrt(m) + theta["c"] - targets) * (2.0 / inputs.shape[0])  # [n]
    gated = (a > 0).to(a.dtype) * theta["v"] * (r / math.sqrt(m)).unsqueeze(-1)  # [n, m]
    out["W"].copy_(gated.T @ inputs / math.sqrt(p))
    out["b"].copy_(gated.sum(0))
    out["v"].copy_(h.T @ r / math.sqrt(m))
    out["c"].copy_(r.sum().reshape(1))


def _hidden(inputs: torch.Tensor, theta: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden activations ``h`` and gated output weights ``u = v * 1[a > 0]``, both ``[n, m]``."""
    p = theta["W"].shape[1]
    a = inputs @ theta["W"].T / math.sqrt(p) + theta["b"]
    return torch.relu(a), theta["v"] * (a > 0).to(a.dtype)


def _squared_gradient_sums(inputs: torch.Tensor, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``sum_i g(x_i)^2`` per parameter block (closed form), shaped like ``theta``."""
    m, p = theta["W"].shape
    h, u = _hidden(inputs, theta)
    u2 = u**2 / m
    return {
        "W": u2.T @ (inputs**2) / p,  # [m, p]
        "b": u2.sum(0),
        "v": (h**2).sum(0) / m,
        "c": torch.full_like(theta["c"], float(inputs.shape[0])),
    }


def _mean_and_quadratic_form(
    inputs: torch.Tensor, theta: dict[str, torch.Tensor], Z: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(x)`` and ``g(x)^T diag(Z)^-1 g(x)``, both ``[n]``, for standardised inputs ``[n, p]``."""
    m, p = theta["W"].shape
    h, u = _hidden(inputs, theta)
    u2 = u**2 / m
    f = h @ theta["v"] / math.sqrt(m) + theta["c"]
    quad = (
        (u2 * ((inputs**2 / p) @ (1.0 / Z["W"]).T)).sum(-1)  # W block
        + u2 @ (1.0 / Z["b"])
        + (h**2 / m) @ (1.0 / Z["v"])
        + 1.0 / Z["c"]
    )
    return f, quad


__all__ = ["NeuralUCBModel", "network"]
