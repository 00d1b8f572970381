"""NAP: BO driven by a meta-trained transformer neural process's acquisition head.

Maraval et al., "End-to-End Meta-Bayesian Optimisation with Transformer Neural Processes"
(NeurIPS 2023). Each :meth:`~mcbo.solvers.base.Solver.ask` scores a candidate set with the
acquisition head of a network trained by ``mcbo meta-train`` (the history is every successful
evaluation) and proposes the best candidate that was not tried yet. Candidates are every point of
a finite space (up to ``max_pool_size``) or ``n_candidates`` fresh random points of the space.

Tried points (successful, failed and pending) are masked. A batch of ``n > 1`` points is picked
one at a time, each pick added to the history at its predictive mean (the Kriging believer of
Ginsbourger et al., 2010, which a neural process supports by just adding a context point);
pending points from earlier asks are added the same way. With ``greedy: false`` the pick is a
draw from the policy (softmax of the acquisition values), as during PPO training.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from mcbo.acq_optim.base import is_new
from mcbo.models.tnp import TNPModel
from mcbo.solvers.base import Solver
from mcbo.solvers.registry import register_solver_kind
from mcbo.space import SearchSpace, enumerate_space

logger = logging.getLogger(__name__)


@register_solver_kind("nap")
class NAPSolver(Solver):
    """Meta-learned BO with a TNP acquisition head (no initial design: the model picks from step 1).

    Args:
        space: the search space; must be the space the checkpoint was trained on.
        checkpoint: a checkpoint file from ``mcbo meta-train`` or a shipped checkpoint's name.
        n_candidates: random candidates per ask when the space is not a small finite one.
        max_pool_size: finite spaces with at most this many points are scored exhaustively.
        greedy: arg-max of the acquisition (default) or a draw from its softmax policy.
        seed, device, dtype: see :class:`~mcbo.solvers.base.Solver`.
    """

    name = "nap"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        checkpoint: str | Path = "hpo_krr",
        n_candidates: int = 2000,
        max_pool_size: int = 50_000,
        greedy: bool = True,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.float64,
    ) -> None:
        super().__init__(space, seed=seed, device=device, dtype=dtype)
        for label, value in (("n_candidates", n_candidates), ("max_pool_size", max_pool_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"nap {label} must be a positive integer, got {value!r}")
        if not isinstance(greedy, bool):
            raise ValueError(f"nap greedy must be true or false, got {greedy!r}")  # noqa: TRY004
        self.model = TNPModel(space, checkpoint=checkpoint, device=self.device, dtype=self.dtype)
        self.n_candidates, self.greedy = n_candidates, greedy
        self.pool = _finite_pool(space, max_pool_size)

    def _candidates(self) -> torch.Tensor:
        if self.pool is not None:
            return self.pool.to(device=self.device, dtype=self.dtype)
        return self.space.sample(self.n_candidates, generator=self.np_rng, dtype=self.dtype).to(self.device)

    def _suggest(self, n: int) -> torch.Tensor:
        start = time.perf_counter()
        self.model.fit(self.X, self.y)
        pending = self.X_pending
        if len(pending):
            self._believe(pending)
        self.last_timings["fit_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        X = self._candidates()
        X = X[is_new(X, self.X_tried)]
        out: list[torch.Tensor] = []
        for i in range(n):
            if len(X) == 0:
                logger.warning("nap: no untried candidate left; proposing random points")
                X = self.space.sample(max(self.n_candidates, n), generator=self.np_rng, dtype=self.dtype)
                X = X.to(self.device)
            with torch.no_grad():
                scores = self.model.acquisition(X)
            scores = torch.where(torch.isfinite(scores), scores, torch.full_like(scores, -float("inf")))
            if self.greedy or not torch.isfinite(scores).any():
                j = int(torch.argmax(scores))
            else:
                probs = torch.softmax(scores.double().cpu(), 0)
                j = int(torch.multinomial(probs, 1, generator=self.torch_gen))
            x = X[j:j + 1]
            out.append(x)
            X = torch.cat([X[:j], X[j + 1:]])
            if i + 1 < n:
                self._believe(x)
        self.last_timings["acq_seconds"] = time.perf_counter() - start
        return torch.cat(out)

    def _believe(self, X: torch.Tensor) -> None:
        """Add ``X`` ``[k, d]`` to the model's history at its predictive mean."""
        with torch.no_grad():
            mean = self.model.posterior(X).mean
        self.model.condition_on(X, mean)


def _finite_pool(space: SearchSpace, max_points: int) -> torch.Tensor | None:
    """Every point ``[N, d]`` of a finite space with at most ``max_points`` points, else ``None``."""
    try:
        X = enumerate_space(space, max_points)
    except ValueError:
        return None
    if space.constraints:
        X = X[space.is_feasible(X)]
    return X


__all__ = ["NAPSolver"]
