"""Meta-learned BO with transformer neural processes (NAP): task families, training, checkpoints.

* :mod:`mcbo.meta.data` — task families (GP prior samples, shifted/scaled functions, HPO tables).
* :mod:`mcbo.meta.train` — likelihood pre-training, then PPO with the auxiliary likelihood loss.
* :mod:`mcbo.meta.checkpoint` — save/load with a format version and the search-space signature.
* :mod:`mcbo.meta.config` — the YAML config of ``mcbo meta-train``; :mod:`mcbo.meta.cli` the command.

The network itself is :class:`mcbo.models.tnp.TNPNetwork`; the solver is ``nap``
(:mod:`mcbo.solvers.nap`) and the surrogate model type ``tnp``.
"""

from mcbo.meta.checkpoint import CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from mcbo.meta.config import MetaTrainConfig, config_from_dict, load_config
from mcbo.meta.data import FAMILIES, TaskFamily, build_family

__all__ = ["CHECKPOINT_VERSION", "FAMILIES", "MetaTrainConfig", "TaskFamily", "build_family", "config_from_dict",
           "load_checkpoint", "load_config", "save_checkpoint"]
