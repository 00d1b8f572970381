"""Genetic algorithms maximising an acquisition (Holland, 1975; Goldberg, 1989).

Two engines, picked by ``method``:

* ``"categorical"`` (default for spaces without numeric columns): a plain generational GA in torch
  — tournament selection, uniform crossover (permutation groups inherited whole), random-category
  mutation (swap/insert moves for permutations), repair into the trust region, and (mu + lambda)
  survival with duplicates removed. The whole offspring population is scored in one batched call.
* ``"pymoo"`` (default for spaces with numeric columns): pymoo's ``GA`` on the encoded columns with
  the type-aware operators of :mod:`mcbo.acq_optim.pymoo_ops` (SBX and polynomial mutation on
  numeric columns, uniform crossover and random categories on nominal ones, trust-region repair);
  pymoo evaluates each generation in one batched acquisition call.

Both start from the best points of a random pool of the (trust) region plus the incumbent, and
return the best new point ever scored.
"""

from __future__ import annotations

import numpy as np
import torch
from pymoo.algorithms.soo.nonconvex.ga import GA

from mcbo.acq_optim.base import AcqContext, AcqOptimizer, candidate_pool, register_acq_optimizer
from mcbo.acq_optim.pymoo_ops import (
    EncodedProblem,
    SpaceCrossover,
    SpaceMutation,
    SpaceRepair,
    column_masks,
    torch_generator,
)
from mcbo.acq_optim.steps import start_points
from mcbo.space.moves import random_permutation_move

METHODS = ("auto", "categorical", "pymoo")


@register_acq_optimizer("ga")
class GeneticAlgorithm(AcqOptimizer):
    """GA over the (trust-region restricted) space; see the module docstring.

    Args:
        pop_size: population size (and offspring per generation).
        n_generations: generations after the initial population.
        n_raw: random points scored to seed the initial population.
        method: ``"auto"``, ``"categorical"`` (all-nominal spaces only) or ``"pymoo"``.
        tournament_size: competitors per tournament (categorical engine; pymoo uses binary tournaments).
        mutation_prob: per-column mutation probability; default one column per individual on average.
    """

    needs_deterministic_acquisition = True
    deterministic_reason = "the genetic algorithm compares scores across generations"

    def __init__(
        self,
        pop_size: int = 40,
        n_generations: int = 30,
        n_raw: int = 500,
        method: str = "auto",
        tournament_size: int = 2,
        mutation_prob: float | None = None,
    ) -> None:
        for name, value in (("pop_size", pop_size), ("n_generations", n_generations), ("n_raw", n_raw)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"genetic algorithm: {name} must be an integer >= 1, got {value!r}")
        if pop_size < 2:
            raise ValueError(f"genetic algorithm: pop_size must be >= 2, got {pop_size!r}")
        if method not in METHODS:
            raise ValueError(f"genetic algorithm: unknown method {method!r}; allowed: {list(METHODS)}")
        if not isinstance(tournament_size, int) or tournament_size < 1:
            raise ValueError(f"genetic algorithm: tournament_size must be an integer >= 1, got {tournament_size!r}")
        if mutation_prob is not None and not 0 < mutation_prob <= 1:
            raise ValueError(f"genetic algorithm: mutation_prob must be in (0, 1], got {mutation_prob!r}")
        self.pop_size, self.n_generations, self.n_raw = pop_size, n_generations, n_raw
        self.method, self.tournament_size, self.mutation_prob = method, tournament_size, mutation_prob

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        method = self.method
        if method == "auto":
            method = "categorical" if ctx.space.is_nominal_only else "pymoo"
        if method == "categorical" and not ctx.space.is_nominal_only:
            raise ValueError("genetic algorithm: method 'categorical' needs a space without numeric columns; "
                             "use method 'pymoo' or 'auto'")
        X, values, pool, pool_values = start_points(ctx, self.n_raw, self.pop_size)
        if X is None:
            return ctx.fallback()
        if method == "categorical":
            visited, visited_values = self._categorical(ctx, X, values)
        else:
            visited, visited_values = self._pymoo(ctx, X)
        x = ctx.best_new(torch.cat([pool, X, *visited]), torch.cat([pool_values, values, *visited_values]))
        return x if x is not None else ctx.fallback()

    # ---------------------------------------------------------- categorical
    def _categorical(
        self, ctx: AcqContext, P: torch.Tensor, values: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Generational GA on nominal columns; returns every scored offspring batch with its scores."""
        space, generator, device = ctx.space, ctx.generator, P.device
        _, plain_np, _ = column_masks(space)
        plain = torch.from_numpy(plain_np).to(device)
        card = space.cardinalities.to(P)
        n_plain = int(plain.sum()) + len(space.permutation_groups)
        p_mut = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(n_plain, 1)
        visited, visited_values = [], []
        for _ in range(self.n_generations):
            n = self.pop_size
            A = P[_tournament(values, n, self.tournament_size, generator)]
            B = P[_tournament(values, n, self.tournament_size, generator)]
            take_b = (torch.rand(n, space.d, generator=generator) < 0.5).to(device) & plain
            child = torch.where(take_b, B, A)
            for start, stop in space.permutation_groups:
                whole = (torch.rand(n, generator=generator) < 0.5).to(device)
                child[whole, start:stop] = B[whole, start:stop]
            hit = (torch.rand(n, space.d, generator=generator) < p_mut).to(device) & plain & (card > 1)
            offset = torch.floor(torch.rand(n, space.d, generator=generator).to(P) * (card - 1).clamp(min=1)) + 1
            child = torch.where(hit, torch.remainder(child + offset, card.clamp(min=1)), child)
            for start, stop in space.permutation_groups:
                rows = (torch.rand(n, generator=generator) < p_mut * (stop - start)).nonzero().squeeze(-1).to(device)
                if len(rows):
                    child[rows] = random_permutation_move(space, child[rows], generator, groups=[(start, stop)])
            child = self._repair(ctx, child, A)
            child_values = ctx.score(child)
            visited.append(child)
            visited_values.append(child_values)
            P, values = _survivors(torch.cat([P, child]), torch.cat([values, child_values]), self.pop_size)
        return visited, visited_values

    @staticmethod
    def _repair(ctx: AcqContext, child: torch.Tensor, parent: torch.Tensor) -> torch.Tensor:
        """Project children into the trust region; children still not allowed revert to a parent."""
        if ctx.region is not None:
            child = ctx.region.project(child, ctx.generator)
        bad = ~ctx.allowed(child)
        if bad.any():
            child[bad] = parent[bad]
        return child

    # ---------------------------------------------------------------- pymoo
    def _pymoo(self, ctx: AcqContext, X0: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """pymoo GA minimising ``-acq``; returns every allowed scored batch with its scores."""
        space, trust_region = ctx.space, ctx.trust_region
        dtype, device = X0.dtype, X0.device
        visited: list[torch.Tensor] = []
        visited_values: list[torch.Tensor] = []

        def objective(X_np: np.ndarray) -> np.ndarray:
            X = torch.as_tensor(X_np, dtype=dtype, device=device)
            values = ctx.score(X)
            ok = ctx.allowed(X)
            visited.append(X[ok])
            visited_values.append(values[ok])
            values = torch.where(ok, values, torch.full_like(values, -float("inf")))
            return (-values).nan_to_num(nan=np.inf, posinf=np.inf, neginf=-np.inf).cpu().numpy()

        def sampler(n: int, rs: np.random.Generator) -> np.ndarray:
            rng = np.random.default_rng(int(rs.integers(2**62)))
            return candidate_pool(space, n, trust_region, rng, torch_generator(rs), torch.float64,
                                  torch.device("cpu")).numpy()

        lo, hi = ctx.numeric_box(X0)
        problem = EncodedProblem(space, lo.cpu().numpy(), hi.cpu().numpy(), objective=objective)
        algorithm = GA(
            pop_size=self.pop_size,
            sampling=X0.detach().cpu().double().numpy(),
            crossover=SpaceCrossover(space),
            mutation=SpaceMutation(space, prob_var=self.mutation_prob),
            repair=SpaceRepair(space, trust_region, sampler),
            eliminate_duplicates=True,
        )
        algorithm.setup(problem, termination=("n_gen", self.n_generations + 1), seed=int(ctx.np_rng.integers(2**31)),
                        verbose=False)
        while algorithm.has_next():
            algorithm.next()
        return visited, visited_values


def _tournament(values: torch.Tensor, n: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """Indices ``[n]`` of the winners of ``n`` tournaments of ``size`` random entrants (higher wins)."""
    entrants = torch.randint(len(values), (n, size), generator=generator).to(values.device)
    return entrants.gather(1, values[entrants].argmax(-1, keepdim=True)).squeeze(-1)


def _survivors(X: torch.Tensor, values: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` best distinct rows of ``X`` ``[m, d]`` and their values (``(mu + lambda)`` survival)."""
    unique, inverse = torch.unique(X, dim=0, return_inverse=True)
    best = torch.full((len(unique),), -float("inf"), dtype=values.dtype, device=values.device)
    best = best.scatter_reduce(0, inverse, torch.nan_to_num(values, nan=-float("inf")), reduce="amax")
    order = torch.argsort(best, descending=True)[:n]
    return unique[order], best[order]


__all__ = ["GeneticAlgorithm"]
