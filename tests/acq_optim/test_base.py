"""The optimiser contract: one context per call, the region only when it has a centre, hooks with defaults."""

import numpy as np
import torch

from mcbo.acq_optim import AcqContext, AcqOptimizer, RandomCandidateSearch
from mcbo.trust_region import CasmopolitanTrustRegion


def test_the_context_restricts_to_a_region_only_once_it_has_a_centre(constrained_region, target_acq):
    space, tr, far = constrained_region
    X_exclude = torch.empty(0, space.d, dtype=torch.float32)
    ctx = AcqContext(target_acq(far), space, X_exclude, trust_region=CasmopolitanTrustRegion(space))
    assert ctx.region is None and ctx.dtype == torch.float32
    lo, hi = ctx.numeric_box(X_exclude)
    assert lo.tolist() == [0.0] and hi.tolist() == [1.0]
    ctx = AcqContext(target_acq(far), space, X_exclude, trust_region=tr, generator=torch.Generator().manual_seed(0))
    assert ctx.region is tr
    assert torch.equal(ctx.numeric_box(X_exclude)[0], tr.bounds()[0].float())
    X = ctx.random_points(50)
    assert len(X) and ctx.allowed(X).all() and tr.contains(X).all()


def test_without_a_generator_the_context_draws_from_a_generator_seeded_zero(mixed_space, mixed_target, target_acq):
    X_exclude = mixed_space.sample(0, seed=0)
    a = RandomCandidateSearch(n_candidates=20).optimize(AcqContext(target_acq(mixed_target), mixed_space, X_exclude))
    b = RandomCandidateSearch(n_candidates=20).optimize(
        AcqContext(target_acq(mixed_target), mixed_space, X_exclude, np_rng=np.random.default_rng(0)))
    assert torch.equal(a, b)


def test_optional_hooks_do_nothing_by_default(mixed_space):
    class First(AcqOptimizer):
        def _optimize(self, ctx):
            return ctx.fallback()

    opt = First()
    opt.observe(mixed_space, mixed_space.sample(2, seed=0), torch.zeros(2))
    assert opt.state_dict() is None
    opt.load_state_dict({})
