"""Acquisition functions against closed forms and Monte-Carlo, and their stability."""

import math

import pytest
import torch
from scipy.stats import norm

from mcbo.acquisition import (
    ExpectedImprovement,
    LogExpectedImprovement,
    LowerConfidenceBound,
    ProbabilityOfImprovement,
    ThompsonSampling,
    build_acquisition,
)
from mcbo.models.base import Model, Posterior


class FixedModel(Model):
    """A model whose posterior is given: mean = X[..., 0], std = X[..., 1]."""

    def fit(self, X, y):
        pass

    def posterior(self, X):
        return Posterior(mean=X[..., 0], variance=X[..., 1] ** 2)

    def sample(self, X, n_samples, generator=None):
        z = torch.randn(n_samples, X.shape[0], generator=generator, dtype=X.dtype)
        return X[:, 0] + X[:, 1] * z


X = torch.tensor([[0.0, 1.0], [1.0, 0.5], [-1.0, 2.0], [3.0, 0.1]], dtype=torch.float64)


def test_ei_matches_closed_form_and_log_ei():
    best = 0.5
    ei = ExpectedImprovement(FixedModel(), best_f=best)(X)
    for (m, s), value in zip(X.tolist(), ei.tolist()):
        z = (best - m) / s
        assert value == pytest.approx(s * (norm.pdf(z) + z * norm.cdf(z)), rel=1e-9)
    log_ei = LogExpectedImprovement(FixedModel(), best_f=best)(X)
    assert torch.allclose(log_ei, torch.log(ei), atol=1e-9)


def test_ei_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    m, s, best = 0.3, 0.7, 0.0
    samples = m + s * torch.randn(400_000, generator=g, dtype=torch.float64)
    mc = torch.clamp(best - samples, min=0).mean().item()
    ei = ExpectedImprovement(FixedModel(), best_f=best)(torch.tensor([[m, s]], dtype=torch.float64)).item()
    assert ei == pytest.approx(mc, rel=0.02)


def test_log_ei_is_finite_far_from_the_incumbent_and_keeps_ranking():
    far = torch.tensor([[50.0, 1.0], [60.0, 1.0], [1e4, 1.0]], dtype=torch.float64, requires_grad=True)
    values = LogExpectedImprovement(FixedModel(), best_f=0.0)(far)
    assert torch.isfinite(values).all()
    assert values[0] > values[1] > values[2]
    values.sum().backward()
    assert torch.isfinite(far.grad).all()


def test_pi_and_lcb():
    pi = ProbabilityOfImprovement(FixedModel(), best_f=0.5)(X)
    assert torch.allclose(pi.exp(), torch.tensor(norm.cdf((0.5 - X[:, 0]) / X[:, 1]), dtype=torch.float64))
    lcb = LowerConfidenceBound(FixedModel(), beta=4.0)(X)
    assert torch.allclose(lcb, -(X[:, 0] - 2.0 * X[:, 1]))
    with pytest.raises(ValueError, match="beta"):
        LowerConfidenceBound(FixedModel(), beta=-1)


def test_thompson_sampling_is_seeded_and_not_deterministic_flagged():
    ts = ThompsonSampling(FixedModel(), generator=torch.Generator().manual_seed(1))
    assert not ts.deterministic
    a = ts(X)
    ts2 = ThompsonSampling(FixedModel(), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, ts2(X))


def test_build_acquisition_validates_names():
    assert isinstance(build_acquisition({"type": "ei"}, FixedModel(), best_f=0.0), LogExpectedImprovement)
    with pytest.raises(ValueError, match="unknown acquisition type 'ucb'"):
        build_acquisition({"type": "ucb"}, FixedModel(), best_f=0.0)
    with pytest.raises(ValueError, match="lcb"):
        build_acquisition({"type": "lcb", "kappa": 2}, FixedModel(), best_f=0.0)
    assert math.isfinite(float(build_acquisition({"type": "pi"}, FixedModel(), best_f=0.0)(X)[0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_ei_kernel_is_finite_with_finite_gradients_far_in_the_tail(dtype):
    from mcbo.acquisition.analytic import _log_h

    z = torch.cat([-torch.logspace(5, -3, 400, dtype=dtype), torch.linspace(0.0, 10.0, 50, dtype=dtype)])
    z.requires_grad_(True)
    values = _log_h(z)
    values.sum().backward()
    assert torch.isfinite(values).all() and torch.isfinite(z.grad).all()
    assert (z.grad > 0).all()  # log EI grows with the standardised improvement, everywhere


@pytest.mark.parametrize("dtype,rel", [(torch.float32, 2e-6), (torch.float64, 1e-12)])
def test_log_ei_kernel_matches_high_precision_values(dtype, rel):
    import mpmath

    from mcbo.acquisition.analytic import _log_h

    mpmath.mp.dps = 50
    for z in (2.0, -0.5, -1.5, -5.0, -15.0, -29.9, -30.1, -100.0, -999.0, -1001.0, -1e4):
        exact = float(mpmath.log(mpmath.npdf(z) + z * mpmath.ncdf(z)))
        assert _log_h(torch.tensor(z, dtype=dtype)).item() == pytest.approx(exact, rel=rel), z
