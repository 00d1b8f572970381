"""The ask/tell solver contract shared by every optimiser in mcbo.

A solver proposes points with :meth:`Solver.ask` and learns their values through
:meth:`Solver.tell`. Values are **minimised**. A value that is ``None``, NaN or infinite (or a
point told with an error message) is recorded as a *failed* evaluation: it stays in the history
but is never shown to a model. Points handed out by ``ask`` and not yet told are *pending*;
solvers that support batches take them into account when asked again.

Subclasses implement :meth:`Solver._suggest` on encoded tensors and may override
:meth:`Solver._on_tell` and the state hooks.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import itertools
import json
import logging
import math
import numbers
import time
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from mcbo.solvers.parallel import (
    INTERRUPTED,
    RunStore,
    evaluate_point,
    finite_or_none,
    make_evaluator,
    storage_path,
)
from mcbo.space import SearchSpace

logger = logging.getLogger(__name__)

STATE_VERSION = 1


def _finite_real(value: Any) -> float | None:
    """``value`` as a float when it is a finite real scalar, else ``None`` (a failed evaluation).

    Real scalars are Python ints, floats and bools, numpy scalars, one-element numpy arrays and torch tensors
    (0-d or not), ``decimal.Decimal`` and ``fractions.Fraction`` (any ``numbers.Real``). An array or tensor of
    any other size is not a scalar: ``None``.
    """
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if (value.size if isinstance(value, np.ndarray) else value.numel()) != 1:
            return None
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (numbers.Real, decimal.Decimal)):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError, decimal.InvalidOperation):
        return None
    return number if math.isfinite(number) else None


def _eval_seconds(value: Any) -> float:
    number = _finite_real(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    if number is None or number < 0:
        raise ValueError(f"tell: eval_seconds must be non-negative numbers (or None), got {value!r}")
    return number


_MAX_RANDOM_DRAWS = 20  # batches of 64 random points tried before enumerating the space
_MAX_ENUMERATED = 100_000
#: Most points one :meth:`Solver.ask` proposes (a batch is ``[n, d]`` tensors and an ``O(n^2)`` repeat check).
MAX_ASK = 10_000
#: Statuses of a saved record.
_STATUSES = ("ok", "failed")


class SearchSpaceExhausted(RuntimeError):
    """Raised by :meth:`Solver.ask` when every feasible point has been evaluated or is pending."""


class Solver(ABC):
    """Base class of every solver: ask/tell bookkeeping, history, best point, save/load.

    Args:
        space: the search space.
        seed: seed of every random draw the solver makes.
        device: torch device of the encoded tensors and the models (``"cpu"`` or ``"cuda"``).
        dtype: torch dtype of the encoded tensors and models (``"float64"`` or ``"float32"``).
    """

    #: Short name used in reports and recipes.
    name: str = "solver"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.float64,
    ) -> None:
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a SearchSpace, got {type(space).__name__}")
        self.space = space
        self.seed = int(seed)
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.np_rng = np.random.default_rng(self.seed)
        self.torch_gen = torch.Generator().manual_seed(self.seed)
        self._records: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self.X = torch.empty(0, space.d, dtype=self.dtype, device=self.device)  # successful points [n, d]
        self.y = torch.empty(0, dtype=self.dtype, device=self.device)  # their values [n]
        #: Seconds spent by the last :meth:`ask` fitting the model and optimising the acquisition.
        self.last_timings: dict[str, float] = {"fit_seconds": 0.0, "acq_seconds": 0.0}

    # ---------------------------------------------------------------- ask / tell
    @abstractmethod
    def _suggest(self, n: int) -> torch.Tensor:
        """Propose ``n`` encoded points ``[n, d]`` (snapped and feasible)."""

    def ask(self, n: int = 1) -> list[dict[str, Any]]:
        """Propose ``n`` points to evaluate next, as decoded dicts. They stay pending until told.

        No point is proposed twice: a point already evaluated (successfully or not), pending, or earlier in the
        same batch is replaced by a random new feasible point.

        Args:
            n: points to propose, ``1 <= n <= MAX_ASK`` (10 000); ask in several batches for more.

        Raises:
            SearchSpaceExhausted: when no new feasible point can be found (a small finite space fully tried).
        """
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= MAX_ASK:
            raise ValueError(f"ask(n): n must be a positive integer of at most {MAX_ASK} (points proposed in one "
                             f"batch; ask in several batches for more), got {n!r}")
        start = time.perf_counter()
        self.last_timings = {"fit_seconds": 0.0, "acq_seconds": 0.0}
        X = self._replace_repeats(self._suggest(int(n)))
        points = self.space.decode(X)
        elapsed = time.perf_counter() - start
        if not any(self.last_timings.values()):
            self.last_timings["acq_seconds"] = elapsed
        for p in points:
            self._pending.append({"point": p, "ask_seconds": elapsed / len(points)})
        return points

    def _replace_repeats(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` ``[n, d]`` with every row already tried (or repeated within ``X``) replaced by a new one."""
        from mcbo.acq_optim.base import is_new

        tried = self.X_tried
        rows: list[torch.Tensor] = []
        for i in range(X.shape[0]):
            row = X[i:i + 1]
            seen = torch.cat([tried, *rows])
            if not bool(is_new(row, seen)[0]):
                logger.info("%s proposed a point already tried; replacing it with a random new point", self.name)
                row = self._random_untried(seen)
            rows.append(row)
        return torch.cat(rows) if rows else X

    def _random_untried(self, seen: torch.Tensor) -> torch.Tensor:
        """A random feasible point ``[1, d]`` not in ``seen``; :class:`SearchSpaceExhausted` when there is none."""
        from mcbo.acq_optim.base import is_new
        from mcbo.space import enumerate_space

        for _ in range(_MAX_RANDOM_DRAWS):
            X = self.space.sample(64, generator=self.np_rng, dtype=self.dtype).to(self.device)
            X = X[is_new(X, seen)]
            if len(X):
                return X[:1]
        # Random draws keep hitting tried points: the space may be small and finite. Enumerate it to be sure.
        try:
            every = enumerate_space(self.space, max_points=_MAX_ENUMERATED).to(device=self.device, dtype=self.dtype)
        except ValueError:
            every = torch.empty(0, self.space.d, dtype=self.dtype, device=self.device)
        every = every[self.space.is_feasible(every)] if len(every) else every
        fresh = every[is_new(every, seen)] if len(every) else every
        if len(fresh):
            return fresh[int(self.np_rng.integers(len(fresh))):][:1]
        raise SearchSpaceExhausted(
            f"{self.name}: no untried feasible point left ({len(seen)} points evaluated or pending); "
            "the search space is exhausted, or nearly so"
        )

    @property
    def X_failed(self) -> torch.Tensor:
        """Encoded points whose evaluation failed ``[f, d]``."""
        failed = [r["point"] for r in self._records if r["status"] != "ok"]
        if not failed:
            return torch.empty(0, self.space.d, dtype=self.dtype, device=self.device)
        return self.space.encode(failed, dtype=self.dtype).to(self.device)

    @property
    def X_tried(self) -> torch.Tensor:
        """Every encoded point evaluated (ok or failed) or pending ``[k, d]``: what must not be proposed again."""
        return torch.cat([self.X, self.X_failed, self.X_pending])

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Points asked for and not yet told."""
        return [dict(p["point"]) for p in self._pending]

    @property
    def X_pending(self) -> torch.Tensor:
        """Encoded pending points ``[p, d]``."""
        if not self._pending:
            return torch.empty(0, self.space.d, dtype=self.dtype, device=self.device)
        return self.space.encode([p["point"] for p in self._pending], dtype=self.dtype).to(self.device)

    def tell(
        self,
        points: Sequence[Mapping[str, Any]] | Mapping[str, Any],
        values: Sequence[float | None] | float | None,
        errors: Sequence[str | None] | None = None,
        eval_seconds: Sequence[float] | None = None,
    ) -> None:
        """Record the values of evaluated ``points``.

        Args:
            points: decoded points (from :meth:`ask` or the user's own).
            values: one value per point; ``None``, NaN or inf marks a failed evaluation.
            errors: optional error message per point (a non-empty message marks a failure).
            eval_seconds: optional wall-clock seconds each evaluation took.
        """
        if isinstance(points, Mapping):
            points = [points]
            values = [values] if not isinstance(values, (list, tuple, np.ndarray)) else values
        values = list(np.asarray(values, dtype=object).reshape(-1)) if values is not None else [None]
        if len(values) != len(points):
            raise ValueError(f"tell: got {len(points)} points but {len(values)} values")
        errors = list(errors) if errors is not None else [None] * len(points)
        eval_seconds = list(eval_seconds) if eval_seconds is not None else [None] * len(points)
        if len(errors) != len(points) or len(eval_seconds) != len(points):
            raise ValueError("tell: errors and eval_seconds must have one entry per point")
        # The whole batch is checked before anything is recorded: a bad entry leaves the solver unchanged.
        checked = [self.space.validate(p) for p in points]
        seconds = [_eval_seconds(s) for s in eval_seconds]
        numbers_ = [_finite_real(v) for v in values]
        ok_X, ok_y = [], []
        first_new = len(self._records)
        for point, raw, value, error, secs in zip(checked, values, numbers_, errors, seconds):
            ask_seconds = self._pop_pending(point)
            failed = bool(error) or value is None
            if failed and not error:
                error = f"invalid value {raw!r}"
            record = {
                "index": len(self._records),
                "point": point,
                "value": float("nan") if failed else value,
                "status": "failed" if failed else "ok",
                "error": str(error or ""),
                "ask_seconds": ask_seconds,
                "eval_seconds": secs,
            }
            self._records.append(record)
            if failed:
                logger.info("evaluation %d failed: %s", record["index"], error)
            else:
                ok_X.append(point)
                ok_y.append(value)
        if ok_X:
            X_new = self.space.encode(ok_X, dtype=self.dtype).to(self.device)
            y_new = torch.tensor(ok_y, dtype=self.dtype, device=self.device)
            self.X = torch.cat([self.X, X_new])
            self.y = torch.cat([self.y, y_new])
            self._on_tell(X_new, y_new)
        self._on_told(self._records[first_new:])

    def tell_dataframe(self, frame: pd.DataFrame, value_column: str = "value") -> None:
        """Record prior evaluations from a DataFrame: one column per parameter and a value column.

        Rows whose value is missing, NaN or infinite are failed evaluations; a ``status`` column (``"ok"`` /
        ``"failed"``) and an ``error`` column are used when present, and so is ``eval_seconds``, so the
        :attr:`history` of another run can be told as it is. Successful rows count toward a BO solver's initial
        design. Other columns are ignored. Points need not have been asked (see :meth:`tell`).
        """
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"tell_dataframe: expected a pandas DataFrame, got {type(frame).__name__}")
        missing = [c for c in (*self.space.names, value_column) if c not in frame.columns]
        if missing:
            raise ValueError(f"tell_dataframe: missing column(s) {missing}; columns are {list(frame.columns)}")
        if len(frame) == 0:
            return
        points = frame[self.space.names].to_dict(orient="records")
        values = list(frame[value_column])
        errors = [None] * len(frame)
        if "status" in frame.columns:
            reasons = frame["error"] if "error" in frame.columns else [""] * len(frame)
            errors = [(str(r) if isinstance(r, str) and r else "failed") if st == "failed" else None
                      for st, r in zip(frame["status"], reasons)]
        seconds = list(frame["eval_seconds"]) if "eval_seconds" in frame.columns else None
        self.tell(points, values, errors=errors, eval_seconds=seconds)

    def set_pending(self, points: Sequence[Mapping[str, Any]]) -> None:
        """Replace the pending points by ``points``: the points under evaluation now, wherever they were asked.

        For callers that share a study with other workers (e.g. :class:`~mcbo.integrations.optuna.McboSampler`):
        points asked here and no longer running are dropped, points running elsewhere are added.
        """
        known = {json.dumps(p["point"], sort_keys=True, default=str): p for p in self._pending}
        pending = []
        for point in points:
            point = self.space.validate(point)
            entry = known.get(json.dumps(point, sort_keys=True, default=str))
            pending.append(entry if entry is not None else {"point": point, "ask_seconds": float("nan")})
        self._pending = pending

    def _pop_pending(self, point: dict[str, Any]) -> float:
        for i, p in enumerate(self._pending):
            if p["point"] == point:
                return float(self._pending.pop(i)["ask_seconds"])
        return float("nan")

    def _on_tell(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Hook called with the newly told successful points ``[m, d]`` and values ``[m]``."""

    def _on_told(self, records: list[dict[str, Any]]) -> None:
        """Hook called after every :meth:`tell` with its new records, ok and failed, in order.

        Each record holds the decoded ``point``, ``value`` (NaN when failed), ``status`` (``"ok"`` or
        ``"failed"``) and ``error``; for solvers that must see failures too (the Optuna-backed ones).
        """

    # ------------------------------------------------------------------ results
    @property
    def n_evaluations(self) -> int:
        return len(self._records)

    @property
    def best(self) -> tuple[dict[str, Any] | None, float]:
        """The best point told so far and its value (``(None, inf)`` before any success)."""
        if len(self.y) == 0:
            return None, float("inf")
        i = int(torch.argmin(self.y))
        ok = [r for r in self._records if r["status"] == "ok"]  # row i of X and y is the i-th success
        return dict(ok[i]["point"]), float(self.y[i])

    @property
    def history(self) -> pd.DataFrame:
        """One row per told evaluation: index, parameters, value, status, error, timings, best so far."""
        columns = ["index", *self.space.names, "value", "status", "error", "ask_seconds", "eval_seconds"]
        rows = [
            {"index": r["index"], **r["point"], "value": r["value"], "status": r["status"], "error": r["error"],
             "ask_seconds": r["ask_seconds"], "eval_seconds": r["eval_seconds"]}
            for r in self._records
        ]
        frame = pd.DataFrame(rows, columns=columns)
        frame["best_value"] = frame["value"].where(frame["status"] == "ok").cummin().ffill()
        return frame

    # -------------------------------------------------------------- optimise
    def optimize(
        self,
        black_box: Callable[[dict[str, Any]], float],
        n_evaluations: int,
        batch_size: int = 1,
        progress: bool = False,
        callback: Callable[["Solver"], None] | None = None,
        *,
        n_workers: int | None = None,
        executor: Any = None,
        eval_timeout: float | None = None,
        storage: str | Path | None = None,
    ) -> tuple[dict[str, Any] | None, float]:
        """Run ask / evaluate / tell until ``n_evaluations`` more points are told.

        A black box that raises, or returns None/NaN/inf, is recorded as failed and the run goes on.

        Where evaluations run:

        * by default (``n_workers`` 1, no ``executor``, no ``eval_timeout``) in this process, ``batch_size``
          points per ask, told together;
        * with ``n_workers > 1`` or an ``eval_timeout``, in that many local worker processes (one with only a
          timeout); with ``executor`` (a :class:`distributed.Client`), as tasks on its Dask cluster. The loop is
          asynchronous: as soon as an evaluation finishes it is told and a new point is asked, the running ones
          being pending points of that ask, so ``n_workers`` evaluations are always in flight. An evaluation
          that runs past ``eval_timeout`` seconds is stopped (its process ended) and recorded as failed with
          an error starting ``timeout:``; a worker that dies (segfault, ``os._exit``) is replaced and its
          evaluation recorded as failed with an error starting ``crashed:``. The black box must pickle (see
          :mod:`mcbo.solvers.parallel`); ``batch_size`` must be 1.

        With ``storage`` (``"sqlite:///run.db"`` or a path) every ask and tell is committed to that SQLite file
        with the solver's state, and ``n_evaluations`` counts the evaluations of the stored run (those the solver
        had before the run's first call excluded): calling again with the same arguments resumes where the
        run stopped (even after ``kill -9``) and evaluates no stored point again. Points in flight when the run
        stopped are evaluated again on resume, first; a point in flight at two interruptions is recorded as
        failed with an error starting ``interrupted:`` instead (it may be what kills the run).

        Args:
            black_box: called with one point (a dict); returns the value to minimise.
            n_evaluations: evaluations to run (>= 0); with ``storage``, the run's total.
            batch_size: points per ask in the in-process loop (>= 1).
            progress: show a tqdm progress bar.
            callback: called with the solver after every tell.
            n_workers: evaluations in flight at once (>= 1); ``None``: 1, or with ``executor`` every thread of
                the Dask cluster when the run starts.
            executor: a :class:`distributed.Client` of an existing Dask cluster to evaluate on.
            eval_timeout: seconds an evaluation may run (> 0); ``None``: no limit.
            storage: SQLite file of a durable, resumable run.

        Returns:
            :attr:`best`.

        Raises:
            ValueError: bad arguments; a black box that does not pickle when it must
                (:class:`~mcbo.solvers.parallel.BlackBoxPicklingError`); a storage of another run or program, or
                in use by another process.
        """
        from tqdm.auto import tqdm

        if not callable(black_box):
            raise ValueError(f"black_box must be callable (point dict -> float), got {type(black_box).__name__}")
        if isinstance(n_evaluations, bool) or not isinstance(n_evaluations, (int, np.integer)) or n_evaluations < 0 \
                or isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"need n_evaluations >= 0 and batch_size >= 1, got {n_evaluations}, {batch_size}")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer))
                                      or n_workers < 1):
            raise ValueError(f"n_workers must be an integer >= 1 (or None), got {n_workers!r}")
        if eval_timeout is not None and (isinstance(eval_timeout, bool) or _finite_real(eval_timeout) is None
                                         or eval_timeout <= 0):
            raise ValueError(f"eval_timeout must be a number of seconds > 0 (or None), got {eval_timeout!r}")
        in_workers = executor is not None or (n_workers or 1) > 1 or eval_timeout is not None
        if in_workers and batch_size != 1:
            raise ValueError(f"batch_size={batch_size} is for the in-process loop; with n_workers, eval_timeout or "
                             f"executor a new point is asked as each evaluation ends (leave batch_size at 1)")
        store = RunStore(storage_path(storage)) if storage is not None else None
        try:
            run = _RunLog(self, store, int(n_evaluations))
            bar = tqdm(total=run.budget, initial=run.done, disable=not progress, desc=self.name,
                       unit="eval")
            try:
                if in_workers:
                    self._optimize_in_workers(black_box, run, bar, callback, n_workers, executor, eval_timeout)
                else:
                    self._optimize_in_process(black_box, run, bar, callback, int(batch_size))
            finally:
                bar.close()
        finally:
            if store is not None:
                store.close()
        return self.best

    def _optimize_in_process(self, black_box: Callable[[dict[str, Any]], Any], run: _RunLog, bar: Any,
                             callback: Callable[["Solver"], None] | None, batch_size: int) -> None:
        """:meth:`optimize`'s loop in this process: ask a batch, evaluate it point by point, tell it."""
        redo = deque(run.redo)
        points: list[dict[str, Any]] = []
        try:
            while run.done < run.budget:
                n = min(batch_size, run.budget - run.done)
                points = [redo.popleft() for _ in range(min(n, len(redo)))]
                if not points:
                    points = self.ask(n)
                    run.asked(points)
                outcomes = [evaluate_point(black_box, point) for point in points]
                values, errors = zip(*(_checked_outcome(value, error) for value, error, _ in outcomes))
                self.tell(points, list(values), errors=list(errors), eval_seconds=[s for _, _, s in outcomes])
                told, points = points, []
                run.told(told)
                bar.update(len(told))
                bar.set_postfix(best=f"{self.best[1]:.4g}")
                if callback is not None:
                    callback(self)
        except BaseException:
            self._drop_pending([*points, *redo])  # never told: not pending once the run is abandoned
            raise

    def _optimize_in_workers(self, black_box: Callable[[dict[str, Any]], Any], run: _RunLog, bar: Any,
                             callback: Callable[["Solver"], None] | None, n_workers: int | None, executor: Any,
                             eval_timeout: float | None) -> None:
        """:meth:`optimize`'s asynchronous loop: keep the evaluator full; tell each outcome and ask again."""
        redo = deque(run.redo)
        running: dict[int, dict[str, Any]] = {}
        keys = itertools.count()
        exhausted: SearchSpaceExhausted | None = None
        with make_evaluator(black_box, n_workers, executor, eval_timeout) as evaluator:
            logger.info("%s: %d evaluations on %s%s", self.name, run.budget - run.done, evaluator.where,
                        f" (eval_timeout {eval_timeout:g} s)" if eval_timeout else "")
            try:
                while True:
                    room = min(evaluator.capacity - len(running), run.budget - run.done - len(running))
                    if room > 0 and exhausted is None:
                        points = [redo.popleft() for _ in range(min(room, len(redo)))]
                        if len(points) < room:
                            try:
                                asked = self.ask(room - len(points))
                            except SearchSpaceExhausted as err:  # finish what runs, then say so
                                exhausted, asked = err, []
                            run.asked(asked)
                            points += asked
                        for point in points:
                            key = next(keys)
                            running[key] = point
                            evaluator.submit(key, point)
                    if not running:
                        break
                    for outcome in evaluator.wait():
                        point = running.pop(outcome.key)
                        value, error = _checked_outcome(outcome.value, outcome.error)
                        self.tell([point], [value], errors=[error], eval_seconds=[outcome.seconds])
                        run.told([point])
                        bar.update(1)
                        bar.set_postfix(best=f"{self.best[1]:.4g}", running=len(running))
                        if callback is not None:
                            callback(self)
            finally:
                self._drop_pending([*running.values(), *redo])
        if exhausted is not None:
            raise exhausted

    def _drop_pending(self, points: Sequence[Mapping[str, Any]]) -> None:
        """Forget ``points`` as pending: :meth:`optimize` handed them out and stops without telling them."""
        for point in points:
            self._pop_pending(dict(point))

    # ------------------------------------------------------------ save / load
    def _extra_state(self) -> dict[str, Any]:
        """Subclass state to save (plain JSON data)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_extra_state` saved."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run, as plain JSON data (no pickle)."""
        return {
            "version": STATE_VERSION,
            "solver": self.name,
            "space": self.space.to_dict(),
            "seed": self.seed,
            "records": self._records,
            "pending": self._pending,
            "np_rng": self.np_rng.bit_generator.state,
            "torch_gen": base64.b64encode(self.torch_gen.get_state().numpy().tobytes()).decode("ascii"),
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` on a solver built the same way.

        The state is checked before anything changes: a malformed one (hand-edited, truncated, from another
        solver or space) raises one ``ValueError`` naming the field and what is allowed, and leaves the solver
        as it was.
        """
        checked = _checked_state(self, state)
        backup = (self._records, self._pending, self.X, self.y, self.np_rng.bit_generator.state,
                  self.torch_gen.get_state(), self._extra_state())
        self._records, self._pending = checked["records"], checked["pending"]
        ok = [r for r in self._records if r["status"] == "ok"]
        self.X = (self.space.encode([r["point"] for r in ok], dtype=self.dtype).to(self.device) if ok
                  else torch.empty(0, self.space.d, dtype=self.dtype, device=self.device))
        self.y = torch.tensor([r["value"] for r in ok], dtype=self.dtype, device=self.device)
        self.np_rng.bit_generator.state = checked["np_rng"]
        self.torch_gen.set_state(checked["torch_gen"])
        try:
            self._load_extra_state(checked["extra"])
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, RuntimeError) as err:
            self._records, self._pending, self.X, self.y = backup[:4]
            self.np_rng.bit_generator.state = backup[4]
            self.torch_gen.set_state(backup[5])
            try:
                self._load_extra_state(backup[6])
            except Exception:  # noqa: BLE001 -- best effort; the error below is what the caller must see
                logger.warning("%s: could not restore the state held before the failed load", self.name)
            raise ValueError(f"solver state field 'extra' is not a valid {self.name} state (what save() writes "
                             f"for this solver): {type(err).__name__}: {err}") from None

    def save(self, path: str | Path) -> None:
        """Write :meth:`state_dict` as JSON to ``path`` (atomically)."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.state_dict(), default=_json_default))
        tmp.replace(path)

    def load(self, path: str | Path) -> None:
        """Restore the state saved at ``path`` by :meth:`save`.

        Raises:
            ValueError: naming the file, the bad field and what is allowed, when the file is not valid JSON or
                not a state of this solver and space (see :meth:`load_state_dict`).
        """
        text = Path(path).read_text()
        try:
            state = json.loads(text)
        except ValueError as err:
            raise ValueError(f"solver state file {str(path)!r} is not valid JSON: {err}") from None
        try:
            self.load_state_dict(state)
        except ValueError as err:
            raise ValueError(f"solver state file {str(path)!r}: {err}") from None


#: A point in flight at this many interruptions of a durable run is recorded as failed ('interrupted'), not rerun.
_MAX_INTERRUPTED = 2


def _checked_outcome(value: Any, error: str | None) -> tuple[float | None, str | None]:
    """What :meth:`Solver.optimize` tells for one evaluation: ``(value, None)`` or ``(None, error)``."""
    if error:
        return None, str(error)
    try:
        number = _finite_real(value)
    except (ValueError, TypeError, RuntimeError):  # e.g. a numpy array of several numbers
        number = None
    if number is None:
        return None, f"invalid value {value!r:.200}"
    return number, None


class _RunLog:
    """The budget of one :meth:`Solver.optimize` call and, with a storage, its durable record.

    Without a store it only counts. With one, it first brings ``solver`` up to the stored run (its records,
    state and pending points) or starts the run there, and then commits the solver's state with every ask
    (:meth:`asked`) and tell (:meth:`told`), with the points in flight.

    Attributes:
        start: evaluations the solver had before the run (not counted in its budget).
        budget: evaluations the run makes in all (``n_evaluations``).
        redo: points in flight when a stored run stopped, to evaluate first (they are pending already).
    """

    def __init__(self, solver: Solver, store: RunStore | None, n_evaluations: int) -> None:
        self.solver, self.store, self.budget = solver, store, n_evaluations
        self.redo: list[dict[str, Any]] = []
        self.inflight: dict[str, int] = {}  # point JSON -> interruptions it has been in flight at, plus one
        self.start = solver.n_evaluations if store is None else self._open(store)

    @property
    def done(self) -> int:
        """Evaluations of the run told so far."""
        return self.solver.n_evaluations - self.start

    def asked(self, points: Sequence[Mapping[str, Any]]) -> None:
        if self.store is not None and points:
            self.inflight.update((self._key(p), 1) for p in points)
            self._commit()

    def told(self, points: Sequence[Mapping[str, Any]]) -> None:
        if self.store is not None:
            for point in points:
                self.inflight.pop(self._key(point), None)
            self._commit()

    def _key(self, point: Mapping[str, Any]) -> str:
        return json.dumps(self.solver.space.validate(point), sort_keys=True, default=_json_default)

    def _identity(self) -> dict[str, str]:
        solver = self.solver
        return {"solver": solver.name, "seed": str(solver.seed),
                "space": json.dumps(solver.space.to_dict(), sort_keys=True, default=_json_default)}

    def _open(self, store: RunStore) -> int:
        """Resume the stored run into the solver (or start one); the evaluations the solver had before it."""
        solver, where = self.solver, str(store.path)
        stored = store.load()
        identity = self._identity()
        if stored is None:
            start = solver.n_evaluations
            self._commit({**identity, "n_prior": str(start)})
            logger.info("%s: new durable run in %s", solver.name, where)
            return start
        for field in ("solver", "seed", "space"):
            if stored.identity.get(field) != identity[field]:
                shown = {"solver": stored.identity.get("solver"), "seed": stored.identity.get("seed")}
                raise ValueError(f"storage {where!r} holds another run (solver {shown['solver']!r}, seed "
                                 f"{shown['seed']}{', another search space' if field == 'space' else ''}): its "
                                 f"{field} differs from this solver's ({identity[field] if field != 'space' else '...'}"
                                 f"); give this run its own storage")
        if stored.state is None:
            raise ValueError(f"storage {where!r} holds no solver state; delete the file to start the run again")
        try:
            state = json.loads(stored.state)
            state["records"] = [
                {"index": row["idx"], "point": json.loads(row["point"]), "value": row["value"],
                 "status": row["status"], "error": row["error"], "ask_seconds": row["ask_seconds"],
                 "eval_seconds": row["eval_seconds"]}
                for row in stored.rows
            ]
        except (ValueError, TypeError) as err:
            raise ValueError(f"storage {where!r} holds a malformed solver state: {err}") from None
        try:
            solver.load_state_dict(state)
        except ValueError as err:
            raise ValueError(f"storage {where!r}: {err}") from None
        start = int(stored.identity.get("n_prior", 0))
        lost = []
        for point in solver.pending:
            attempts = stored.inflight.get(self._key(point))
            if attempts is None:  # pending before the run started: not the run's to evaluate
                continue
            if attempts >= _MAX_INTERRUPTED:
                lost.append(point)
            else:
                self.redo.append(point)
                self.inflight[self._key(point)] = attempts + 1
        if lost:
            logger.warning("%s: %d point(s) were in flight at %d interruptions of the run; recording them as "
                           "failed ('interrupted')", solver.name, len(lost), _MAX_INTERRUPTED)
            solver.tell(lost, [None] * len(lost), errors=[
                f"{INTERRUPTED}: the run stopped {_MAX_INTERRUPTED} times while this point was being evaluated; "
                "it is not evaluated again"] * len(lost))
        self._commit()
        logger.info("%s: resuming the run in %s at evaluation %d (%d in flight evaluated again)", solver.name,
                    where, self.solver.n_evaluations - start, len(self.redo))
        return start

    def _commit(self, identity: dict[str, str] | None = None) -> None:
        store = self.store
        assert store is not None
        records = self.solver._records
        rows = [(r["index"], json.dumps(r["point"], default=_json_default), finite_or_none(r["value"]), r["status"],
                 r["error"], finite_or_none(r["ask_seconds"]), finite_or_none(r["eval_seconds"]))
                for r in records[store.n_rows:]]
        state = {k: v for k, v in self.solver.state_dict().items() if k != "records"}
        store.commit(rows, json.dumps(state, default=_json_default), self.inflight, identity)


def _checked_state(solver: Solver, state: Any) -> dict[str, Any]:
    """The parts of a saved ``state`` that :meth:`Solver.load_state_dict` restores, checked and normalised.

    Raises:
        ValueError: naming the first bad field (``records[3].status``, ``np_rng``, ...) and what is allowed.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"solver state must be a JSON object (what save() writes), got {type(state).__name__}")
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported solver state version {state.get('version')!r}; expected {STATE_VERSION}")
    if state.get("space") != solver.space.to_dict():
        raise ValueError("saved state belongs to a different search space")
    if state.get("solver") != solver.name:
        raise ValueError(f"saved state belongs to solver {state.get('solver')!r}, not {solver.name!r}")
    missing = [k for k in ("records", "pending", "np_rng", "torch_gen") if k not in state]
    if missing:
        raise ValueError(f"solver state is missing field(s) {missing}")
    records = _field_list(state["records"], "records")
    pending = _field_list(state["pending"], "pending")
    checked_records = [_checked_record(solver.space, r, i) for i, r in enumerate(records)]
    checked_pending = []
    for i, entry in enumerate(pending):
        where = f"pending[{i}]"
        if not isinstance(entry, Mapping) or "point" not in entry:
            raise ValueError(f"solver state field {where} must be an object with a 'point', got {entry!r:.200}")
        checked_pending.append({"point": _checked_point(solver.space, entry["point"], f"{where}.point"),
                                "ask_seconds": _seconds(entry.get("ask_seconds"), f"{where}.ask_seconds")})
    probe = type(solver.np_rng.bit_generator)()
    try:
        probe.state = state["np_rng"]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as err:
        raise ValueError(f"solver state field 'np_rng' is not a numpy {type(probe).__name__} state (a "
                         f"bit_generator state dict as save() writes it): {type(err).__name__}: {err}") from None
    try:
        if not isinstance(state["torch_gen"], str):
            raise TypeError(f"got {type(state['torch_gen']).__name__}")
        raw = np.frombuffer(base64.b64decode(state["torch_gen"], validate=True), dtype=np.uint8).copy()
        torch_state = torch.from_numpy(raw)
        torch.Generator().set_state(torch_state)
    except (TypeError, ValueError, binascii.Error, RuntimeError) as err:
        raise ValueError(f"solver state field 'torch_gen' is not a torch generator state (the base64 string "
                         f"save() writes): {type(err).__name__}: {err}") from None
    extra = state.get("extra", {})
    if not isinstance(extra, Mapping):
        raise ValueError(f"solver state field 'extra' must be an object, got {type(extra).__name__}")
    return {"records": checked_records, "pending": checked_pending, "np_rng": state["np_rng"],
            "torch_gen": torch_state, "extra": dict(extra)}


def _field_list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"solver state field {field!r} must be a list, got {type(value).__name__}")
    return value


def _checked_point(space: SearchSpace, point: Any, where: str) -> dict[str, Any]:
    try:
        return space.validate(point)
    except ValueError as err:
        raise ValueError(f"solver state field {where} is not a point of the search space: {err}") from None


def _seconds(value: Any, where: str) -> float:
    """A saved duration: a non-negative number, or ``null``/NaN when unknown."""
    if value is None:
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isinf(value):
        raise ValueError(f"solver state field {where} must be a non-negative number or null, got {value!r:.100}")
    return float(value)


def _checked_record(space: SearchSpace, record: Any, i: int) -> dict[str, Any]:
    """Record ``i`` of a saved history: index ``i``, a valid point, status ``ok`` with a finite value or
    ``failed`` with NaN/null, an error string and two durations."""
    where = f"records[{i}]"
    keys = ("index", "point", "value", "status", "error")
    if not isinstance(record, Mapping) or any(k not in record for k in keys):
        raise ValueError(f"solver state field {where} must be an object with keys {list(keys)} (and ask_seconds, "
                         f"eval_seconds), got {record!r:.200}")
    index = record["index"]
    if isinstance(index, bool) or not isinstance(index, int) or index != i:
        raise ValueError(f"solver state field {where}.index is {index!r}; allowed: {i} (records are numbered "
                         f"0, 1, 2, ... in order, each once)")
    status = record["status"]
    if status not in _STATUSES:
        raise ValueError(f"solver state field {where}.status is {status!r}; allowed: {list(_STATUSES)}")
    value = record["value"]
    if status == "ok":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"solver state field {where}.value is {value!r:.100} with status 'ok'; allowed: a "
                             f"finite number (a failed evaluation has status 'failed')")
        value = float(value)
    else:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"solver state field {where}.value is {value!r:.100} with status 'failed'; allowed: "
                             f"NaN or null")
        value = float("nan")
    if not isinstance(record["error"], str):
        raise ValueError(f"solver state field {where}.error must be a string, got {record['error']!r:.100}")
    return {"index": i, "point": _checked_point(space, record["point"], f"{where}.point"), "value": value,
            "status": status, "error": record["error"],
            "ask_seconds": _seconds(record.get("ask_seconds"), f"{where}.ask_seconds"),
            "eval_seconds": _seconds(record.get("eval_seconds"), f"{where}.eval_seconds")}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")
