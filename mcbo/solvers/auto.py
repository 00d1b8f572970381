"""The ``default`` recipe's solver: Bayesian optimisation configured from the kinds of variables in the space.

A user who does not know which solver suits a problem gets the configuration that measured best on the
harness for spaces like theirs (docs/sample-efficiency.md). The recipe lists one BO configuration per
space kind (:func:`space_kind`); anything given at the top level (``n_init``, or a whole ``model`` spec)
overrides the chosen configuration::

    name: default
    solver: auto
    by_space:
      numeric: {model: {type: gp, combine: joint}, acq_optimizer: {type: coordinate}}
      mixed: {...}
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from mcbo.solvers.bo import BOSolver
from mcbo.solvers.registry import register_solver_kind
from mcbo.space import SearchSpace
from mcbo.space.params import Permutation, Sequence

#: The kinds of space the ``default`` recipe distinguishes, in the order :func:`space_kind` tests them.
SPACE_KINDS = ("permutation", "sequence", "numeric", "nominal", "mixed")

#: Settings of :class:`~mcbo.solvers.bo.BOSolver` a ``by_space`` entry (or a top-level override) may set.
_BO_SETTINGS = ("model", "acquisition", "acq_optimizer", "trust_region", "n_init", "init_sampler", "failure_policy",
                "output_warping")


def space_kind(space: SearchSpace) -> str:
    """``permutation`` if any parameter is a permutation, else ``sequence`` if any is a sequence, else
    ``numeric`` (real, integer, ordinal only), ``nominal`` (categorical, boolean only) or ``mixed``."""
    if any(isinstance(p, Permutation) for p in space.params):
        return "permutation"
    if any(isinstance(p, Sequence) for p in space.params):
        return "sequence"
    if space.is_numeric_only:
        return "numeric"
    if space.is_nominal_only:
        return "nominal"
    return "mixed"


@register_solver_kind("auto")
class AutoBOSolver(BOSolver):
    """:class:`~mcbo.solvers.bo.BOSolver` whose primitives come from ``by_space[space_kind(space)]``.

    Args:
        space: the search space.
        by_space: space kind (:data:`SPACE_KINDS`) -> BO settings (``model``, ``acquisition``, ``acq_optimizer``,
            ``trust_region``, ``n_init``, ``init_sampler``, ``failure_policy``, ``output_warping``); every kind must
            be present.
        model, acquisition, acq_optimizer, trust_region, n_init, init_sampler, failure_policy, output_warping: when given
            (not ``None``; ``trust_region: none`` for no region), replace the chosen entry's setting.
        seed, device, dtype: see :class:`~mcbo.solvers.base.Solver`.
    """

    name = "default"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        by_space: Mapping[str, Mapping[str, Any]] | None = None,
        model: dict[str, Any] | None = None,
        acquisition: dict[str, Any] | None = None,
        acq_optimizer: dict[str, Any] | None = None,
        trust_region: dict[str, Any] | str | None = None,
        n_init: int | None = None,
        init_sampler: str | None = None,
        failure_policy: str | None = None,
        output_warping: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = torch.float64,
    ) -> None:
        if not isinstance(by_space, Mapping) or sorted(by_space) != sorted(SPACE_KINDS):
            raise ValueError(f"by_space must map every space kind {list(SPACE_KINDS)} to BO settings, got "
                             f"{sorted(by_space) if isinstance(by_space, Mapping) else by_space!r}")
        kind = space_kind(space)
        chosen = dict(by_space[kind])
        unknown = sorted(set(chosen) - set(_BO_SETTINGS))
        if unknown:
            raise ValueError(f"by_space[{kind!r}]: unknown setting(s) {unknown}; allowed: {list(_BO_SETTINGS)}")
        given = {"model": model, "acquisition": acquisition, "acq_optimizer": acq_optimizer,
                 "trust_region": trust_region, "n_init": n_init, "init_sampler": init_sampler,
                 "failure_policy": failure_policy, "output_warping": output_warping}
        chosen.update({k: v for k, v in given.items() if v is not None})
        if chosen.get("trust_region") == "none":
            chosen["trust_region"] = None
        self.space_kind = kind
        super().__init__(space, seed=seed, device=device, dtype=dtype, **chosen)


__all__ = ["AutoBOSolver", "SPACE_KINDS", "space_kind"]
