"""Save and load trained TNP networks with a format version and the search-space signature.

The checkpoint format lives with the network it stores, in :mod:`mcbo.models.tnp` (the ``tnp`` model
loads checkpoints too); this module is the meta-learning side's name for it.
"""

from mcbo.models.tnp import (
    CHECKPOINT_VERSION,
    SHIPPED_DIR,
    check_space,
    load_checkpoint,
    read_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    shipped_checkpoints,
)

__all__ = ["CHECKPOINT_VERSION", "SHIPPED_DIR", "check_space", "load_checkpoint", "read_checkpoint",
           "resolve_checkpoint", "save_checkpoint", "shipped_checkpoints"]
