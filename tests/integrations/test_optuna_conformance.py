"""Optuna's own sampler conformance suite (``optuna.testing.pytest_samplers``) run on McboSampler.

Two recipes with their models in use: the initial design is 3 trials, so the tests that run 10-20 trials
fit the GP and optimise the acquisition (casmopolitan: transformed overlap + Matern in a trust region; bodi:
the HED dictionary kernel without one).
"""

import pytest
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase

from mcbo.integrations.optuna import McboSampler


class TestCasmopolitanSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: McboSampler("casmopolitan", seed=0, n_startup_trials=3)


class TestBodiSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self):
        return lambda: McboSampler("bodi", seed=1, n_startup_trials=3)
