"""The Bayesian-optimisation loop composed from primitives.

``BOSolver`` = initial design + model + acquisition + acquisition optimiser (+ trust region).
Each :meth:`BOSolver.ask` after the initial design fits the model on the successful observations,
then picks ``n`` points one at a time; after each pick (and for every point still pending from
earlier asks) the model is conditioned on the point with its posterior mean as a fantasy value
(the Kriging believer of Ginsbourger et al., 2010), so a batch spreads out.

With a trust region (Casmopolitan), candidates stay inside it; when it collapses it restarts at
the point with the best lower confidence bound among random points of the whole space
(Wan et al., ICML 2021).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch

from mcbo.acq_optim import AcqContext, build_acq_optimizer
from mcbo.acq_optim.base import is_new, score
from mcbo.acquisition import LowerConfidenceBound, build_acquisition
from mcbo.models import build_model
from mcbo.models.output_warping import build_output_warping
from mcbo.solvers.base import Solver
from mcbo.solvers.registry import register_solver_kind
from mcbo.space import SearchSpace
from mcbo.trust_region import build_trust_region

logger = logging.getLogger(__name__)

#: What the model learns from failed evaluations (see ``BOSolver``'s ``failure_policy``).
FAILURE_POLICIES = ("impute", "ignore")

#: Nominal kernels that factorise over columns, as CoCaBO's per-column bandits assume.
_PER_COLUMN_KERNELS = frozenset({"overlap", "transformed_overlap"})



@register_solver_kind("bo")
class BOSolver(Solver):
    """Bayesian optimisation from a model, an acquisition, an acquisition optimiser and a trust region.

    Args:
        space: the search space.
        model: model spec, e.g. ``{"type": "gp", "nominal_kernel": "transformed_overlap"}``.
        acquisition: acquisition spec, e.g. ``{"type": "ei"}``.
        acq_optimizer: optimiser spec, e.g. ``{"type": "interleaved", "n_restarts": 5}``.
        trust_region: trust-region spec (``{"type": "casmopolitan", ...}``) or ``None``.
        n_init: size of the initial design (evaluated before the model is used).
        init_sampler: ``"sobol"`` or ``"uniform"`` initial design.
        failure_policy: what the model learns from failed evaluations (they are never proposed again either
            way). ``"impute"``: they join its training data with the worst value observed so far, so the
            acquisition steers away from where evaluations fail (the imputation SMAC uses for crashed runs,
            Hutter et al., LION 2011); ``"ignore"``: the model sees successes only.
        output_warping: monotone transform of the targets before the model sees them
            (:mod:`mcbo.models.output_warping`), e.g. ``{"type": "yeo_johnson"}``; ``None``: none. The
            acquisition's incumbent is taken on the warped scale.
        seed, device, dtype: see :class:`~mcbo.solvers.base.Solver`.
    """

    name = "bo"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        model: dict[str, Any] | None = None,
        acquisition: dict[str, Any] | None = None,
        acq_optimizer: dict[str, Any] | None = None,
        trust_region: dict[str, Any] | None = None,
        n_init: int = 20,
        init_sampler: str = "sobol",
        failure_policy: str = "impute",
        output_warping: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.float64,
    ) -> None:
        super().__init__(space, seed=seed, device=device, dtype=dtype)
        if not isinstance(n_init, int) or n_init < 1:
            raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
        if init_sampler not in ("sobol", "uniform"):
            raise ValueError(f"init_sampler must be 'sobol' or 'uniform', got {init_sampler!r}")
        if failure_policy not in FAILURE_POLICIES:
            raise ValueError(f"failure_policy must be one of {list(FAILURE_POLICIES)}, got {failure_policy!r}")
        self.failure_policy = failure_policy
        self.model_spec = dict(model or {"type": "gp"})
        self.acq_spec = dict(acquisition or {"type": "ei"})
        self.acq_optimizer_spec = dict(acq_optimizer or {"type": "interleaved"})
        self.model = build_model(self.model_spec, space, self.device, self.dtype, seed=self.seed)
        self.acq_optimizer = build_acq_optimizer(self.acq_optimizer_spec)
        self.trust_region = build_trust_region(trust_region, space)
        self.output_warping = build_output_warping(output_warping)
        self.n_init = n_init
        self.init_sampler = init_sampler
        self._check_combination()
        self._init_design = space.sample(n_init, method=init_sampler, generator=self.np_rng, dtype=self.dtype)
        self._n_init_used = 0

    def _check_combination(self) -> None:
        """Reject model x acquisition x optimiser combinations that cannot work, saying why."""
        optimiser = self.acq_optimizer_spec.get("type")
        if optimiser == "mab":
            kernel = self.model_spec.get("nominal_kernel", "transformed_overlap")
            if self.model_spec.get("type") != "gp" or kernel not in _PER_COLUMN_KERNELS:
                raise ValueError(
                    f"acq_optimizer 'mab' (CoCaBO) picks every nominal column by its own EXP3 bandit, which "
                    f"assumes a GP whose nominal kernel compares columns one by one ({sorted(_PER_COLUMN_KERNELS)}); "
                    f"got model {self.model_spec.get('type')!r} with nominal kernel {kernel!r}"
                )
        probe = build_acquisition(self.acq_spec, self.model, best_f=0.0, generator=self.torch_gen)
        if self.acq_optimizer.needs_deterministic_acquisition and not probe.deterministic:
            raise ValueError(
                f"acquisition {self.acq_spec.get('type')!r} draws a new sample per call and cannot be "
                f"optimised by {self.acq_optimizer_spec.get('type')!r}; use acq_optimizer type 'random'"
            )

    # ------------------------------------------------------------------ ask
    def _suggest(self, n: int) -> torch.Tensor:
        out: list[torch.Tensor] = []
        # Told data counts toward the design: no design point is spent once n_init successes are known.
        while len(out) < n and self._n_init_used < self.n_init and len(self.y) < self.n_init:
            out.append(self._init_design[self._n_init_used].to(self.device).unsqueeze(0))
            self._n_init_used += 1
        if len(out) == n:
            return torch.cat(out)
        if len(self.y) == 0:  # every initial point failed or is pending: keep exploring
            extra = self.space.sample(n - len(out), generator=self.np_rng, dtype=self.dtype).to(self.device)
            return torch.cat([*out, extra])

        start = time.perf_counter()
        X_train, y_train = self._training_data()
        y_train = self.output_warping(y_train)
        self.model.fit(X_train, y_train)
        self.last_timings["fit_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        if self.trust_region is not None:
            self._prepare_trust_region()
        X_exclude = torch.cat([self.X_tried, *out])  # failed points included: never proposed again
        fantasies = torch.cat([self.X_pending, *out]) if out else self.X_pending
        if len(fantasies):
            self._condition_on_believer(fantasies)
        best_f = float(y_train[: len(self.y)].min())  # the successes come first (see _training_data)
        incumbent = self.X[int(torch.argmin(self.y))].unsqueeze(0)
        while len(out) < n:
            acq = build_acquisition(self.acq_spec, self.model, best_f=best_f, generator=self.torch_gen)
            x = self.acq_optimizer.optimize(AcqContext(
                acq, self.space, X_exclude, trust_region=self.trust_region, generator=self.torch_gen,
                np_rng=self.np_rng, incumbent=incumbent,
            )).to(device=self.device, dtype=self.dtype)
            out.append(x)
            X_exclude = torch.cat([X_exclude, x])
            if len(out) < n:
                self._condition_on_believer(x)
        self.last_timings["acq_seconds"] = time.perf_counter() - start
        return torch.cat(out)

    def _training_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's inputs ``[n, d]`` and targets ``[n]``, before warping: the successes, then the failures at
        the worst value seen."""
        X_failed = self.X_failed if self.failure_policy == "impute" else self.X[:0]
        if len(X_failed) == 0:
            return self.X, self.y
        return torch.cat([self.X, X_failed]), torch.cat([self.y, self.y.max().expand(len(X_failed))])

    def _condition_on_believer(self, X: torch.Tensor) -> None:
        """Kriging believer: pretend ``X`` ``[k, d]`` was observed at its posterior mean."""
        with torch.no_grad():
            mean = self.model.posterior(X).mean
        self.model.condition_on(X, mean)

    def _prepare_trust_region(self) -> None:
        tr = self.trust_region
        assert tr is not None
        tr.set_lengthscales(self.model.numeric_lengthscales())
        if tr.centre is None:
            i = int(torch.argmin(self.y))
            tr.restart(self.X[i])
            tr.n_restarts = 0
            tr.best_value = float(self.y[i])
        elif tr.collapsed:
            tr.restart(self._restart_centre())

    def _restart_centre(self) -> torch.Tensor:
        """Point with the best lower confidence bound among random points of the whole space."""
        n_candidates = min(100 * self.space.d, 5000)  # as in the MCBO reference implementation
        X = self.space.sample(n_candidates, generator=self.np_rng, dtype=self.dtype).to(self.device)
        X = X[is_new(X, self.X)]
        values = score(LowerConfidenceBound(self.model), X)
        return X[int(torch.argmax(values))]

    # ----------------------------------------------------------------- tell
    def _on_told(self, records: list[dict[str, Any]]) -> None:
        # A failed evaluation improves nothing: the trust region counts it as a failure, so a region where
        # evaluations keep failing shrinks and restarts instead of being searched forever.
        failed = [r["point"] for r in records if r["status"] != "ok"]
        tr = self.trust_region
        if failed and tr is not None and tr.centre is not None and math.isfinite(tr.best_value):
            X_failed = self.space.encode(failed, dtype=self.dtype).to(self.device)
            tr.update(X_failed, torch.full((len(failed),), math.inf, dtype=self.dtype, device=self.device))

    def _on_tell(self, X: torch.Tensor, y: torch.Tensor) -> None:
        if self.trust_region is not None and self.trust_region.centre is not None:
            self.trust_region.update(X, y)
        self.acq_optimizer.observe(self.space, X, y)  # optimisers that learn from outcomes (CoCaBO's bandit)

    # ------------------------------------------------------------ save/load
    def _extra_state(self) -> dict[str, Any]:
        return {
            "n_init_used": self._n_init_used,
            "init_design": self._init_design.tolist(),
            "trust_region": None if self.trust_region is None else self.trust_region.state_dict(),
            "model": self.model.state_for_warm_start(),
            "acq_optimizer": self.acq_optimizer.state_dict(),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._n_init_used = int(state["n_init_used"])
        self._init_design = torch.tensor(state["init_design"], dtype=self.dtype).reshape(-1, self.space.d)
        if self.trust_region is not None and state.get("trust_region") is not None:
            self.trust_region.load_state_dict(state["trust_region"], self.dtype, self.device)
        if state.get("model") is not None:
            self.model.load_warm_start(state["model"])
        if state.get("acq_optimizer") is not None:
            self.acq_optimizer.load_state_dict(state["acq_optimizer"])
