"""String subsequence kernel (SSK) on nominal columns read as one string.

Sources: Lodhi et al., "Text classification using string kernels", JMLR 2002 (the kernel and its
recursion); Cancedda et al., "Word-sequence kernels", JMLR 2003 (separate match and gap decays);
Beck & Cohn, IJCNLP 2017 (the matrix form of the dynamic programme); Moss et al., BOSS, NeurIPS 2020
and Grosnit et al., BOiLS, DATE 2022 (the kernel used for Bayesian optimisation over strings, with
order coefficients and normalisation).

For strings ``s``, ``t`` of length ``L`` and a subsequence length ``n``::

    k_n(s, t) = sum_{u in A^n} sum_{i: s[i] = u} sum_{j: t[j] = u} lm^(2n) * lg^(gaps(i) + gaps(j))

where ``i = (i_1 < ... < i_n)`` runs over index tuples, ``gaps(i) = i_n - i_1 + 1 - n`` counts the
skipped positions inside the occurrence, ``lm`` is the match decay and ``lg`` the gap decay, both in
``(0, 1)``. The kernel is ``k = sum_{n=1}^{N} c_n k_n`` with order coefficients ``c_n in (0, 1)``,
normalised to ``k(s, t) / sqrt(k(s, s) k(t, t))`` (unit diagonal; the outputscale lives outside).

Two exact computations, both batched over all pairs (the only Python loop runs over the
subsequence length, never over pairs of points):

* **Feature map** (default whenever the alphabet size ``a`` is known and ``a^N`` is at most
  ``max_features``). The kernel is an inner product of explicit features (Lodhi et al. 2002, def. 2),
  ``k_n(s, t) = <Phi_n(s), Phi_n(t)>`` with ``Phi_n(s)[u] = lm^n sum_{i: s[i] = u} lg^gaps(i)``. They come
  from a dynamic programme per string over positions: with ``U[p, b] = [s_p == b]`` (``[L, a]``) and
  ``G_1 = D^T U``, ``Phi_1 = lm sum_p U[p]``, and for ``n >= 2``::

      Phi_n = lm^n U^T G_{n-1}            ([a, a^(n-1)]: last symbol x earlier symbols)
      G_n[p', (b, u)] = sum_{p < p'} lg^(p' - p - 1) U[p, b] G_{n-1}[p, u]

  ``G_{n-1}[p, u]`` sums ``lg^(gaps)`` over occurrences of ``u`` ending before ``p`` (trailing gap up to
  ``p - 1`` included). The orders are concatenated with weights ``sqrt(c_n)``, normalised, and the
  Gram matrix is one matmul: ``O((n1 + n2) L^2 a^(N-1) + n1 n2 a^N)``.
* **Pairwise dynamic programme** (Beck & Cohn 2017), used for large alphabets: for one pair with
  match matrix ``M[p, q] = [s_p == t_q]`` and gap matrix ``D[p, p'] = lg^(p' - p - 1)`` for ``p' > p``
  (0 otherwise)::

      K'_0 = 1,   A_n = lm^2 M * K'_{n-1},   k_n = sum(A_n),   K'_n = D^T A_n D

  ``K'_n[p, q]`` sums the weights of common length-``n`` subsequences ending before position ``p`` of
  ``s`` and ``q`` of ``t``. ``M`` is built for all pairs at once, ``[..., n1, n2, L, L]``; rows of ``x1``
  are processed in blocks under a memory budget, and when hyper-parameter gradients are needed each
  block is checkpointed (recomputed in the backward pass) so that training memory stays at one block.
  Cost ``O(n1 n2 N L^3)``: exact for any alphabet, but much slower than the feature map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gpytorch.constraints import Interval
from gpytorch.kernels import Kernel
from torch.utils.checkpoint import checkpoint

from mcbo.models.kernels.registry import register_nominal_kernel
from mcbo.space import Categorical, Permutation, SearchSpace
from mcbo.space import Sequence as SequenceParam

#: tensors of the block size kept alive at once by the dynamic programme (with autograd's copies)
_LIVE_BLOCKS = 6


def _gap_matrix(length: int, gap_decay: torch.Tensor) -> torch.Tensor:
    """``D[p, p'] = gap_decay^(p' - p - 1)`` for ``p' > p``, else 0; ``[L, L]``."""
    idx = torch.arange(length, device=gap_decay.device)
    expo = (idx.unsqueeze(0) - idx.unsqueeze(1) - 1).to(gap_decay.dtype)
    upper = expo >= 0
    return torch.where(upper, gap_decay ** expo.clamp(min=0.0), torch.zeros_like(expo))


def _subsequence_orders(match: torch.Tensor, match_decay: torch.Tensor, gap_decay: torch.Tensor,
                        n_orders: int) -> torch.Tensor:
    """Unnormalised ``k_1 .. k_N`` for every pair whose match matrix is given.

    Args:
        match: ``[..., L1, L2]`` 0/1 match matrices ``M[p, q] = [s_p == t_q]``.
        match_decay, gap_decay: scalar tensors in ``(0, 1)``.
        n_orders: ``N``, the longest subsequence counted.

    Returns:
        ``[..., N]``: ``k_n`` for ``n = 1 .. N``.
    """
    d1 = _gap_matrix(match.shape[-2], gap_decay)
    d2 = _gap_matrix(match.shape[-1], gap_decay)
    weighted = match_decay**2 * match
    a = weighted  # A_1 = lm^2 M * K'_0 with K'_0 = 1
    orders = []
    for n in range(n_orders):
        orders.append(a.sum((-2, -1)))
        if n + 1 < n_orders:
            a = weighted * (d1.transpose(0, 1) @ a @ d2)
    return torch.stack(orders, -1)


def _combined_block(s1: torch.Tensor, s2: torch.Tensor, match_decay: torch.Tensor, gap_decay: torch.Tensor,
                    coefs: torch.Tensor) -> torch.Tensor:
    """``sum_n c_n k_n`` for all pairs of rows of ``s1`` ``[..., b, L]`` and ``s2`` ``[..., n2, L]``: ``[..., b, n2]``.
    """
    match = (s1.unsqueeze(-2).unsqueeze(-1) == s2.unsqueeze(-3).unsqueeze(-2)).to(coefs.dtype)
    return (_subsequence_orders(match, match_decay, gap_decay, len(coefs)) * coefs).sum(-1)


def _string_features(s: torch.Tensor, alphabet_size: int, match_decay: torch.Tensor, gap_decay: torch.Tensor,
                     coefs: torch.Tensor) -> torch.Tensor:
    """Unit-norm SSK features of strings ``s`` ``[..., n, L]`` (symbol indices): ``[..., n, sum_n a^n]``.

    ``<f(s), f(t)>`` is the normalised kernel. The recursion of the module docstring, rearranged so
    that the widest tensor is never multiplied by the gap matrix: with ``A = U^T D^T`` (``[a, L]``:
    ``A[c, p]`` sums ``lg^(p' - p - 1)`` over later positions ``p'`` holding ``c``),

        Phi_n[b, c, w] = lm^n sum_{p: s_p = b} A[c, p] G_{n-2}[p, w],     G_0 = 1,

    a scatter-add over positions of outer products (``b``: symbol at ``p``, ``c``: the last symbol,
    ``w``: the ``n - 2`` earlier ones). ``A`` and ``G_1 = D^T U`` are each one ``[n a, L] x [L, L]``
    matrix product; only the wider ``G_2 .. G_{N-2}`` (``N >= 4``) need a batched product.
    """
    a, length = alphabet_size, s.shape[-1]
    idx = s.long().clamp(0, a - 1).reshape(-1, length)  # [N, L]
    n_strings, dtype = idx.shape[0], coefs.dtype
    u_t = torch.zeros(n_strings, a, length, dtype=dtype, device=s.device).scatter_(1, idx.unsqueeze(1), 1.0)
    by_symbol = (torch.arange(n_strings, device=s.device) * a).repeat_interleave(length) + idx.reshape(-1)
    gap = _gap_matrix(length, gap_decay)  # gap[p, p'] = lg^(p' - p - 1), p < p'

    def positions_times_gap(matrix: torch.Tensor) -> torch.Tensor:  # [N, L, a]: U^T (symbols x positions) @ matrix
        return (u_t.view(n_strings * a, length) @ matrix).view(n_strings, a, length).transpose(1, 2).contiguous()

    def scatter_by_symbol(rows: torch.Tensor) -> torch.Tensor:  # [N, L, W] -> [N, a W]: sum of rows per symbol
        width = rows.shape[-1]
        out = rows.new_zeros(n_strings * a, width).index_add_(0, by_symbol, rows.reshape(-1, width))
        return out.view(n_strings, a * width)

    parts = [(match_decay * coefs[0].sqrt()) * u_t.sum(-1)]
    if len(coefs) > 1:
        later = positions_times_gap(gap.transpose(0, 1))  # A^T: [N, L(p), a(c)]
        g = None  # G_{order-2}: [N, L, a^(order-2)]; None stands for G_0 = 1
        for order in range(2, len(coefs) + 1):
            scaled = later * (match_decay**order * coefs[order - 1].sqrt())
            rows = scaled if g is None else (scaled.unsqueeze(-1) * g.unsqueeze(-2)).reshape(n_strings, length, -1)
            parts.append(scatter_by_symbol(rows))  # [N, a(b) a(c) a^(order-2)]
            if order < len(coefs):  # G_{order-1}[p', (b, w)] = sum_{p < p', s_p = b} lg^(p'-p-1) G_{order-2}[p, w]
                if g is None:
                    g = positions_times_gap(gap)
                else:
                    placed = u_t.transpose(1, 2).unsqueeze(-1) * g.unsqueeze(-2)  # [N, L, a, a^(order-2)]
                    g = gap.transpose(0, 1) @ placed.reshape(n_strings, length, -1)
    feats = torch.cat(parts, -1)
    norm = feats.norm(dim=-1, keepdim=True)
    feats = feats / norm if feats.requires_grad else feats.div_(norm)
    return feats.reshape(*s.shape[:-1], feats.shape[-1])


class SubsequenceStringKernel(Kernel):
    """Normalised string subsequence kernel over the active columns, read left to right as one string.

    Inputs ``[..., n, L]`` hold symbol indices (floats, rounded); two positions match when their
    indices are equal, so all active columns must share one alphabet (see :func:`build_ssk`).

    Args:
        active_dims: the encoded columns forming the string, in order.
        alphabet_size: number of symbols ``a`` (indices ``0 .. a-1``); enables the feature-map
            computation. ``None``: always the pairwise dynamic programme.
        max_subsequence_length: ``N``, the longest subsequence counted (BOSS and BOiLS use 3).
        match_decay, gap_decay: initial decays, in ``(0, 1)``.
        max_features: largest ``a^N`` for which the feature map is used.
        memory_budget_mb: cap on the tensors of one block of rows of ``x1``.
    """

    def __init__(
        self,
        active_dims: Sequence[int] | torch.Tensor,
        alphabet_size: int | None = None,
        max_subsequence_length: int = 3,
        match_decay: float = 0.9,
        gap_decay: float = 0.5,
        max_features: int = 2**15,
        memory_budget_mb: float = 16.0,
        **kwargs,
    ) -> None:
        if alphabet_size is not None and not (isinstance(alphabet_size, int) and alphabet_size >= 1):
            raise ValueError(f"alphabet_size must be a positive integer or None, got {alphabet_size!r}")
        if not (isinstance(max_subsequence_length, int) and max_subsequence_length >= 1):
            raise ValueError(f"max_subsequence_length must be a positive integer, got {max_subsequence_length!r}")
        for name, value in (("match_decay", match_decay), ("gap_decay", gap_decay)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
        if memory_budget_mb <= 0:
            raise ValueError(f"memory_budget_mb must be positive, got {memory_budget_mb!r}")
        super().__init__(active_dims=torch.as_tensor(active_dims), **kwargs)
        self.max_subsequence_length = max_subsequence_length
        self.alphabet_size = alphabet_size
        self.max_features = int(max_features)
        self.memory_budget_mb = float(memory_budget_mb)
        self.register_parameter("raw_match_decay", torch.nn.Parameter(torch.zeros(1)))
        self.register_parameter("raw_gap_decay", torch.nn.Parameter(torch.zeros(1)))
        self.register_parameter("raw_order_coefs", torch.nn.Parameter(torch.zeros(max_subsequence_length)))
        for name in ("raw_match_decay", "raw_gap_decay", "raw_order_coefs"):
            self.register_constraint(name, Interval(0.0, 1.0))
        self.initialize(
            raw_match_decay=self.raw_match_decay_constraint.inverse_transform(torch.tensor([match_decay])),
            raw_gap_decay=self.raw_gap_decay_constraint.inverse_transform(torch.tensor([gap_decay])),
        )  # order coefficients start at 0.5 each (raw 0)

    @property
    def match_decay(self) -> torch.Tensor:
        return self.raw_match_decay_constraint.transform(self.raw_match_decay)

    @property
    def gap_decay(self) -> torch.Tensor:
        return self.raw_gap_decay_constraint.transform(self.raw_gap_decay)

    @property
    def order_coefs(self) -> torch.Tensor:
        return self.raw_order_coefs_constraint.transform(self.raw_order_coefs)

    # ----------------------------------------------------------------- numerics
    def _hyper(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.match_decay.reshape(()), self.gap_decay.reshape(()), self.order_coefs.reshape(-1)

    def _self_similarity(self, s: torch.Tensor) -> torch.Tensor:
        """Unnormalised ``k(s, s)`` for each row of ``s`` ``[..., n, L]``: ``[..., n]``."""
        lm, lg, coefs = self._hyper()
        match = (s.unsqueeze(-1) == s.unsqueeze(-2)).to(coefs.dtype)
        return (_subsequence_orders(match, lm, lg, len(coefs)) * coefs).sum(-1)

    def _cross(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """Unnormalised ``k`` for all pairs, ``[..., n1, n2]``, in blocks of rows of ``s1``."""
        lm, lg, coefs = self._hyper()
        n1, n2, length = s1.shape[-2], s2.shape[-2], s1.shape[-1]
        bytes_per_row = max(1, n2 * length * length) * coefs.element_size() * _LIVE_BLOCKS
        rows = max(1, int(self.memory_budget_mb * 2**20 // bytes_per_row))
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (lm, lg, coefs, s1, s2))
        blocks = []
        for start in range(0, n1, rows):
            block = s1[..., start:start + rows, :]
            if needs_grad and rows < n1:
                blocks.append(checkpoint(_combined_block, block, s2, lm, lg, coefs, use_reentrant=False))
            else:
                blocks.append(_combined_block(block, s2, lm, lg, coefs))
        return torch.cat(blocks, -2) if blocks else s1.new_zeros(*s1.shape[:-2], 0, n2)

    @property
    def uses_features(self) -> bool:
        """Whether the feature map (rather than the pairwise programme) computes the kernel."""
        return self.alphabet_size is not None and self.alphabet_size**self.max_subsequence_length <= self.max_features

    @property
    def has_explicit_features(self) -> bool:
        """Same as :attr:`uses_features`: the kernel is an inner product of :meth:`explicit_features`."""
        return self.uses_features

    def explicit_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm features ``[..., n, F]`` of strings ``x`` ``[..., n, L]``, ``k(x, x') = phi(x) . phi(x')``."""
        if not self.uses_features:
            raise ValueError("this SSK computes the pairwise dynamic programme; it has no explicit features")
        s = x.round()
        return self._blocked_features(s, self._feature_rows(s.shape[-1], 0))

    def _features(self, s: torch.Tensor) -> torch.Tensor:
        """Unit-norm features of the rows of ``s`` ``[..., n, L]``: ``[..., n, F]``."""
        lm, lg, coefs = self._hyper()
        return _string_features(s, self.alphabet_size, lm, lg, coefs)

    def _feature_rows(self, length: int, extra_per_row: int) -> int:
        """Rows of strings per block so that one block's feature tensors stay under the memory budget."""
        a, n_max = self.alphabet_size, self.max_subsequence_length
        n_features = sum(a**n for n in range(1, n_max + 1))
        per_row = 3 * length * a ** max(n_max - 1, 1) + n_features + extra_per_row
        per_row *= self.raw_order_coefs.element_size()
        return max(1, int(self.memory_budget_mb * 2**20 // per_row))

    def _blocked_features(self, s: torch.Tensor, rows: int) -> torch.Tensor:
        """:meth:`_features` of ``s`` ``[..., n, L]``, computed ``rows`` strings at a time: ``[..., n, F]``."""
        if s.shape[-2] <= rows:
            return self._features(s)
        return torch.cat([self._features(s[..., i:i + rows, :]) for i in range(0, s.shape[-2], rows)], -2)

    def _feature_gram(self, s1: torch.Tensor, s2: torch.Tensor, diag: bool) -> torch.Tensor:
        """Normalised kernel through the feature map, in blocks of rows under the memory budget."""
        length = s1.shape[-1]
        same = s1.shape == s2.shape and torch.equal(s1, s2)
        if diag:
            rows = self._feature_rows(length, 0)
            if same:  # normalised features: every string has unit self-similarity
                return torch.ones(s1.shape[:-1], dtype=s1.dtype, device=s1.device)
            return (self._blocked_features(s1, rows) * self._blocked_features(s2, rows)).sum(-1)
        f2 = self._blocked_features(s2, self._feature_rows(length, 0))
        rows = self._feature_rows(length, s2.shape[-2])
        blocks = []
        for i in range(0, s1.shape[-2], rows):
            f1 = f2[..., i:i + rows, :] if same else self._features(s1[..., i:i + rows, :])
            blocks.append(f1 @ f2.transpose(-1, -2))
        return torch.cat(blocks, -2) if blocks else f2.new_zeros(*s1.shape[:-2], 0, s2.shape[-2])

    # ------------------------------------------------------------------ kernel
    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params) -> torch.Tensor:
        s1, s2 = x1.round(), x2.round()
        if self.uses_features:
            return self._feature_gram(s1, s2, diag)
        k11 = self._self_similarity(s1)
        k22 = k11 if s1.shape == s2.shape and torch.equal(s1, s2) else self._self_similarity(s2)
        if diag:
            lm, lg, coefs = self._hyper()
            match = (s1.unsqueeze(-1) == s2.unsqueeze(-2)).to(coefs.dtype)
            k12 = (_subsequence_orders(match, lm, lg, len(coefs)) * coefs).sum(-1)
            return k12 / torch.sqrt(k11 * k22)
        return self._cross(s1, s2) / torch.sqrt(k11.unsqueeze(-1) * k22.unsqueeze(-2))


def _alphabet_of(space: SearchSpace, cols: torch.Tensor) -> list[tuple[str, list]]:
    """``(parameter name, alphabet)`` for every parameter owning one of ``cols``, in column order."""
    wanted = {int(c) for c in cols}
    out = []
    for param, sl in zip(space.params, space.param_slices):
        if not wanted.intersection(range(sl.start, sl.stop)):
            continue
        if isinstance(param, Permutation):
            raise ValueError(  # noqa: TRY004 -- a bad space is a ValueError throughout mcbo
                f"SSK does not apply to permutation parameter {param.name!r}; use nominal_kernel 'kendall' or 'mallows'"
            )
        if isinstance(param, SequenceParam):
            out.append((param.name, list(param.alphabet)))
        elif isinstance(param, Categorical):
            out.append((param.name, list(param.categories)))
        else:  # pragma: no cover - numeric parameters never own nominal columns
            raise ValueError(f"SSK: parameter {param.name!r} of type {param.type_name!r} has no alphabet")  # noqa: TRY004
    return out


@register_nominal_kernel("ssk")
def build_ssk(space: SearchSpace, cols: torch.Tensor) -> SubsequenceStringKernel:
    """Builder for ``nominal_kernel: ssk``: an SSK over ``cols`` (the nominal columns) of ``space``.

    Valid when every nominal column shares one alphabet: one :class:`~mcbo.space.Sequence` parameter,
    several sequences over the same alphabet (concatenated in space order), or categoricals with
    identical category lists (the columns read in space order as a string).

    Raises:
        ValueError: when the columns do not share one alphabet, or a permutation parameter is present.
    """
    alphabets = _alphabet_of(space, cols)
    if not alphabets:
        raise ValueError("SSK needs at least one nominal column (a Sequence or Categorical parameter)")
    first_name, first = alphabets[0]
    for name, alphabet in alphabets[1:]:
        if len(alphabet) != len(first):
            raise ValueError(
                f"SSK needs all nominal columns to share one alphabet; {first_name!r} has {len(first)} categories, "
                f"{name!r} has {len(alphabet)}"
            )
        if alphabet != first:
            raise ValueError(
                f"SSK needs all nominal columns to share one alphabet; {first_name!r} has {first!r} but "
                f"{name!r} has {alphabet!r}"
            )
    return SubsequenceStringKernel(active_dims=cols, alphabet_size=len(first))


__all__ = ["SubsequenceStringKernel", "build_ssk"]
