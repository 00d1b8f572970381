"""Model-free search heuristics on the true objective: hill climbing, simulated annealing, a GA.

All three follow the ask/tell contract of :class:`~mcbo.solvers.base.Solver` with batches: a batch
is filled with the next candidates of the heuristic (neighbours, proposals, offspring) that are
neither evaluated nor pending, and with random points when the heuristic must wait for pending
results. Moves come from :mod:`mcbo.space.moves` (nominal changes, integer/ordinal steps,
permutation swaps and inserts, Gaussian moves on numeric columns); input constraints are always met.

* ``hc`` — hill climbing (e.g. Hoos & Stützle, *Stochastic Local Search*, 2004): first- or
  best-improvement over the single-move neighbourhood plus Gaussian numeric moves; when a
  neighbourhood holds no better point the numeric step is halved (while real columns exist and
  it stays above ``min_sigma``), then the search restarts at a random point.
* ``sa`` — simulated annealing (Kirkpatrick, Gelatt & Vecchi, Science 1983): random single moves
  from the current point, Metropolis acceptance in the order values are told, geometric cooling
  ``T_k = init_temp * s * cooling^k`` with ``s`` the standard deviation of the values seen so far.
* ``ga`` — pymoo's genetic algorithm through its ask/tell interface (``algorithm.ask()`` /
  ``algorithm.tell()``), with the type-aware operators of :mod:`mcbo.acq_optim.pymoo_ops`.
  Offspring already evaluated are not evaluated again. Because a pymoo algorithm is not plain
  data, saving records every ask/tell of pymoo and loading replays them from the seed.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.evaluator import Evaluator
from pymoo.core.population import Population
from pymoo.problems.static import StaticProblem

from mcbo.acq_optim.base import is_new
from mcbo.acq_optim.pymoo_ops import EncodedProblem, SpaceCrossover, SpaceMutation, SpaceRepair, SpaceSampling
from mcbo.solvers.base import Solver
from mcbo.solvers.registry import register_solver_kind
from mcbo.space import SearchSpace
from mcbo.space.moves import all_neighbours, gaussian_move, random_move
from mcbo.space.params import ColumnKind

logger = logging.getLogger(__name__)

_MAX_TRIES = 20


def _positive_int(name: str, value: Any, low: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _positive_float(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _as_float(value: float | None) -> float:
    return math.inf if value is None else float(value)


class _HeuristicSolver(Solver):
    """Shared helpers: which candidate rows are new, and random new points to fill a batch."""

    def _new_rows(self, X: torch.Tensor, taken: list[torch.Tensor]) -> torch.Tensor:
        """Mask ``[k]``: rows of ``X`` that are feasible, not tried (evaluated, failed, pending) and not in ``taken``."""
        if X.shape[0] == 0:
            return torch.zeros(0, dtype=torch.bool, device=X.device)
        seen = torch.cat([self.X_tried, *taken])
        return is_new(X, seen) & self.space.is_feasible(X)

    def _random_new(self, taken: list[torch.Tensor]) -> torch.Tensor:
        """A random feasible point ``[1, d]`` neither evaluated, pending nor in ``taken`` (when one is found)."""
        X = self.space.sample(1, generator=self.np_rng, dtype=self.dtype).to(self.device)
        for _ in range(_MAX_TRIES):
            if self._new_rows(X, taken).all():
                return X
            X = self.space.sample(1, generator=self.np_rng, dtype=self.dtype).to(self.device)
        return X

    def _tensor(self, rows: Any) -> torch.Tensor:
        return torch.tensor(rows, dtype=self.dtype, device=self.device).reshape(-1, self.space.d)


# ====================================================================== hill climbing
@register_solver_kind("hc")
class HillClimbing(_HeuristicSolver):
    """Hill climbing with random restarts over single moves (and Gaussian numeric moves).

    Args:
        space: the search space.
        strategy: ``"first"`` (move to the first better neighbour told) or ``"best"`` (evaluate the
            whole neighbourhood, then move to its best point if it is better).
        n_numeric_moves: Gaussian moves of the numeric columns added to each neighbourhood.
        numeric_sigma: their initial standard deviation in the unit cube.
        min_sigma: below this step, a stuck search restarts instead of halving the step.
        seed, device, dtype: see :class:`~mcbo.solvers.base.Solver`.
    """

    name = "hc"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        strategy: str = "first",
        n_numeric_moves: int = 10,
        numeric_sigma: float = 0.1,
        min_sigma: float = 1e-3,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, seed=seed, **kwargs)
        if strategy not in ("first", "best"):
            raise ValueError(f"hill climbing strategy must be 'first' or 'best', got {strategy!r}")
        self.strategy = strategy
        self.n_numeric_moves = _positive_int("hill climbing n_numeric_moves", n_numeric_moves, low=0)
        self.numeric_sigma = _positive_float("hill climbing numeric_sigma", numeric_sigma)
        self.min_sigma = _positive_float("hill climbing min_sigma", min_sigma)
        self._has_real = any(k is ColumnKind.REAL for k in space.column_kinds)
        self._current: torch.Tensor | None = None  # [d]
        self._current_value = math.inf
        self._queue = torch.empty(0, space.d, dtype=self.dtype, device=self.device)
        self._handed = torch.empty(0, space.d, dtype=self.dtype, device=self.device)  # neighbours handed out
        self._best: torch.Tensor | None = None  # best point told since the neighbourhood was built
        self._best_value = math.inf
        self._sigma = self.numeric_sigma
        self.n_restarts = 0

    # ------------------------------------------------------------ moves
    def _neighbourhood(self, x: torch.Tensor, discrete: bool = True) -> torch.Tensor:
        """Shuffled new neighbours ``[k, d]`` of ``x`` ``[d]`` (single moves and Gaussian moves)."""
        parts = []
        if discrete:
            parts.append(all_neighbours(self.space, x.unsqueeze(0))[0])
        if self.n_numeric_moves and len(self.space.numeric_columns):
            reps = x.unsqueeze(0).repeat(self.n_numeric_moves, 1)
            parts.append(gaussian_move(self.space, reps, self._sigma, self.torch_gen))
        N = torch.cat(parts) if parts else x.new_empty(0, self.space.d)
        if len(N) == 0:
            return N
        N = torch.unique(N, dim=0)
        N = N[self._new_rows(N, [])]
        return N[torch.from_numpy(self.np_rng.permutation(len(N))).to(self.device)]

    def _move_to(self, x: torch.Tensor, value: float) -> None:
        self._current, self._current_value = x.clone(), value
        self._best, self._best_value = None, math.inf
        self._queue = self._neighbourhood(self._current)
        self._handed = self._handed[:0]

    def _restart(self) -> None:
        """Start from a random new point, evaluated first, then its neighbours."""
        x0 = self._random_new([])[0]
        self._current, self._current_value = x0, math.inf
        self._best, self._best_value = None, math.inf
        self._sigma = self.numeric_sigma
        self._queue = torch.cat([x0.unsqueeze(0), self._neighbourhood(x0)])
        self._handed = self._handed[:0]
        self.n_restarts += 1
        logger.debug("hill climbing restart %d", self.n_restarts)

    def _update(self, filling: bool) -> None:
        """Move, shrink the numeric step or restart, as the told values say (``filling``: this ask
        has already handed out neighbours, which count as pending)."""
        if self._current is None:
            self._restart()
            return
        waiting = filling or (len(self._handed) > 0 and bool((~is_new(self._handed, self.X_pending)).any()))
        exhausted = len(self._queue) == 0 and not waiting
        improved = self._best is not None and self._best_value < self._current_value
        if improved and (self.strategy == "first" or exhausted):
            assert self._best is not None
            self._move_to(self._best, self._best_value)
        elif exhausted:
            if self._has_real and self.n_numeric_moves and self._sigma / 2 >= self.min_sigma:
                self._sigma /= 2
                self._queue = self._neighbourhood(self._current, discrete=False)
                if len(self._queue):
                    return
            self._restart()

    def _suggest(self, n: int) -> torch.Tensor:
        out: list[torch.Tensor] = []
        n_handed = len(self._handed)
        for _ in range(n * _MAX_TRIES + 2 * _MAX_TRIES):
            if len(out) == n:
                break
            self._update(filling=len(self._handed) > n_handed)
            n_handed = min(n_handed, len(self._handed))  # a move or restart empties the hand-out record
            if len(self._queue):
                self._queue = self._queue[self._new_rows(self._queue, out)]  # drop what got evaluated meanwhile
                if len(self._queue):
                    out.append(self._queue[:1])
                    self._handed = torch.cat([self._handed, self._queue[:1]])
                    self._queue = self._queue[1:]
            else:  # waiting for pending neighbours: explore at random meanwhile
                out.append(self._random_new(out))
        while len(out) < n:  # the space is (nearly) exhausted
            out.append(self._random_new(out))
        return torch.cat(out)

    def _on_tell(self, X: torch.Tensor, y: torch.Tensor) -> None:
        for x, value in zip(X, y.tolist()):
            if self._current is not None and torch.equal(x, self._current) and not math.isfinite(self._current_value):
                self._current_value = value
            elif value < self._best_value:
                self._best, self._best_value = x.clone(), value

    # --------------------------------------------------------- save/load
    def _extra_state(self) -> dict[str, Any]:
        return {
            "current": None if self._current is None else self._current.tolist(),
            "current_value": _finite_or_none(self._current_value),
            "queue": self._queue.tolist(),
            "handed": self._handed.tolist(),
            "best": None if self._best is None else self._best.tolist(),
            "best_value": _finite_or_none(self._best_value),
            "sigma": self._sigma,
            "n_restarts": self.n_restarts,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._current = None if state["current"] is None else self._tensor(state["current"])[0]
        self._current_value = _as_float(state["current_value"])
        self._queue = self._tensor(state["queue"])
        self._handed = self._tensor(state["handed"])
        self._best = None if state["best"] is None else self._tensor(state["best"])[0]
        self._best_value = _as_float(state["best_value"])
        self._sigma = float(state["sigma"])
        self.n_restarts = int(state["n_restarts"])


# ================================================================ simulated annealing
@register_solver_kind("sa")
class SimulatedAnnealingSolver(_HeuristicSolver):
    """Simulated annealing on the objective with random single moves and geometric cooling.

    Args:
        space: the search space.
        init_temp: initial temperature, relative to the standard deviation of the values seen.
        cooling: temperature factor per accept/reject decision (``0 < cooling <= 1``).
        numeric_sigma: std of Gaussian moves of the numeric columns, in the unit cube.
        p_insert: probability that a permutation move is an insert rather than a swap.
        seed, device, dtype: see :class:`~mcbo.solvers.base.Solver`.
    """

    name = "sa"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        init_temp: float = 0.5,
        cooling: float = 0.98,
        numeric_sigma: float = 0.1,
        p_insert: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, seed=seed, **kwargs)
        self.init_temp = _positive_float("simulated annealing init_temp", init_temp)
        if not isinstance(cooling, (int, float)) or not 0 < cooling <= 1:
            raise ValueError(f"simulated annealing cooling must be in (0, 1], got {cooling!r}")
        self.cooling = float(cooling)
        self.numeric_sigma = _positive_float("simulated annealing numeric_sigma", numeric_sigma)
        if not isinstance(p_insert, (int, float)) or not 0 <= p_insert <= 1:
            raise ValueError(f"simulated annealing p_insert must be in [0, 1], got {p_insert!r}")
        self.p_insert = float(p_insert)
        self._current: torch.Tensor | None = None
        self._current_value = math.inf
        self.n_steps = 0

    @property
    def temperature(self) -> float:
        """Current temperature ``init_temp * std(values seen) * cooling ** n_steps``."""
        scale = float(self.y.std()) if len(self.y) > 1 else 1.0
        scale = scale if scale > 0 and math.isfinite(scale) else 1.0
        return self.init_temp * scale * self.cooling**self.n_steps

    def _suggest(self, n: int) -> torch.Tensor:
        out: list[torch.Tensor] = []
        if self._current is not None:
            for _ in range(_MAX_TRIES):
                need = n - sum(len(o) for o in out)
                if need == 0:
                    break
                P = random_move(self.space, self._current.unsqueeze(0).repeat(2 * need, 1), self.torch_gen,
                                self.numeric_sigma, self.p_insert)
                P = torch.unique(P, dim=0)
                P = P[self._new_rows(P, out)]
                P = P[torch.from_numpy(self.np_rng.permutation(len(P))).to(self.device)][:need]
                if len(P):
                    out.append(P)
        while sum(len(o) for o in out) < n:  # no current point yet, or its neighbourhood is used up
            out.append(self._random_new(out))
        return torch.cat(out)

    def _on_tell(self, X: torch.Tensor, y: torch.Tensor) -> None:
        for x, value in zip(X, y.tolist()):
            if self._current is None:
                self._current, self._current_value = x.clone(), value
                continue
            delta = value - self._current_value
            temp = self.temperature
            if delta <= 0 or self.np_rng.random() < math.exp(-delta / max(temp, 1e-300)):
                self._current, self._current_value = x.clone(), value
            self.n_steps += 1

    def _extra_state(self) -> dict[str, Any]:
        return {
            "current": None if self._current is None else self._current.tolist(),
            "current_value": _finite_or_none(self._current_value),
            "n_steps": self.n_steps,
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._current = None if state["current"] is None else self._tensor(state["current"])[0]
        self._current_value = _as_float(state["current_value"])
        self.n_steps = int(state["n_steps"])


# ================================================================== genetic algorithm
@register_solver_kind("ga")
class GeneticAlgorithmSolver(_HeuristicSolver):
    """pymoo genetic algorithm on the objective, driven through pymoo's ask/tell interface.

    Args:
        space: the search space.
        pop_size: population size (and offspring per generation).
        mutation_prob: per-column mutation probability (default: one column per individual on average).
        seed, device, dtype: see :class:`~mcbo.solvers.base.Solver`.
    """

    name = "ga"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        pop_size: int = 20,
        mutation_prob: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, seed=seed, **kwargs)
        self.pop_size = _positive_int("genetic algorithm pop_size", pop_size, low=2)
        if mutation_prob is not None and (not isinstance(mutation_prob, (int, float)) or not 0 < mutation_prob <= 1):
            raise ValueError(f"genetic algorithm mutation_prob must be in (0, 1], got {mutation_prob!r}")
        self.mutation_prob = mutation_prob
        self._events: list[dict[str, Any]] = []  # every pymoo ask and tell, for save/load replay
        self._generation: torch.Tensor | None = None  # offspring of the last pymoo ask [k, d]
        self._handed = 0  # offspring handed out so far
        self._extras = torch.empty(0, space.d, dtype=self.dtype, device=self.device)
        self._algorithm = self._new_algorithm()

    def _new_algorithm(self) -> GA:
        def sampler(n: int, rs: np.random.Generator) -> np.ndarray:
            return self.space.sample(n, generator=rs).numpy()

        algorithm = GA(
            pop_size=self.pop_size,
            sampling=SpaceSampling(sampler),
            crossover=SpaceCrossover(self.space),
            mutation=SpaceMutation(self.space, prob_var=self.mutation_prob),
            repair=SpaceRepair(self.space, None, sampler),
            eliminate_duplicates=True,
        )
        algorithm.setup(EncodedProblem(self.space), termination=("n_gen", 2**31 - 1), seed=self.seed, verbose=False)
        return algorithm

    # ------------------------------------------------------------ pymoo
    def _pymoo_ask(self) -> None:
        pop = self._algorithm.ask()
        self._events.append({"ask": True})
        X = pop.get("X") if pop is not None and len(pop) else np.empty((0, self.space.d))
        self._generation = torch.as_tensor(np.asarray(X, dtype=float), dtype=self.dtype, device=self.device)
        self._handed = 0
        self._extras = self._extras[:0]

    def _pymoo_tell(self, X: np.ndarray, F: np.ndarray) -> None:
        pop = Population.new("X", X)
        Evaluator().eval(StaticProblem(self._algorithm.problem, F=F.reshape(-1, 1)), pop)
        self._algorithm.tell(infills=pop)

    def _lookup(self, X: torch.Tensor) -> torch.Tensor:
        """Latest told value of each row of ``X`` ``[k, d]`` (NaN when never told successfully)."""
        out = torch.full((X.shape[0],), float("nan"), dtype=self.dtype, device=self.device)
        if X.shape[0] == 0 or self.X.shape[0] == 0:
            return out
        same = torch.cdist(X, self.X, p=1.0) < 1e-9  # [k, n]
        last = torch.where(same, torch.arange(self.X.shape[0], device=self.device), -1).max(-1).values
        found = last >= 0
        out[found] = self.y[last[found]]
        return out

    def _finish_generation(self) -> None:
        """Tell pymoo the generation's offspring (and extra points) that were evaluated successfully."""
        assert self._generation is not None
        rows = torch.cat([self._generation, self._extras])
        values = self._lookup(rows)
        ok = torch.isfinite(values)
        X, F = rows[ok].cpu().double().numpy(), values[ok].cpu().double().numpy()
        if len(F) == 0 and not self._algorithm.is_initialized:
            self._generation = None  # nothing to start from: the next ask samples a new initial population
            return
        self._pymoo_tell(X, F)
        self._events.append({"X": X.tolist(), "F": F.tolist()})
        self._generation = None

    def _resolved(self) -> bool:
        """Whether every offspring was handed out and none of them (or the extras) is still pending."""
        assert self._generation is not None
        if self._handed < len(self._generation):
            return False
        pending = self.X_pending
        return bool(is_new(torch.cat([self._generation, self._extras]), pending).all())

    def _suggest(self, n: int) -> torch.Tensor:
        out: list[torch.Tensor] = []
        for _ in range((n + self.pop_size) * _MAX_TRIES):
            if len(out) == n:
                break
            if self._generation is not None and self._resolved():
                self._finish_generation()
            if self._generation is None:
                self._pymoo_ask()
                continue
            if self._handed < len(self._generation):
                x = self._generation[self._handed:self._handed + 1]
                self._handed += 1
                if self._new_rows(x, out).all():  # offspring evaluated before keep their value
                    out.append(x)
            else:  # the generation waits for pending points: evaluate a random extra point meanwhile
                x = self._random_new(out)
                self._extras = torch.cat([self._extras, x])
                out.append(x)
        while len(out) < n:
            x = self._random_new(out)
            self._extras = torch.cat([self._extras, x])
            out.append(x)
        return torch.cat(out)

    # --------------------------------------------------------- save/load
    def _extra_state(self) -> dict[str, Any]:
        return {
            "events": self._events,
            "generation": None if self._generation is None else self._generation.tolist(),
            "handed": self._handed,
            "extras": self._extras.tolist(),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._algorithm = self._new_algorithm()
        self._events = []
        for event in state["events"]:
            if "ask" in event:
                self._algorithm.ask()
            else:
                self._pymoo_tell(np.asarray(event["X"], dtype=float).reshape(-1, self.space.d),
                                 np.asarray(event["F"], dtype=float))
            self._events.append(event)
        self._generation = None if state["generation"] is None else self._tensor(state["generation"])
        self._handed = int(state["handed"])
        self._extras = self._tensor(state["extras"])


__all__ = ["GeneticAlgorithmSolver", "HillClimbing", "SimulatedAnnealingSolver"]
