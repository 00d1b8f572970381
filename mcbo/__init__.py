"""mcbo: Bayesian optimisation of mixed-variable and combinatorial black boxes."""

from mcbo.space import (
    Boolean,
    Categorical,
    Integer,
    Ordinal,
    Permutation,
    Real,
    SearchSpace,
    Sequence,
)

__version__ = "0.1.0"

__all__ = [
    "Boolean", "Categorical", "Integer", "Ordinal", "Permutation", "Real", "SearchSpace", "Sequence",
    "__version__",
]
