"""Trust regions for mixed spaces: the :class:`TrustRegion` contract, its registry and Casmopolitan's region."""

from __future__ import annotations

from typing import Any

from mcbo.space import SearchSpace
from mcbo.trust_region.base import TRUST_REGIONS, TrustRegion, register_trust_region
from mcbo.trust_region.casmopolitan import CasmopolitanTrustRegion


def build_trust_region(spec: dict[str, Any] | None, space: SearchSpace) -> TrustRegion | None:
    """Instantiate the trust region named by ``spec["type"]`` (``None`` or ``{"type": "none"}``: no region).

    Raises:
        ValueError: naming an unknown type or setting and listing the allowed ones.
    """
    if spec is None:
        return None
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind in (None, "none"):
        return None
    if kind not in TRUST_REGIONS:
        raise ValueError(f"unknown trust_region type {kind!r}; allowed: {sorted(TRUST_REGIONS) + ['none']}")
    return TRUST_REGIONS.build(kind, spec, space=space)


__all__ = ["CasmopolitanTrustRegion", "TRUST_REGIONS", "TrustRegion", "build_trust_region", "register_trust_region"]
