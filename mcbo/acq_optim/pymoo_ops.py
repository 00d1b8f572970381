"""pymoo operators on the encoded columns of a mixed search space.

pymoo's ``GA`` (tournament selection on fitness and constraint violation, fitness survival,
duplicate elimination, ask/tell) runs unchanged; these operators make its variation respect the
column types of a :class:`~mcbo.space.SearchSpace`:

* numeric columns: pymoo's simulated binary crossover and polynomial mutation (Deb & Agrawal,
  1995; Deb & Goyal, 1996) inside the bounds, then snapped to the integer/ordinal grids;
* nominal columns: uniform crossover and random-category mutation;
* permutation groups: inherited whole from one parent, mutated by a swap or an insert move.

A repair step snaps every offspring, projects it into the trust region (numeric box and Hamming
ball) and replaces offspring that still break the region or the input constraints by fresh
allowed samples. Random numbers come from pymoo's ``random_state`` so a seeded run repeats.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.sbx import cross_sbx
from pymoo.operators.mutation.pm import mut_pm

from mcbo.acq_optim.base import allowed
from mcbo.space import SearchSpace
from mcbo.space.moves import random_permutation_move
from mcbo.trust_region import TrustRegion

#: ``sampler(n, random_state)`` -> ``[<=n, d]`` encoded allowed points.
Sampler = Callable[[int, np.random.Generator], np.ndarray]


def torch_generator(random_state: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from ``random_state`` (so torch helpers follow pymoo's seed)."""
    return torch.Generator().manual_seed(int(random_state.integers(2**62)))


def column_masks(space: SearchSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks ``[d]``: numeric columns, plain nominal columns, permutation columns."""
    numeric = np.zeros(space.d, dtype=bool)
    numeric[space.numeric_columns.numpy()] = True
    perm = np.zeros(space.d, dtype=bool)
    for start, stop in space.permutation_groups:
        perm[start:stop] = True
    return numeric, ~numeric & ~perm, perm


class EncodedProblem(Problem):
    """Single-objective pymoo problem over the ``d`` encoded columns.

    Args:
        space: the search space.
        numeric_lo, numeric_hi: bounds ``[d_numeric]`` of the numeric columns (e.g. a trust-region box).
        objective: ``[n, d]`` -> ``[n]`` values to minimise, for batched in-process evaluation;
            ``None`` when values come from outside (ask/tell).
    """

    def __init__(
        self,
        space: SearchSpace,
        numeric_lo: np.ndarray | None = None,
        numeric_hi: np.ndarray | None = None,
        objective: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        xl = np.zeros(space.d)
        xu = np.maximum(space.cardinalities.numpy().astype(float) - 1.0, 0.0)
        num = space.numeric_columns.numpy()
        xl[num] = 0.0 if numeric_lo is None else numeric_lo
        xu[num] = 1.0 if numeric_hi is None else numeric_hi
        super().__init__(n_var=space.d, n_obj=1, xl=xl, xu=xu, vtype=float)
        self.space = space
        self.objective = objective

    def _evaluate(self, X, out, *args, **kwargs):
        if self.objective is None:
            raise RuntimeError("this problem is evaluated outside pymoo (ask/tell)")
        out["F"] = np.asarray(self.objective(np.asarray(X, dtype=float)), dtype=float).reshape(-1, 1)


class SpaceSampling(Sampling):
    """Initial population from ``sampler(n, random_state)``."""

    def __init__(self, sampler: Sampler) -> None:
        super().__init__()
        self.sampler = sampler

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        return np.asarray(self.sampler(n_samples, random_state), dtype=float).reshape(-1, problem.n_var)


class SpaceCrossover(Crossover):
    """Two parents -> two children: SBX on numeric columns, uniform crossover on nominal columns,
    whole permutation groups from either parent.

    Args:
        space: the search space.
        eta: SBX distribution index.
        prob: probability that a mating is recombined at all (otherwise the parents are copied).
    """

    def __init__(self, space: SearchSpace, eta: float = 15.0, prob: float = 0.9) -> None:
        super().__init__(2, 2, prob=prob)
        self.space, self.eta = space, float(eta)
        self.numeric, self.plain, self.perm = column_masks(space)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        _, n_matings, n_var = X.shape
        Q = np.array(X, dtype=float, copy=True)
        if self.numeric.any():
            cols = np.flatnonzero(self.numeric)
            eta = np.full((n_matings, 1), self.eta)
            half = np.full((n_matings, 1), 0.5)
            Q[:, :, cols] = cross_sbx(X[:, :, cols].astype(float), problem.xl[cols], problem.xu[cols], eta, half,
                                      half, random_state=random_state)
        if self.plain.any():
            swap = (random_state.random((n_matings, n_var)) < 0.5) & self.plain
            Q[0][swap], Q[1][swap] = X[1][swap], X[0][swap]
        for start, stop in self.space.permutation_groups:
            swap = random_state.random(n_matings) < 0.5
            Q[0, swap, start:stop], Q[1, swap, start:stop] = X[1, swap, start:stop], X[0, swap, start:stop]
        return Q


class SpaceMutation(Mutation):
    """Polynomial mutation on numeric columns, random new categories on nominal columns (each with
    probability ``prob_var``, default one column per individual on average), and one swap or insert
    per permutation group with probability ``prob_perm``.
    """

    def __init__(self, space: SearchSpace, eta: float = 20.0, prob_var: float | None = None,
                 prob_perm: float = 0.5) -> None:
        super().__init__(prob=1.0)
        self.space, self.eta, self.prob_perm = space, float(eta), float(prob_perm)
        self.numeric, self.plain, self.perm = column_masks(space)
        n_cols = int(self.numeric.sum() + self.plain.sum()) + len(space.permutation_groups)
        self.col_prob = float(prob_var) if prob_var is not None else 1.0 / max(n_cols, 1)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        X = np.array(X, dtype=float, copy=True)
        n = X.shape[0]
        if n == 0:
            return X
        if self.numeric.any():
            cols = np.flatnonzero(self.numeric)
            X[:, cols] = mut_pm(X[:, cols], problem.xl[cols], problem.xu[cols], np.full(n, self.eta),
                                np.full(n, self.col_prob), False, random_state=random_state)
        if self.plain.any():
            card = self.space.cardinalities.numpy().astype(float)
            hit = (random_state.random(X.shape) < self.col_prob) & self.plain & (card > 1)
            offset = np.floor(random_state.random(X.shape) * np.maximum(card - 1, 1)) + 1
            X[hit] = np.remainder(X + offset, np.maximum(card, 1))[hit]
        if self.space.permutation_groups:
            gen = torch_generator(random_state)
            T = torch.from_numpy(X)
            for start, stop in self.space.permutation_groups:
                rows = torch.from_numpy(np.flatnonzero(random_state.random(n) < self.prob_perm))
                if len(rows):
                    T[rows] = random_permutation_move(self.space, T[rows], gen, groups=[(start, stop)])
            X = T.numpy()
        return X


class SpaceRepair(Repair):
    """Snap to valid encodings, project into the trust region, replace what is still not allowed.

    Args:
        space: the search space.
        trust_region: region to respect (``None``: the whole space).
        sampler: source of allowed replacement points.
    """

    def __init__(self, space: SearchSpace, trust_region: TrustRegion | None, sampler: Sampler) -> None:
        super().__init__()
        self.space, self.trust_region, self.sampler = space, trust_region, sampler

    def _do(self, problem, X, random_state=None, **kwargs):
        rs = random_state if random_state is not None else np.random.default_rng(0)
        T = self.space.snap(torch.as_tensor(np.asarray(X, dtype=float)).reshape(-1, self.space.d))
        tr = self.trust_region
        if tr is not None and tr.centre is not None:
            # A projection draws random numbers only to pick nominal columns: rs is left alone without them.
            generator = torch_generator(rs) if len(self.space.nominal_columns) else None
            T = self.space.snap(tr.project(T, generator))  # a grid value rounded out of the box is replaced below
        bad = ~allowed(self.space, T, tr)
        if bad.any():
            fresh = torch.as_tensor(np.asarray(self.sampler(int(bad.sum()), rs), dtype=float)).reshape(-1, self.space.d)
            rows = bad.nonzero().squeeze(-1)[: len(fresh)]
            T[rows] = fresh[: len(rows)].to(T)
        return T.numpy()


__all__ = [
    "EncodedProblem", "Sampler", "SpaceCrossover", "SpaceMutation", "SpaceRepair", "SpaceSampling", "column_masks",
    "torch_generator",
]
