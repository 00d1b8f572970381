"""Trust regions for mixed spaces."""

from __future__ import annotations

from typing import Any

from mcbo.space import SearchSpace
from mcbo.trust_region.casmopolitan import CasmopolitanTrustRegion

#: Recipe name -> trust-region class.
TRUST_REGIONS: dict[str, type[CasmopolitanTrustRegion]] = {"casmopolitan": CasmopolitanTrustRegion}


def build_trust_region(spec: dict[str, Any] | None, space: SearchSpace) -> CasmopolitanTrustRegion | None:
    """Instantiate the trust region named by ``spec["type"]`` (``None`` or ``{"type": "none"}``: no region)."""
    if spec is None:
        return None
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind in (None, "none"):
        return None
    if kind not in TRUST_REGIONS:
        raise ValueError(f"unknown trust_region type {kind!r}; allowed: {sorted(TRUST_REGIONS) + ['none']}")
    try:
        return TRUST_REGIONS[kind](space, **spec)
    except TypeError as err:
        raise ValueError(f"trust_region {kind!r}: {err}") from None


__all__ = ["CasmopolitanTrustRegion", "TRUST_REGIONS", "build_trust_region"]
