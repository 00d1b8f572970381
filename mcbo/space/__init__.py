"""Search spaces: parameter types, encoding to tensors, sampling, constraints, neighbourhoods."""

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

__all__ = [
    "Boolean", "Categorical", "ColumnKind", "Constraint", "Integer", "Ordinal", "Param", "Permutation",
    "Real", "SearchSpace", "Sequence", "param_from_dict",
]
