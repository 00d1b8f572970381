"""Save and load trained TNP networks with a format version and the search-space signature.

A checkpoint is one ``torch.save`` file of plain data (tensors, numbers, strings, lists, dicts),
read back with ``torch.load(weights_only=True)`` so loading never runs pickled code::

    {"format": "mcbo-tnp", "version": 1, "space": <SearchSpace.to_dict()>,
     "space_signature": <SearchSpace.signature()>, "arch": {...}, "state_dict": {...}, "info": {...}}

A model trained for one search space reads inputs of that space only: loading it for another
space raises ``ValueError`` naming both spaces' parameters.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from mcbo.models.tnp import Featuriser, TNPNetwork
from mcbo.space import SearchSpace

logger = logging.getLogger(__name__)

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_VERSION = 1
_FORMAT = "mcbo-tnp"
#: Folder of the checkpoints shipped with mcbo (found by name, e.g. ``"hpo_krr"``).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "nap"


def shipped_checkpoints() -> list[str]:
    """Names of the checkpoints shipped in ``mcbo/data/nap/``."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.pt"))


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """Path of ``checkpoint``: an existing file, or the name of a shipped checkpoint.

    Raises:
        ValueError: when neither exists.
    """
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    shipped = SHIPPED_DIR / f"{Path(str(checkpoint)).stem}.pt"
    if not path.suffix and shipped.is_file():
        return shipped
    raise ValueError(f"checkpoint {str(checkpoint)!r} is neither a file nor a shipped checkpoint name; "
                     f"shipped: {shipped_checkpoints()} (train one with `mcbo meta-train CONFIG`)")


def save_checkpoint(path: str | Path, net: TNPNetwork, space: SearchSpace, info: dict[str, Any] | None = None) -> Path:
    """Write ``net`` for ``space`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "space": space.to_dict(),
        "space_signature": space.signature(),
        "arch": dict(net.arch),
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
        "info": dict(info or {}),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw payload of a checkpoint, after checking its format and version."""
    path = resolve_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 -- any unreadable file gets one clear message
        raise ValueError(f"checkpoint {str(path)!r} could not be read as a TNP checkpoint: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not a TNP checkpoint written by mcbo (format "
                         f"{payload.get('format') if isinstance(payload, dict) else type(payload).__name__!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has version {payload.get('version')!r}; this mcbo reads "
                         f"version {CHECKPOINT_VERSION}; retrain it with `mcbo meta-train`")
    return payload


def check_space(payload: dict[str, Any], space: SearchSpace, where: str = "checkpoint") -> None:
    """Raise ``ValueError`` when ``space`` is not the space the checkpoint was trained on."""
    if payload["space_signature"] == space.signature():
        return
    trained = SearchSpace.from_dict(payload["space"])
    raise ValueError(
        f"{where} was trained on a different search space: it reads parameters {_describe(trained)} "
        f"but got {_describe(space)}; train a model for this space with `mcbo meta-train`"
    )


def _describe(space: SearchSpace) -> str:
    return "[" + ", ".join(f"{p.name}:{type(p).__name__}" for p in space.params) + "]"


def load_checkpoint(
    path: str | Path, space: SearchSpace | None = None, map_location: str | torch.device = "cpu"
) -> tuple[TNPNetwork, dict[str, Any]]:
    """The network stored at ``path`` and its ``info`` dict.

    Args:
        path: a checkpoint file or a shipped checkpoint's name.
        space: when given, must be the space the network was trained on.

    Raises:
        ValueError: for an unreadable file, another format or version, or a mismatched space.
    """
    payload = read_checkpoint(path)
    if space is not None:
        check_space(payload, space, where=f"checkpoint {str(path)!r}")
    trained_space = SearchSpace.from_dict(payload["space"])
    arch = dict(payload["arch"])
    n_features = arch.pop("n_features")
    arch.pop("n_buckets", None)
    if n_features != Featuriser(trained_space).n_features:
        raise ValueError(f"checkpoint {str(path)!r}: stored n_features={n_features} does not match its space")
    net = TNPNetwork(n_features, payload["state_dict"]["borders"], **arch)
    net.load_state_dict(payload["state_dict"])
    net.to(map_location)
    info = dict(payload.get("info", {}))
    info["space"] = trained_space
    return net, info


__all__ = ["CHECKPOINT_VERSION", "SHIPPED_DIR", "check_space", "load_checkpoint", "read_checkpoint",
           "resolve_checkpoint", "save_checkpoint", "shipped_checkpoints"]
