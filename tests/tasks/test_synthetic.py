"""Ackley-53 and categorical Ackley: optimum, shapes, validation."""

import numpy as np
import pytest

from mcbo.tasks import Ackley53, CategoricalAckley, build_task
from mcbo.tasks.synthetic import ackley


def test_ackley_function_known_values():
    assert ackley(np.zeros((1, 5)))[0] == pytest.approx(0.0, abs=1e-12)
    # one coordinate at 1 in d = 1: -20 exp(-0.2) - exp(cos 2 pi) + 20 + e
    assert ackley(np.array([[1.0]]))[0] == pytest.approx(-20 * np.exp(-0.2) - np.e + 20 + np.e)


def test_ackley53_space_and_optimum():
    task = build_task("ackley53")
    assert isinstance(task, Ackley53)
    kinds = [p.type_name for p in task.space.params]
    assert kinds.count("boolean") == 50 and kinds.count("real") == 3
    origin = {**{f"b{i:02d}": False for i in range(50)}, "x0": 0.0, "x1": 0.0, "x2": 0.0}
    assert task(origin) == pytest.approx(task.optimum, abs=1e-12)
    values = task.evaluate(task.space.sample_points(16, seed=0))
    assert values.shape == (16,) and (values > 0).all()


def test_categorical_ackley_levels_and_optimum():
    task = build_task("ackley_cat")
    assert isinstance(task, CategoricalAckley)
    assert len(task.space) == 20 and all(len(p.categories) == 11 for p in task.space.params)
    assert task.levels[5] == 0.0 and task.levels[0] == pytest.approx(-32.768)
    assert task({f"x{i:02d}": 5 for i in range(20)}) == pytest.approx(0.0, abs=1e-12)
    assert (task.evaluate(task.space.sample_points(8, seed=1)) > 0).all()


def test_evaluate_validates_points():
    task = build_task("ackley53")
    with pytest.raises(ValueError, match="'x0'"):
        task({**{f"b{i:02d}": False for i in range(50)}, "x0": 3.0, "x1": 0.0, "x2": 0.0})
    with pytest.raises(ValueError, match="unknown task 'ackley54'"):
        build_task("ackley54")


def test_shuffled_categorical_ackley_moves_the_optimum_off_the_constant_string():
    plain, shuffled = build_task("ackley_cat"), build_task("ackley_cat", shuffle_levels=True)
    constant = {f"x{i:02d}": 5 for i in range(20)}
    assert plain(constant) == pytest.approx(0.0, abs=1e-12)
    assert shuffled(constant) > 10.0
    optimum = {f"x{i:02d}": int(np.argmin(np.abs(shuffled.level_values[i]))) for i in range(20)}
    assert shuffled(optimum) == pytest.approx(0.0, abs=1e-12)
    assert len(set(optimum.values())) > 1
