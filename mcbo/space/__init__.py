"""Search spaces: parameter types, encoding to tensors, sampling, constraints, neighbourhoods, moves.

Move operators on encoded points are in :mod:`mcbo.space.moves`.
"""

from mcbo.space.params import (
    Boolean,
    Categorical,
    ColumnKind,
    Integer,
    Ordinal,
    Param,
    Permutation,
    Real,
    Sequence,
    param_from_dict,
)
from mcbo.space.search_space import Constraint, SearchSpace
from mcbo.space.enumeration import enumerate_space

__all__ = [
    "Boolean", "Categorical", "ColumnKind", "Constraint", "Integer", "Ordinal", "Param", "Permutation",
    "Real", "SearchSpace", "Sequence", "enumerate_space", "param_from_dict",
]
