"""Hyper-parameter optimisation tasks on scikit-learn's bundled data sets (no download).

* ``xgboost_hpo`` — XGBoost (Chen & Guestrin, KDD 2016) classifier on the 8x8 digits data set
  (``sklearn.datasets.load_digits``: 1797 images, 64 features, 10 classes). Mixed space as in
  Casmopolitan (Wan et al., ICML 2021) and MCBO (Dreczkowski et al., NeurIPS 2023): three
  categorical choices (booster, grow policy, objective), learning rate on a log scale, an
  integer depth and three continuous regularisers. Objective: ``1 - accuracy`` on a stratified
  30% test split drawn with ``seed``. ``n_estimators`` is kept small (20) so one evaluation
  takes well under a second to about a second on one core.
* ``svr_hpo`` — feature selection plus hyper-parameters of an RBF support-vector regressor, after
  MCBO's SVM task (which used 50 features of the slice-localisation data). Here the data are
  ``sklearn.datasets.load_diabetes`` (442 patients, 10 features); since it has fewer than 50
  features, 40 pure-noise features drawn from ``N(0, 1)`` with ``numpy.random.RandomState(seed)``
  are appended, so ``feature_01`` .. ``feature_10`` are the real ones and ``feature_11`` ..
  ``feature_50`` are noise. A point selects features with 50 Booleans and sets ``C``,
  ``epsilon`` and ``gamma`` (log scales; ``gamma`` is divided by the number of selected features,
  as in MCBO). Inputs are min-max scaled on the training split, targets standardised on it; the
  objective is the mean squared error on a 30% test split drawn with ``seed``, in the target's
  original units. Selecting no feature predicts the training mean.

Both tasks are deterministic for a given ``seed``. scikit-learn and XGBoost are imported
lazily, so ``import mcbo.tasks`` works without them.
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

import numpy as np

from mcbo.space import Boolean, Categorical, Integer, Real, SearchSpace
from mcbo.tasks.base import MissingToolError, Task, register_task

N_SVR_FEATURES = 50
_TEST_FRACTION = 0.3


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingToolError(
            f"Python module {module!r} is not installed; install it with: pip install {package}"
        ) from err


@register_task("xgboost_hpo")
class XGBoostHPO(Task):
    """XGBoost on digits: 3 categorical + 5 numeric hyper-parameters, objective 1 - test accuracy.

    Args:
        seed: seeds the train/test split and XGBoost's row subsampling.
        n_estimators: boosting rounds of every evaluated model.
        n_jobs: XGBoost threads.
    """

    name = "xgboost_hpo"

    def __init__(self, seed: int = 0, n_estimators: int = 20, n_jobs: int = 1) -> None:
        super().__init__(seed)
        for label, value in (("n_estimators", n_estimators), ("n_jobs", n_jobs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        self.n_estimators, self.n_jobs = n_estimators, n_jobs
        self._xgb = _import("xgboost", "xgboost-cpu  (or xgboost)")
        datasets = _import("sklearn.datasets", "scikit-learn")
        model_selection = _import("sklearn.model_selection", "scikit-learn")
        x, y = datasets.load_digits(return_X_y=True)
        self._x_train, self._x_test, self._y_train, self._y_test = model_selection.train_test_split(
            x, y, test_size=_TEST_FRACTION, stratify=y, random_state=self.seed
        )
        self._space = SearchSpace([
            Categorical("booster", ["gbtree", "dart"]),
            Categorical("grow_policy", ["depthwise", "lossguide"]),
            Categorical("objective", ["multi:softmax", "multi:softprob"]),
            Real("learning_rate", 1e-5, 1.0, log=True),
            Integer("max_depth", 1, 10),
            Real("min_split_loss", 0.0, 10.0),
            Real("subsample", 0.001, 1.0),
            Real("reg_lambda", 0.0, 5.0),
        ])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _error_rate(self, point: dict[str, Any]) -> float:
        model = self._xgb.XGBClassifier(
            n_estimators=self.n_estimators, tree_method="hist", n_jobs=self.n_jobs, random_state=self.seed, **point
        )
        model.fit(self._x_train, self._y_train)
        predicted = np.asarray(model.predict(self._x_test)).reshape(-1)
        return float(1.0 - np.mean(predicted == self._y_test))

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        """``1 - accuracy`` on the test split, ``[n]``."""
        return np.array([self._error_rate(dict(p)) for p in points], dtype=float)


@register_task("svr_hpo")
class SVRHPO(Task):
    """SVR on diabetes (+40 seeded noise features): 50 feature-selection Booleans and log-scale C,
    epsilon, gamma; objective test MSE.

    Args:
        seed: seeds the noise features and the train/test split.
    """

    name = "svr_hpo"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        datasets = _import("sklearn.datasets", "scikit-learn")
        model_selection = _import("sklearn.model_selection", "scikit-learn")
        self._svm = _import("sklearn.svm", "scikit-learn")
        self._pre = _import("sklearn.preprocessing", "scikit-learn")
        self._pipe = _import("sklearn.pipeline", "scikit-learn")
        x, y = datasets.load_diabetes(return_X_y=True)
        x = _pad_with_noise(x, N_SVR_FEATURES, self.seed)
        self._x_train, self._x_test, self._y_train, self._y_test = model_selection.train_test_split(
            x, y, test_size=_TEST_FRACTION, random_state=self.seed
        )
        self._feature_names = [f"feature_{i + 1:02d}" for i in range(N_SVR_FEATURES)]
        self._space = SearchSpace([
            *(Boolean(n) for n in self._feature_names),
            Real("C", 1e-2, 1e2, log=True),
            Real("epsilon", 1e-2, 1.0, log=True),
            Real("gamma", 1e-1, 1e1, log=True),
        ])

    @property
    def space(self) -> SearchSpace:
        return self._space

    def _mse(self, point: dict[str, Any]) -> float:
        mask = np.array([bool(point[n]) for n in self._feature_names])
        mean, std = float(self._y_train.mean()), float(self._y_train.std())
        if not mask.any():
            predicted = np.full(len(self._y_test), mean)
        else:
            learner = self._svm.SVR(C=point["C"], epsilon=point["epsilon"], gamma=point["gamma"] / mask.sum())
            model = self._pipe.make_pipeline(self._pre.MinMaxScaler(), learner)
            model.fit(self._x_train[:, mask], (self._y_train - mean) / std)
            predicted = model.predict(self._x_test[:, mask]) * std + mean
        return float(np.mean((predicted - self._y_test) ** 2))

    def _evaluate(self, points: Sequence[dict[str, Any]]) -> np.ndarray:
        """Test mean squared error ``[n]``."""
        return np.array([self._mse(p) for p in points], dtype=float)


def _pad_with_noise(x: np.ndarray, n_features: int, seed: int) -> np.ndarray:
    """Append ``N(0, 1)`` noise columns drawn with ``RandomState(seed)`` so that ``x`` ``[n, d]`` has
    ``n_features`` columns (or keep its first ``n_features``)."""
    missing = n_features - x.shape[1]
    if missing <= 0:
        return x[:, :n_features]
    noise = np.random.RandomState(seed).standard_normal((x.shape[0], missing))
    return np.hstack([x, noise])
