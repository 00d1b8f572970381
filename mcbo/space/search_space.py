"""The search space: an ordered list of parameters plus input constraints.

Points travel in two forms: *decoded* (``dict`` name -> value, what users and black boxes
see) and *encoded* (a float tensor ``X`` of shape ``[n, d]``, what models and optimisers see).
All tensor operations here (snapping, sampling maps, Hamming distances, mutations) are
vectorised over points.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from scipy.stats import qmc

from mcbo.space.params import (
    ColumnKind,
    Integer,
    Param,
    Permutation,
    param_from_dict,
)

Constraint = Callable[[dict[str, Any]], bool]

_MAX_CONSTRAINT_DRAWS = 100


class SearchSpace:
    """An ordered collection of parameters with optional input constraints.

    Args:
        params: the parameters, with distinct names.
        constraints: callables taking a decoded point (``dict``) and returning ``True`` when the
            point is allowed. Sampling and every acquisition optimiser only propose points
            that satisfy all of them.

    Attributes:
        param_slices: the encoded columns of each parameter.
        column_kinds: the :class:`ColumnKind` of each of the ``d`` columns.
        cardinalities: ``[d]`` categories of each nominal column, values of each ordinal one (0 otherwise).
        numeric_columns, nominal_columns: index tensors of the numeric / nominal columns.
        grid_columns: index tensor of the numeric columns on a grid (integer and ordinal).
    """

    def __init__(self, params: Sequence[Param], constraints: Iterable[Constraint] = ()) -> None:
        params = list(params)
        if not params:
            raise ValueError("a search space needs at least one parameter")
        names: set[str] = set()
        for p in params:
            if not isinstance(p, Param):
                raise ValueError(f"search space entries must be Param instances, got {p!r}")
            if p.name in names:
                raise ValueError(f"duplicate parameter name {p.name!r}")
            names.add(p.name)
        self.params = params
        self.constraints = list(constraints)
        for c in self.constraints:
            if not callable(c):
                raise ValueError(f"constraints must be callables taking a point dict, got {c!r}")
        self._build_columns()

    # ------------------------------------------------------------------ columns
    def _build_columns(self) -> None:
        kinds: list[ColumnKind] = []
        cards: list[int] = []
        self.param_slices: list[slice] = []
        for p in self.params:
            start = len(kinds)
            kinds.extend(p.column_kinds())
            cards.extend(p.column_cardinalities())
            self.param_slices.append(slice(start, len(kinds)))
        self.column_kinds = kinds
        self.cardinalities = torch.tensor(cards, dtype=torch.long)
        idx = torch.arange(len(kinds))
        self.numeric_columns = idx[torch.tensor([k.is_numeric for k in kinds], dtype=torch.bool)]
        self.nominal_columns = idx[torch.tensor([not k.is_numeric for k in kinds], dtype=torch.bool)]
        # Per-column data for vectorised snapping of integer and ordinal columns.
        lb = torch.zeros(len(kinds), dtype=torch.float64)
        ub = torch.ones(len(kinds), dtype=torch.float64)
        step = torch.ones(len(kinds), dtype=torch.float64)
        log = torch.zeros(len(kinds), dtype=torch.bool)
        for p, sl in zip(self.params, self.param_slices):
            if isinstance(p, Integer):
                lb[sl], ub[sl], step[sl], log[sl] = p.lb, p.ub, p.step, p.log
        self._int_lb, self._int_ub, self._int_step, self._int_log = lb, ub, step, log
        self._integer_mask = torch.tensor([k is ColumnKind.INTEGER for k in kinds], dtype=torch.bool)
        self._ordinal_mask = torch.tensor([k is ColumnKind.ORDINAL for k in kinds], dtype=torch.bool)
        self.grid_columns = idx[self._integer_mask | self._ordinal_mask]
        move_cols, move_vals = [], []
        for col, kind in enumerate(kinds):
            if kind is ColumnKind.NOMINAL:
                move_cols += [col] * cards[col]
                move_vals += list(range(cards[col]))
        self._move_cols = torch.tensor(move_cols, dtype=torch.long)
        self._move_vals = torch.tensor(move_vals, dtype=torch.float64)
        self._permutation_groups = [
            (sl.start, sl.stop) for p, sl in zip(self.params, self.param_slices) if isinstance(p, Permutation)
        ]

    @property
    def permutation_groups(self) -> list[tuple[int, int]]:
        """``(start, stop)`` column ranges of the permutation parameters, in order."""
        return list(self._permutation_groups)

    def numeric_grid_steps(self) -> torch.Tensor:
        """Grid spacing of each numeric column in the unit cube ``[d_numeric]`` (0 for real columns)."""
        steps = torch.zeros(len(self.numeric_columns), dtype=torch.float64)
        for i, col in enumerate(self.numeric_columns.tolist()):
            kind = self.column_kinds[col]
            if kind is ColumnKind.ORDINAL:
                k = int(self.cardinalities[col])
                steps[i] = 1.0 / (k - 1) if k > 1 else 0.0
            elif kind is ColumnKind.INTEGER:
                n_values = (float(self._int_ub[col]) - float(self._int_lb[col])) / float(self._int_step[col]) + 1
                steps[i] = 1.0 / (n_values - 1) if n_values > 1 else 0.0
        return steps

    @property
    def d(self) -> int:
        """Number of encoded columns."""
        return len(self.column_kinds)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def is_numeric_only(self) -> bool:
        return len(self.nominal_columns) == 0

    @property
    def is_nominal_only(self) -> bool:
        return len(self.numeric_columns) == 0

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"no parameter named {name!r}; parameters are {self.names}")

    def __repr__(self) -> str:
        return f"SearchSpace({self.params!r}, n_constraints={len(self.constraints)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    # ------------------------------------------------------- validate / encode
    def validate(self, point: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical copy of ``point``; raises ``ValueError`` naming any bad parameter or value."""
        if not isinstance(point, Mapping):
            raise ValueError(f"a point must be a dict of parameter values, got {point!r}")
        unknown = set(point) - set(self.names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; parameters are {self.names}")
        missing = [n for n in self.names if n not in point]
        if missing:
            raise ValueError(f"point is missing parameter(s) {missing}")
        return {p.name: p.validate(point[p.name]) for p in self.params}

    def encode(self, points: Sequence[Mapping[str, Any]], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Encode decoded points to a tensor ``[n, d]``."""
        if isinstance(points, Mapping):
            points = [points]
        rows = []
        for point in points:
            point = self.validate(point)
            rows.append([v for p in self.params for v in p.encode(point[p.name])])
        return torch.tensor(rows, dtype=dtype).reshape(len(rows), self.d)

    def decode(self, X: torch.Tensor | np.ndarray) -> list[dict[str, Any]]:
        """Decode ``X`` of shape ``[n, d]`` (or ``[d]``) to a list of point dicts."""
        arr = X.detach().cpu().double().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=float)
        arr = arr.reshape(-1, self.d)
        return [{p.name: p.decode(row[sl]) for p, sl in zip(self.params, self.param_slices)} for row in arr]

    # -------------------------------------------------------------- snapping
    def snap(self, X: torch.Tensor) -> torch.Tensor:
        """Project ``X`` (``[..., d]``) onto valid encodings: clamp, round integer grids and indices.

        Permutation columns are rounded but not repaired; optimisers only move them by swaps.
        """
        X = X.clone()
        numeric = self.numeric_columns.to(X.device)
        X[..., numeric] = X[..., numeric].clamp(0.0, 1.0)
        if self._integer_mask.any():
            cols = self._integer_mask.nonzero().squeeze(-1).to(X.device)
            X[..., cols] = self._snap_integer(X[..., cols], cols)
        if self._ordinal_mask.any():
            cols = self._ordinal_mask.nonzero().squeeze(-1).to(X.device)
            k = (self.cardinalities[cols.cpu()] - 1).clamp(min=1).to(X)
            X[..., cols] = torch.round(X[..., cols] * k) / k
        if len(self.nominal_columns):
            cols = self.nominal_columns.to(X.device)
            top = (self.cardinalities[self.nominal_columns] - 1).to(X)
            X[..., cols] = torch.minimum(torch.round(X[..., cols]).clamp(min=0.0), top)
        return X

    def _integer_params(self, cols: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Bounds, step, log flag and log-bounds of integer columns ``cols``, on ``like``'s device/dtype."""
        c = cols.cpu()
        lb, ub, step = (t[c].to(like) for t in (self._int_lb, self._int_ub, self._int_step))
        log = self._int_log[c].to(like.device)
        log_lb, log_ub = torch.log(lb.clamp(min=1e-300)), torch.log(ub.clamp(min=1e-300))
        return lb, ub, step, log, log_lb, log_ub

    def _integer_raw(self, U: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Unit-cube values of integer columns ``cols`` -> the integer scale (not rounded)."""
        lb, ub, _, log, log_lb, log_ub = self._integer_params(cols, U)
        return torch.where(log, torch.exp(log_lb + U * (log_ub - log_lb)), lb + U * (ub - lb))

    def _integer_unit(self, raw: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Integer-scale values of columns ``cols`` -> the unit cube (clamped to the bounds)."""
        lb, ub, _, log, log_lb, log_ub = self._integer_params(cols, raw)
        raw = torch.minimum(torch.maximum(raw, lb), ub)
        unit_log = (torch.log(raw.clamp(min=1e-300)) - log_lb) / (log_ub - log_lb)
        return torch.where(log, unit_log, (raw - lb) / (ub - lb))

    def _snap_integer(self, U: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Round unit-cube values of integer columns ``cols`` to their grids."""
        lb, _, step, _, _, _ = self._integer_params(cols, U)
        raw = lb + torch.round((self._integer_raw(U, cols) - lb) / step) * step
        return self._integer_unit(raw, cols)

    # -------------------------------------------------------------- sampling
    def from_unit_cube(self, U: torch.Tensor) -> torch.Tensor:
        """Map points of the unit cube ``[n, d]`` to valid encodings (uniform in, uniform out)."""
        X = U.clone()
        if len(self.nominal_columns):
            cols = self.nominal_columns
            X[:, cols] = torch.floor(U[:, cols] * self.cardinalities[cols].to(U))
        for start, stop in self._permutation_groups:
            X[:, start:stop] = torch.argsort(U[:, start:stop], dim=1).to(U)
        return self.snap(X)

    def sample(
        self,
        n: int,
        seed: int | None = None,
        method: str = "uniform",
        generator: np.random.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> torch.Tensor:
        """Sample ``n`` encoded points ``[n, d]`` satisfying the constraints.

        Args:
            n: number of points.
            seed: seed for the draw (ignored when ``generator`` is given).
            method: ``"uniform"`` or ``"sobol"`` (scrambled Sobol points mapped to the space).
            generator: numpy generator to draw from (keeps a solver's stream going).

        Raises:
            ValueError: when the constraints reject every draw.
        """
        if n < 0:
            raise ValueError(f"number of samples must be >= 0, got {n}")
        if method not in ("uniform", "sobol"):
            raise ValueError(f"unknown sampling method {method!r}; allowed: 'uniform', 'sobol'")
        rng = generator if generator is not None else np.random.default_rng(seed)
        kept: list[torch.Tensor] = []
        n_kept, draws = 0, 0
        while n_kept < n:
            draws += 1
            want = max(n - n_kept, 1) if not self.constraints else max(2 * (n - n_kept), 16)
            if method == "sobol":
                # An integer seed drawn from rng keeps the draw inside rng's saved state (save/resume).
                sobol = qmc.Sobol(d=self.d, scramble=True, seed=int(rng.integers(2**63 - 1)))
                U = torch.from_numpy(sobol.random(2 ** math.ceil(math.log2(max(want, 2))))[:want])
            else:
                U = torch.from_numpy(rng.random((want, self.d)))
            X = self.from_unit_cube(U.to(torch.float64))
            if self.constraints:
                X = X[self.is_feasible(X)]
            kept.append(X)
            n_kept += len(X)
            if self.constraints and n_kept == 0 and draws >= _MAX_CONSTRAINT_DRAWS:
                raise ValueError(
                    f"no point satisfying the input constraints was found in {draws} batches of "
                    f"random samples; check that the constraints can be met"
                )
        out = torch.cat(kept)[:n] if kept else torch.empty(0, self.d, dtype=torch.float64)
        return out.to(dtype)

    def sample_points(self, n: int, seed: int | None = None, method: str = "uniform") -> list[dict[str, Any]]:
        """Sample ``n`` decoded points."""
        return self.decode(self.sample(n, seed=seed, method=method))

    # ----------------------------------------------------------- constraints
    def is_feasible(self, X: torch.Tensor) -> torch.Tensor:
        """Boolean mask ``[n]``: which encoded points satisfy every input constraint."""
        if not self.constraints:
            return torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
        points = self.decode(X)
        mask = [all(bool(c(p)) for c in self.constraints) for p in points]
        return torch.tensor(mask, dtype=torch.bool, device=X.device)

    # -------------------------------------------------------------- geometry
    def hamming(self, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
        """Number of differing nominal columns between each pair, ``[n1, n2]``."""
        cols = self.nominal_columns.to(X1.device)
        A, B = X1[..., cols], X2[..., cols]
        return (A.unsqueeze(-2) != B.unsqueeze(-3)).sum(-1)

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """All points one move away from ``x`` (``[d]``); see :meth:`batch_neighbours`. Returns ``[m, d]``."""
        return self.batch_neighbours(x.reshape(1, -1))[0]

    def batch_neighbours(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every single-move neighbour of each row of ``X`` ``[r, d]``, built with tensor ops.

        Moves: another category in one nominal column, the next or previous value of one integer
        or ordinal column, the swap of two positions of a permutation. Real columns do not move.

        Returns:
            ``(N, owner)``: neighbours ``[m, d]`` and the row of ``X`` each came from ``[m]``.
        """
        r, device = X.shape[0], X.device
        rows = torch.arange(r, device=device)
        blocks: list[tuple[torch.Tensor, torch.Tensor]] = []
        if len(self._move_cols):  # nominal columns: every other category
            cols, vals = self._move_cols.to(device), self._move_vals.to(X)
            owner = rows.repeat_interleave(len(cols))
            N = X.repeat_interleave(len(cols), 0)
            idx, c, v = torch.arange(len(N), device=device), cols.repeat(r), vals.repeat(r)
            changed = N[idx, c] != v
            N[idx, c] = v
            blocks.append((N[changed], owner[changed]))
        stepped = (self._integer_mask | self._ordinal_mask).nonzero().squeeze(-1).to(device)
        for sign in (-1.0, 1.0) if len(stepped) else ():  # integer/ordinal columns: one grid step
            owner = rows.repeat_interleave(len(stepped))
            N = X.repeat_interleave(len(stepped), 0)
            idx, c = torch.arange(len(N), device=device), stepped.repeat(r)
            N[idx, c] = self._step_columns(N[idx, c], c, sign)
            changed = N[idx, c] != X[owner, c]
            blocks.append((N[changed], owner[changed]))
        for start, stop in self._permutation_groups:  # permutations: swap two positions
            i, j = torch.triu_indices(stop - start, stop - start, offset=1, device=device)
            owner = rows.repeat_interleave(len(i))
            N = X.repeat_interleave(len(i), 0)
            idx, a, b = torch.arange(len(N), device=device), (start + i).repeat(r), (start + j).repeat(r)
            N[idx, a], N[idx, b] = X[owner, b], X[owner, a]
            blocks.append((N, owner))
        if not blocks:
            return X.new_empty(0, self.d), torch.empty(0, dtype=torch.long, device=device)
        return torch.cat([b[0] for b in blocks]), torch.cat([b[1] for b in blocks])

    def _step_columns(self, u: torch.Tensor, cols: torch.Tensor, sign: float) -> torch.Tensor:
        """Values ``u`` ``[m]`` of integer/ordinal columns ``cols`` ``[m]`` moved one grid step by ``sign``."""
        out = u.clone()
        is_ord = self._ordinal_mask.to(u.device)[cols]
        if is_ord.any():
            k = (self.cardinalities.to(u.device)[cols[is_ord]] - 1).clamp(min=1).to(u)
            out[is_ord] = ((torch.round(u[is_ord] * k) + sign) / k).clamp(0.0, 1.0)
        is_int = ~is_ord
        if is_int.any():
            ci = cols[is_int]
            lb, _, step, _, _, _ = self._integer_params(ci, u)
            raw = lb + torch.round((self._integer_raw(u[is_int], ci) - lb) / step) * step
            out[is_int] = self._integer_unit(raw + sign * step, ci)
        return out

    def mutate(self, X: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One random move per row of ``X`` (``[n, d]``): a new category in one nominal column,
        or a swap in a permutation. Numeric columns are left alone. Returns ``[n, d]``."""
        X = X.clone()
        n = X.shape[0]
        if n == 0 or len(self.nominal_columns) == 0:
            return X
        cols = self.nominal_columns.to(X.device)
        pick = torch.randint(len(cols), (n,), generator=generator).to(X.device)
        chosen = cols[pick]
        card = self.cardinalities.to(X.device)[chosen]
        rows = torch.arange(n, device=X.device)
        is_perm = torch.tensor(
            [self.column_kinds[int(c)] is ColumnKind.PERMUTATION for c in chosen.cpu()], dtype=torch.bool
        ).to(X.device)
        # Nominal: shift the current index by a random non-zero offset modulo the cardinality.
        offset = (torch.rand(n, generator=generator).to(X.device) * (card - 1).clamp(min=1).to(X)).floor() + 1
        new_vals = torch.remainder(X[rows, chosen] + offset, card.to(X))
        nominal_rows = ~is_perm & (card > 1)
        X[rows[nominal_rows], chosen[nominal_rows]] = new_vals[nominal_rows]
        # Permutation: swap the chosen position with another one of its group.
        for start, stop in self._permutation_groups:
            in_group = is_perm & (chosen >= start) & (chosen < stop)
            if not in_group.any():
                continue
            r = rows[in_group]
            a = chosen[in_group]
            shift = (torch.rand(len(r), generator=generator).to(X.device) * (stop - start - 1)).long() + 1
            b = start + torch.remainder(a - start + shift, stop - start)
            va, vb = X[r, a].clone(), X[r, b].clone()
            X[r, a], X[r, b] = vb, va
        return X

    # --------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-data description of the parameters (constraints are code and are not included)."""
        return {"params": [p.to_dict() for p in self.params]}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                  constraints: Iterable[Constraint] = ()) -> "SearchSpace":
        """Build a space from ``{"params": [...]}`` or a bare list of parameter dicts."""
        params = spec.get("params") if isinstance(spec, Mapping) else spec
        if not isinstance(params, Sequence) or isinstance(params, (str, bytes)):
            raise ValueError(f"search space spec must hold a list under 'params', got {spec!r}")
        return cls([param_from_dict(p) for p in params], constraints=constraints)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str, constraints: Iterable[Constraint] = ()) -> "SearchSpace":
        return cls.from_dict(json.loads(text), constraints=constraints)

    def signature(self) -> str:
        """A stable string identifying the parameters (used to match saved state to a space)."""
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


__all__ = ["SearchSpace", "Constraint"]
