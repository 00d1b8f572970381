"""Shared fixture: run a short Casmopolitan loop with a given GP kernel and check every step succeeded."""

import math

import pytest

from mcbo.solvers.registry import build_solver


@pytest.fixture
def casmopolitan_run():
    """``run(space, black_box, model_spec)`` -> the solver after 5 initial + 5 BO evaluations, all ok."""

    def run(space, black_box, model_spec):
        solver = build_solver("casmopolitan", space, seed=0, model={"type": "gp", **model_spec}, n_init=5)
        solver.optimize(black_box, 10)
        history = solver.history
        assert len(history) == 10 and (history["status"] == "ok").all(), history[["status", "error"]]
        assert math.isfinite(solver.best[1])
        return solver

    return run
