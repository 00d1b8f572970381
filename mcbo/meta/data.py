"""Task families for meta-training and held-out evaluation of transformer neural processes.

A *family* is a distribution over black boxes on one fixed search space; a model trained on a
family's training tasks is evaluated on its held-out tasks (disjoint seeds). Families:

* ``gp_prior`` — functions drawn from a zero-mean GP prior on ``[0, 1]^dim`` with a Matérn-5/2 or
  RBF kernel and per-task, per-dimension lengthscales (log-uniform), realised by random Fourier
  features (Rahimi & Recht, NeurIPS 2007) so a task is a true function of continuous inputs.
* ``shifted`` — Branin or Hartmann-3 (constants from Surjanovic & Bingham's virtual library)
  on the unit cube with random translations and output scalings, the families of MetaBO (Volpp
  et al., ICLR 2020) and NAP: ``f(u) = s * g(u - t)`` with ``t ~ U[-shift, shift]^d``,
  ``s ~ U[scale]``.
* ``hpo_krr`` — hyper-parameter tables of kernel ridge regression (scikit-learn's ``KernelRidge``)
  on scikit-learn's bundled data sets (diabetes, iris, wine, breast cancer, digits; no download).
  Task ``i`` uses data set ``i mod 5``, a random subsample of rows (150-350), a random subset of
  at least half of the features, random per-feature scale distortions and a random 70/30 split,
  all drawn from the task's seed. The table holds, for every point of a finite 384-point space
  (kernel x alpha x gamma x standardise), the validation ``1 - R^2`` (mean squared error over the
  mean predictor's; one-hot targets for classification), capped at 2. Tables are computed once
  and cached as ``.npy`` files (about 1-2 s per task on one core), each under a key of everything
  that changes its content (see :func:`krr_table_key`). A table is computed with the BLAS libraries
  held to one thread: with more, the order of floating-point sums changes with the thread count,
  and so do the values of ill-conditioned fits (by up to 1.6 in ``1 - R^2`` on some tasks).
* ``table`` — any user-given tables on a finite space (:class:`TableFamily`).

Training tasks use seeds ``0, 1, ...``; held-out tasks use seeds ``TEST_SEED_OFFSET + i``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import platform
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcbo.acq_optim.pool import enumerate_space
from mcbo.space import Boolean, Categorical, Ordinal, Real, SearchSpace
from mcbo.tasks.base import Task

logger = logging.getLogger(__name__)

#: Held-out task ``i`` of a family uses seed ``TEST_SEED_OFFSET + i``.
TEST_SEED_OFFSET = 1_000_000
SPLITS = ("train", "test")
_DEFAULT_CACHE = Path("~/.cache/mcbo/meta")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def task_seed(split: str, index: int) -> int:
    """Seed of task ``index`` of ``split`` (held-out seeds never meet training seeds)."""
    _check_split(split)
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"task index must be an integer >= 0, got {index!r}")
    return int(index) + (TEST_SEED_OFFSET if split == "test" else 0)


# ------------------------------------------------------------------------------------------ tasks
class MetaTask(Task):
    """A task of a family: a black box plus the data meta-training needs.

    Attributes:
        y_min, y_max: the best and worst value used to normalise regret (exact for tables,
            estimated from a reference sample for continuous functions).
    """

    y_min: float = 0.0
    y_max: float = 1.0

    @abstractmethod
    def table(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` (or all, for smaller finite tasks) encoded points ``[N, d]`` with their values ``[N]``."""

    def normalised_regret(self, best: np.ndarray | float) -> np.ndarray:
        """``(best - y_min) / (y_max - y_min)``, clipped to ``[0, 1]`` (HPO-B's normalised regret)."""
        span = max(self.y_max - self.y_min, 1e-12)
        return np.clip((np.asarray(best, dtype=float) - self.y_min) / span, 0.0, 1.0)


class TableTask(MetaTask):
    """A finite task given as a table: encoded points ``X`` ``[N, d]`` and their values ``y`` ``[N]``."""

    def __init__(self, space: SearchSpace, X: torch.Tensor, y: torch.Tensor, name: str = "table", seed: int = 0):
        super().__init__(seed)
        X = torch.as_tensor(X, dtype=torch.float64).reshape(-1, space.d)
        y = torch.as_tensor(y, dtype=torch.float64).reshape(-1)
        if X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise ValueError(f"table task {name!r}: got {X.shape[0]} points and {y.shape[0]} values")
        if not bool(torch.isfinite(y).all()):
            raise ValueError(f"table task {name!r}: every value must be finite")
        self._space, self.X, self.y, self.name = space, X, y, name
        self.y_min, self.y_max = float(y.min()), float(y.max())
        self.optimum = self.y_min
        self._index = {tuple(np.round(row, 9)): i for i, row in enumerate(X.numpy())}

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        rows = self._space.encode(points).numpy()
        out = np.empty(len(rows))
        for j, row in enumerate(rows):
            i = self._index.get(tuple(np.round(row, 9)))
            if i is None:
                raise ValueError(f"table task {self.name!r}: point {points[j]!r} is not in the table")
            out[j] = float(self.y[i])
        return out

    def table(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if n >= self.X.shape[0]:
            return self.X, self.y
        idx = torch.from_numpy(rng.choice(self.X.shape[0], size=n, replace=False))
        return self.X[idx], self.y[idx]


class FunctionTask(MetaTask):
    """A continuous task on ``[0, 1]^d`` (Real parameters ``x0..``) from a vectorised function of ``U`` ``[n, d]``.

    Args:
        fn: maps unit-cube points ``[n, d]`` (numpy) to values ``[n]``.
        dim: number of inputs.
        n_reference: random points used to estimate ``y_min`` / ``y_max``.
        known_min: the exact minimum when known (used instead of the estimate when lower).
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], dim: int, name: str, seed: int = 0,
                 n_reference: int = 20_000, known_min: float | None = None) -> None:
        super().__init__(seed)
        self.fn, self.name = fn, name
        self._space = unit_cube(dim)
        self.n_reference, self.optimum = n_reference, known_min
        self._range: tuple[float, float] | None = None

    def _reference_range(self) -> tuple[float, float]:
        if self._range is None:  # computed on first use: training never needs it
            ref = self.fn(np.random.default_rng(self.seed + 7).random((self.n_reference, self._space.d)))
            low = float(ref.min()) if self.optimum is None else float(min(ref.min(), self.optimum))
            self._range = (low, float(ref.max()))
        return self._range

    @property
    def y_min(self) -> float:  # type: ignore[override]
        return self._reference_range()[0]

    @property
    def y_max(self) -> float:  # type: ignore[override]
        return self._reference_range()[1]

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        return self.fn(self._space.encode(points).numpy())

    def table(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        U = rng.random((n, self._space.d))
        return torch.from_numpy(U), torch.from_numpy(np.asarray(self.fn(U), dtype=float))


def unit_cube(dim: int) -> SearchSpace:
    """``[0, 1]^dim`` as Real parameters ``x0, x1, ...``."""
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return SearchSpace([Real(f"x{i}", 0.0, 1.0) for i in range(dim)])


# --------------------------------------------------------------------------------------- families
class TaskFamily(ABC):
    """A distribution of tasks on one search space, with training and held-out tasks."""

    #: Registry name (the ``type`` of a family spec).
    kind: str = "family"

    @property
    @abstractmethod
    def space(self) -> SearchSpace:
        """The search space every task of the family shares."""

    @abstractmethod
    def task(self, split: str, index: int) -> MetaTask:
        """Task ``index`` of ``split`` (``"train"`` or ``"test"``); the same arguments give the same task."""

    def n_tasks(self, split: str) -> int | None:
        """Number of tasks in ``split``, or ``None`` when the family is unlimited."""
        _check_split(split)
        return None

    def tasks(self, split: str, n: int) -> list[MetaTask]:
        """The first ``n`` tasks of ``split``."""
        return [self.task(split, i) for i in range(n)]

    def spec(self) -> dict[str, Any]:
        """Plain-data description (stored in checkpoints)."""
        return {"type": self.kind}


class TableFamily(TaskFamily):
    """Tasks given as value tables over the points of a finite space.

    Args:
        space: a finite search space.
        train: ``[n_train, N]`` values aligned with ``enumerate_space(space)``.
        test: ``[n_test, N]`` held-out values in the same order.
    """

    kind = "table"

    def __init__(self, space: SearchSpace, train: np.ndarray, test: np.ndarray, name: str = "table") -> None:
        self._space = space
        self.X = enumerate_space(space, max_points=1_000_000)
        self.name = name
        self._tables = {}
        for split, values in (("train", train), ("test", test)):
            arr = np.asarray(values, dtype=float)
            if arr.ndim != 2 or arr.shape[1] != self.X.shape[0]:
                raise ValueError(f"table family {name!r}: {split} values must have shape [n_tasks, "
                                 f"{self.X.shape[0]}] (one value per point of the space), got {arr.shape}")
            self._tables[split] = arr

    @property
    def space(self) -> SearchSpace:
        return self._space

    def n_tasks(self, split: str) -> int:
        _check_split(split)
        return int(self._tables[split].shape[0])

    def task(self, split: str, index: int) -> MetaTask:
        _check_split(split)
        if not 0 <= index < self.n_tasks(split):
            raise ValueError(f"table family {self.name!r} has {self.n_tasks(split)} {split} tasks, got index {index}")
        return TableTask(self._space, self.X, torch.from_numpy(self._tables[split][index]),
                         name=f"{self.name}-{split}{index}", seed=task_seed(split, index))

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "name": self.name}

    @property
    def tables_sha256(self) -> str:
        """SHA-256 (hex) of the training then held-out tables (float64): which data a model was trained on."""
        digest = hashlib.sha256()
        for split in SPLITS:
            digest.update(np.ascontiguousarray(self._tables[split], dtype=np.float64).tobytes())
        return digest.hexdigest()


class GPPriorFamily(TaskFamily):
    """GP prior sample paths on ``[0, 1]^dim`` by random Fourier features.

    Args:
        dim: input dimension.
        lengthscale: ``(low, high)`` of the log-uniform per-dimension lengthscales.
        kernel: ``"matern52"`` or ``"rbf"``.
        n_features: random features per function.
    """

    kind = "gp_prior"

    def __init__(self, dim: int = 3, lengthscale: Sequence[float] = (0.1, 0.6), kernel: str = "matern52",
                 n_features: int = 512) -> None:
        self._space = unit_cube(dim)
        lo, hi = _pair("gp_prior lengthscale", lengthscale)
        if kernel not in ("matern52", "rbf"):
            raise ValueError(f"gp_prior kernel must be 'matern52' or 'rbf', got {kernel!r}")
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"gp_prior n_features must be a positive integer, got {n_features!r}")
        self.dim, self.lengthscale, self.kernel, self.n_features = dim, (lo, hi), kernel, n_features

    @property
    def space(self) -> SearchSpace:
        return self._space

    def task(self, split: str, index: int) -> MetaTask:
        seed = task_seed(split, index)
        rng = np.random.default_rng(seed)
        lo, hi = self.lengthscale
        ell = np.exp(rng.uniform(np.log(lo), np.log(hi), self.dim))
        omega = rng.standard_normal((self.n_features, self.dim))
        if self.kernel == "matern52":  # spectral density of Matern-nu: multivariate t with 2 nu dof
            omega *= np.sqrt(5.0 / rng.chisquare(5.0, (self.n_features, 1)))
        omega /= ell
        phase = rng.uniform(0.0, 2 * np.pi, self.n_features)
        weight = rng.standard_normal(self.n_features) * np.sqrt(2.0 / self.n_features)

        def fn(U: np.ndarray) -> np.ndarray:
            return np.cos(U @ omega.T + phase) @ weight

        return FunctionTask(fn, self.dim, name=f"gp_prior-{split}{index}", seed=seed)

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "dim": self.dim, "lengthscale": list(self.lengthscale), "kernel": self.kernel,
                "n_features": self.n_features}


def branin(U: np.ndarray) -> np.ndarray:
    """Branin on the unit square (``x1 = 15 u1 - 5``, ``x2 = 15 u2``); minimum 0.397887."""
    x1, x2 = 15.0 * U[:, 0] - 5.0, 15.0 * U[:, 1]
    b, c, t = 5.1 / (4 * np.pi**2), 5.0 / np.pi, 1.0 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1 - t) * np.cos(x1) + 10.0


_H3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H3_A = np.array([[3.0, 10.0, 30.0], [0.1, 10.0, 35.0], [3.0, 10.0, 30.0], [0.1, 10.0, 35.0]])
_H3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])


def hartmann3(U: np.ndarray) -> np.ndarray:
    """Hartmann-3 on the unit cube; minimum -3.86278."""
    inner = ((U[:, None, :] - _H3_P[None]) ** 2 * _H3_A[None]).sum(-1)
    return -(np.exp(-inner) * _H3_ALPHA).sum(-1)


#: name -> (function, dimension, minimum, minimisers in unit coordinates)
_BASE_FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int, float, np.ndarray]] = {
    "branin": (branin, 2, 0.397887,
               np.array([[(5 - np.pi) / 15, 12.275 / 15], [(5 + np.pi) / 15, 2.275 / 15], [14.42478 / 15, 2.475 / 15]])),
    "hartmann3": (hartmann3, 3, -3.86278, np.array([[0.114614, 0.555649, 0.852547]])),
}


class ShiftedFunctionFamily(TaskFamily):
    """Translated and scaled copies of a classic function: ``f(u) = s * g(u - t)``.

    Args:
        function: ``"branin"`` or ``"hartmann3"``.
        shift: half-width of the uniform translation ``t`` per coordinate.
        scale: ``(low, high)`` of the uniform output scaling ``s``.
    """

    kind = "shifted"

    def __init__(self, function: str = "branin", shift: float = 0.1, scale: Sequence[float] = (0.9, 1.1)) -> None:
        if function not in _BASE_FUNCTIONS:
            raise ValueError(f"shifted function must be one of {sorted(_BASE_FUNCTIONS)}, got {function!r}")
        if not isinstance(shift, (int, float)) or not 0 <= shift < 0.5:
            raise ValueError(f"shifted shift must be a number in [0, 0.5), got {shift!r}")
        lo, hi = _pair("shifted scale", scale)
        self.function, self.shift, self.scale = function, float(shift), (lo, hi)
        self._space = unit_cube(_BASE_FUNCTIONS[function][1])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def task(self, split: str, index: int) -> MetaTask:
        seed = task_seed(split, index)
        rng = np.random.default_rng(seed)
        g, dim, g_min, minimisers = _BASE_FUNCTIONS[self.function]
        t = rng.uniform(-self.shift, self.shift, dim)
        s = rng.uniform(*self.scale)

        def fn(U: np.ndarray) -> np.ndarray:
            return s * g(U - t)

        inside = ((minimisers + t >= 0) & (minimisers + t <= 1)).all(-1).any()
        return FunctionTask(fn, dim, name=f"{self.function}-{split}{index}", seed=seed,
                            known_min=s * g_min if inside else None)

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "function": self.function, "shift": self.shift, "scale": list(self.scale)}


# ------------------------------------------------------------------------------------ HPO tables
KRR_KERNELS = ("rbf", "laplacian", "polynomial")
KRR_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
KRR_GAMMAS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
KRR_DATASETS = ("diabetes", "iris", "wine", "breast_cancer", "digits")
#: Version of :func:`krr_table`'s computation (part of the cache key): raise it when the computation changes.
#: Version 2 holds the BLAS libraries to one thread (version 1 used the caller's threads).
KRR_VERSION = 2
#: Threads of the BLAS libraries while a table is computed (part of the cache key).
KRR_BLAS_THREADS = 1
_LOSS_CAP = 2.0


def krr_space() -> SearchSpace:
    """The 384-point space of the ``hpo_krr`` tables."""
    return SearchSpace([
        Categorical("kernel", list(KRR_KERNELS)),
        Ordinal("alpha", list(KRR_ALPHAS)),
        Ordinal("gamma", list(KRR_GAMMAS)),
        Boolean("standardise"),
    ])


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as err:
        raise ImportError("the hpo_krr family needs scikit-learn: pip install scikit-learn") from err


def _load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[n, p]`` and targets ``[n, k]`` (standardised, or one-hot for classification)."""
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    x, y = loader(return_X_y=True)
    if name == "diabetes":
        Y = ((y - y.mean()) / y.std()).reshape(-1, 1)
    else:
        Y = np.eye(int(y.max()) + 1)[y.astype(int)]
    return np.asarray(x, dtype=float), Y


def krr_table_key(dataset: str, seed: int) -> dict[str, Any]:
    """Everything that changes the content of :func:`krr_table` ``(dataset, seed)``: the cache key of its table.

    The task (data set and seed), the computation's version and grid (kernels, alphas, gammas, the
    loss cap), the BLAS thread count it runs with, and the libraries whose arithmetic it uses:
    numpy, scipy and scikit-learn versions, and each BLAS library's implementation, version and
    CPU kernel (OpenBLAS picks its kernels by CPU, so another CPU may give other last digits).
    """
    _require_sklearn()
    import scipy
    import sklearn
    import sklearn.kernel_ridge  # noqa: F401  (loads scipy.linalg's BLAS, so that it is listed below)
    from threadpoolctl import threadpool_info

    blas = sorted({(str(lib.get("internal_api")), str(lib.get("version")), str(lib.get("architecture")))
                   for lib in threadpool_info() if lib.get("user_api") == "blas"})
    return {
        "family": "hpo_krr", "version": KRR_VERSION, "dataset": dataset, "seed": int(seed),
        "kernels": list(KRR_KERNELS), "alphas": list(KRR_ALPHAS), "gammas": list(KRR_GAMMAS), "loss_cap": _LOSS_CAP,
        "blas_threads": KRR_BLAS_THREADS, "numpy": np.__version__, "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__, "blas": [list(b) for b in blas], "machine": platform.machine(),
    }


def krr_table_digest(key: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a :func:`krr_table_key`."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def krr_table(dataset: str, seed: int, space: SearchSpace | None = None) -> np.ndarray:
    """Validation ``1 - R^2`` (capped at 2) of every point of :func:`krr_space` on one task ``[384]``.

    The BLAS libraries (and OpenMP) are held to :data:`KRR_BLAS_THREADS` thread while it runs, so the
    values do not depend on the caller's thread settings.
    """
    from threadpoolctl import threadpool_limits

    if dataset not in KRR_DATASETS:
        raise ValueError(f"hpo_krr dataset must be one of {KRR_DATASETS}, got {dataset!r}")
    _require_sklearn()
    with threadpool_limits(limits=KRR_BLAS_THREADS):
        return _krr_table(dataset, seed, space or krr_space())


def _krr_table(dataset: str, seed: int, space: SearchSpace) -> np.ndarray:
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.metrics.pairwise import pairwise_kernels

    rng = np.random.default_rng(seed)
    x, Y = _load_dataset(dataset)
    rows = rng.choice(len(x), size=min(len(x), int(rng.integers(150, 351))), replace=False)
    n_cols = int(rng.integers(max(2, math.ceil(x.shape[1] / 2)), x.shape[1] + 1))
    cols = np.sort(rng.choice(x.shape[1], size=n_cols, replace=False))
    x = x[np.ix_(rows, cols)] * np.exp(rng.normal(0.0, 1.0, n_cols))
    Y = Y[rows]
    perm = rng.permutation(len(x))
    n_train = int(0.7 * len(x))
    tr, va = perm[:n_train], perm[n_train:]
    base = float(((Y[va] - Y[tr].mean(0)) ** 2).mean())
    inputs = {}
    for standardise in (False, True):
        mu, sd = x[tr].mean(0), x[tr].std(0)
        sd = np.where(sd > 0, sd, 1.0)
        xs = (x - mu) / sd if standardise else x
        inputs[standardise] = (xs[tr], xs[va])
    losses = {}
    for kernel in KRR_KERNELS:
        for gamma in KRR_GAMMAS:
            for standardise, (a, b) in inputs.items():
                extra = {"degree": 2, "coef0": 1.0} if kernel == "polynomial" else {}
                K_tr = pairwise_kernels(a, metric=kernel, gamma=gamma, **extra)
                K_va = pairwise_kernels(b, a, metric=kernel, gamma=gamma, **extra)
                for alpha in KRR_ALPHAS:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            pred = KernelRidge(alpha=alpha, kernel="precomputed").fit(K_tr, Y[tr]).predict(K_va)
                            mse = float(((pred - Y[va]) ** 2).mean())
                        except (np.linalg.LinAlgError, ValueError):
                            mse = float("inf")
                    loss = mse / base if math.isfinite(mse) else _LOSS_CAP
                    losses[(kernel, alpha, gamma, standardise)] = min(loss, _LOSS_CAP)
    points = space.decode(enumerate_space(space, max_points=10_000))
    return np.array([losses[(p["kernel"], p["alpha"], p["gamma"], p["standardise"])] for p in points])


class HPOTableFamily(TableFamily):
    """Kernel-ridge HPO tables on scikit-learn's bundled data sets (see the module notes).

    Args:
        n_train_tasks, n_test_tasks: tables per split (task ``i`` uses ``KRR_DATASETS[i % 5]``).
        cache_dir: folder of the cached ``.npy`` tables.
        datasets: the data sets to cycle through.
        progress: show a progress bar while computing missing tables.
    """

    kind = "hpo_krr"

    def __init__(self, n_train_tasks: int = 96, n_test_tasks: int = 40, cache_dir: str | Path | None = None,
                 datasets: Sequence[str] = KRR_DATASETS, progress: bool = False) -> None:
        for label, value in (("n_train_tasks", n_train_tasks), ("n_test_tasks", n_test_tasks)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"hpo_krr {label} must be a positive integer, got {value!r}")
        datasets = tuple(datasets)
        bad = [d for d in datasets if d not in KRR_DATASETS]
        if not datasets or bad:
            raise ValueError(f"hpo_krr datasets must be a non-empty subset of {KRR_DATASETS}, got {list(datasets)}")
        self.datasets = datasets
        self.cache_dir = Path(cache_dir or _DEFAULT_CACHE).expanduser()
        space = krr_space()
        jobs = [(split, i) for split, n in (("train", n_train_tasks), ("test", n_test_tasks)) for i in range(n)]
        tables: dict[str, list[np.ndarray]] = {"train": [], "test": []}
        from tqdm.auto import tqdm

        for split, i in tqdm(jobs, desc="hpo_krr tables", disable=not progress, unit="task"):
            tables[split].append(self._cached_table(space, split, i))
        super().__init__(space, np.stack(tables["train"]), np.stack(tables["test"]), name="hpo_krr")

    def dataset_of(self, index: int) -> str:
        return self.datasets[index % len(self.datasets)]

    def cache_path(self, split: str, index: int) -> Path:
        """The cached table of task ``index`` of ``split``: ``hpo_krr-<dataset>-<seed>-<key digest>.npy``.

        The digest is of :func:`krr_table_key`, so a table computed under other settings or
        libraries is never read in its place; the key itself is written beside it as ``.json``.
        """
        seed = task_seed(split, index)
        dataset = self.dataset_of(index)
        digest = krr_table_digest(krr_table_key(dataset, seed))
        return self.cache_dir / f"hpo_krr-{dataset}-{seed}-{digest[:16]}.npy"

    def _cached_table(self, space: SearchSpace, split: str, index: int) -> np.ndarray:
        seed = task_seed(split, index)
        dataset = self.dataset_of(index)
        path = self.cache_path(split, index)
        if path.is_file():
            try:
                values = np.load(path)
            except (OSError, ValueError, EOFError):
                values = None
            if values is not None and values.shape == (384,) and bool(np.isfinite(values).all()):
                return values
            logger.warning("%s is not a table of 384 finite values; computing it again", path)
        values = krr_table(dataset, seed, space)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        key_path = path.with_suffix(".json")
        tmp = key_path.with_name(key_path.name + ".tmp")
        tmp.write_text(json.dumps(krr_table_key(dataset, seed), indent=1, sort_keys=True) + "\n")
        tmp.replace(key_path)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, values)
        tmp.replace(path)
        return values

    def spec(self) -> dict[str, Any]:
        return {"type": self.kind, "n_train_tasks": self.n_tasks("train"), "n_test_tasks": self.n_tasks("test"),
                "datasets": list(self.datasets)}


def _pair(label: str, value: Any) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and v > 0 for v in value) or value[0] > value[1]):
        raise ValueError(f"{label} must be [low, high] with 0 < low <= high, got {value!r}")
    return float(value[0]), float(value[1])


#: Family type -> class (built as ``cls(**settings)``).
FAMILIES: dict[str, type[TaskFamily]] = {
    "gp_prior": GPPriorFamily,
    "shifted": ShiftedFunctionFamily,
    "hpo_krr": HPOTableFamily,
}


def build_family(spec: Mapping[str, Any], progress: bool = False) -> TaskFamily:
    """The family named by ``spec["type"]`` with the remaining settings.

    ``progress`` reaches families that compute data up front (a progress bar while they do).
    """
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in FAMILIES:
        raise ValueError(f"family.type: got {kind!r}; allowed: {sorted(FAMILIES)}")
    cls = FAMILIES[kind]
    if "progress" in inspect.signature(cls.__init__).parameters:
        spec.setdefault("progress", progress)
    try:
        return cls(**spec)
    except TypeError as err:
        raise ValueError(f"family {kind!r}: {err}") from None


__all__ = [
    "FAMILIES",
    "KRR_BLAS_THREADS",
    "KRR_DATASETS",
    "KRR_VERSION",
    "TEST_SEED_OFFSET",
    "FunctionTask",
    "GPPriorFamily",
    "HPOTableFamily",
    "MetaTask",
    "ShiftedFunctionFamily",
    "TableFamily",
    "TableTask",
    "TaskFamily",
    "branin",
    "build_family",
    "hartmann3",
    "krr_space",
    "krr_table",
    "krr_table_digest",
    "krr_table_key",
    "task_seed",
    "unit_cube",
]
