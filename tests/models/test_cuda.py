"""The CUDA path: every GP kernel fits and predicts on ``device="cuda"`` like on the CPU, and BO solvers
run with ``device="cuda"``. Skipped (cleanly, at collection) on machines without a CUDA device."""

from __future__ import annotations

import pytest
import torch

from mcbo.models import GPModel
from mcbo.solvers import build_solver
from mcbo.space import Boolean, Categorical, Ordinal, Permutation, Real, SearchSpace, Sequence

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)"),
]


def _real_space() -> SearchSpace:
    return SearchSpace([Real(f"x{i}", -1.0, 1.0) for i in range(4)])


def _categorical_space() -> SearchSpace:
    return SearchSpace([Categorical(f"c{i}", ["a", "b", "c", "d"]) for i in range(6)])


def _sequence_space() -> SearchSpace:
    return SearchSpace([Sequence("s", ["a", "b", "c", "d"], 8)])


def _ordinal_space() -> SearchSpace:
    return SearchSpace([Ordinal(f"o{i}", list(range(5 + i))) for i in range(4)])


def _permutation_space() -> SearchSpace:
    return SearchSpace([Permutation("p", 6)])


def _mixed_space() -> SearchSpace:
    return SearchSpace([*(Boolean(f"b{i}") for i in range(6)), Real("x0", -1.0, 1.0), Real("x1", -1.0, 1.0)])


#: kernel name -> (space factory, GPModel keyword arguments choosing that kernel)
CASES = {
    "matern52": (_real_space, {"numeric_kernel": "matern52"}),
    "overlap": (_categorical_space, {"nominal_kernel": "overlap"}),
    "transformed_overlap": (_categorical_space, {"nominal_kernel": "transformed_overlap"}),
    "ssk": (_sequence_space, {"nominal_kernel": "ssk"}),
    "hed": (_categorical_space, {"nominal_kernel": "hed"}),
    "diffusion": (_categorical_space, {"nominal_kernel": "diffusion"}),
    "ordinal": (_ordinal_space, {"numeric_kernel": "ordinal"}),
    "kendall": (_permutation_space, {"nominal_kernel": "kendall"}),
    "mallows": (_permutation_space, {"nominal_kernel": "mallows"}),
    "mixture": (_mixed_space, {"numeric_kernel": "matern52", "nominal_kernel": "transformed_overlap",
                               "combine": "mixture"}),
}


def _objective(X: torch.Tensor) -> torch.Tensor:
    """A smooth, non-constant function of encoded rows ``[n, d]`` (any space) -> ``[n]``."""
    Xc = X.double().cpu()
    weights = torch.linspace(0.5, 1.5, Xc.shape[-1], dtype=torch.float64)
    return torch.sin(Xc @ weights) + 0.1 * (Xc**2).sum(-1)


def _data(space: SearchSpace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    X = space.sample(30, seed=0)
    return X, _objective(X), space.sample(50, seed=1)


def fitted_pair(name: str, device: str) -> tuple[GPModel, GPModel, torch.Tensor, torch.Tensor]:
    """A CPU model and a ``device`` model, both fitted on the same data starting from the CPU model's
    optimum (so both end at the same hyper-parameters up to rounding); returns them with ``y`` and ``Xt``."""
    space_fn, kwargs = CASES[name]
    space = space_fn()
    X, y, Xt = _data(space)
    first = GPModel(space, **kwargs)
    first.fit(X, y)
    state = first.state_for_warm_start()
    assert state is not None
    cpu, dev = GPModel(space, **kwargs), GPModel(space, **kwargs, device=device)
    for model in (cpu, dev):
        model.load_warm_start(state)
        model.fit(X, y)
    return cpu, dev, y, Xt


@pytest.mark.parametrize("name", list(CASES))
def test_posterior_on_cuda_matches_cpu(name):
    cpu, gpu, y, Xt = fitted_pair(name, "cuda")
    post_cpu, post_gpu = cpu.posterior(Xt), gpu.posterior(Xt)
    assert post_gpu.mean.device.type == "cuda" and post_gpu.variance.device.type == "cuda"
    assert post_gpu.mean.dtype == torch.float64
    scale = float(y.std())
    assert torch.allclose(post_gpu.mean.cpu(), post_cpu.mean, atol=1e-3 * scale, rtol=1e-4), name
    assert torch.allclose(post_gpu.variance.cpu(), post_cpu.variance, atol=1e-3 * scale**2, rtol=1e-3), name


@pytest.mark.parametrize("name", list(CASES))
def test_cold_fit_on_cuda_predicts_like_cpu(name):
    """Independent fits on each device (same data, same start) give nearly the same predictions."""
    space_fn, kwargs = CASES[name]
    space = space_fn()
    X, y, Xt = _data(space)
    cpu, gpu = GPModel(space, **kwargs), GPModel(space, **kwargs, device="cuda")
    cpu.fit(X, y)
    gpu.fit(X.cuda(), y.cuda())
    diff = (gpu.posterior(Xt.cuda()).mean.cpu() - cpu.posterior(Xt).mean).abs().mean()
    assert float(diff) < 0.05 * float(y.std()), f"{name}: mean |cpu - cuda| = {float(diff):.3g}"


def test_chunked_posterior_on_cuda_matches_unchunked():
    space_fn, kwargs = CASES["transformed_overlap"]
    space = space_fn()
    X, y, _ = _data(space)
    Xt = space.sample(3000, seed=2)
    model = GPModel(space, **kwargs, device="cuda", memory_budget_mb=0.01)
    model.fit(X, y)
    assert model._chunk_rows() < 3000
    chunked = model.posterior(Xt)
    model.memory_budget_mb = 256.0
    assert model._chunk_rows() >= 3000
    whole = model.posterior(Xt)
    assert torch.allclose(chunked.mean, whole.mean, atol=1e-9)
    assert torch.allclose(chunked.variance, whole.variance, atol=1e-9)


@pytest.mark.parametrize(("recipe", "space_fn"), [("casmopolitan", _mixed_space), ("boils", _sequence_space)])
def test_solver_runs_on_cuda(recipe, space_fn):
    space = space_fn()
    solver = build_solver(recipe, space, seed=0, device="cuda", n_init=4)
    cpu_solver = build_solver(recipe, space, seed=0, n_init=4)
    for step in range(8):
        points = solver.ask(1)
        for p in points:
            space.validate(p)
        if step < 4:  # the initial design depends on the seed only, not on the device
            assert points == cpu_solver.ask(1)
        solver.tell(points, _objective(space.encode(points)).tolist())
    assert solver.X.device.type == "cuda" and solver.y.device.type == "cuda"
    assert len(solver.history) == 8 and (solver.history["status"] == "ok").all()
    assert solver.last_timings["fit_seconds"] > 0  # the last asks ran the GP loop on the device
    assert solver.model.posterior(solver.X).mean.device.type == "cuda"
