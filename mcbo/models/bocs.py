"""BOCS surrogate: sparse Bayesian linear regression on pairwise features with a horseshoe prior.

Baptista & Poloczek, "Bayesian Optimization of Combinatorial Structures", ICML 2018. The objective
over binary inputs ``z`` is modelled as ``f(z) = b + sum_i a_i z_i + sum_{i<j} a_ij z_i z_j`` (order 2;
order 1 keeps the linear terms only). Nominal columns become binary inputs: a two-category column
is one bit, a column with ``K > 2`` categories is one-hot (``K`` bits; products of bits of the same
column are always zero and are left out).

Coefficients get the horseshoe prior (Carvalho, Polson & Scott, 2010)::

    y ~ N(Phi beta, sigma^2 I),  beta_j ~ N(0, lambda_j^2 tau^2 sigma^2),
    lambda_j ~ C+(0, 1),  tau ~ C+(0, 1),  p(sigma^2) ~ 1 / sigma^2,

sampled with the Gibbs sampler of Makalic & Schmidt, "A simple sampler for the horseshoe estimator"
(IEEE Signal Processing Letters, 2016), whose inverse-gamma auxiliary variables ``nu_j`` and ``xi``
make every conditional a standard distribution. When there are more features than observations,
``beta`` is drawn with the ``O(n^2 p)`` algorithm of Bhattacharya, Chakraborty & Mallick, "Fast
sampling with Gaussian scale-mixture priors in high-dimensional regression" (Biometrika, 2016);
otherwise through a ``p x p`` Cholesky factor.

Features that are constant on the training data are dropped (their coefficients are not
identified); ``y`` and the kept features are centred (so the intercept is exact) and ``y`` is scaled
to unit variance. The sampler is seeded by ``seed`` and the number of observations, so the same data
always give the same posterior samples.

Predictions: ``posterior(X)`` returns the mean and variance of ``f(X)`` over the kept posterior
samples. Each point sets at most one bit per column, so only its ``C (C + 1) / 2`` active terms
(``C`` nominal columns) are gathered from a coefficient table ``[q * q, S]``.
``sample(X, n, generator)`` evaluates ``n`` randomly chosen posterior samples (each a joint function
draw over ``X``, a fresh pick per call). For Thompson sampling over a search (many acquisition calls
that must see one and the same function), :meth:`BOCSModel.thompson_function` draws one coefficient
sample and returns it as a fixed, deterministic function.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from mcbo.models.base import Model, Posterior, register_model
from mcbo.space import SearchSpace

logger = logging.getLogger(__name__)

_CLAMP = 1e12  # bounds on the scale variables of the sampler, against under/overflow


@register_model("bocs")
class BOCSModel(Model):
    """Horseshoe-prior sparse Bayesian linear regression on order-1/2 binary features (BOCS).

    Args:
        space: a space whose columns are all nominal (categorical, boolean, sequence, permutation).
        order: 1 (linear terms) or 2 (linear and pairwise terms, as in BOCS).
        n_samples: posterior samples kept after burn-in.
        n_burn_in: Gibbs sweeps discarded at the start.
        thinning: sweeps between two kept samples.
        seed: seed of the Gibbs sampler.
        memory_budget_mb: cap on the block of terms gathered at once when predicting.
    """

    def __init__(
        self,
        space: SearchSpace,
        order: int = 2,
        n_samples: int = 100,
        n_burn_in: int = 200,
        thinning: int = 2,
        seed: int = 0,
        memory_budget_mb: float = 128.0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(device, dtype)
        numeric = [p.name for p, sl in zip(space.params, space.param_slices)
                   if any(space.column_kinds[c].is_numeric for c in range(sl.start, sl.stop))]
        if numeric:
            raise ValueError(
                f"BOCS needs a nominal space (categorical, boolean, sequence or permutation parameters); "
                f"numeric parameter(s) {numeric} are not allowed"
            )
        if order not in (1, 2):
            raise ValueError(f"BOCS order must be 1 or 2, got {order!r}")
        for name, value, low in (("n_samples", n_samples, 1), ("n_burn_in", n_burn_in, 0), ("thinning", thinning, 1)):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"BOCS {name} must be an integer >= {low}, got {value!r}")
        if memory_budget_mb <= 0:
            raise ValueError(f"BOCS memory_budget_mb must be positive, got {memory_budget_mb!r}")
        self.space = space
        self.order, self.n_samples, self.n_burn_in, self.thinning = order, n_samples, n_burn_in, thinning
        self.seed = int(seed)
        self.memory_budget_mb = float(memory_budget_mb)
        self._bit_col, self._bit_val = _binary_layout(space)
        self._cols, self._offset, self._width, self._onehot = _column_layout(space)
        self._pairs = _pair_candidates(self._bit_col) if order == 2 else torch.empty(2, 0, dtype=torch.long)
        self._X = torch.empty(0, space.d, dtype=dtype, device=self.device)
        self._y = torch.empty(0, dtype=dtype, device=self.device)
        self.coefficients: torch.Tensor | None = None  # [S, p_kept]
        self.intercepts: torch.Tensor | None = None  # [S]
        self._lin: torch.Tensor = torch.empty(0, dtype=torch.long)
        self._pair_i: torch.Tensor = torch.empty(0, dtype=torch.long)
        self._pair_j: torch.Tensor = torch.empty(0, dtype=torch.long)
        n_cols = len(self._cols)
        self._tri = torch.triu_indices(n_cols, n_cols) if order == 2 else torch.arange(n_cols).repeat(2, 1)
        self._table = torch.empty(self.n_bits**2, 0, dtype=dtype, device=self.device)

    # -------------------------------------------------------------- features
    @property
    def n_bits(self) -> int:
        """Number of binary inputs the nominal columns are encoded to."""
        return len(self._bit_col)

    def binary(self, X: torch.Tensor) -> torch.Tensor:
        """Binary encoding ``[..., q]`` of encoded points ``X`` ``[..., d]`` (one bit or one-hot per column)."""
        cols = self._bit_col.to(X.device)
        vals = self._bit_val.to(X)
        return (torch.round(X[..., cols]) == vals).to(X.dtype)

    def _features(self, Z: torch.Tensor, lin: torch.Tensor, pi: torch.Tensor, pj: torch.Tensor) -> torch.Tensor:
        """Features ``[m, len(lin) + len(pi)]``: the chosen bits and the chosen pairwise products of ``Z`` ``[m, q]``."""
        return torch.cat([Z[:, lin.to(Z.device)], Z[:, pi.to(Z.device)] * Z[:, pj.to(Z.device)]], dim=1)

    def all_features(self, X: torch.Tensor) -> torch.Tensor:
        """Every candidate feature ``[m, q + n_pairs]`` of ``X`` ``[m, d]`` (before dropping constant ones)."""
        Z = self.binary(self._to(X))
        return self._features(Z, torch.arange(self.n_bits), self._pairs[0], self._pairs[1])

    # ------------------------------------------------------------------- fit
    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        X, y = self._to(X), self._to(y).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
        if X.shape[0] == 0:
            raise ValueError("BOCS fit needs at least one observation")
        self._X, self._y = X, y
        self._run_sampler()

    def condition_on(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Add (fantasy) observations ``X`` ``[k, d]``, ``y`` ``[k]`` and re-run the sampler on all data."""
        if self.coefficients is None:
            raise RuntimeError("condition_on() called before fit()")
        self._X = torch.cat([self._X, self._to(X)])
        self._y = torch.cat([self._y, self._to(y).reshape(-1)])
        self._run_sampler()

    def _run_sampler(self) -> None:
        X, y = self._X, self._y
        n = len(y)
        F = self.all_features(X)
        keep = (F.max(0).values - F.min(0).values) > 0
        q = self.n_bits
        self._lin = keep[:q].nonzero().squeeze(-1).cpu()
        kept_pairs = keep[q:].nonzero().squeeze(-1).cpu()
        self._pair_i, self._pair_j = self._pairs[0][kept_pairs], self._pairs[1][kept_pairs]
        F = F[:, keep]
        feature_mean = F.mean(0)
        y_mean = float(y.mean())
        y_std = float(y.std()) if n > 1 else 0.0
        y_std = y_std if y_std > 1e-12 * max(1.0, abs(y_mean)) and math.isfinite(y_std) else 1.0
        rng = np.random.default_rng([self.seed, n])
        if F.shape[1] == 0:
            betas = torch.zeros(self.n_samples, 0, dtype=self.dtype, device=self.device)
        else:
            betas = _horseshoe_gibbs(F - feature_mean, (y - y_mean) / y_std, self.n_samples, self.n_burn_in,
                                     self.thinning, rng)
        self.coefficients = betas * y_std  # [S, p]
        self.intercepts = y_mean - self.coefficients @ feature_mean  # [S]
        self._build_weights()
        logger.debug("BOCS fit: %d observations, %d of %d features kept", n, F.shape[1], keep.numel())

    # -------------------------------------------------------------- predict
    def _build_weights(self) -> None:
        """Scatter the kept coefficients into upper-triangular matrices ``U`` ``[S, q, q]`` (linear terms
        on the diagonal, pairwise terms above it, so that ``f(z) = b + sum_{i<=j} U_ij z_i z_j``), stored
        as a table ``[q * q, S]`` whose rows are gathered per point."""
        assert self.coefficients is not None
        S, q, n_lin = self.coefficients.shape[0], self.n_bits, len(self._lin)
        U = torch.zeros(q, q, S, dtype=self.dtype, device=self.device)
        lin = self._lin.to(self.device)
        U[lin, lin] = self.coefficients[:, :n_lin].T
        U[self._pair_i.to(self.device), self._pair_j.to(self.device)] = self.coefficients[:, n_lin:].T
        self._table = U.reshape(q * q, S)

    def coefficient_matrix(self) -> torch.Tensor:
        """Posterior-mean coefficients ``[q, q]``: linear terms on the diagonal, pairwise terms ``a_ij`` above it."""
        if self.coefficients is None:
            raise RuntimeError("BOCS model used before fit()")
        q = self.n_bits
        return self._table.mean(-1).reshape(q, q)

    def _active_pairs(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Table rows ``[m, T]`` of the terms ``z_i z_j`` (``i <= j``, over the at most one set bit per
        nominal column) of each point of ``X`` ``[m, d]``, with 0/1 weights ``[m, T]`` saying which are set."""
        values = torch.round(X[:, self._cols.to(X.device)])
        onehot = self._onehot.to(X.device)
        offset = self._offset.to(X.device)
        act = offset + torch.where(onehot, values.long().clamp(min=0), torch.zeros_like(values, dtype=torch.long))
        act = torch.minimum(act, offset + self._width.to(X.device) - 1)  # [m, C]
        on = torch.where(onehot, torch.ones_like(values), (values == 1).to(values.dtype))
        i, j = self._tri.to(X.device)
        return act[:, i] * self.n_bits + act[:, j], on[:, i] * on[:, j]

    def _evaluate(self, X: torch.Tensor, table: torch.Tensor, icpt: torch.Tensor) -> torch.Tensor:
        """``f = b + sum_{i<=j} U_ij z_i z_j`` ``[k, m]`` at ``X`` ``[m, d]`` for a table ``[q * q, k]``, ``b`` ``[k]``.

        Only the terms of the (at most one per column) set bits are gathered, ``C (C + 1) / 2`` per
        point for ``C`` nominal columns, with a weighted ``embedding_bag`` sum, in chunks.
        """
        X = self._to(X).reshape(-1, self.space.d)
        T = max(int(self._tri.shape[1]), 1)
        rows = max(64, int(self.memory_budget_mb * 2**20 // (8 * (2 * T + table.shape[1]))))
        parts = []
        for i in range(0, X.shape[0], rows):
            idx, weight = self._active_pairs(X[i:i + rows])
            if idx.shape[1] == 0:
                parts.append(icpt.unsqueeze(-1).expand(-1, idx.shape[0]))
                continue
            summed = torch.nn.functional.embedding_bag(idx, table, per_sample_weights=weight, mode="sum")
            parts.append(icpt.unsqueeze(-1) + summed.T)
        if not parts:
            return X.new_empty(table.shape[1], 0)
        return torch.cat(parts, dim=-1)

    def function_values(self, X: torch.Tensor, sample_index: torch.Tensor | None = None) -> torch.Tensor:
        """``f`` at ``X`` ``[m, d]`` under posterior samples ``sample_index`` ``[k]`` (default all): ``[k, m]``."""
        if self.coefficients is None or self.intercepts is None:
            raise RuntimeError("BOCS model used before fit()")
        table, icpt = self._table, self.intercepts
        if sample_index is not None:
            idx = sample_index.to(table.device)
            table, icpt = table[:, idx], icpt[idx]
        return self._evaluate(X, table, icpt)

    def posterior(self, X: torch.Tensor) -> Posterior:
        """Mean and variance ``[..., m]`` of ``f(X)`` over the posterior samples (``X`` ``[..., m, d]``)."""
        values = self.function_values(X)  # [S, M]
        mean = values.mean(0).reshape(X.shape[:-1])
        var = values.var(0, correction=0).reshape(X.shape[:-1]).clamp(min=1e-12)
        return Posterior(mean=mean, variance=var)

    def sample(self, X: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` function draws at ``X`` ``[m, d]`` -> ``[n_samples, m]``, each one posterior
        coefficient sample picked at random with ``generator`` (a fresh pick per call)."""
        if self.coefficients is None:
            raise RuntimeError("sample() called before fit()")
        idx = torch.randint(self.coefficients.shape[0], (n_samples,), generator=generator)
        return self.function_values(X, idx)

    def thompson_function(self, generator: torch.Generator | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
        """One posterior coefficient sample as a fixed function ``X [..., m, d] -> f [..., m]``.

        Thompson sampling with BOCS draws one coefficient vector per acquisition and optimises that
        function; every call of the returned function uses the same draw (its index is picked here
        with ``generator``), so optimisers that score many batches see one consistent objective. On a
        fitted model the draw is frozen (a later fit or conditioning does not change the function);
        on a model not fitted yet (e.g. a solver checking its recipe) the function uses that index of
        the posterior once the model is fitted, and raises ``RuntimeError`` if called before.
        """
        idx = torch.randint(self.n_samples, (1,), generator=generator)
        frozen = None
        if self.coefficients is not None and self.intercepts is not None:
            i = idx.to(self._table.device)
            frozen = (self._table[:, i].contiguous(), self.intercepts[i].clone())

        def draw(X: torch.Tensor) -> torch.Tensor:
            if frozen is None:
                values = self.function_values(X.reshape(-1, X.shape[-1]), idx)
            else:
                values = self._evaluate(X.reshape(-1, X.shape[-1]), *frozen)
            return values[0].reshape(X.shape[:-1])

        return draw


def _binary_layout(space: SearchSpace) -> tuple[torch.Tensor, torch.Tensor]:
    """For each binary input: its encoded column and the category it indicates (``[q]`` each).

    Two-category columns give one bit (category 1); columns with ``K > 2`` categories give ``K``
    one-hot bits; single-category columns give none.
    """
    cols, vals = [], []
    for col in space.nominal_columns.tolist():
        k = int(space.cardinalities[col])
        if k == 2:
            cols.append(col)
            vals.append(1.0)
        elif k > 2:
            cols += [col] * k
            vals += [float(v) for v in range(k)]
    return torch.tensor(cols, dtype=torch.long), torch.tensor(vals, dtype=torch.float64)


def _column_layout(space: SearchSpace) -> tuple[torch.Tensor, ...]:
    """Per nominal column with >= 2 categories (``[C]`` each): the encoded column, the index of its
    first bit, its number of bits, and whether it is one-hot (more than two categories)."""
    cols, offsets, widths, onehot = [], [], [], []
    start = 0
    for col in space.nominal_columns.tolist():
        k = int(space.cardinalities[col])
        if k < 2:
            continue
        width = 1 if k == 2 else k
        cols.append(col)
        offsets.append(start)
        widths.append(width)
        onehot.append(k > 2)
        start += width
    return (torch.tensor(cols, dtype=torch.long), torch.tensor(offsets, dtype=torch.long),
            torch.tensor(widths, dtype=torch.long), torch.tensor(onehot, dtype=torch.bool))


def _pair_candidates(bit_col: torch.Tensor) -> torch.Tensor:
    """Index pairs ``[2, n_pairs]`` (``i < j``) of bits from different encoded columns."""
    i, j = torch.triu_indices(len(bit_col), len(bit_col), offset=1)
    different = bit_col[i] != bit_col[j]
    return torch.stack([i[different], j[different]])


def _horseshoe_gibbs(
    Phi: torch.Tensor,
    y: torch.Tensor,
    n_samples: int,
    n_burn_in: int,
    thinning: int,
    rng: np.random.Generator,
) -> torch.Tensor:
    """Posterior samples ``[n_samples, p]`` of ``beta`` under the horseshoe prior (Makalic & Schmidt, 2016).

    ``Phi`` ``[n, p]`` (centred features) and ``y`` ``[n]`` (standardised). Conditionals, with
    ``IG(a, b)`` the inverse gamma of shape ``a`` and scale ``b``::

        beta | .      ~ N(A^-1 Phi'y, sigma^2 A^-1),  A = Phi'Phi + diag(1 / (tau^2 lambda^2))
        sigma^2 | .   ~ IG((n + p) / 2, |y - Phi beta|^2 / 2 + sum beta^2 / (tau^2 lambda^2) / 2)
        lambda_j^2 | . ~ IG(1, 1 / nu_j + beta_j^2 / (2 tau^2 sigma^2))
        tau^2 | .     ~ IG((p + 1) / 2, 1 / xi + sum beta^2 / lambda^2 / (2 sigma^2))
        nu_j | .      ~ IG(1, 1 + 1 / lambda_j^2),   xi | . ~ IG(1, 1 + 1 / tau^2)
    """
    n, p = Phi.shape
    dtype, device = Phi.dtype, Phi.device

    def to_t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float64)).to(device=device, dtype=dtype)

    lam2 = torch.ones(p, dtype=dtype, device=device)
    nu = torch.ones(p, dtype=dtype, device=device)
    tau2, xi, sigma2 = 1.0, 1.0, 1.0
    PtP = Phi.T @ Phi if p <= n else None
    Pty = Phi.T @ y
    out = torch.empty(n_samples, p, dtype=dtype, device=device)
    total = n_burn_in + n_samples * thinning
    kept = 0
    for sweep in range(total):
        d = (tau2 * lam2).clamp(1.0 / _CLAMP, _CLAMP)  # prior variances of beta / sigma^2
        if PtP is not None:
            beta = _draw_beta_small(PtP, Pty, d, sigma2, to_t(rng.standard_normal(p)))
        else:
            beta = _draw_beta_fast(Phi, y, d, sigma2, to_t(rng.standard_normal(p)), to_t(rng.standard_normal(n)))
        resid = y - Phi @ beta
        b2 = beta**2
        shrink = float((b2 / d).sum())
        sigma2 = _inv_gamma(rng, (n + p) / 2.0, float(resid @ resid) / 2.0 + shrink / 2.0)
        sigma2 = min(max(sigma2, 1.0 / _CLAMP), _CLAMP)
        lam2 = (1.0 / nu + b2 / (2.0 * tau2 * sigma2)) / to_t(rng.standard_exponential(p))
        lam2 = lam2.clamp(1.0 / _CLAMP, _CLAMP)
        tau2 = _inv_gamma(rng, (p + 1) / 2.0, 1.0 / xi + float((b2 / lam2).sum()) / (2.0 * sigma2))
        tau2 = min(max(tau2, 1.0 / _CLAMP), _CLAMP)
        nu = (1.0 + 1.0 / lam2) / to_t(rng.standard_exponential(p))
        xi = (1.0 + 1.0 / tau2) / float(rng.standard_exponential())
        if sweep >= n_burn_in and (sweep - n_burn_in) % thinning == thinning - 1:
            out[kept] = beta
            kept += 1
    return out


def _inv_gamma(rng: np.random.Generator, shape: float, scale: float) -> float:
    """One draw of the inverse gamma ``IG(shape, scale)``: ``scale / Gamma(shape, 1)``."""
    return scale / max(float(rng.gamma(shape)), 1e-300)


def _draw_beta_small(PtP: torch.Tensor, Pty: torch.Tensor, d: torch.Tensor, sigma2: float,
                     z: torch.Tensor) -> torch.Tensor:
    """``beta ~ N(A^-1 Phi'y, sigma^2 A^-1)`` with ``A = Phi'Phi + diag(1/d)``, by Cholesky (``p <= n``)."""
    A = PtP + torch.diag(1.0 / d)
    L = _cholesky(A)
    mean = torch.cholesky_solve(Pty.unsqueeze(-1), L).squeeze(-1)
    noise = torch.linalg.solve_triangular(L.T, z.unsqueeze(-1), upper=True).squeeze(-1)
    return mean + math.sqrt(sigma2) * noise


def _draw_beta_fast(Phi: torch.Tensor, y: torch.Tensor, d: torch.Tensor, sigma2: float, z_p: torch.Tensor,
                    z_n: torch.Tensor) -> torch.Tensor:
    """The same draw in ``O(n^2 p)`` (Bhattacharya et al., 2016), for ``p > n``.

    With ``Psi = Phi / sigma``, ``D = sigma^2 diag(d)`` and ``alpha = y / sigma``: draw
    ``u ~ N(0, D)``, ``delta ~ N(0, I_n)``; set ``v = Psi u + delta``,
    ``w = (Psi D Psi' + I)^-1 (alpha - v)``; return ``u + D Psi' w``.
    """
    sigma = math.sqrt(sigma2)
    Psi = Phi / sigma
    D = sigma2 * d
    u = D.sqrt() * z_p
    v = Psi @ u + z_n
    M = (Psi * D) @ Psi.T + torch.eye(Phi.shape[0], dtype=Phi.dtype, device=Phi.device)
    L = _cholesky(M)
    w = torch.cholesky_solve((y / sigma - v).unsqueeze(-1), L).squeeze(-1)
    return u + D * (Psi.T @ w)


def _cholesky(A: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factor of a symmetric positive-definite ``A`` ``[k, k]``, with jitter if needed."""
    eye = torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    scale = float(A.diagonal().abs().mean()) if A.numel() else 1.0
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4):
        L, info = torch.linalg.cholesky_ex(A + jitter * scale * eye)
        if int(info) == 0:
            return L
    raise RuntimeError("BOCS sampler: matrix is not positive definite even with jitter")


__all__ = ["BOCSModel"]
