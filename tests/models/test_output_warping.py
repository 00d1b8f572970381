import numpy as np
import pytest
import torch
from scipy import stats

from mcbo.models.output_warping import NoWarping, YeoJohnsonWarping, build_output_warping


def _skewed(n: int = 40, seed: int = 0) -> torch.Tensor:
    """Objective values with a long tail of bad points, as a log-normal error metric has."""
    return torch.as_tensor(np.random.default_rng(seed).lognormal(0.0, 1.5, n), dtype=torch.float64)


def test_yeo_johnson_keeps_the_order_and_makes_skewed_targets_nearly_symmetric():
    y = _skewed()
    warp = YeoJohnsonWarping()
    warped = warp(y)
    assert warped.dtype == y.dtype and warped.shape == y.shape
    assert torch.equal(torch.argsort(warped), torch.argsort(y))  # the incumbent stays the incumbent
    assert abs(stats.skew(warped.numpy())) < 0.25 * abs(stats.skew(y.numpy()))  # skewness 2.1 -> 0.4
    assert warp.lambda_ is not None and warp.lambda_ < 1.0  # a right tail is compressed


def test_yeo_johnson_passes_too_few_or_constant_values_unchanged():
    warp = YeoJohnsonWarping()
    for y in (torch.tensor([1.0, 5.0, 2.0], dtype=torch.float64), torch.full((10,), 3.0, dtype=torch.float64)):
        assert torch.equal(warp(y), y)
        assert warp.lambda_ is None


def test_build_output_warping_from_a_recipe_spec_and_bad_specs_are_clear_errors():
    assert isinstance(build_output_warping(None), NoWarping)
    assert isinstance(build_output_warping({"type": "none"}), NoWarping)
    warp = build_output_warping({"type": "yeo_johnson", "min_points": 5})
    assert isinstance(warp, YeoJohnsonWarping) and warp.min_points == 5
    with pytest.raises(ValueError, match="box_cox"):
        build_output_warping({"type": "box_cox"})
    with pytest.raises(ValueError, match="min_points"):
        build_output_warping({"type": "yeo_johnson", "min_points": 2})
    with pytest.raises(ValueError, match="lambda"):
        build_output_warping({"type": "yeo_johnson", "lambda": 0.5})
