"""The whole model x acquisition optimiser x acquisition x trust-region grid: every valid
combination builds from an inline recipe and runs 25 evaluations; every invalid one raises a
ValueError that says why. Slow: run with ``make test-slow``."""

import itertools

import pytest

from mcbo.solvers import build_solver
from mcbo.space import Categorical, SearchSpace

MODELS = {
    "gp_o": {"type": "gp", "nominal_kernel": "overlap"},
    "gp_to": {"type": "gp", "nominal_kernel": "transformed_overlap"},
    "gp_ssk": {"type": "gp", "nominal_kernel": "ssk"},
    "gp_diff": {"type": "gp", "nominal_kernel": "diffusion"},
    "gp_hed": {"type": "gp", "nominal_kernel": "hed"},
    "bocs": {"type": "bocs", "n_samples": 30, "n_burn_in": 50},
}
OPTIMIZERS = {
    "interleaved": {"type": "interleaved", "n_restarts": 2, "n_raw": 100, "n_rounds": 3},
    "local_search": {"type": "local_search", "n_restarts": 3, "n_raw": 100, "max_rounds": 10},
    "sa": {"type": "sa", "n_chains": 4, "n_steps": 50, "n_raw": 100},
    "ga": {"type": "ga", "pop_size": 20, "n_generations": 5, "n_raw": 100},
    "mab": {"type": "mab", "n_raw": 100},
    "random": {"type": "random", "n_candidates": 300},
}
ACQUISITIONS = ["ei", "ts"]
TRUST_REGIONS = [None, {"type": "casmopolitan"}]


def _expected_error(model: str, optimizer: str, acquisition: str) -> str | None:
    if optimizer == "mab" and model not in ("gp_o", "gp_to"):
        return "'mab'"
    if acquisition == "ts" and model != "bocs" and optimizer != "random":
        return "use acq_optimizer type 'random'"
    return None


def _objective(p):
    return sum((ord(v) - ord("a") - 1) ** 2 for v in p.values())


@pytest.mark.slow
@pytest.mark.parametrize("model, optimizer, acquisition, tr",
                         list(itertools.product(MODELS, OPTIMIZERS, ACQUISITIONS, range(len(TRUST_REGIONS)))))
def test_grid_combination(model, optimizer, acquisition, tr):
    space = SearchSpace([Categorical(f"c{i}", list("abcd")) for i in range(8)])
    recipe = {"solver": "bo", "name": f"{model}-{optimizer}-{acquisition}-{tr}", "n_init": 10,
              "model": MODELS[model], "acq_optimizer": OPTIMIZERS[optimizer],
              "acquisition": {"type": acquisition}, "trust_region": TRUST_REGIONS[tr]}
    expected = _expected_error(model, optimizer, acquisition)
    if expected is not None:
        with pytest.raises(ValueError, match=expected):
            build_solver(recipe, space, seed=0)
        return
    solver = build_solver(recipe, space, seed=0)
    solver.optimize(_objective, 25)
    assert len(solver.history) == 25 and solver.history["status"].eq("ok").all()
