"""Triangular solves and inverses for the GP hot path: scipy's OpenBLAS on CPU, torch elsewhere.

torch's CPU wheels link Intel MKL; scipy ships OpenBLAS. On the development machine (AMD EPYC,
2 cores; ``benchmarks/linalg_backends.py``, both backends alternated in one process), one OpenBLAS
thread ran the posterior's triangular solve 1.1-1.3x faster than one MKL thread (n = 1,000 and
2,000), and the inverse behind every marginal-likelihood gradient 1.2-1.3x faster than torch at one
thread. Against torch's two-thread inverse, one OpenBLAS thread was 0.8-1.0x as fast with the
default OpenMP wait policy and 2.9-3.5x faster with ``OMP_WAIT_POLICY=PASSIVE``
(``benchmarks/results/linalg_backends_*``).

OpenBLAS always runs **single-threaded** here: its own thread pool and torch's OpenMP pool
(busy-waiting between parallel regions by default) compete for the cores. With two threads each,
a ``potri`` at n = 100 took 8.7 ms instead of 0.5 ms, and a whole posterior call on 10,000
candidates 1.3-2.5x longer. So :func:`solve_lower_rows` uses OpenBLAS only when torch is
single-threaded (torch's threaded solve is faster otherwise), and :func:`cholesky_inverse` only
while torch uses at most :data:`OPENBLAS_INVERSE_MAX_TORCH_THREADS` threads (the counts measured;
beyond them torch's threaded inverse is kept). Anything else (another device, a batch dimension,
another dtype) also goes to torch. Inputs are handed to scipy without copying.

The choice depends on the CPU. On an Intel Xeon (AVX-512; 2 cores, one thread each) torch's MKL
was faster at every size measured (issue 21, ``docs/scale.md``): the
triangular solve of 500 rows 2.1-2.4x at n = 1,000-5,000, of 5 rows (an acquisition optimiser's gradient
step) 8-12x, and the inverse 1.2-2x. So :data:`USE_OPENBLAS` defaults to ``True`` on AMD CPUs only
(:func:`_default_use_openblas`, read once from ``/proc/cpuinfo``). Set
``mcbo.models.linalg.USE_OPENBLAS`` to force either route; results agree to rounding either way.

:func:`extend_cholesky` grows a Cholesky factor by new rows in ``O(n^2 k)`` instead of refactoring
in ``O((n + k)^3 / 3)``.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import scipy.linalg.blas
import scipy.linalg.lapack
import torch


def _default_use_openblas() -> bool:
    """Whether this CPU is one where OpenBLAS measured faster than torch's MKL (AMD); ``False`` elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return "AuthenticAMD" in line
    except OSError:
        pass
    return "AMD" in platform.processor().upper()


#: route CPU float32/float64 matrices through scipy (OpenBLAS); False: always torch (see the module docstring)
USE_OPENBLAS = _default_use_openblas()

_TRSM = {torch.float64: scipy.linalg.blas.dtrsm, torch.float32: scipy.linalg.blas.strsm}
_POTRI = {torch.float64: scipy.linalg.lapack.dpotri, torch.float32: scipy.linalg.lapack.spotri}

#: largest torch thread count at which :func:`cholesky_inverse` uses single-threaded OpenBLAS
OPENBLAS_INVERSE_MAX_TORCH_THREADS = 2

_controller_lock = threading.Lock()
_controller = None


def _single_threaded_openblas() -> AbstractContextManager:
    """Limit scipy's OpenBLAS to one thread for the duration of a call (restored afterwards)."""
    global _controller
    with _controller_lock:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController().select(user_api="blas")
    if not _controller.lib_controllers:
        return nullcontext()
    return _controller.limit(limits=1)


def _openblas_eligible(*tensors: torch.Tensor) -> bool:
    return USE_OPENBLAS and all(
        t.device.type == "cpu" and t.dim() == 2 and t.dtype in _TRSM and t.dtype == tensors[0].dtype
        and not t.is_conj() and not t.is_neg()
        for t in tensors
    )


def _trsm_rows(L: torch.Tensor, R: torch.Tensor, transpose: bool) -> torch.Tensor:
    """``R L^-T`` (``transpose=False``) or ``R L^-1`` (``transpose=True``) for lower ``L`` ``[n, n]``, ``R`` ``[m, n]``.

    Row-major ``R`` is the column-major ``R^T``, so this is one left-side ``trsm`` on ``R^T``:
    ``L X^T = R^T`` or ``L^T X^T = R^T``. A row-major ``L`` is the column-major upper factor ``L^T``.
    """
    trsm = _TRSM[L.dtype]
    upper_view = L.detach().contiguous().numpy().T  # column-major L^T (upper), no copy
    rhs = R.detach().contiguous().numpy().T  # column-major R^T [n, m], no copy
    with _single_threaded_openblas():
        out = trsm(1.0, upper_view, rhs, lower=0, trans_a=0 if transpose else 1, overwrite_b=0)
    return torch.from_numpy(out.T)  # [m, n], row-major


class _SolveRows(torch.autograd.Function):
    """``Y = R L^-T`` with a gradient for ``R`` (``dR = dY L^-1``); ``L`` is treated as a constant."""

    @staticmethod
    def forward(ctx, L: torch.Tensor, R: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(L)
        return _trsm_rows(L, R, transpose=False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        (L,) = ctx.saved_tensors
        return None, _trsm_rows(L, grad, transpose=True)


def solve_lower_rows(L: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Rows ``L^-1 r_i`` for a lower-triangular ``L`` ``[..., n, n]`` and rows ``R`` ``[..., m, n]``: ``[..., m, n]``.

    This is ``R L^-T``: for a Cholesky factor ``L`` of ``K`` and cross-covariances ``R = K(X*, X)``, the
    squared row norms are the variance the training data explain. Differentiable in ``R``; gradients
    for ``L`` are supported on the torch path only (used when ``L`` requires them).
    OpenBLAS (one thread) serves single-threaded torch only; see the module docstring.
    """
    if (torch.get_num_threads() != 1 or L.requires_grad or not _openblas_eligible(L, R)
            or R.shape[-1] != L.shape[-1] or L.shape[0] != L.shape[1]):
        return torch.linalg.solve_triangular(L, R.transpose(-1, -2), upper=False).transpose(-1, -2)
    if R.shape[0] == 0 or L.shape[0] == 0:
        return R.new_zeros(R.shape)
    if R.requires_grad and torch.is_grad_enabled():
        return _SolveRows.apply(L, R)
    return _trsm_rows(L, R, transpose=False)


def cholesky_inverse(L: torch.Tensor) -> torch.Tensor:
    """``(L L^T)^-1`` ``[n, n]`` (full, symmetric) from a lower Cholesky factor ``L`` ``[n, n]``.

    On CPU (float64/float32), while torch uses at most :data:`OPENBLAS_INVERSE_MAX_TORCH_THREADS`
    threads, this is LAPACK's ``potri`` from scipy's OpenBLAS on one thread; otherwise torch's
    ``cholesky_inverse``. One NLL evaluation with its gradient (Casmopolitan GP, two threads) took
    0.48 s against 0.58 s at n = 2,000, and 0.13 s against 0.20 s at n = 1,000 with
    ``OMP_WAIT_POLICY=PASSIVE`` (0.13 s against 0.11 s with the default policy).
    """
    if torch.get_num_threads() > OPENBLAS_INVERSE_MAX_TORCH_THREADS or L.requires_grad or not _openblas_eligible(L):
        return torch.cholesky_inverse(L)
    # A row-major L is the column-major upper factor U = L^T; potri(U) fills the upper triangle of
    # (U^T U)^-1 and leaves the other one as given (zeros), i.e. the lower triangle in row-major order.
    with _single_threaded_openblas():
        inverse, info = _POTRI[L.dtype](L.contiguous().numpy().T, lower=0)
    if info != 0:
        return torch.cholesky_inverse(L)
    lower = torch.from_numpy(inverse.T)
    return lower.add_(lower.tril(-1).transpose(0, 1))


def extend_cholesky(L: torch.Tensor, K_new_old: torch.Tensor, K_new_new: torch.Tensor,
                    factor: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Lower Cholesky factor ``[n + k, n + k]`` of ``[[K, B^T], [B, C]]`` from that of ``K`` (``L`` ``[n, n]``).

    ``K_new_old`` is ``B`` ``[k, n]`` and ``K_new_new`` is ``C`` ``[k, k]`` (noise included). The new rows are
    ``[L_21, L_22]`` with ``L_21 = B L^-T`` (one triangular solve, ``O(n^2 k)``) and ``L_22`` the factor of
    the Schur complement ``C - L_21 L_21^T`` (``factor``: a Cholesky routine, default ``torch.linalg.cholesky``);
    the block form of the Cholesky factorisation (Golub & Van Loan, "Matrix Computations", sec. 4.2).
    """
    n, k = L.shape[-1], K_new_new.shape[-1]
    L21 = solve_lower_rows(L, K_new_old)
    schur = K_new_new - L21 @ L21.transpose(-1, -2)
    L22 = (factor or torch.linalg.cholesky)(schur)
    out = L.new_zeros(n + k, n + k)
    out[:n, :n] = L
    out[n:, :n] = L21
    out[n:, n:] = L22
    return out
