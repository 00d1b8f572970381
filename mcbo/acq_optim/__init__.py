"""Acquisition optimisers: maximise an acquisition over a mixed space within a trust region."""

from __future__ import annotations

from typing import Any

from mcbo.acq_optim.base import AcqOptimizer
from mcbo.acq_optim.genetic import GeneticAlgorithm
from mcbo.acq_optim.interleaved import InterleavedSearch
from mcbo.acq_optim.local_search import LocalSearch
from mcbo.acq_optim.mab import MultiArmedBandit
from mcbo.acq_optim.pool import PoolArgMax
from mcbo.acq_optim.random_search import RandomCandidateSearch
from mcbo.acq_optim.simulated_annealing import SimulatedAnnealing

#: Recipe name -> optimiser class.
ACQ_OPTIMIZERS: dict[str, type[AcqOptimizer]] = {
    "interleaved": InterleavedSearch,
    "random": RandomCandidateSearch,
    "local_search": LocalSearch,
    "sa": SimulatedAnnealing,
    "ga": GeneticAlgorithm,
    "mab": MultiArmedBandit,
    "pool": PoolArgMax,
}


def build_acq_optimizer(spec: dict[str, Any]) -> AcqOptimizer:
    """Instantiate the optimiser named by ``spec["type"]`` with the remaining settings."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in ACQ_OPTIMIZERS:
        raise ValueError(f"unknown acq_optimizer type {kind!r}; allowed: {sorted(ACQ_OPTIMIZERS)}")
    try:
        return ACQ_OPTIMIZERS[kind](**spec)
    except TypeError as err:
        raise ValueError(f"acq_optimizer {kind!r}: {err}") from None


__all__ = [
    "ACQ_OPTIMIZERS", "AcqOptimizer", "GeneticAlgorithm", "InterleavedSearch", "LocalSearch", "MultiArmedBandit",
    "RandomCandidateSearch", "SimulatedAnnealing", "build_acq_optimizer",
]
