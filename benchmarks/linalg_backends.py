"""Dense linear algebra of the GP hot path: torch (MKL) against scipy's OpenBLAS, in one process.

``mcbo.models.linalg`` can send two operations on CPU float tensors to the OpenBLAS that scipy ships
instead of torch's MKL. This script times each both ways, each call on its own, alternating the two
backends over ``--repeats`` rounds in the same process and thread setting, and prints the median
seconds and the ratio torch / OpenBLAS (above 1x: OpenBLAS is faster). torch uses its thread count;
OpenBLAS always runs on one thread, as in mcbo (see ``mcbo.models.linalg``):

* triangular solve: the posterior's, ``m`` candidate rows against a Cholesky factor
  ``[n, n]``, in blocks of ``--rows`` rows (as ``GPModel.posterior`` chunks them), n = 1,000 and 2,000;
* ``cholesky_inverse``: ``(L L^T)^-1`` of every marginal-likelihood gradient, n = 1,000 and 2,000.

Both backends must agree; the largest relative difference is printed with each row. The last column
says which one mcbo uses at this thread count.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/linalg_backends.py
    .venv/bin/python benchmarks/linalg_backends.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import fmt_num, fmt_ratio, header_markdown, markdown_table, warn_if_threads_unset, write_markdown
from mcbo.models import linalg


def _factor(n: int, generator: torch.Generator) -> torch.Tensor:
    """Cholesky factor ``[n, n]`` of a well-conditioned random covariance plus noise."""
    A = torch.randn(n, n + 50, generator=generator, dtype=torch.float64)
    return torch.linalg.cholesky(A @ A.T / n + 1e-3 * torch.eye(n, dtype=torch.float64))


def _in_blocks(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, rows: int) -> list[torch.Tensor]:
    return [fn(X[i:i + rows]) for i in range(0, X.shape[0], rows)]


Call = Callable[[], "torch.Tensor | list[torch.Tensor]"]


def _cases(m: int, rows: int, generator: torch.Generator) -> list[tuple[str, Call, Call, str]]:
    """(label, torch call, OpenBLAS call, which one mcbo uses at the current thread count)."""
    single = torch.get_num_threads() == 1
    solve_user = "OpenBLAS" if single else "torch (OpenBLAS serves single-threaded torch only)"
    inverse_user = ("OpenBLAS" if torch.get_num_threads() <= linalg.OPENBLAS_INVERSE_MAX_TORCH_THREADS
                    else "torch (above OPENBLAS_INVERSE_MAX_TORCH_THREADS)")
    cases: list[tuple[str, Call, Call, str]] = []
    for n in (1000, 2000):
        L = _factor(n, generator)
        Ks = torch.randn(m, n, generator=generator, dtype=torch.float64)
        cases.append((
            f"triangular solve: {m} rows, n={n}, blocks of {rows}",
            lambda L=L, Ks=Ks: _in_blocks(lambda b: torch.linalg.solve_triangular(L, b.T, upper=False).T, Ks, rows),
            lambda L=L, Ks=Ks: _in_blocks(lambda b: linalg._trsm_rows(L, b, transpose=False), Ks, rows),
            solve_user))
        cases.append((f"cholesky_inverse: n={n}", lambda L=L: torch.cholesky_inverse(L),
                      lambda L=L: linalg.cholesky_inverse(L), inverse_user))
    return cases


def _time(fn: Call) -> tuple[float, torch.Tensor]:
    """Seconds of one call, and its output (blocks joined after the clock stops)."""
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    return elapsed, torch.cat(out) if isinstance(out, list) else out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", type=int, default=10000, help="candidate rows (default 10000)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per block (default 1000)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds per backend (median; default 7)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warn_if_threads_unset()
    generator = torch.Generator().manual_seed(0)
    rows = []
    with torch.no_grad():
        for label, torch_fn, openblas_fn, used in _cases(args.m, args.rows, generator):
            calls = {"torch": torch_fn, "OpenBLAS": openblas_fn}
            outputs = {name: _time(fn)[1] for name, fn in calls.items()}  # warm-up, and the outputs to compare
            times: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(args.repeats):
                for name, fn in calls.items():
                    times[name].append(_time(fn)[0])
            torch_s, openblas_s = statistics.median(times["torch"]), statistics.median(times["OpenBLAS"])
            diff = float((outputs["OpenBLAS"] - outputs["torch"]).abs().max() / outputs["torch"].abs().max())
            row = {"operation": label, "torch (MKL) s": fmt_num(torch_s), "OpenBLAS (1 thread) s": fmt_num(openblas_s),
                   "torch / OpenBLAS": fmt_ratio(torch_s / openblas_s), "max rel. difference": f"{diff:.1e}",
                   "mcbo uses": used}
            rows.append(row)
            print(" | ".join(str(v) for v in row.values()), flush=True)
    settings = {"m": args.m, "rows per block": args.rows, "repeats (median)": args.repeats,
                "torch threads": torch.get_num_threads(), "command": "benchmarks/linalg_backends.py"}
    text = header_markdown(
        "Linear algebra backends: torch (MKL) against OpenBLAS",
        __doc__.split("\n\n", 1)[1].split("Run from")[0], settings) + "\n## Results\n\n" + markdown_table(rows)
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    name = f"linalg_backends_{torch.get_num_threads()}t{'_passive' if passive else ''}.md"
    print(f"wrote {write_markdown(name, text, args.out)}")


if __name__ == "__main__":
    main()
