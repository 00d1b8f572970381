"""Seconds per ask vs the number of observations, for mcbo's casmopolitan and boils and their peers.

Solvers (each measured in a fresh worker process, so its peak memory is its own):

* ``casmopolitan`` (mcbo recipe) on Ackley-53's space (``build_task("ackley53").space``: 50 booleans + 3
  reals), objective Ackley-53;
* ``boils`` (mcbo recipe, SSK GP) on BOiLS' space WITHOUT ABC: one sequence of 20 commands over the 11 ABC
  operations (``mcbo.tasks.logic_synthesis.OPERATIONS``), with a cheap synthetic string objective
  (Hamming distance to a fixed target minus a motif bonus; ``benchmarks.common.objective_sequence``)
  instead of running ABC;
* peers on the same spaces: Optuna's ``GPSampler`` and ``TPESampler`` (default settings; the space
  translated by ``mcbo.integrations.optuna.OptunaBridge``: booleans and sequence positions as categorical
  parameters) and BoTorch's ``MixedSingleTaskGP`` +
  ``LogExpectedImprovement`` optimised by ``optimize_acqf_mixed_alternating`` (booleans and sequence
  positions as categorical dimensions; its default ``num_restarts=20``, ``raw_samples=1024``). Its GP
  fit is capped at ``--botorch-fit-maxiter`` L-BFGS-B iterations (default 100, as mcbo's ``GPModel``):
  uncapped, BoTorch's fit of this model on Ackley-53 ran for thousands of iterations (over 400 s at
  n = 100 on the development machine), which would only measure the missing cap.

For each (space, solver, n): ``n`` uniformly random points and their values are told first (mcbo:
``Solver.tell`` then ``solver._n_init_used = solver.n_init`` so the BO loop is active; Optuna: trials
added with ``optuna.trial.create_trial``; BoTorch: the training set). Then ``--warmup`` + ``--repeats``
asks, each followed (untimed) by evaluating and telling the suggested point, as in a real loop. The
figure is the median seconds of the timed asks (wall time; beside it the median CPU time of the worker
process, which on a machine shared with other jobs is the better estimate of a quiet core's wall time):

* mcbo: ``solver.ask(1)`` (GP fit + acquisition optimisation; ``last_timings`` gives the split);
* Optuna: ``study.ask()`` plus one ``trial.suggest_*`` per parameter: ``GPSampler`` does its work in
  ``sample_relative`` (called by ``ask``), TPE in ``sample_independent`` (called by ``suggest_*``) when
  univariate, in ``sample_relative`` when multivariate (Optuna 5's default for one objective); the worker
  counts those calls to show the sampler really modelled the data;
* BoTorch: building + fitting the GP (``fit_gpytorch_mll``) + ``optimize_acqf_mixed_alternating``.

A measurement whose timed asks run past ``--budget`` seconds is killed and reported as ``> budget``
(the worker shrinks its repeats when the warm-up ask shows they would not fit). Peak memory: the
worker's ``getrusage`` peak RSS (imports included) and the peak RSS growth during the asks.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ask_time.py        # n = 100 ... 10000, every solver
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ask_time.py --n 2000 5000 10000 --solvers casmopolitan boils \
        optuna_gp optuna_tpe --repeats 6 --budget 150 --model-options '{"fit_subset_size": 300, "refit_every": 3}' \
        --name ask_time_large_n.md                                   # issue 21: the large-n GP regime
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ask_time.py --n 2000 5000 10000 --solvers casmopolitan boils \
        --repeats 6 --budget 150 --model-options '{"fit_subset_size": 300, "refit_every": 3, "max_train_points": 1000}' \
        --name ask_time_large_n_cap1000.md                           # issue 21: the training set capped
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ask_time.py --n 100 200 --solvers casmopolitan optuna_tpe
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.common import (
    MemoryWindow,
    emit,
    fmt_num,
    fmt_ratio,
    header_markdown,
    markdown_table,
    objective_mixed,
    objective_sequence,
    peak_rss_mib,
    run_worker,
    space_ackley53,
    space_sequence,
    warn_if_threads_unset,
    worker_command,
    worker_spec_from_argv,
    write_markdown,
)

#: Space name -> (space factory, objective on encoded points, label, mcbo solver measured on it).
SPACES: dict[str, tuple[Callable[[], Any], Callable, str, str]] = {
    "ackley53": (space_ackley53, objective_mixed, "Ackley-53 (50 booleans + 3 reals)", "casmopolitan"),
    "sequence": (space_sequence, objective_sequence,
                 "BOiLS space without ABC: sequence of 20 over 11 operations, synthetic objective", "boils"),
}
OURS = ("casmopolitan", "boils")
PEERS = ("optuna_gp", "optuna_tpe", "botorch_mixed")
#: The issue's targets at n = 200 (seconds per ask, 2 CPU cores).
TARGETS_S = {"casmopolitan": 1.0, "boils": 2.0}
#: The issue's figures for the reference MCBO code (seconds per suggestion; n not stated). Not re-measured.
REFERENCE_S = {"casmopolitan": (3.0, 5.0), "boils": (54.0, 54.0)}
#: Issue 21's targets at large n, 1 thread: (solver, n) -> seconds per ask.
TARGETS_LARGE_N_S = {("casmopolitan", 2000): 2.0, ("casmopolitan", 5000): 5.0, ("boils", 5000): 5.0}


# ----------------------------------------------------------------------------------- worker side


class _OursRunner:
    def __init__(self, name: str, space, f: Callable, points: list[dict], values: list[float], seed: int,
                 model_options: dict[str, Any] | None = None) -> None:
        from mcbo.solvers import build_solver
        from mcbo.solvers.registry import load_recipe

        self.space, self.f = space, f
        overrides = {}
        if model_options:  # e.g. the large-n options of issue 21 on top of the recipe's model
            overrides["model"] = {**load_recipe(name)["model"], **model_options}
        self.solver = build_solver(name, space, seed=seed, **overrides)
        self.solver.tell(points, values)
        self.solver._n_init_used = self.solver.n_init  # initial design done: every ask runs the BO loop
        self.timings: list[dict[str, float]] = []

    def ask(self) -> list[dict]:
        return self.solver.ask(1)

    def after(self, points: list[dict]) -> None:
        self.timings.append(dict(self.solver.last_timings))
        y = self.f(self.space, self.space.encode(points)).tolist()
        self.solver.tell(points, y)

    def extra(self) -> dict[str, Any]:
        fit = [t["fit_seconds"] for t in self.timings[1:]] or [math.nan]
        acq = [t["acq_seconds"] for t in self.timings[1:]] or [math.nan]
        return {"fit_s": _median(fit), "acq_s": _median(acq),
                "check": "BO active" if all(t["fit_seconds"] > 0 for t in self.timings) else "no GP fit!"}


class _OptunaRunner:
    def __init__(self, kind: str, space, f: Callable, points: list[dict], values: list[float], seed: int) -> None:
        import optuna
        from optuna.distributions import IntDistribution

        from mcbo.integrations.optuna import OptunaBridge

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.f = space, f
        # booleans and categoricals -> CategoricalDistribution, a sequence -> one categorical per position
        bridge = OptunaBridge.from_space(space)
        self.dists, self.to_point = bridge.distributions, bridge.to_point
        self.int_names = {name for name, dist in self.dists.items() if isinstance(dist, IntDistribution)}
        sampler = optuna.samplers.GPSampler(seed=seed) if kind == "optuna_gp" else optuna.samplers.TPESampler(seed=seed)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.study.add_trials([optuna.trial.create_trial(params=bridge.to_params(p), distributions=self.dists, value=v)
                               for p, v in zip(points, values)])
        self.relative_params: list[int] = []
        self.independent_calls = 0
        relative, independent = sampler.sample_relative, sampler.sample_independent

        def counted_relative(study, trial, search_space):
            out = relative(study, trial, search_space)
            self.relative_params.append(len(out))
            return out

        def counted_independent(*args, **kwargs):
            self.independent_calls += 1
            return independent(*args, **kwargs)

        sampler.sample_relative = counted_relative  # instance attributes: the study calls these
        sampler.sample_independent = counted_independent
        self.n_asks = 0

    def ask(self):
        trial = self.study.ask()
        params = {}
        for name, dist in self.dists.items():
            if hasattr(dist, "choices"):
                params[name] = trial.suggest_categorical(name, dist.choices)
            elif name in self.int_names:  # none on these spaces; integers and ordinal ranks elsewhere
                params[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
            else:
                params[name] = trial.suggest_float(name, dist.low, dist.high, log=dist.log)
        return trial, params

    def after(self, result) -> None:
        trial, params = result
        self.n_asks += 1
        point = self.to_point(params)
        self.study.tell(trial, float(self.f(self.space, self.space.encode([point]))[0]))

    def extra(self) -> dict[str, Any]:
        asks = max(self.n_asks, 1)
        rel = max(self.relative_params) if self.relative_params else 0
        check = (f"relative: {rel}/{len(self.dists)} params per ask; "
                 f"independent: {self.independent_calls / asks:.0f} params per ask")
        return {"fit_s": math.nan, "acq_s": math.nan, "check": check}


class _BoTorchRunner:
    def __init__(self, space, f: Callable, points: list[dict], values: list[float], seed: int,
                 fit_maxiter: int) -> None:
        self.space, self.f = space, f
        self.fit_options = {"options": {"maxiter": fit_maxiter}} if fit_maxiter > 0 else {}
        self.X = space.encode(points)
        self.y = torch.as_tensor(values, dtype=torch.float64)
        cards = space.cardinalities.tolist()
        self.cat_dims = {int(c): [float(v) for v in range(cards[int(c)])] for c in space.nominal_columns}
        lb = torch.zeros(space.d, dtype=torch.float64)
        ub = torch.ones(space.d, dtype=torch.float64)
        for c in self.cat_dims:
            ub[c] = cards[c] - 1
        self.bounds = torch.stack([lb, ub])
        torch.manual_seed(seed)
        self.fit_times: list[float] = []
        self.acq_times: list[float] = []

    def ask(self) -> torch.Tensor:
        from botorch.acquisition import LogExpectedImprovement
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import MixedSingleTaskGP
        from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
        from gpytorch.mlls import ExactMarginalLogLikelihood

        start = time.perf_counter()
        train_y = -self.y.unsqueeze(-1)  # BoTorch maximises
        model = MixedSingleTaskGP(self.X, train_y, cat_dims=list(self.cat_dims))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model), optimizer_kwargs=self.fit_options)
        self.fit_times.append(time.perf_counter() - start)
        acq = LogExpectedImprovement(model, best_f=train_y.max())
        start = time.perf_counter()
        candidate, _ = optimize_acqf_mixed_alternating(acq, self.bounds, cat_dims=self.cat_dims, q=1)
        self.acq_times.append(time.perf_counter() - start)
        return candidate.detach()

    def after(self, candidate: torch.Tensor) -> None:
        x = self.space.snap(candidate.reshape(1, -1).to(torch.float64))
        self.X = torch.cat([self.X, x])
        self.y = torch.cat([self.y, self.f(self.space, x).reshape(1)])

    def extra(self) -> dict[str, Any]:
        fit, acq = self.fit_times[1:] or [math.nan], self.acq_times[1:] or [math.nan]
        return {"fit_s": _median(fit), "acq_s": _median(acq), "check": "GP fit + mixed alternating"}


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else 0.5 * (xs[len(xs) // 2 - 1] + xs[len(xs) // 2])


def worker(spec: dict) -> None:
    """Tell ``n`` random points, then time the asks; report events on stdout (see ``common.run_worker``)."""
    torch.manual_seed(spec["seed"])
    space_fn, f, _, _ = SPACES[spec["space"]]
    space = space_fn()
    X = space.sample(spec["n"], seed=spec["seed"] + 1000)
    points, values = space.decode(X), f(space, X).tolist()
    name = spec["solver"]
    if name in OURS:
        runner: Any = _OursRunner(name, space, f, points, values, spec["seed"], spec.get("model_options"))
    elif name in ("optuna_gp", "optuna_tpe"):
        runner = _OptunaRunner(name, space, f, points, values, spec["seed"])
    elif name == "botorch_mixed":
        runner = _BoTorchRunner(space, f, points, values, spec["seed"], spec["botorch_fit_maxiter"])
    else:
        raise ValueError(f"unknown solver {name!r}")
    emit("timing_started")
    budget, times, cpu_times, started = spec["budget"], [], [], time.perf_counter()
    repeats = spec["repeats"]
    with MemoryWindow() as mem:
        for i in range(spec["warmup"] + repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            result = runner.ask()
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            runner.after(result)
            emit("ask", seconds=elapsed, warmup=i < spec["warmup"])
            if i < spec["warmup"]:
                # shrink the repeats so the measurement fits the budget (at least one timed ask)
                left = budget - (time.perf_counter() - started)
                repeats = max(1, min(repeats, int(left // max(elapsed, 1e-9))))
            else:
                times.append(elapsed)
                cpu_times.append(cpu)
            if len(times) >= repeats:
                break
    emit("result", median_s=_median(times), mean_s=sum(times) / max(len(times), 1), times=times,
         cpu_median_s=_median(cpu_times) if cpu_times else math.nan, repeats_done=len(times), peak_rss_mib=peak_rss_mib(),
         ask_mem_delta_mib=mem.delta_mib, **runner.extra())


# ----------------------------------------------------------------------------------- parent side


def measure_one(space: str, solver: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    spec = {"space": space, "solver": solver, "n": n, "repeats": args.repeats, "warmup": args.warmup,
            "seed": args.seed, "budget": args.budget, "botorch_fit_maxiter": args.botorch_fit_maxiter,
            "model_options": args.model_options}
    out = run_worker(worker_command(__file__, spec), budget_s=args.budget, setup_timeout_s=args.setup_timeout)
    res = out.result or {}
    asks = [e["seconds"] for e in out.all("ask")]
    if out.status == "ok":
        status, median = "ok", res["median_s"]
    elif out.status == "over_budget":
        status, median = f"> budget ({args.budget:g} s)", math.nan
        if asks:
            status += f"; {len(asks)} ask(s) done, first {asks[0]:.3g} s"
    else:
        status, median = out.status, math.nan
        print(out.stderr_tail, file=sys.stderr)
    return {"space": space, "solver": solver, "n": n, "status": status, "s_per_ask": median,
            "mean_s": res.get("mean_s", math.nan), "cpu_s": res.get("cpu_median_s", math.nan),
            "fit_s": res.get("fit_s", math.nan), "acq_s": res.get("acq_s", math.nan),
            "repeats": res.get("repeats_done", 0), "peak_rss_mib": res.get("peak_rss_mib", math.nan),
            "ask_mem_delta_mib": res.get("ask_mem_delta_mib", math.nan), "check": res.get("check", "")}


def _ratio_rows(rows: list[dict]) -> list[dict]:
    by = {(r["space"], r["solver"], r["n"]): r for r in rows}
    out = []
    for space, (_, _, _, ours) in SPACES.items():
        for n in sorted({r["n"] for r in rows if r["space"] == space}):
            mine = by.get((space, ours, n))
            if mine is None:
                continue
            row = {"space": space, "n": n, "ours": ours, "ours s/ask": mine["s_per_ask"]}
            for peer in PEERS:
                other = by.get((space, peer, n))
                if other is None:
                    continue
                if other["status"].startswith((">", "skipped")):
                    row[f"{peer} / ours"] = "peer > budget"
                else:
                    row[f"{peer} / ours"] = fmt_ratio(other["s_per_ask"] / mine["s_per_ask"])
            out.append(row)
    return out


def _target_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if r["solver"] not in TARGETS_S:
            continue
        low, high = REFERENCE_S[r["solver"]]
        t = r["s_per_ask"]
        ref = f"{low:g}-{high:g} s" if low != high else f"{low:g} s"
        speedup = f"{low / t:.3g}-{high / t:.3g}x" if low != high else f"{low / t:.3g}x"
        out.append({"solver": r["solver"], "n": r["n"], "s/ask": t,
                    "target (issue, at n=200)": f"{TARGETS_S[r['solver']]:g} s",
                    "ours / target": fmt_ratio(t / TARGETS_S[r["solver"]]) + (" (target is for n=200)" if r["n"] != 200 else ""),
                    "MCBO ref (issue, n not stated, not re-measured)": ref,
                    "speed-up vs ref": "n/a" if math.isnan(t) else speedup,
                    "issue 21 target (1 thread)": _large_n_target(r["solver"], r["n"], r["mean_s"])})
    return out


def _large_n_target(solver: str, n: int, mean_s: float) -> str:
    """Issue 21's target at this ``n`` against the mean seconds per ask (refit and kept asks alike)."""
    target = TARGETS_LARGE_N_S.get((solver, n))
    if target is None:
        return ""
    return f"{target:g} s: mean {fmt_num(mean_s)} s, {'met' if mean_s < target else 'missed'}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 200, 500, 1000, 2000, 5000, 10000],
                        help="numbers of observations told before asking (default 100 200 500 1000 2000 5000 10000)")
    parser.add_argument("--solvers", nargs="+", default=[*OURS, *PEERS], choices=[*OURS, *PEERS])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds allowed for the timed asks of one measurement (default 120)")
    parser.add_argument("--setup-timeout", type=float, default=600.0, help="seconds allowed for setup (600)")
    parser.add_argument("--repeats", type=int, default=3, help="timed asks per measurement (median; default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed asks first (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--botorch-fit-maxiter", type=int, default=100,
                        help="L-BFGS-B iterations cap of BoTorch's GP fit, like mcbo's fit_maxiter (default 100); "
                             "0 = BoTorch's own default (scipy's 15000)")
    parser.add_argument("--no-skip", action="store_true",
                        help="measure every n even after a solver exceeded the budget at a smaller n")
    parser.add_argument("--model-options", type=json.loads, default={},
                        help="JSON object merged into the model spec of casmopolitan and boils, e.g. "
                             "'{\"fit_subset_size\": null}' to measure without the large-n options (default {})")
    parser.add_argument("--name", default="ask_time.md", help="results file name (default ask_time.md)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    warn_if_threads_unset()

    rows = []
    for space in args.spaces:
        ours = SPACES[space][3]
        solvers = [s for s in args.solvers if s in PEERS or s == ours]
        over_at: dict[str, int] = {}  # solver -> the n at which it first exceeded the budget
        for n in sorted(args.n):
            for solver in solvers:
                if solver in over_at and not args.no_skip:
                    row = {"space": space, "solver": solver, "n": n,
                           "status": f"skipped (> budget at n={over_at[solver]})", "s_per_ask": math.nan,
                           "mean_s": math.nan, "cpu_s": math.nan, "fit_s": math.nan, "acq_s": math.nan, "repeats": 0,
                           "peak_rss_mib": math.nan, "ask_mem_delta_mib": math.nan, "check": ""}
                else:
                    row = measure_one(space, solver, n, args)
                    if row["status"].startswith(">"):
                        over_at[solver] = n
                rows.append(row)
                print(f"{space:9s} {solver:14s} n={n:5d}: {row['status']}; {fmt_num(row['s_per_ask'])} s/ask "
                      f"(CPU {fmt_num(row['cpu_s'])} s; fit {fmt_num(row['fit_s'])} s, acq {fmt_num(row['acq_s'])} s; {row['repeats']} timed); "
                      f"peak RSS {fmt_num(row['peak_rss_mib'])} MiB (+{fmt_num(row['ask_mem_delta_mib'])} in asks); "
                      f"{row['check']}", flush=True)
    for r in _ratio_rows(rows):
        print("ratio " + ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in r.items()))
    for r in _target_rows(rows):
        print("target " + ", ".join(f"{k}={fmt_num(v) if isinstance(v, float) else v}" for k, v in r.items()))

    labels = {k: v[2] for k, v in SPACES.items()}
    table = [{"space": r["space"], "solver": r["solver"], "n": r["n"], "status": r["status"],
              "s/ask (median)": r["s_per_ask"], "s/ask (mean)": r["mean_s"], "CPU s/ask (median)": r["cpu_s"], "fit s": r["fit_s"], "acq s": r["acq_s"], "timed asks": r["repeats"],
              "peak RSS MiB": r["peak_rss_mib"], "RSS growth in asks MiB": r["ask_mem_delta_mib"],
              "work check": r["check"]} for r in rows]
    description = (
        "Seconds per ask after telling n uniformly random evaluated points, median of the timed asks (each ask is "
        "followed, untimed, by evaluating and telling its point). Spaces: "
        + "; ".join(f"`{k}` = {v}" for k, v in labels.items())
        + ". mcbo's `casmopolitan` runs on `ackley53`, `boils` on `sequence`; the peers run on both. "
        "`CPU s/ask`: the worker's CPU time per ask (`time.process_time`, all its threads), median of the timed asks; "
        "on a machine shared with other jobs it estimates the wall time on a quiet core better than the wall time does. "
        "`fit s`/`acq s`: for mcbo, `Solver.last_timings`; for BoTorch, the GP fit and the acquisition optimisation. `work check`: the mcbo "
        "solver fitted its GP on every ask; for Optuna, how many parameters its `sample_relative` returned (GP; "
        "multivariate TPE) and how many `sample_independent` calls each ask made (univariate TPE). Peak RSS is "
        "the whole worker process (imports included); `RSS growth in asks` is the peak during the asks minus the RSS before them. "
        "Targets and MCBO reference figures are quoted from the issue (2 CPU cores), not re-measured. "
        "Produced by `benchmarks/ask_time.py`."
    )
    settings = {"n": " ".join(map(str, args.n)), "solvers": " ".join(args.solvers), "spaces": " ".join(args.spaces),
                "budget per measurement (s)": args.budget, "warm-up asks": args.warmup,
                "timed asks (median)": args.repeats, "seed": args.seed,
                "BoTorch fit maxiter": args.botorch_fit_maxiter or "BoTorch default (scipy 15000)",
                "model options (casmopolitan, boils)": json.dumps(args.model_options) if args.model_options else "recipe as shipped",
                "command": " ".join(["benchmarks/ask_time.py", *(argv or sys.argv[1:])])}
    text = header_markdown("Seconds per ask", description, settings)
    text += "\n## Results\n\n" + markdown_table(table)
    text += "\n\n## Peers / ours (above 1x: ours is faster)\n\n" + markdown_table(_ratio_rows(rows))
    text += "\n\n## Against the issue's targets and reference figures\n\n" + markdown_table(_target_rows(rows))
    path = write_markdown(args.name, text, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    spec = worker_spec_from_argv(sys.argv[1:])
    if spec is not None:
        worker(spec)
    else:
        main()
