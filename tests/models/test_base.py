"""The model contract: a model that implements only fit, posterior and sample answers every optional hook."""

import pytest
import torch

from mcbo.models import MODELS, GPModel, Model, Posterior


class _Constant(Model):
    def fit(self, X, y):
        self.value = float(y.mean())

    def posterior(self, X):
        return Posterior(mean=torch.full(X.shape[:-1], self.value), variance=torch.ones(X.shape[:-1]))

    def sample(self, X, n_samples, generator=None):
        return torch.full((n_samples, X.shape[0]), self.value)


def test_optional_hooks_default_to_not_supported():
    model = _Constant()
    model.fit(torch.zeros(2, 1), torch.tensor([1.0, 3.0]))
    assert model.numeric_lengthscales() is None
    assert model.thompson_function(torch.Generator()) is None
    assert model.state_for_warm_start() is None
    model.load_warm_start({"anything": [1.0]})  # nothing to restore, no error
    with pytest.raises(NotImplementedError, match="_Constant does not support fantasy observations"):
        model.condition_on(torch.zeros(1, 1), torch.zeros(1))


def test_built_in_models_are_registered():
    assert MODELS["gp"] is GPModel and {"gp", "bocs", "neural_ucb", "tnp"} <= set(MODELS)
