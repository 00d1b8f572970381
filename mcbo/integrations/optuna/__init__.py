"""Optuna, both ways: mcbo solvers as an Optuna sampler, Optuna samplers as mcbo solvers.

* :class:`McboSampler` -- an ``optuna.samplers.BaseSampler`` backed by any mcbo recipe;
* :class:`OptunaBridge`, :func:`space_from_optuna`, :func:`distributions_from_space` -- converters between
  Optuna distributions and a :class:`~mcbo.space.SearchSpace` (the mapping is tabled in
  :mod:`mcbo.integrations.optuna.bridge`);
* the ``optuna`` solver kind (recipes ``optuna-tpe``, ``optuna-gp``, ``optuna-cmaes``, ``optuna-random``) lives
  in :mod:`mcbo.solvers.optuna_samplers`; :func:`export_suite` writes a suite database as Optuna studies.
"""

from mcbo.integrations.optuna.bridge import OptunaBridge, distributions_from_space, space_from_optuna
from mcbo.integrations.optuna.export import export_suite
from mcbo.integrations.optuna.sampler import McboSampler

__all__ = ["McboSampler", "OptunaBridge", "distributions_from_space", "export_suite", "space_from_optuna"]
