"""Kernel throughput: covariance entries per second of each GP kernel, batched vs a naive pair loop.

For every kernel of ``mcbo.models.gp`` (on a space it suits, see ``benchmarks.common.KERNEL_CASES``)
this times, with the kernel's initial hyper-parameters and ``torch.no_grad()``:

* the batched Gram matrix ``K(X, X)`` ``[n, n]`` and cross-covariance ``K(Xc, X)`` ``[m, n]`` (one call
  of the gpytorch kernel, densified), and the Gram matrix's forward + backward pass (what each step of
  the marginal-likelihood fit costs, gradients on);
* a naive Python double loop over pairs that calls the kernel's ``forward`` on single rows, on a small
  ``n_naive x n_naive`` block (every pair, no symmetry shortcut), after checking it gives the same
  entries as the batched call.

Entries per second = matrix entries / median seconds; the ratio is batched / naive entries per second.
The naive loop calls ``forward`` directly (skipping gpytorch's per-call wrapping), so the ratio is a
conservative figure. An extra row ``ssk_dp`` forces the SSK's pairwise dynamic programme (the path
used when ``alphabet ** 3`` is too large for the feature map), on smaller sizes.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kernel_throughput.py            # n=1000, m=10000
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kernel_throughput.py --n 200 --m 1000 --kernels ssk hed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from linear_operator import to_dense

from benchmarks.common import (
    KERNEL_CASES,
    KernelCase,
    fmt_num,
    fmt_ratio,
    header_markdown,
    markdown_table,
    measure,
    pick_cases,
    space_sequence,
    warn_if_threads_unset,
    write_markdown,
)
from mcbo.models import build_kernel
from mcbo.models.kernels import SubsequenceStringKernel

DP_CASE = "ssk_dp"


def _kernel_for(case_name: str, space, dtype: torch.dtype):
    if case_name == DP_CASE:
        kernel = SubsequenceStringKernel(active_dims=space.nominal_columns, alphabet_size=None)
    else:
        kernel = build_kernel(space, **KERNEL_CASES[case_name].gp_kwargs())
    return kernel.to(dtype=dtype)


def _pair(kernel, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``k(a, b)`` for single rows ``[1, d]`` through the kernel's own ``forward`` (active columns applied)."""
    dims = kernel.active_dims
    if dims is not None:
        a, b = a[..., dims], b[..., dims]
    return to_dense(kernel.forward(a, b))


def _naive_matrix(kernel, X1: torch.Tensor, X2: torch.Tensor) -> torch.Tensor:
    out = torch.empty(X1.shape[0], X2.shape[0], dtype=X1.dtype)
    for i in range(X1.shape[0]):
        for j in range(X2.shape[0]):
            out[i, j] = _pair(kernel, X1[i:i + 1], X2[j:j + 1]).reshape(())
    return out


def _gram_fwd_bwd(kernel, X: torch.Tensor) -> None:
    kernel.zero_grad(set_to_none=True)
    to_dense(kernel(X)).sum().backward()


def run_case(name: str, space_label: str, space, n: int, m: int, n_naive: int, repeats: int, warmup: int,
             dtype: torch.dtype) -> dict:
    """Measure one kernel; returns a row of figures (floats and strings)."""
    kernel = _kernel_for(name, space, dtype)
    X = space.sample(n, seed=0, dtype=dtype)
    Xc = space.sample(m, seed=1, dtype=dtype)
    Xs, Xcs = X[:n_naive], Xc[:n_naive]
    with torch.no_grad():
        gram = measure(lambda: to_dense(kernel(X)), repeats, warmup)
        cross = measure(lambda: to_dense(kernel(Xc, X)), repeats, warmup)
        naive_gram = measure(lambda: _naive_matrix(kernel, Xs, Xs), repeats, min(warmup, 1))
        naive_cross = measure(lambda: _naive_matrix(kernel, Xcs, Xs), repeats, min(warmup, 1))
        err = max(float((_naive_matrix(kernel, Xs, Xs) - to_dense(kernel(Xs))).abs().max()),
                  float((_naive_matrix(kernel, Xcs, Xs) - to_dense(kernel(Xcs, Xs))).abs().max()))
    has_params = any(p.requires_grad for p in kernel.parameters())  # Kendall has no hyper-parameter
    fwd_bwd = measure(lambda: _gram_fwd_bwd(kernel, X), repeats, warmup) if has_params else None
    row = {
        "kernel": name, "space": space_label, "n": n, "m": m, "n_naive": n_naive,
        "gram_s": gram.median, "gram_eps": n * n / gram.median,
        "naive_gram_eps": n_naive * n_naive / naive_gram.median,
        "cross_s": cross.median, "cross_eps": m * n / cross.median,
        "naive_cross_eps": n_naive * n_naive / naive_cross.median,
        "gram_fwd_bwd_s": fwd_bwd.median if fwd_bwd is not None else float("nan"), "max_abs_diff": err,
    }
    row["gram_ratio"] = row["gram_eps"] / row["naive_gram_eps"]
    row["cross_ratio"] = row["cross_eps"] / row["naive_cross_eps"]
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="training rows: Gram is n x n (default 1000)")
    parser.add_argument("--m", type=int, default=10000, help="candidate rows: cross-covariance is m x n (10000)")
    parser.add_argument("--n-naive", type=int, default=20, help="rows of the naive loop's block (default 20)")
    parser.add_argument("--dp-max-n", type=int, default=300, help="cap on n for the ssk_dp row (default 300)")
    parser.add_argument("--dp-max-m", type=int, default=1000, help="cap on m for the ssk_dp row (default 1000)")
    parser.add_argument("--kernels", nargs="*", default=None,
                        help=f"subset of {[*KERNEL_CASES, DP_CASE]} (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    warn_if_threads_unset()
    dtype = getattr(torch, args.dtype)
    names = args.kernels or [*KERNEL_CASES, DP_CASE]
    cases: list[tuple[str, str, object]] = []
    for name in names:
        if name == DP_CASE:
            cases.append((name, "sequence, length 20, 11 symbols (pairwise DP forced)", space_sequence()))
        else:
            case: KernelCase = pick_cases([name])[0]
            cases.append((name, case.space_label, case.space_fn()))

    rows = []
    for name, label, space in cases:
        n, m = (min(args.n, args.dp_max_n), min(args.m, args.dp_max_m)) if name == DP_CASE else (args.n, args.m)
        row = run_case(name, label, space, n, m, min(args.n_naive, n), args.repeats, args.warmup, dtype)
        rows.append(row)
        print(f"{name:22s} Gram {n}x{n}: {fmt_num(row['gram_s'])} s = {row['gram_eps']:.3g} entries/s "
              f"({fmt_ratio(row['gram_ratio'])} the naive loop); cross {m}x{n}: {fmt_num(row['cross_s'])} s = "
              f"{row['cross_eps']:.3g} entries/s ({fmt_ratio(row['cross_ratio'])}); Gram fwd+bwd "
              f"{fmt_num(row['gram_fwd_bwd_s'])} s; naive vs batched max |diff| {row['max_abs_diff']:.1e}",
              flush=True)

    table = [{
        "kernel": r["kernel"], "space": r["space"],
        "Gram n x n": f"{r['n']} x {r['n']}", "Gram s": r["gram_s"], "Gram entries/s": f"{r['gram_eps']:.3g}",
        "naive entries/s": f"{r['naive_gram_eps']:.3g}", "Gram ratio": fmt_ratio(r["gram_ratio"]),
        "cross m x n": f"{r['m']} x {r['n']}", "cross s": r["cross_s"], "cross entries/s": f"{r['cross_eps']:.3g}",
        "naive cross entries/s": f"{r['naive_cross_eps']:.3g}", "cross ratio": fmt_ratio(r["cross_ratio"]),
        "Gram fwd+bwd s": r["gram_fwd_bwd_s"], "max abs diff vs naive": f"{r['max_abs_diff']:.1e}",
    } for r in rows]
    description = (
        "Covariance entries per second of each GP kernel (initial hyper-parameters, `torch.no_grad()`): the batched "
        "kernel call (as `GPModel` makes it) vs a naive Python double loop over pairs calling the kernel's "
        "`forward` on single rows, on an `n_naive x n_naive` block (all pairs). Ratio = batched / naive entries per "
        "second; the naive block is smaller than the batched one, so the ratio mixes vectorisation with size "
        "effects. `Gram fwd+bwd s` is one Gram forward + backward (gradients on), the cost of one step of the "
        "marginal-likelihood fit. `max abs diff vs naive` checks both paths compute the same entries. "
        "Produced by `benchmarks/kernel_throughput.py`."
    )
    settings = {"n": args.n, "m": args.m, "n_naive": args.n_naive, "ssk_dp caps (n, m)":
                f"({args.dp_max_n}, {args.dp_max_m})", "repeats (median)": args.repeats, "warm-up calls": args.warmup,
                "dtype": args.dtype, "command": " ".join(["benchmarks/kernel_throughput.py", *(argv or sys.argv[1:])])}
    text = header_markdown("Kernel throughput", description, settings) + "\n## Results\n\n" + markdown_table(table)
    path = write_markdown("kernel_throughput.md", text, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
