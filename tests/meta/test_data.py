"""Task families: deterministic tasks, disjoint held-out seeds, exact tables and cached HPO tables."""

import numpy as np
import pytest
import torch

from mcbo.meta import data
from mcbo.meta.data import (
    GPPriorFamily,
    ShiftedFunctionFamily,
    TableFamily,
    TableTask,
    branin,
    build_family,
    hartmann3,
    krr_space,
    task_seed,
)
from mcbo.space import Categorical, Ordinal, SearchSpace


def test_held_out_seeds_never_meet_training_seeds():
    assert task_seed("train", 5) == 5 and task_seed("test", 5) == data.TEST_SEED_OFFSET + 5
    with pytest.raises(ValueError, match="split must be one of"):
        task_seed("valid", 0)


def test_classic_functions_have_their_known_minima():
    assert branin(np.array([[(5 + np.pi) / 15, 2.275 / 15]]))[0] == pytest.approx(0.397887, abs=1e-5)
    assert hartmann3(np.array([[0.114614, 0.555649, 0.852547]]))[0] == pytest.approx(-3.86278, abs=1e-4)


def test_gp_prior_tasks_are_reproducible_smooth_functions_with_unit_variance():
    family = GPPriorFamily(dim=2, lengthscale=[0.2, 0.4])
    a, b = family.task("train", 3), family.task("train", 3)
    X, y = a.table(2000, np.random.default_rng(0))
    assert torch.allclose(y, torch.from_numpy(b.fn(X.numpy())))
    assert 0.3 < float(y.var()) < 3.0
    assert not np.allclose(family.task("test", 3).fn(X.numpy()), y.numpy())
    near = a.fn(X.numpy() + 1e-4)
    assert np.abs(near - y.numpy()).max() < 0.05


def test_shifted_tasks_translate_and_scale_the_base_function():
    family = ShiftedFunctionFamily("branin", shift=0.1, scale=[0.9, 1.1])
    task = family.task("test", 0)
    assert task.optimum is None or 0.9 * 0.397887 - 1e-9 <= task.optimum <= 1.1 * 0.397887 + 1e-9
    assert task.y_min <= task.y_max
    point = task.space.sample_points(1, seed=0)[0]
    assert task(point) != pytest.approx(branin(task.space.encode([point]).numpy())[0])


def test_table_task_looks_up_values_and_normalises_regret():
    space = SearchSpace([Categorical("c", list("abc")), Ordinal("o", [1, 2])])
    family = TableFamily(space, np.array([[5.0, 1, 2, 3, 4, 6]]), np.array([[0.0, 1, 2, 3, 4, 5]]))
    task = family.task("train", 0)
    assert task({"c": "a", "o": 1}) == 5.0 and task({"c": "a", "o": 2}) == 1.0
    assert (task.y_min, task.y_max) == (1.0, 6.0)
    assert task.normalised_regret([6.0, 3.5, 1.0]).tolist() == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="one value per point"):
        TableFamily(space, np.zeros((1, 5)), np.zeros((1, 6)))
    with pytest.raises(ValueError, match="has 1 test tasks"):
        family.task("test", 1)


def test_table_task_refuses_points_outside_its_table():
    space = SearchSpace([Categorical("c", list("abc"))])
    task = TableTask(space, space.encode([{"c": "a"}, {"c": "b"}]), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="is not in the table"):
        task({"c": "c"})


def test_hpo_krr_tables_are_computed_once_and_cached(tmp_path, monkeypatch):
    family = build_family({"type": "hpo_krr", "n_train_tasks": 1, "n_test_tasks": 1, "datasets": ["iris"],
                           "cache_dir": str(tmp_path)})
    assert family.space == krr_space() and family.X.shape == (384, 4)
    task = family.task("test", 0)
    assert task.y.shape == (384,) and 0.0 <= task.y_min < 0.5 and task.y_max <= 2.0
    assert len(np.unique(task.y.numpy())) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hpo_krr-v1-iris-0.npy", f"hpo_krr-v1-iris-{data.TEST_SEED_OFFSET}.npy"]

    def no_compute(*args, **kwargs):
        raise AssertionError("cached tables must not be recomputed")

    monkeypatch.setattr(data, "krr_table", no_compute)
    again = build_family({"type": "hpo_krr", "n_train_tasks": 1, "n_test_tasks": 1, "datasets": ["iris"],
                          "cache_dir": str(tmp_path)})
    assert torch.equal(again.task("test", 0).y, task.y)
    assert not torch.equal(again.task("train", 0).y, task.y)


def test_bad_family_specs_name_the_problem():
    with pytest.raises(ValueError, match=r"family.type: got 'nope'; allowed: \['gp_prior', 'hpo_krr', 'shifted'\]"):
        build_family({"type": "nope"})
    with pytest.raises(ValueError, match="gp_prior kernel must be"):
        build_family({"type": "gp_prior", "kernel": "cosine"})
    with pytest.raises(ValueError, match="hpo_krr datasets must be a non-empty subset"):
        build_family({"type": "hpo_krr", "datasets": ["mnist"]})
    with pytest.raises(ValueError, match="family 'shifted'"):
        build_family({"type": "shifted", "dims": 3})
