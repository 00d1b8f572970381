"""Exact Gaussian-process surrogate for mixed spaces (gpytorch ``ExactGP``).

The kernel is chosen per column group of the search space: a numeric kernel (Matérn-5/2 ARD)
on the numeric columns, a nominal kernel (overlap or transformed overlap) on the nominal ones,
combined by a Casmopolitan mixture, a sum or a product, under one outputscale. Outputs are
standardised; hyper-parameters are fitted by L-BFGS-B on the exact marginal likelihood (BoTorch's
scipy fitting loop) with jitter retries. Predictions on large candidate sets are chunked under a
memory budget; gpytorch caches the Cholesky factor between posterior calls until the data change.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import gpytorch
import torch
from botorch.optim.closures import ForwardBackwardClosure
from botorch.optim.fit import fit_gpytorch_mll_scipy
from botorch.optim.utils import get_parameters
from gpytorch.constraints import GreaterThan, Interval
from gpytorch.kernels import Kernel, MaternKernel, RBFKernel, ScaleKernel
from gpytorch.priors import Prior
from linear_operator import to_dense
from linear_operator.utils.errors import NotPSDError

from mcbo.models.base import Model, Posterior, register_model
from mcbo.models.linalg import cholesky_inverse, extend_cholesky, solve_lower_rows
from mcbo.models.subset import fit_subset, train_subset
from mcbo.models.kernels import (
    NOMINAL_KERNELS,
    NUMERIC_KERNELS,
    MixtureKernel,
    OverlapKernel,
    TransformedOverlapKernel,
)
from mcbo.models.kernels.joint import JointMaternKernel
from mcbo.space import SearchSpace

logger = logging.getLogger(__name__)

COMBINATIONS = ("mixture", "sum", "product", "joint")


class _ProductKernel(Kernel):
    def __init__(self, a: Kernel, b: Kernel) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x1, x2, diag=False, **params):
        return to_dense(self.a(x1, x2, diag=diag)) * to_dense(self.b(x1, x2, diag=diag))


def build_kernel(space: SearchSpace, numeric_kernel: str, nominal_kernel: str, combine: str) -> Kernel:
    """Covariance over all columns of ``space`` (without outputscale); raises ``ValueError`` on unknown names.

    ``combine="joint"`` is one Matérn-5/2 over every column with nominal columns at Hamming distance
    (:class:`~mcbo.models.kernels.joint.JointMaternKernel`); it takes the place of both named kernels.
    """
    build_numeric, build_nominal = NUMERIC_KERNELS.lookup(numeric_kernel), NOMINAL_KERNELS.lookup(nominal_kernel)
    if combine not in COMBINATIONS:
        raise ValueError(f"unknown combine {combine!r}; allowed: {list(COMBINATIONS)}")
    if combine == "joint":
        return JointMaternKernel(space)
    parts = []
    if len(space.numeric_columns):
        parts.append(build_numeric(space, space.numeric_columns))
    if len(space.nominal_columns):
        parts.append(build_nominal(space, space.nominal_columns))
    if len(parts) == 1:
        return parts[0]
    if combine == "mixture":
        return MixtureKernel(parts[0], parts[1])
    if combine == "sum":
        return parts[0] + parts[1]
    return _ProductKernel(parts[0], parts[1])


#: Hyper-parameter priors of :class:`GPModel` (``hyper_priors``): none (maximum likelihood), ``dim_scaled``,
#: ``optuna`` or ``optuna_dim_scaled``.
HYPER_PRIORS = ("none", "dim_scaled", "optuna", "optuna_dim_scaled")


class InverseSquaredLengthscalePrior(Prior):
    """Improper log-density ``-(rate / u + rate * u)`` of ``u = lengthscale^-2`` (per column, summed by the caller).

    The lengthscale prior of Optuna's ``GPSampler`` (``optuna/_gp/prior.py``): it vanishes at both ends, so
    lengthscales stay away from 0 (a model that interpolates every point) and from infinity (a column
    ignored), with most mass for ``u`` between about 0.1 and 10 at ``rate = 0.1``.
    """

    arg_constraints: dict = {}
    support = torch.distributions.constraints.positive

    def __init__(self, rate: float = 0.1) -> None:
        torch.nn.Module.__init__(self)
        torch.distributions.Distribution.__init__(self, validate_args=False)
        self.rate = float(rate)
        self._transform = None

    def log_prob(self, lengthscale: torch.Tensor) -> torch.Tensor:
        u = lengthscale.pow(-2)
        return -(self.rate / u + self.rate * u)


def _optuna_lengthscale_prior(d: int) -> InverseSquaredLengthscalePrior:
    """Optuna ``GPSampler``'s lengthscale prior; the same for any number of columns ``d``."""
    return InverseSquaredLengthscalePrior(0.1)


def _add_optuna_priors(
    gp: "_ExactGP", kernel: Kernel, lengthscale_prior: Callable[[int], Prior] = _optuna_lengthscale_prior
) -> None:
    """Optuna ``GPSampler``'s MAP priors: :class:`InverseSquaredLengthscalePrior` on every ARD lengthscale,
    Gamma(2, 1) on the outputscale and Gamma(1.1, 30) on the noise variance (standardised outputs; mode 0.0033).

    ``lengthscale_prior(d)`` gives the prior of an ARD kernel on ``d`` columns (the joint kernel included):
    ``hyper_priors: optuna_dim_scaled`` passes :func:`_dim_scaled_lengthscale_prior` (Hvarfner et al., ICML
    2024), which on many columns expects long lengthscales, a model that correlates points many columns apart.
    """
    from gpytorch.priors import GammaPrior

    for module in kernel.modules():
        if isinstance(module, (MaternKernel, RBFKernel, JointMaternKernel)) and module.ard_num_dims:
            module.register_prior("lengthscale_prior", lengthscale_prior(int(module.ard_num_dims)),
                                  lambda m: m.lengthscale, lambda m, v: m._set_lengthscale(v))
    gp.covar_module.register_prior("outputscale_prior", GammaPrior(2.0, 1.0),
                                   lambda m: m.outputscale, lambda m, v: m._set_outputscale(v))
    gp.likelihood.register_prior("noise_prior", GammaPrior(1.1, 30.0),
                                 lambda m: m.noise, lambda m, v: m._set_noise(v))


def _add_dim_scaled_priors(gp: "_ExactGP", kernel: Kernel) -> None:
    """Dimension-scaled log-normal lengthscale priors and a log-normal noise prior (MAP instead of ML fitting).

    Hvarfner, Hellsten & Nardi, "Vanilla Bayesian Optimization Performs Great in High Dimensions", ICML 2024
    (BoTorch's default since 0.12): lengthscales ~ LogNormal(sqrt(2) + log(d) / 2, sqrt(3)) for a kernel on d
    columns, noise ~ LogNormal(-4, 1) on standardised outputs. Keeps few-point fits away from degenerate tiny
    lengthscales, which make the acquisition flat away from the data.
    """
    from gpytorch.priors import LogNormalPrior

    for module in kernel.modules():
        if isinstance(module, (MaternKernel, RBFKernel)) and module.ard_num_dims:
            module.register_prior("lengthscale_prior", _dim_scaled_lengthscale_prior(int(module.ard_num_dims)),
                                  lambda m: m.lengthscale, lambda m, v: m._set_lengthscale(v))
    gp.likelihood.register_prior("noise_prior", LogNormalPrior(-4.0, 1.0),
                                 lambda m: m.noise, lambda m, v: m._set_noise(v))


def _dim_scaled_log_median(d: int) -> float:
    """Log of the median lengthscale of the dimension-scaled prior for a kernel on ``d`` columns."""
    return math.sqrt(2) + math.log(d) / 2


def _dim_scaled_lengthscale_prior(d: int) -> "LogNormalPrior":
    """LogNormal(sqrt(2) + log(d) / 2, sqrt(3)) for a kernel on ``d`` columns (Hvarfner et al., ICML 2024)."""
    from gpytorch.priors import LogNormalPrior

    return LogNormalPrior(_dim_scaled_log_median(d), math.sqrt(3))


#: Prior means of :class:`GPModel` (``prior_mean``): a learned constant, or zero (on standardised outputs).
PRIOR_MEANS = ("constant", "zero")


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, X: torch.Tensor, y: torch.Tensor, likelihood, kernel: Kernel, prior_mean: str = "constant") -> None:
        super().__init__(X, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean() if prior_mean == "constant" else gpytorch.means.ZeroMean()
        self.covar_module = ScaleKernel(kernel, outputscale_constraint=Interval(0.01, 100.0))

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    def transform_inputs(self, X: torch.Tensor) -> torch.Tensor:
        """Identity; BoTorch's fitting closure calls it (inputs are already encoded)."""
        return X

    def prior_mean(self) -> torch.Tensor:
        """The (standardised) prior mean, a scalar tensor: the learned constant, or 0."""
        if isinstance(self.mean_module, gpytorch.means.ConstantMean):
            return self.mean_module.constant.reshape(())
        return torch.zeros((), dtype=self.train_targets.dtype, device=self.train_targets.device)


@register_model("gp")
class GPModel(Model):
    """Exact GP with a kernel per column group of a mixed search space.

    Args:
        space: the search space (defines the column groups and cardinalities).
        numeric_kernel: kernel on numeric columns, a key of :data:`NUMERIC_KERNELS`.
        nominal_kernel: kernel on nominal columns, a key of :data:`NOMINAL_KERNELS`.
        combine: how the two are joined when both exist: ``mixture`` (Casmopolitan), ``sum`` or ``product``;
            or ``joint``: one Matérn-5/2 over all columns, nominal ones at Hamming distance (Optuna's
            GPSampler kernel), in place of the two named kernels.
        noise_lb: lower bound of the (standardised) observation-noise variance.
        fit_maxiter: L-BFGS-B iterations of a fit from the default hyper-parameters.
        warm_maxiter: L-BFGS-B iterations of a fit warm-started from the previous fit's optimum
            (one more observation moves the optimum little).
        fit_ftol: L-BFGS-B stops when the per-point negative log likelihood improves by less than this
            (relatively); hyper-parameters drifting along flat directions are not worth more iterations.
        memory_budget_mb: cap on the cross-covariance block held at once when predicting; blocks of
            ~32 MB (about 1,000 candidates at n = 1,000) measured fastest with 1 and 2 threads
            (benchmarks/posterior_10k.py).
        warm_start: start each fit from the previous fit's hyper-parameters (faster, still deterministic).
        hyper_priors: ``none`` (maximum likelihood), ``dim_scaled`` (Hvarfner et al. 2024), ``optuna``
            (Optuna GPSampler's priors, :func:`_add_optuna_priors`) or ``optuna_dim_scaled`` (the same with
            the dimension-scaled lengthscale prior): a MAP fit instead.
        prior_mean: ``constant`` (learned by the fit) or ``zero`` on the standardised outputs (Optuna's GPSampler).
            A learned constant is unregularised: on data clustered near the optimum it settles well above the
            average (1.5 standard deviations on Pest Control after 40 evaluations), which shrinks the
            outputscale the fit needs and makes everything away from the data look poor.
        fit_subset_size: above this many observations the model is in its *large-n regime* (issue 21):
            hyper-parameters are fitted on at most this many of them (:func:`~mcbo.models.subset.fit_subset`),
            then the exact posterior is conditioned on all of them (one Cholesky factorisation), and fantasy
            observations extend that factor by block rows (:func:`~mcbo.models.linalg.extend_cholesky`)
            instead of refactoring. ``None`` (the default): every fit uses all observations, as before.
        fit_subset_best: in the large-n regime, the share of the subset taken as the best (lowest) observations;
            the rest is drawn uniformly (seeded by ``seed`` and ``n``, so a resumed run draws the same).
        refit_every: in the large-n regime, hyper-parameters are refitted only once ``refit_every`` observations
            have arrived since the last fit; in between they are kept and only the posterior is rebuilt
            on all data. 1 (the default): refit on every call.
        seed: seeds the subset draw.
        max_train_points: above this many observations the model (hyper-parameter fit and posterior) is conditioned
            on only this many of them (:func:`~mcbo.models.subset.train_subset`): the best ones and the most recent
            ones, a deterministic choice (a resumed run makes the same one). Bounds the cost of an ask at any
            ``n``; fantasy observations then extend the factor by block rows as in the large-n regime, and the
            ``fit_subset_size`` / ``refit_every`` options apply within the chosen points (``refit_every`` counting
            all observations). ``None`` (the default): every observation is used. Figures: ``docs/scale.md``.
        max_train_best: share of ``max_train_points`` taken as the best (lowest) observations; the rest are the
            most recent of the others.
        feature_precision: ``float64`` (default) or ``float32``: for kernels with explicit features (SSK, overlap,
            Kendall), the ``[m, F] x [F, n or F]`` product behind the posterior variance in float32 (about twice as
            fast on CPU). Rows whose float32 variance is within :data:`_RECHECK_FACTOR` times an error estimate of
            zero (candidates at or next to training points) are recomputed in float64; the mean stays float64.
            Speed and error against float64: ``docs/scale.md``.
    """

    def __init__(
        self,
        space: SearchSpace,
        numeric_kernel: str = "matern52",
        nominal_kernel: str = "transformed_overlap",
        combine: str = "mixture",
        noise_lb: float = 1e-6,
        fit_maxiter: int = 100,
        warm_maxiter: int = 40,
        fit_ftol: float = 1e-6,
        memory_budget_mb: float = 32.0,
        warm_start: bool = True,
        hyper_priors: str = "none",
        prior_mean: str = "constant",
        feature_precision: str = "float64",
        fit_subset_size: int | None = None,
        fit_subset_best: float = 0.0,
        refit_every: int = 1,
        max_train_points: int | None = None,
        max_train_best: float = 0.5,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(device, dtype)
        build_kernel(space, numeric_kernel, nominal_kernel, combine)  # validate names early
        if noise_lb <= 0:
            raise ValueError(f"noise_lb must be positive, got {noise_lb!r}")
        self.space = space
        self.numeric_kernel, self.nominal_kernel, self.combine = numeric_kernel, nominal_kernel, combine
        self.noise_lb = float(noise_lb)
        self.fit_maxiter = int(fit_maxiter)
        self.warm_maxiter = int(warm_maxiter)
        self.fit_ftol = float(fit_ftol)
        self.memory_budget_mb = float(memory_budget_mb)
        self._y_mean, self._y_std = 0.0, 1.0
        self.gp: _ExactGP | None = None
        self.warm_start = warm_start
        if hyper_priors not in HYPER_PRIORS:
            raise ValueError(f"hyper_priors must be one of {list(HYPER_PRIORS)}, got {hyper_priors!r}")
        self.hyper_priors = hyper_priors
        if prior_mean not in PRIOR_MEANS:
            raise ValueError(f"prior_mean must be one of {list(PRIOR_MEANS)}, got {prior_mean!r}")
        self.prior_mean = prior_mean
        if fit_subset_size is not None and (not isinstance(fit_subset_size, int) or fit_subset_size < 2):
            raise ValueError(f"fit_subset_size must be an integer >= 2 or None, got {fit_subset_size!r}")
        if not 0.0 <= fit_subset_best <= 1.0:
            raise ValueError(f"fit_subset_best must lie in [0, 1], got {fit_subset_best!r}")
        if not isinstance(refit_every, int) or refit_every < 1:
            raise ValueError(f"refit_every must be a positive integer, got {refit_every!r}")
        self.fit_subset_size, self.fit_subset_best, self.refit_every = fit_subset_size, float(fit_subset_best), refit_every
        if max_train_points is not None and (not isinstance(max_train_points, int) or max_train_points < 2):
            raise ValueError(f"max_train_points must be an integer >= 2 or None, got {max_train_points!r}")
        if not 0.0 <= max_train_best <= 1.0:
            raise ValueError(f"max_train_best must lie in [0, 1], got {max_train_best!r}")
        self.max_train_points, self.max_train_best = max_train_points, float(max_train_best)
        self.seed = int(seed)
        if feature_precision not in ("float64", "float32"):
            raise ValueError(f"feature_precision must be 'float64' or 'float32', got {feature_precision!r}")
        self.feature_precision = feature_precision
        #: hyper-parameters of the last optimised fit and the number of observations it saw (large-n regime)
        self._fitted_state: dict[str, torch.Tensor] | None = None
        self._n_at_refit: int | None = None
        self._warm_state: dict[str, torch.Tensor] | None = None
        #: positions, among the observations given to the last fit, of those the model is conditioned on
        #: (``max_train_points``); None when it uses all of them
        self.train_index: torch.Tensor | None = None
        self._X = torch.empty(0, space.d, dtype=dtype, device=self.device)
        self._y = torch.empty(0, dtype=dtype, device=self.device)
        self._cache: _PredictionCache | None = None

    # ------------------------------------------------------------------- fit
    def _new_gp(self, X: torch.Tensor, y_std: torch.Tensor, noise_lb: float) -> _ExactGP:
        likelihood = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=GreaterThan(noise_lb))
        likelihood.noise = max(1e-3, 2 * noise_lb)
        kernel = build_kernel(self.space, self.numeric_kernel, self.nominal_kernel, self.combine)
        gp = _ExactGP(X, y_std, likelihood, kernel, self.prior_mean).to(device=self.device, dtype=self.dtype)
        gp.covar_module.outputscale = 1.0
        if self.hyper_priors == "dim_scaled":
            _add_dim_scaled_priors(gp, kernel)
        elif self.hyper_priors == "optuna":
            _add_optuna_priors(gp, kernel)
        elif self.hyper_priors == "optuna_dim_scaled":
            _add_optuna_priors(gp, kernel, _dim_scaled_lengthscale_prior)
        for module in kernel.modules():
            if isinstance(module, JointMaternKernel):
                # the prior's median when it is dimension-scaled, else Optuna's start
                module.lengthscale = (math.exp(_dim_scaled_log_median(self.space.d))
                                      if self.hyper_priors == "optuna_dim_scaled" else 1.0)
            elif isinstance(module, (MaternKernel, RBFKernel)):
                module.lengthscale = 0.5
            elif isinstance(module, (OverlapKernel, TransformedOverlapKernel)):
                module.lengthscale = 1.0
        if self._warm_state is not None:
            try:
                gp.load_state_dict(self._warm_state, strict=False)
            except RuntimeError:  # shapes changed (never for one space); start from the defaults
                pass
        return gp

    def _large(self, n: int) -> bool:
        """Whether ``n`` observations put the model in its large-n regime (see ``fit_subset_size``)."""
        return self.fit_subset_size is not None and n > self.fit_subset_size

    def _capped(self, n: int) -> bool:
        """Whether ``n`` observations are more than the model is conditioned on (see ``max_train_points``)."""
        return self.max_train_points is not None and n > self.max_train_points

    def _keeps_hypers(self, n_train: int, n_seen: int) -> bool:
        """Large-n regime on the ``n_train`` points trained on, fewer than ``refit_every`` new observations
        (of the ``n_seen`` given) since the last optimised fit."""
        return (self._large(n_train) and self._fitted_state is not None and self._n_at_refit is not None
                and self._large(self._n_at_refit)
                and 0 <= n_seen - self._n_at_refit < self.refit_every)

    def fit(self, X: torch.Tensor, y: torch.Tensor) -> None:
        X, y = self._to(X), self._to(y).reshape(-1)
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
        n_seen = len(y)
        self.train_index = None
        if self._capped(n_seen):
            self.train_index = train_subset(y, self.max_train_points, self.max_train_best)
            X, y = X[self.train_index], y[self.train_index]
        self._X, self._y = X, y
        self._y_mean = float(y.mean()) if len(y) else 0.0
        std = float(y.std()) if len(y) > 1 else 0.0
        self._y_std = std if std > 1e-9 * max(1.0, abs(self._y_mean)) and math.isfinite(std) else 1.0
        y_std = (y - self._y_mean) / self._y_std
        if self._keeps_hypers(len(y), n_seen):
            self._condition_kept_hypers(X, y_std)
            return
        X_fit, y_fit = X, y_std
        if self._large(len(y)):
            # the draw follows the number of observations seen (constant once capped, so not the subset's size)
            idx = fit_subset(y_std, self.fit_subset_size, self.fit_subset_best, self.seed, stream=n_seen)
            X_fit, y_fit = X[idx], y_std[idx]
        noise_lb = self.noise_lb
        for attempt in range(4):
            gp = self._new_gp(X_fit, y_fit, noise_lb)
            if len(y) < 2:
                break
            try:
                self._optimise(gp, jitter=1e-6 * 10**attempt)
                break
            except (NotPSDError, RuntimeError, ValueError) as err:
                logger.warning("GP fit failed (%s); retrying with noise floor %.1e", err, noise_lb * 100)
                noise_lb *= 100
        if X_fit is not X:
            gp.set_train_data(X, y_std, strict=False)  # hyper-parameters from the subset, posterior on all data
        self._n_at_refit = n_seen
        self._fitted_state = {k: v.detach().clone() for k, v in gp.named_parameters()} if self._large(len(y)) else None
        self._use(gp)
        if self.warm_start and len(y) >= 2:
            self._warm_state = {k: v.detach().clone() for k, v in gp.named_parameters()}

    def _condition_kept_hypers(self, X: torch.Tensor, y_std: torch.Tensor) -> None:
        """Rebuild the GP on all of ``X`` ``[n, d]``, ``y_std`` ``[n]`` with the last optimised hyper-parameters."""
        assert self._fitted_state is not None
        gp = self._new_gp(X, y_std, self.noise_lb)
        gp.load_state_dict(self._fitted_state, strict=False)
        self._use(gp)

    def _use(self, gp: _ExactGP) -> None:
        """Make the fitted ``gp`` the model's, in evaluation mode; the prediction cache is rebuilt on demand."""
        self.gp = gp
        self.gp.eval()
        self.gp.requires_grad_(False)  # predictions differentiate in X only
        self._cache = None

    def _optimise(self, gp: _ExactGP, jitter: float) -> None:
        """Maximise the exact marginal likelihood (plus any kernel priors) by L-BFGS-B.

        The loss is computed densely here (one Cholesky per evaluation) rather than through
        gpytorch's lazy machinery: the same quantity, several times cheaper for the n <= few
        thousand of BO. BoTorch's scipy loop handles parameter bounds and conversions.
        """
        gp.train()
        maxiter = self.warm_maxiter if self._warm_state is not None else self.fit_maxiter
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(gp.likelihood, gp)
        parameters = get_parameters(mll, requires_grad=True)
        closure = ForwardBackwardClosure(forward=lambda: _negative_log_marginal_likelihood(gp, jitter),
                                         parameters=parameters)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll_scipy(mll, parameters=parameters, closure=closure,
                                   options={"maxiter": maxiter, "ftol": self.fit_ftol})
        for name, value in gp.named_parameters():
            if not torch.isfinite(value).all():
                raise ValueError(f"non-finite hyper-parameter {name} after fitting")

    # ------------------------------------------------------------- predict
    def _chunk_rows(self) -> int:
        """Candidates per prediction block: about four ``[rows, width]`` float64 temporaries fit the memory budget."""
        n_train = max(self._X.shape[0], 1)
        width = n_train + self.space.d + int(self.space.cardinalities.sum())
        if self._cache is not None and self._cache.n_features:
            width += self._cache.n_features
        return max(64, int(self.memory_budget_mb * 2**20 // (8 * width * 4)))

    def _prediction_cache(self) -> _PredictionCache:
        """Everything a posterior call reuses, computed once per fit or conditioning (see :class:`_PredictionCache`)."""
        if self._cache is None:
            assert self.gp is not None
            with torch.no_grad():
                K = to_dense(self.gp.covar_module(self._X))
                K = K + self.gp.likelihood.noise * torch.eye(len(K), dtype=K.dtype, device=K.device)
                self._cache = self._cache_from_factor(_robust_cholesky(K))
        return self._cache

    def _cache_from_factor(self, L: torch.Tensor) -> _PredictionCache:
        """The prediction cache of the training data given the Cholesky factor ``L`` ``[n, n]`` of its covariance."""
        assert self.gp is not None
        resid = (self._y - self._y_mean) / self._y_std - self.gp.prior_mean()
        alpha = torch.cholesky_solve(resid.unsqueeze(-1), L).squeeze(-1)
        cache = _PredictionCache(L=L, alpha=alpha)
        phi = _explicit_feature_map(self.gp.covar_module)
        if phi is not None:
            cache.add_features(phi, float(self.gp.covar_module.outputscale), self._X,
                               low_precision=self.feature_precision == "float32")
        return cache

    def _predict(self, X: torch.Tensor, full_cov: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised latent mean ``[m]`` and variance ``[m]`` (or covariance ``[m, m]``) at ``X`` ``[m, d]``."""
        assert self.gp is not None
        prior_mean = self.gp.prior_mean()
        covar = self.gp.covar_module
        if self._X.shape[0] == 0:
            prior = _dense_kernel(covar, X, X) if full_cov else covar(X, diag=True)
            return prior_mean.expand(X.shape[0]), prior
        cache = self._prediction_cache()
        if not full_cov and cache.phi is not None:
            return cache.predict_from_features(X, prior_mean)
        # the outputscale s multiplies the [m] results, not the [m, n] block: K(X, X_train) = s Kb
        scale = covar.outputscale.reshape(())
        Kb = _dense_kernel(covar.base_kernel, X, self._X)  # [m, n]
        mean = prior_mean + scale * (Kb @ cache.alpha)
        V = solve_lower_rows(cache.L, Kb)  # [m, n], rows L^-1 k_i / s
        if full_cov:
            return mean, scale * _dense_kernel(covar.base_kernel, X, X) - scale**2 * (V @ V.transpose(-1, -2))
        return mean, scale * _dense_kernel(covar.base_kernel, X, X, diag=True) - scale**2 * (V * V).sum(-1)

    def posterior(self, X: torch.Tensor) -> Posterior:
        if self.gp is None:
            raise RuntimeError("posterior() called before fit()")
        X = self._to(X)
        flat = X.reshape(-1, X.shape[-1])
        if self._X.shape[0]:
            self._prediction_cache()  # built before sizing the blocks (feature-space prediction is wider)
        rows = self._chunk_rows()
        parts = [self._predict(flat[i:i + rows], full_cov=False) for i in range(0, flat.shape[0], rows)]
        mean = torch.cat([p[0] for p in parts]).reshape(X.shape[:-1]) * self._y_std + self._y_mean
        var = torch.cat([p[1] for p in parts]).reshape(X.shape[:-1]).clamp(min=1e-12) * self._y_std**2
        return Posterior(mean=mean, variance=var)

    def sample(self, X: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.gp is None:
            raise RuntimeError("sample() called before fit()")
        X = self._to(X)
        with torch.no_grad():
            mean, cov = self._predict(X, full_cov=True)
            L = _robust_cholesky(cov)
            z = torch.randn(cov.shape[-1], n_samples, generator=generator, dtype=cov.dtype).to(cov.device)
            samples = (mean.unsqueeze(-1) + L @ z).T
        return samples * self._y_std + self._y_mean

    def condition_on(self, X: torch.Tensor, y: torch.Tensor) -> None:
        if self.gp is None:
            raise RuntimeError("condition_on() called before fit()")
        X, y = self._to(X), self._to(y).reshape(-1)
        cache = self._cache
        n_old = self._X.shape[0]
        self._X = torch.cat([self._X, X])
        self._y = torch.cat([self._y, y])
        self._cache = None
        if cache is not None and (self._large(n_old) or self.train_index is not None) and len(y):
            try:
                self._cache = self._extended_cache(cache, X)
            except NotPSDError:  # the Schur complement lost definiteness (float32, tiny noise): rebuild instead
                self._cache = None

    def _extended_cache(self, cache: _PredictionCache, X_new: torch.Tensor) -> _PredictionCache:
        """The prediction cache for the training data plus ``X_new`` ``[k, d]`` (already appended to ``_X``),
        from ``cache`` by a block-row extension of its factor: ``O(n^2 k)`` instead of ``O(n^3)``.

        Raises ``NotPSDError`` when the Schur complement of the new rows is not positive definite.
        """
        assert self.gp is not None
        n_old = cache.L.shape[-1]
        with torch.no_grad():
            covar = self.gp.covar_module
            K21 = _dense_kernel(covar.base_kernel, X_new, self._X[:n_old]) * covar.outputscale
            K22 = to_dense(covar(X_new)) + self.gp.likelihood.noise * torch.eye(
                len(X_new), dtype=X_new.dtype, device=X_new.device)
            return self._cache_from_factor(extend_cholesky(cache.L, K21, K22, factor=_robust_cholesky))

    # ----------------------------------------------------------- save/load
    def state_for_warm_start(self) -> dict[str, list] | None:
        """The hyper-parameters the next fit starts from, as plain lists (for solver save/load); in the
        large-n regime also the last optimised hyper-parameters and when they were fitted (``refit_every``)."""
        if self._warm_state is None and self._fitted_state is None:
            return None
        state = {k: v.detach().cpu().tolist() for k, v in (self._warm_state or {}).items()}
        if self._fitted_state is not None and self._n_at_refit is not None:
            state[_N_AT_REFIT] = [self._n_at_refit]
            state.update({_FITTED + k: v.detach().cpu().tolist() for k, v in self._fitted_state.items()})
        return state

    def load_warm_start(self, state: dict[str, list]) -> None:
        """Restore what :meth:`state_for_warm_start` returned."""
        tensor = lambda v: torch.tensor(v, dtype=self.dtype, device=self.device)  # noqa: E731
        plain = {k: v for k, v in state.items() if k != _N_AT_REFIT and not k.startswith(_FITTED)}
        self._warm_state = {k: tensor(v) for k, v in plain.items()} or None
        fitted = {k[len(_FITTED):]: tensor(v) for k, v in state.items() if k.startswith(_FITTED)}
        self._fitted_state = fitted or None
        self._n_at_refit = int(state[_N_AT_REFIT][0]) if _N_AT_REFIT in state else None

    # ------------------------------------------------------------ inspect
    def numeric_lengthscales(self) -> torch.Tensor | None:
        if self.gp is None or not len(self.space.numeric_columns):
            return None
        base = self.gp.covar_module.base_kernel
        if isinstance(base, JointMaternKernel):
            return base.lengthscale.detach().reshape(-1)[base.numeric_columns]
        numeric = base.numeric if isinstance(base, MixtureKernel) else base
        for module in numeric.modules():
            if isinstance(module, (MaternKernel, RBFKernel)):
                return module.lengthscale.detach().reshape(-1)
        return None


FeatureMap = Callable[[torch.Tensor], torch.Tensor]
#: keys of the warm-start state that hold the large-n regime's bookkeeping (not module parameters)
_N_AT_REFIT, _FITTED = "large_n.n_at_refit", "large_n.fitted."


def _dense_kernel(kernel: Kernel, X1: torch.Tensor, X2: torch.Tensor, diag: bool = False) -> torch.Tensor:
    """``kernel(X1, X2)`` as a dense ``[m1, m2]`` tensor (``[m]`` when ``diag``).

    A kernel over all columns (no ``active_dims``) is evaluated through its ``forward`` directly: gpytorch's
    ``__call__`` wraps every call in a lazily evaluated tensor, which costs more than the kernel itself for
    the few-row blocks of an acquisition optimiser's gradient steps.
    """
    if kernel.active_dims is None:
        return to_dense(kernel.forward(X1, X2, diag=diag))
    return to_dense(kernel(X1, X2, diag=True)) if diag else to_dense(kernel(X1, X2))


def _explicit_feature_map(covar: ScaleKernel) -> FeatureMap | None:
    """``phi`` with ``covar(x, x') = outputscale * phi(x) . phi(x')`` when the base kernel is an explicit inner
    product (it opts in with ``has_explicit_features`` and ``explicit_features(x)`` on its active columns), else None.
    """
    base = covar.base_kernel
    if not getattr(base, "has_explicit_features", False):
        return None

    def phi(x: torch.Tensor) -> torch.Tensor:
        if base.active_dims is not None:
            x = x.index_select(-1, base.active_dims.to(x.device))
        return base.explicit_features(x)

    return phi


@dataclass
class _PredictionCache:
    """What every posterior call of one fitted GP reuses.

    ``L``: lower Cholesky factor of ``K + noise I`` ``[n, n]``; ``alpha = (K + noise I)^-1 (y - m)`` ``[n]``.
    When the kernel is ``s * phi(x) . phi(x')`` with ``F`` explicit features (overlap, Kendall, SSK) and
    outputscale ``s``, also, with ``Phi = sqrt(s) phi(X_train)`` ``[n, F]``: ``beta = Phi^T alpha`` ``[F]`` and either
    ``C = Phi^T (K + noise I)^-1 Phi`` ``[F, F]`` (when ``F <= n``) or ``W = L^-1 Phi`` ``[n, F]``, so that a
    candidate's posterior costs ``O(F min(F, n))`` instead of a cross-covariance and a triangular solve,
    ``O(n (F + n))``.
    """

    L: torch.Tensor
    alpha: torch.Tensor
    phi: FeatureMap | None = None
    outputscale: float = 1.0
    beta: torch.Tensor | None = None
    C: torch.Tensor | None = None
    W: torch.Tensor | None = None
    low_precision: bool = False
    #: float32 copy of ``C`` or ``W`` and the float32 error estimate per unit ``||f||^2`` (``low_precision``)
    low: torch.Tensor | None = None
    low_error: float = 0.0

    @property
    def n_features(self) -> int:
        return 0 if self.beta is None else int(self.beta.shape[-1])

    def add_features(self, phi: FeatureMap, outputscale: float, X_train: torch.Tensor,
                     low_precision: bool = False) -> None:
        """Precompute the feature-space posterior from the training inputs ``X_train`` ``[n, d]``."""
        Phi = phi(X_train) * math.sqrt(outputscale)
        self.phi, self.outputscale, self.beta = phi, outputscale, Phi.transpose(-1, -2) @ self.alpha
        W = solve_lower_rows(self.L, Phi.transpose(-1, -2)).transpose(-1, -2)  # L^-1 Phi
        if Phi.shape[-1] <= Phi.shape[-2]:
            self.C = W.transpose(-1, -2) @ W
        else:
            self.W = W
        self.low_precision = low_precision and W.dtype == torch.float64
        if self.low_precision:
            self.low = (self.C if self.C is not None else self.W).to(torch.float32)
            self.low_error = _float32_product_error(self.low, Phi.shape[-1], quadratic=self.C is not None)

    def _explained(self, f: torch.Tensor, low: bool) -> torch.Tensor:
        """``f^T C f`` (``= ||W f||^2``) per row of ``f`` ``[m, F]``: ``[m]``, in float32 arithmetic when ``low``."""
        if low:
            f32 = f.to(torch.float32)
            if self.C is not None:
                return ((f32 @ self.low) * f32).sum(-1).to(f.dtype)
            return (f32 @ self.low.transpose(-1, -2)).to(f.dtype).square().sum(-1)
        if self.C is not None:
            return ((f @ self.C) * f).sum(-1)
        V = f @ self.W.transpose(-1, -2)  # [m, n], rows are L^-1 k_i / sqrt(s)
        return (V * V).sum(-1)

    def predict_from_features(self, X: torch.Tensor, prior_mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and variance ``[m]`` at ``X`` ``[m, d]`` in feature space (the outputscale applied to ``[m]``)."""
        assert self.phi is not None and self.beta is not None
        f = self.phi(X)  # [m, F], unscaled
        mean = prior_mean + math.sqrt(self.outputscale) * (f @ self.beta)
        norms = (f * f).sum(-1)
        explained = self._explained(f, self.low_precision)
        if self.low_precision:
            # near training points the variance is a small difference of O(1) terms: redo those rows in float64
            redo = (norms - explained) < _RECHECK_FACTOR * self.low_error * norms
            if bool(redo.any()):
                explained = explained.masked_scatter(redo, self._explained(f[redo], low=False))
        return mean, self.outputscale * (norms - explained)


#: float32 rows whose variance is below this many error estimates are recomputed in float64
_RECHECK_FACTOR = 10.0


def _float32_product_error(M: torch.Tensor, n_features: int, quadratic: bool) -> float:
    """Estimated absolute error, per unit ``||f||^2``, of ``f^T C f`` (``quadratic``, ``M = C``) or ``||W f||^2``
    (``M = W`` ``[n, F]``) computed in float32.

    Rounding errors of a length-``F`` dot product grow like ``sqrt(F) u`` (``u = 2^-24``; Higham, "Accuracy and
    Stability of Numerical Algorithms", 2nd ed., sec. 3.1 and 3.5 on probabilistic error growth); with
    Cauchy-Schwarz each ``(W f)_i`` is off by at most about ``sqrt(F) u ||W_i|| ||f||``, so
    ``||W f||^2`` by ``2 sqrt(F) u ||W||_F ||f||^2`` (using ``||W f|| <= ||f||``), and ``f^T C f`` by
    ``sqrt(F) u ||C||_F ||f||^2``. Measured errors were about 300 times smaller (``docs/scale.md``).
    """
    u = 2.0**-24
    scale = float(M.double().norm())
    return (1.0 if quadratic else 2.0) * math.sqrt(n_features) * u * scale


def _robust_cholesky(K: torch.Tensor) -> torch.Tensor:
    """Lower Cholesky factor of a PSD matrix ``[n, n]``, adding jitter until it succeeds."""
    eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
    scale = float(K.diagonal().abs().mean()) if K.numel() else 1.0
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2):
        L, info = torch.linalg.cholesky_ex(K + jitter * scale * eye)
        if int(info) == 0:
            return L
    raise NotPSDError("matrix is not positive definite even with 1e-2 relative jitter")


class _GaussianNLL(torch.autograd.Function):
    """``0.5 r^T C^-1 r + 0.5 log det C + 0.5 n log(2 pi)`` with ``C = K + noise I``, for ``K`` ``[n, n]``
    (PSD), a scalar ``noise`` and ``r`` ``[n]``.

    Forward: one Cholesky factorisation of ``C``. Backward (Rasmussen & Williams, GPML, eq. 5.9):
    ``dNLL/dK = 0.5 (C^-1 - alpha alpha^T)`` with ``alpha = C^-1 r``, ``dNLL/dnoise = trace(dNLL/dK)`` and
    ``dNLL/dr = alpha``; one inverse from the factor (:func:`mcbo.models.linalg.cholesky_inverse`) instead of
    differentiating through the factorisation and the solves, which costs several times more at the
    n of a BO run. The noise enters on the diagonal inside the node, so no ``[n, n]`` identity is
    built or differentiated.
    """

    @staticmethod
    def forward(ctx, K: torch.Tensor, noise: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        C = K.clone()
        C.diagonal().add_(noise.reshape(()))
        L, info = torch.linalg.cholesky_ex(C)
        if int(info) != 0:
            raise NotPSDError("kernel matrix is not positive definite during fitting")
        alpha = torch.cholesky_solve(resid.unsqueeze(-1), L).squeeze(-1)
        ctx.save_for_backward(L, alpha)
        ctx.noise_shape = noise.shape
        n = resid.shape[-1]
        return 0.5 * (resid * alpha).sum() + L.diagonal().log().sum() + 0.5 * n * math.log(2 * math.pi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # type: ignore[override]
        L, alpha = ctx.saved_tensors
        grad_K = cholesky_inverse(L)
        grad_K.sub_(alpha.unsqueeze(-1) * alpha.unsqueeze(-2)).mul_(0.5 * grad)
        return grad_K, grad_K.diagonal().sum().reshape(ctx.noise_shape), grad * alpha


def _negative_log_marginal_likelihood(gp: _ExactGP, jitter: float) -> torch.Tensor:
    """``-(log p(y | X, theta) + log p(theta)) / n`` for the GP's training data, computed densely.

    Raises ``NotPSDError`` when the covariance is not positive definite even with ``jitter``.
    """
    X, y = gp.train_inputs[0], gp.train_targets
    n = y.shape[-1]
    K = to_dense(gp.covar_module(X))
    nll = _GaussianNLL.apply(K, gp.likelihood.noise.reshape(()) + jitter, y - gp.prior_mean())
    for _, module, prior, closure, _ in gp.named_priors():
        nll = nll - prior.log_prob(closure(module)).sum()
    return nll / n
