"""Tests of mcbo/tasks/hpo.py (XGBoost and SVR hyper-parameter tasks on bundled data)."""

from __future__ import annotations

import numpy as np
import pytest

from mcbo.tasks import build_task
from mcbo.tasks.hpo import SVRHPO, XGBoostHPO

pytest.importorskip("sklearn", reason="scikit-learn is not installed")


# ---------------------------------------------------------------- XGBoost
@pytest.fixture(scope="module")
def xgb_task() -> XGBoostHPO:
    pytest.importorskip("xgboost", reason="xgboost (pip install xgboost-cpu) is not installed")
    return XGBoostHPO(seed=0)


def test_xgboost_space(xgb_task):
    assert xgb_task.space.names == [
        "booster", "grow_policy", "objective", "learning_rate", "max_depth", "min_split_loss", "subsample",
        "reg_lambda",
    ]


def test_xgboost_random_batch_is_deterministic(xgb_task):
    points = xgb_task.space.sample_points(3, seed=0)
    values = xgb_task.evaluate(points)
    assert values.shape == (3,) and np.all((values >= 0) & (values <= 1))
    np.testing.assert_array_equal(build_task("xgboost_hpo", seed=0).evaluate(points), values)


def test_xgboost_sensible_config_learns_digits(xgb_task):
    good = {"booster": "gbtree", "grow_policy": "depthwise", "objective": "multi:softprob", "learning_rate": 0.3,
            "max_depth": 6, "min_split_loss": 0.0, "subsample": 1.0, "reg_lambda": 1.0}
    tiny_lr = {**good, "learning_rate": 1e-5, "max_depth": 1}
    error, bad_error = xgb_task.evaluate([good, tiny_lr])
    assert error < 0.1 < bad_error


def test_xgboost_bad_arguments():
    with pytest.raises(ValueError, match="n_estimators"):
        XGBoostHPO(n_estimators=0)


# ---------------------------------------------------------------- SVR
@pytest.fixture(scope="module")
def svr_task() -> SVRHPO:
    return SVRHPO(seed=0)


def _svr_point(task: SVRHPO, selected: range, **hyper: float) -> dict:
    point = {f"feature_{i + 1:02d}": (i in selected) for i in range(50)}
    return {**point, "C": 1.0, "epsilon": 0.1, "gamma": 1.0, **hyper}


def test_svr_space_has_50_selectors_and_3_log_params(svr_task):
    assert len(svr_task.space.params) == 53
    assert [p.log for p in svr_task.space.params[50:]] == [True, True, True]


def test_svr_random_batch_is_deterministic(svr_task):
    points = svr_task.space.sample_points(3, seed=0)
    values = svr_task.evaluate(points)
    assert values.shape == (3,) and np.all(np.isfinite(values)) and np.all(values > 0)
    np.testing.assert_array_equal(build_task("svr_hpo", seed=0).evaluate(points), values)
    assert not np.array_equal(SVRHPO(seed=1).evaluate(points), values)


def test_svr_real_features_beat_noise_and_empty_selection(svr_task):
    real, noise, empty = svr_task.evaluate([
        _svr_point(svr_task, range(10), C=10.0),
        _svr_point(svr_task, range(10, 50), C=10.0),
        _svr_point(svr_task, range(0)),
    ])
    assert real < noise and real < empty
