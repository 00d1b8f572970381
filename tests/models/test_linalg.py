"""Triangular solves and inverses through scipy's OpenBLAS agree with torch's, gradients included."""

from contextlib import contextmanager

import pytest
import torch

from mcbo.models import linalg


def _cholesky(n: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    K = A @ A.T / n + torch.eye(n, dtype=torch.float64)
    return K, torch.linalg.cholesky(K).to(dtype)


@pytest.fixture(params=[True, False], ids=["openblas", "torch"])
def backend(request, monkeypatch):
    """Both backends; single-threaded torch, the setting in which the solve goes to OpenBLAS."""
    monkeypatch.setattr(linalg, "USE_OPENBLAS", request.param)
    with _torch_threads(1):
        yield request.param


@contextmanager
def _torch_threads(n: int):
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _patched_called_at(call, thread_counts: list[int], calls: list) -> list[bool]:
    """For each torch thread count, whether ``call()`` reached the patched function that appends to ``calls``."""
    reached = []
    for n in thread_counts:
        calls.clear()
        with _torch_threads(n):
            call()
        reached.append(bool(calls))
    return reached


def test_solve_goes_to_openblas_only_when_torch_is_single_threaded(monkeypatch):
    monkeypatch.setattr(linalg, "USE_OPENBLAS", True)  # the route taken on AMD CPUs
    calls = []
    monkeypatch.setattr(linalg, "_trsm_rows", lambda L, R, transpose: calls.append(1) or R.clone())
    _, L = _cholesky(8, torch.float64)
    R = torch.ones(3, 8, dtype=torch.float64)
    assert _patched_called_at(lambda: linalg.solve_lower_rows(L, R), [2, 1], calls) == [False, True]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_solve_lower_rows_solves_each_row(backend, dtype):
    _, L = _cholesky(40, dtype)
    R = torch.randn(25, 40, generator=torch.Generator().manual_seed(1), dtype=dtype)
    Y = linalg.solve_lower_rows(L, R)
    assert Y.shape == (25, 40) and Y.dtype == dtype
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(Y @ L.T, R, atol=tol)  # each row y_i satisfies L y_i = r_i


def test_solve_lower_rows_accepts_views_and_leaves_inputs_alone(backend):
    _, L = _cholesky(30, torch.float64)
    B = torch.randn(30, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    R = B.T  # a non-contiguous view
    before = (L.clone(), B.clone())
    Y = linalg.solve_lower_rows(L, R)
    assert torch.allclose(Y, torch.linalg.solve_triangular(L, B, upper=False).T, atol=1e-12)
    assert torch.equal(L, before[0]) and torch.equal(B, before[1])


def test_solve_lower_rows_gradient_matches_torch(backend):
    _, L = _cholesky(20, torch.float64)
    R = torch.randn(7, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: linalg.solve_lower_rows(L, r), (R,))
    ours = torch.autograd.grad((linalg.solve_lower_rows(L, R) ** 2).sum(), R)[0]
    ref = torch.autograd.grad((torch.linalg.solve_triangular(L, R.T, upper=False) ** 2).sum(), R)[0]
    assert torch.allclose(ours, ref, atol=1e-12)


def test_solve_lower_rows_batched_and_empty_inputs(backend):
    _, L = _cholesky(10, torch.float64)
    R = torch.randn(3, 4, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    Y = linalg.solve_lower_rows(L, R)  # batch dimension: torch path
    assert torch.allclose(Y @ L.T, R, atol=1e-12)
    assert linalg.solve_lower_rows(L, R[0, :0]).shape == (0, 10)


def test_openblas_runs_single_threaded_and_the_setting_is_restored():
    """OpenBLAS's pool must not compete with torch's: one thread during a call, the old count after."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> dict[str, int]:
        return {info["filepath"]: info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}

    before = blas_threads()
    with linalg._single_threaded_openblas():
        inside = blas_threads()
    assert inside and set(inside.values()) == {1}
    assert blas_threads() == before


def test_inverse_goes_to_torch_above_the_measured_thread_counts(monkeypatch):
    monkeypatch.setattr(linalg, "USE_OPENBLAS", True)  # the route taken on AMD CPUs
    calls = []
    monkeypatch.setattr(torch, "cholesky_inverse", lambda L: calls.append(1) or torch.eye(len(L), dtype=L.dtype))
    _, L = _cholesky(8, torch.float64)
    most = linalg.OPENBLAS_INVERSE_MAX_TORCH_THREADS
    assert _patched_called_at(lambda: linalg.cholesky_inverse(L), [most, most + 1], calls) == [False, True]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cholesky_inverse_is_the_full_symmetric_inverse(backend, dtype):
    K, L = _cholesky(60, dtype)
    inverse = linalg.cholesky_inverse(L)
    assert inverse.dtype == dtype and torch.equal(inverse, inverse.T)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert torch.allclose(inverse, torch.cholesky_inverse(L), atol=tol)
    assert torch.allclose(inverse.double() @ K, torch.eye(60, dtype=torch.float64), atol=tol * 10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_extend_cholesky_matches_the_factor_of_the_whole_matrix(backend, dtype):
    K, _ = _cholesky(50, torch.float64, seed=3)
    L_old = torch.linalg.cholesky(K[:42, :42]).to(dtype)
    L = linalg.extend_cholesky(L_old, K[42:, :42].to(dtype), K[42:, 42:].to(dtype))
    ref = torch.linalg.cholesky(K).to(dtype)
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert L.shape == (50, 50) and L.dtype == dtype
    assert torch.allclose(L, ref, atol=tol)
    assert torch.equal(L.triu(1), torch.zeros_like(L))


def test_default_backend_follows_the_cpu_vendor(monkeypatch, tmp_path):
    for vendor, expected in (("AuthenticAMD", True), ("GenuineIntel", False)):
        cpuinfo = tmp_path / f"{vendor}.txt"
        cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: {vendor}\n")
        real_open = open
        monkeypatch.setattr("builtins.open", lambda path, *a, _p=cpuinfo, **k: real_open(
            _p if path == "/proc/cpuinfo" else path, *a, **k))
        assert linalg._default_use_openblas() is expected
        monkeypatch.setattr("builtins.open", real_open)
