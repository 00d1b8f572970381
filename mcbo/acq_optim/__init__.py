"""Acquisition optimisers: maximise an acquisition over a mixed space within a trust region.

Each optimiser takes one :class:`AcqContext` (acquisition, space, points to exclude, trust region,
random generators). Importing this package registers every built-in optimiser in :data:`ACQ_OPTIMIZERS`.
"""

from __future__ import annotations

from typing import Any

from mcbo.acq_optim.base import ACQ_OPTIMIZERS, AcqContext, AcqOptimizer, register_acq_optimizer
from mcbo.acq_optim.coordinate import CoordinateSearch
from mcbo.acq_optim.genetic import GeneticAlgorithm
from mcbo.acq_optim.interleaved import InterleavedSearch
from mcbo.acq_optim.local_search import LocalSearch
from mcbo.acq_optim.mab import MultiArmedBandit
from mcbo.acq_optim.pool import PoolArgMax
from mcbo.acq_optim.random_search import RandomCandidateSearch
from mcbo.acq_optim.simulated_annealing import SimulatedAnnealing


def build_acq_optimizer(spec: dict[str, Any]) -> AcqOptimizer:
    """Instantiate the optimiser named by ``spec["type"]`` with the remaining settings.

    Raises:
        ValueError: naming an unknown type or setting and listing the allowed ones.
    """
    settings = dict(spec)
    kind = settings.pop("type", None)
    return ACQ_OPTIMIZERS.build(kind, settings)


__all__ = [
    "ACQ_OPTIMIZERS", "AcqContext", "AcqOptimizer", "CoordinateSearch", "GeneticAlgorithm", "InterleavedSearch", "LocalSearch",
    "MultiArmedBandit", "PoolArgMax", "RandomCandidateSearch", "SimulatedAnnealing", "build_acq_optimizer",
    "register_acq_optimizer",
]
