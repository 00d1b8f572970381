"""Open registries: a package outside mcbo adds a component by decorator and a recipe uses it by name;
unknown names and settings raise naming them and listing what is allowed."""

import math

import pytest
import torch

from mcbo.acq_optim import AcqContext, AcqOptimizer, register_acq_optimizer
from mcbo.acquisition import AcquisitionFunction, register_acquisition
from mcbo.models import Model, Posterior, register_model, register_nominal_kernel
from mcbo.models.kernels import OverlapKernel
from mcbo.registry import Registry
from mcbo.solvers import build_solver
from mcbo.space import Categorical, SearchSpace
from mcbo.trust_region import CasmopolitanTrustRegion, register_trust_region


# ------------------------------------------------------------------ a user's components, defined here
@register_acq_optimizer("test_plugin_best_of_random")
class BestOfRandom(AcqOptimizer):
    """The best of ``n_points`` random allowed points."""

    calls = 0

    def __init__(self, n_points: int = 100) -> None:
        self.n_points = n_points

    def _optimize(self, ctx: AcqContext) -> torch.Tensor:
        BestOfRandom.calls += 1
        X = ctx.random_points(self.n_points)
        x = ctx.best_new(X, ctx.score(X)) if len(X) else None
        return x if x is not None else ctx.fallback()


KERNEL_BUILDS = []


@register_nominal_kernel("test_plugin_overlap")
def build_plugin_overlap(space, cols):
    KERNEL_BUILDS.append(len(cols))
    return OverlapKernel(space.cardinalities[cols].tolist(), active_dims=cols)


@register_acquisition("test_plugin_mean")
class NegatedMean(AcquisitionFunction):
    """``-weight * mean``: pure exploitation."""

    def __init__(self, model, weight: float = 1.0) -> None:
        super().__init__(model)
        self.weight = weight

    def __call__(self, X):
        return -self.weight * self.model.posterior(X).mean


@register_trust_region("test_plugin_fixed_ball")
class FixedBall(CasmopolitanTrustRegion):
    """A Hamming ball of one radius that never grows."""

    def __init__(self, space, radius: int = 2) -> None:
        super().__init__(space, radius_init=radius, radius_min=radius, radius_max=radius)


@register_model("test_plugin_nearest")
class NearestMean(Model):
    """Nadaraya-Watson regression with weights ``exp(-hamming)``; no hooks beyond the required methods."""

    def __init__(self, space, bandwidth: float = 1.0, device="cpu", dtype=torch.float64) -> None:
        super().__init__(device, dtype)
        self.space, self.bandwidth = space, bandwidth

    def fit(self, X, y):
        self.X, self.y = self._to(X), self._to(y)

    def condition_on(self, X, y):
        self.fit(torch.cat([self.X, self._to(X)]), torch.cat([self.y, self._to(y)]))

    def posterior(self, X):
        w = torch.exp(-self.space.hamming(X, self.X).to(self.X) / self.bandwidth)
        mean = (w * self.y).sum(-1) / w.sum(-1)
        return Posterior(mean=mean, variance=1.0 / (1.0 + w.sum(-1)))

    def sample(self, X, n_samples, generator=None):
        post = self.posterior(X)
        return post.mean + post.std * torch.randn(n_samples, X.shape[0], generator=generator, dtype=self.dtype)


# ------------------------------------------------------------------------------------------ the tests
@pytest.fixture
def space():
    return SearchSpace([Categorical(f"c{i}", list(range(4))) for i in range(6)])


def objective(point):
    return sum(v != 2 for v in point.values())


def test_plugins_registered_by_decorator_are_used_by_name_from_an_inline_recipe(space):
    recipe = {
        "name": "my-bo",
        "solver": "bo",
        "n_init": 5,
        "model": {"type": "gp", "nominal_kernel": "test_plugin_overlap"},
        "acquisition": {"type": "test_plugin_mean", "weight": 2.0},
        "acq_optimizer": {"type": "test_plugin_best_of_random", "n_points": 50},
        "trust_region": {"type": "test_plugin_fixed_ball", "radius": 3},
    }
    calls, builds = BestOfRandom.calls, len(KERNEL_BUILDS)
    solver = build_solver(recipe, space, seed=0)
    assert isinstance(solver.acq_optimizer, BestOfRandom) and solver.acq_optimizer.n_points == 50
    assert isinstance(solver.trust_region, FixedBall) and solver.trust_region.radius == 3
    solver.optimize(objective, 12)
    assert BestOfRandom.calls - calls == 7  # every ask after the initial design
    assert len(KERNEL_BUILDS) > builds
    assert solver.history["status"].eq("ok").all() and solver.name == "my-bo"


def test_a_plugin_model_without_optional_hooks_runs_saves_and_resumes(space, tmp_path):
    recipe = {"solver": "bo", "n_init": 4, "model": {"type": "test_plugin_nearest", "bandwidth": 0.5},
              "acquisition": {"type": "lcb"}, "acq_optimizer": {"type": "random", "n_candidates": 64}}
    solver = build_solver(recipe, space, seed=1)
    solver.optimize(objective, 8)
    solver.save(tmp_path / "s.json")
    resumed = build_solver(recipe, space, seed=1)
    resumed.load(tmp_path / "s.json")
    assert resumed.ask(2) == solver.ask(2)


def test_unknown_plugin_names_and_settings_are_named_with_what_is_allowed(space):
    with pytest.raises(ValueError, match=r"acq_optimizer 'test_plugin_best_of_random': unknown setting\(s\) "
                                         r"\['n_point'\]; allowed: \['n_points'\]"):
        build_solver({"solver": "bo", "acq_optimizer": {"type": "test_plugin_best_of_random", "n_point": 5}}, space)
    with pytest.raises(ValueError, match=r"unknown acquisition type 'test_plugin_men'; allowed: \[.*'test_plugin_mean'"):
        build_solver({"solver": "bo", "acquisition": {"type": "test_plugin_men"}}, space)
    with pytest.raises(ValueError, match=r"unknown nominal_kernel 'overlapp'; allowed: \[.*'test_plugin_overlap'"):
        build_solver({"solver": "bo", "model": {"type": "gp", "nominal_kernel": "overlapp"}}, space)
    with pytest.raises(ValueError, match=r"trust_region 'test_plugin_fixed_ball': unknown setting\(s\) \['length'\]"):
        build_solver({"solver": "bo", "trust_region": {"type": "test_plugin_fixed_ball", "length": 0.5}}, space)


# ------------------------------------------------------------------------------ the registry itself
class _Base:
    def __init__(self, space, device: str = "cpu") -> None:
        self.space, self.device = space, device


class _Child(_Base):
    def __init__(self, space, depth: int = 3, **kwargs) -> None:
        super().__init__(space, **kwargs)
        self.depth = depth


def test_a_registry_reads_as_a_mapping_and_refuses_unknown_names_listing_the_allowed():
    registry = Registry("widget", context=("space",))
    registry.register("child")(_Child)
    assert registry["child"] is _Child and "child" in registry and list(registry) == ["child"] and len(registry) == 1
    with pytest.raises(ValueError, match=r"unknown widget type 'kid'; allowed: \['child'\]"):
        registry.lookup("kid")
    with pytest.raises(ValueError, match=r"unknown widget type None; allowed: \['child'\]"):
        registry.build(None, {})


def test_settings_are_the_constructor_keywords_less_the_context_following_kwargs_to_the_base():
    registry = Registry("widget", context=("space",))
    registry.register("child")(_Child)
    assert registry.settings("child") == {"depth": 3, "device": "cpu"}
    built = registry.build("child", {"depth": 5, "device": "meta"}, space="S", unused_context=1)
    assert (built.space, built.depth, built.device) == ("S", 5, "meta")
    with pytest.raises(ValueError, match=r"widget 'child': unknown setting\(s\) \['colour'\]; "
                                         r"allowed: \['depth', 'device'\]"):
        registry.build("child", {"colour": "red"}, space="S")


def test_a_name_is_registered_once_and_must_be_plain():
    registry = Registry("widget")
    registry.register("a")(_Base)
    registry.register("a")(_Base)  # the same object again (a module imported twice) is harmless
    with pytest.raises(ValueError, match="widget type 'a' is registered twice"):
        registry.register("a")(_Child)
    for bad in ("../x", "", "a b", "-a", "a/b"):
        with pytest.raises(ValueError, match="names must match"):
            registry.register(bad)


def test_builders_are_functions_too():
    registry = Registry("kernel", key=None, context=("space", "cols"))
    registry.register("const")(lambda space, cols, scale=1.0: scale * len(cols))
    assert registry.settings("const") == {"scale": 1.0}
    assert registry.build("const", {"scale": 2.0}, space=None, cols=[1, 2]) == 4.0
    assert math.isclose(registry.lookup("const")(None, [1]), 1.0)
