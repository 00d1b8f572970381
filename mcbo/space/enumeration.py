"""Every point of a finite search space, as one encoded tensor.

The points are the Cartesian product of each parameter's values, built by index arithmetic on
per-parameter encoded blocks (no Python loop over points), in lexicographic order of value indices.
Used for exact arg-max over small spaces (the ``pool`` acquisition optimiser, NAP) and to find the
last untried points of a nearly exhausted space.
"""

from __future__ import annotations

import itertools
import math

import torch

from mcbo.space.params import Boolean, Categorical, Integer, Ordinal, Param, Permutation, Sequence
from mcbo.space.search_space import SearchSpace


def enumerate_space(space: SearchSpace, max_points: int) -> torch.Tensor:
    """All encoded points ``[N, d]`` of a finite space (float64), in lexicographic order of value indices.

    Input constraints are not applied (``space.is_feasible`` filters them).

    Raises:
        ValueError: naming a parameter with infinitely many values, or when the space has more than
            ``max_points`` points.
    """
    sizes = [_n_values(p) for p in space.params]
    for p, k in zip(space.params, sizes):
        if k < 0:
            _param_block(p)  # raises the message naming the parameter
    total = math.prod(sizes)
    if total > max_points:
        raise ValueError(f"the space has {total} points, more than max_points={max_points}")
    blocks = [_param_block(p) for p in space.params]
    index = torch.arange(total)
    out = torch.empty(total, space.d, dtype=torch.float64)
    stride = total
    for block, sl in zip(blocks, space.param_slices):
        stride //= block.shape[0]
        out[:, sl] = block[(index // stride) % block.shape[0]]
    return out


def _param_block(param: Param) -> torch.Tensor:
    """Encoded columns ``[k, n_columns]`` of every value of one finite parameter (built from indices)."""
    if isinstance(param, Ordinal):
        k = len(param.values)
        return (torch.arange(k, dtype=torch.float64) / max(k - 1, 1)).unsqueeze(-1)
    if isinstance(param, (Categorical, Boolean)):
        return torch.arange(len(param.values), dtype=torch.float64).unsqueeze(-1)
    if isinstance(param, Integer):
        values = range(int(param.lb), int(param.ub) + 1, int(param.step))
        return torch.tensor([param.encode(v) for v in values], dtype=torch.float64).reshape(len(values), 1)
    if isinstance(param, Sequence):
        k, n = len(param.alphabet), param.length
        index = torch.arange(k**n).unsqueeze(-1)
        powers = k ** torch.arange(n - 1, -1, -1)
        return ((index // powers) % k).to(torch.float64)
    if isinstance(param, Permutation):
        return torch.tensor(list(itertools.permutations(range(len(param.items)))), dtype=torch.float64)
    raise ValueError(f"parameter {param.name!r} of type {type(param).__name__} has infinitely many values; "
                     f"enumerating a space needs finite parameters (categorical, boolean, ordinal, integer, "
                     f"sequence, permutation)")


def _n_values(param: Param) -> int:
    """Number of values of ``param``; -1 when infinite."""
    if isinstance(param, (Categorical, Boolean, Ordinal)):
        return len(param.values)
    if isinstance(param, Integer):
        return len(range(int(param.lb), int(param.ub) + 1, int(param.step)))
    if isinstance(param, Sequence):
        return len(param.alphabet) ** param.length
    if isinstance(param, Permutation):
        return math.factorial(len(param.items))
    return -1


__all__ = ["enumerate_space"]
