"""Shared helpers of the performance benchmarks: timing, peak memory, subprocess workers, markdown.

* :func:`measure` — warm-up calls, then the median of repeated ``time.perf_counter`` timings.
* Peak memory — ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of a fresh worker subprocess per
  measurement (so one measurement's peak never hides another's), plus the peak *during* the timed
  part (Linux: ``VmHWM`` after resetting it through ``/proc/self/clear_refs``).
* :func:`run_worker` — runs one measurement in a fresh ``python script --worker SPEC`` process that
  reports JSON events on stdout; the timed part has a wall-clock budget, after which the worker is
  killed and the measurement reported as over budget instead of hanging the whole run.
* :func:`machine_info` / :func:`header_markdown` — what the figures were measured on (threads, OMP
  environment, CPU model, library versions), written at the top of every results file.
* :func:`markdown_table` — a dependency-free markdown table writer (pandas' needs ``tabulate``).
* :data:`KERNEL_CASES` — each GP kernel of ``mcbo.models.gp`` on a search space it suits, with a
  cheap synthetic objective, shared by ``kernel_throughput.py`` and ``posterior_10k.py``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import queue
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
if str(REPO_ROOT) not in sys.path:  # a checkout need not have mcbo installed
    sys.path.insert(0, str(REPO_ROOT))

#: Prefix of the JSON event lines a worker prints on stdout.
EVENT_MARK = "@@mcbo-bench "

# --------------------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Seconds of ``repeats`` timed calls (after ``warmup`` untimed ones)."""

    times: list[float]
    warmup_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def best(self) -> float:
        return min(self.times) if self.times else float("nan")


def measure(
    fn: Callable[[], Any],
    repeats: int = 3,
    warmup: int = 1,
    after: Callable[[Any], None] | None = None,
) -> Timing:
    """Time ``fn()`` ``repeats`` times with ``time.perf_counter`` after ``warmup`` calls.

    ``after(result)`` runs untimed after every call (e.g. telling the suggested point's value).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    out = Timing(times=[])
    for i in range(warmup + repeats):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        (out.warmup_times if i < warmup else out.times).append(elapsed)
        if after is not None:
            after(result)
    return out


# --------------------------------------------------------------------------------------- memory


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``getrusage``), MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _proc_status_mib(key: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    return float("nan")


def current_rss_mib() -> float:
    """Resident memory now (Linux ``VmRSS``), MiB; NaN elsewhere."""
    return _proc_status_mib("VmRSS")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; ``False`` where not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_mib() -> float:
    """``VmHWM``: the peak RSS since :func:`reset_peak_rss` (or since start), MiB; NaN off Linux."""
    return _proc_status_mib("VmHWM")


class MemoryWindow:
    """Peak RSS above the starting RSS over a block of code (Linux; NaN where unsupported)::

        with MemoryWindow() as mem:
            work()
        mem.delta_mib
    """

    def __enter__(self) -> Self:
        self.supported = reset_peak_rss()
        self.start_mib = current_rss_mib()
        self.delta_mib = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.supported:
            self.delta_mib = max(0.0, peak_rss_since_reset_mib() - self.start_mib)


# ------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except Exception:  # noqa: BLE001 - a missing optional peer is reported, not fatal
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=False)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() + (" (with local changes)" if dirty.stdout.strip() else "") or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, str]:
    """What the figures depend on: thread settings, OMP environment, CPU, library versions."""
    try:
        affinity = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        affinity = "n/a"
    return {
        "date (UTC)": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M"),
        "CPU model": _cpu_model(),
        "logical CPUs (usable)": f"{os.cpu_count()} ({affinity})",
        "load average (1/5/15 min)": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "torch.get_num_threads()": str(torch.get_num_threads()),
        "torch.get_num_interop_threads()": str(torch.get_num_interop_threads()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS", "(unset)"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "CUDA available": str(torch.cuda.is_available()),
        "gpytorch": _version("gpytorch"),
        "botorch": _version("botorch"),
        "optuna": _version("optuna"),
        "numpy": np.__version__,
        "mcbo commit": _git_commit(),
    }


def warn_if_threads_unset() -> None:
    """Remind on stderr that figures are meant to be taken with ``OMP_NUM_THREADS`` set."""
    if "OMP_NUM_THREADS" not in os.environ:
        print("note: OMP_NUM_THREADS is unset; the issue's figures use OMP_NUM_THREADS=1 "
              f"(torch is using {torch.get_num_threads()} threads)", file=sys.stderr)


# ------------------------------------------------------------------------------------ markdown


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return fmt_num(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-markdown table of ``rows`` (dicts); ``columns`` picks and orders the keys."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def header_markdown(title: str, description: str, settings: Mapping[str, Any]) -> str:
    """Title, what was measured, the run's settings and :func:`machine_info`, as markdown."""
    info = machine_info()
    parts = [f"# {title}", "", description.strip(), "", "## Settings", "",
             markdown_table([{"setting": k, "value": v} for k, v in settings.items()]), "",
             "## Machine", "", markdown_table([{"item": k, "value": v} for k, v in info.items()]), ""]
    return "\n".join(parts)


def write_markdown(name: str, text: str, out_dir: Path | None = None) -> Path:
    """Write ``text`` to ``benchmarks/results/<name>`` (or ``out_dir/<name>``); returns the path."""
    folder = Path(out_dir) if out_dir is not None else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text.rstrip() + "\n")
    return path


def fmt_num(x: float | None, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits; ``"n/a"`` for None/NaN."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def fmt_ratio(x: float | None) -> str:
    """A speed ratio such as ``12.3x``; ``"n/a"`` for None/NaN."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3g}x"


# ------------------------------------------------------------------------------------- workers


def emit(event: str, **data: Any) -> None:
    """Worker side: report one JSON event to the parent (one stdout line)."""
    print(EVENT_MARK + json.dumps({"event": event, **data}, default=float), flush=True)


@dataclass
class WorkerOutcome:
    """What one worker process reported.

    ``status``: ``"ok"``, ``"over_budget"`` (timed part exceeded its budget; the worker was killed),
    ``"setup_timeout"`` or ``"error"`` (non-zero exit; ``stderr_tail`` says why).
    """

    status: str
    events: list[dict[str, Any]]
    result: dict[str, Any] | None
    stderr_tail: str
    wall_seconds: float

    def last(self, event: str) -> dict[str, Any] | None:
        found = [e for e in self.events if e.get("event") == event]
        return found[-1] if found else None

    def all(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]


def worker_command(script: Path | str, spec: Mapping[str, Any]) -> list[str]:
    """Command line running ``script``'s worker on ``spec`` in a fresh interpreter."""
    return [sys.executable, str(script), "--worker", json.dumps(dict(spec))]


def _pump(stream: Iterable[str], sink: queue.Queue | list, tag: str) -> None:
    for line in stream:
        if isinstance(sink, list):
            sink.append(line)
            del sink[:-40]  # keep the tail only
        else:
            sink.put((tag, line))
    if not isinstance(sink, list):
        sink.put((tag, None))


def run_worker(
    command: Sequence[str],
    budget_s: float,
    setup_timeout_s: float = 900.0,
    env: Mapping[str, str] | None = None,
) -> WorkerOutcome:
    """Run a worker process and collect its events, enforcing wall-clock limits.

    The worker prints ``timing_started`` when its setup (imports, building data) is done; from then on
    it has ``budget_s`` seconds to print ``result``, else it is killed and the outcome is
    ``"over_budget"`` (events reported before the kill are kept). Setup has ``setup_timeout_s``.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT, env=dict(env) if env is not None else None)
    lines: queue.Queue = queue.Queue()
    stderr_tail: list[str] = []
    threads = [threading.Thread(target=_pump, args=(proc.stdout, lines, "out"), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, stderr_tail, "err"), daemon=True)]
    for t in threads:
        t.start()
    events: list[dict[str, Any]] = []
    deadline = time.perf_counter() + setup_timeout_s
    phase = "setup"
    status = None
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            status = "over_budget" if phase == "timed" else "setup_timeout"
            proc.kill()  # only the worker this call started
            break
        try:
            _, line = lines.get(timeout=min(remaining, 1.0))
        except queue.Empty:
            continue
        if line is None:  # stdout closed: the worker is exiting
            break
        if not line.startswith(EVENT_MARK):
            continue
        event = json.loads(line[len(EVENT_MARK):])
        events.append(event)
        if event.get("event") == "timing_started":
            phase = "timed"
            deadline = time.perf_counter() + budget_s
    proc.wait()
    for t in threads:
        t.join(timeout=5)
    result = next((e for e in reversed(events) if e.get("event") == "result"), None)
    if status is None:
        status = "ok" if proc.returncode == 0 and result is not None else "error"
    return WorkerOutcome(status=status, events=events, result=result, stderr_tail="".join(stderr_tail[-15:]),
                         wall_seconds=time.perf_counter() - start)


def worker_spec_from_argv(argv: Sequence[str]) -> dict[str, Any] | None:
    """The JSON spec after ``--worker`` in ``argv``, or ``None`` when not started as a worker."""
    if len(argv) >= 2 and argv[0] == "--worker":
        return json.loads(argv[1])
    return None


# --------------------------------------------------------------------------- kernels and spaces
# Cheap synthetic objectives on ENCODED inputs (what the GP sees); values are minimised.


def _ackley(x: np.ndarray) -> np.ndarray:
    from mcbo.tasks.synthetic import ackley

    return ackley(x)


def objective_real(space: Any, X: torch.Tensor) -> torch.Tensor:
    """Ackley on ``[-1, 1]^d`` of unit-cube encoded reals ``[n, d]`` -> ``[n]``."""
    return torch.as_tensor(_ackley((2 * X - 1).cpu().numpy()), dtype=X.dtype)


def objective_categorical(space: Any, X: torch.Tensor) -> torch.Tensor:
    """Categorical Ackley (MCBO): category ``i`` of ``k`` is level ``i`` of ``linspace(-32.768, 32.768, k)``."""
    k = int(space.cardinalities.max())
    levels = np.linspace(-32.768, 32.768, k)
    return torch.as_tensor(_ackley(levels[X.round().long().cpu().numpy()]), dtype=X.dtype)


def objective_mixed(space: Any, X: torch.Tensor) -> torch.Tensor:
    """Ackley-53 on encoded ``[binary..., unit reals...]``: booleans as 0/1, reals mapped to ``[-1, 1]``."""
    x = X.clone()
    numeric = space.numeric_columns
    x[:, numeric] = 2 * x[:, numeric] - 1
    return torch.as_tensor(_ackley(x.cpu().numpy()), dtype=X.dtype)


def objective_sequence(space: Any, X: torch.Tensor) -> torch.Tensor:
    """Synthetic string objective (not BOiLS' ABC one): Hamming distance to a fixed random target,
    minus 0.5 per occurrence of the 3-symbol motif ``(0, 1, 2)``, normalised by the length."""
    s = X.round().long()
    length, k = s.shape[-1], int(space.cardinalities.max())
    target = torch.as_tensor(np.random.default_rng(123).integers(0, k, size=length))
    hamming = (s != target).sum(-1).to(X.dtype)
    motif = ((s[:, :-2] == 0) & (s[:, 1:-1] == 1 % k) & (s[:, 2:] == 2 % k)).sum(-1).to(X.dtype)
    return (hamming - 0.5 * motif) / length


def objective_ordinal(space: Any, X: torch.Tensor) -> torch.Tensor:
    """Rugged quadratic bowl on normalised ranks ``[n, d]``: ``sum (x - 0.3)^2 + 0.1 sum cos(10 x)``."""
    return ((X - 0.3) ** 2).sum(-1) + 0.1 * torch.cos(10 * X).sum(-1)


def objective_permutation(space: Any, X: torch.Tensor) -> torch.Tensor:
    """Spearman footrule distance of each permutation (item index at each position) to a fixed one."""
    k = X.shape[-1]
    target = torch.as_tensor(np.random.default_rng(7).permutation(k), dtype=X.dtype)
    return (X.round() - target).abs().sum(-1) / k


def space_real(d: int = 10) -> Any:
    from mcbo.space import Real, SearchSpace

    return SearchSpace([Real(f"x{i}", -1.0, 1.0) for i in range(d)])


def space_categorical(d: int = 20, k: int = 11) -> Any:
    """Categorical Ackley's space (MCBO): 20 nominal variables with 11 categories."""
    from mcbo.space import Categorical, SearchSpace

    return SearchSpace([Categorical(f"c{i:02d}", list(range(k))) for i in range(d)])


def space_sequence(length: int = 20) -> Any:
    """BOiLS' space without ABC: one sequence of 20 commands over the 11 ABC operations."""
    from mcbo.space import SearchSpace
    from mcbo.space import Sequence as SequenceParam
    from mcbo.tasks.logic_synthesis import OPERATIONS

    return SearchSpace([SequenceParam("operations", list(OPERATIONS), length)])


def space_ordinal(d: int = 10) -> Any:
    from mcbo.space import Ordinal, SearchSpace

    return SearchSpace([Ordinal(f"o{i}", list(range(5 + i % 6))) for i in range(d)])


def space_permutation(k: int = 10) -> Any:
    from mcbo.space import Permutation, SearchSpace

    return SearchSpace([Permutation("perm", k)])


def space_ackley53() -> Any:
    """Ackley-53's space (50 booleans + 3 reals), as ``build_task("ackley53").space``."""
    from mcbo.tasks import build_task

    return build_task("ackley53").space


@dataclass(frozen=True)
class KernelCase:
    """One GP kernel on a space it suits, with a cheap objective to fit to."""

    name: str
    space_fn: Callable[[], Any]
    objective: Callable[[Any, torch.Tensor], torch.Tensor]
    space_label: str
    numeric_kernel: str = "matern52"
    nominal_kernel: str = "transformed_overlap"
    combine: str = "mixture"

    def gp_kwargs(self) -> dict[str, str]:
        return {"numeric_kernel": self.numeric_kernel, "nominal_kernel": self.nominal_kernel, "combine": self.combine}


_CAT = "20 categoricals x 11 categories"
KERNEL_CASES: dict[str, KernelCase] = {c.name: c for c in [
    KernelCase("matern52", space_real, objective_real, "10 reals"),
    KernelCase("overlap", space_categorical, objective_categorical, _CAT, nominal_kernel="overlap"),
    KernelCase("transformed_overlap", space_categorical, objective_categorical, _CAT),
    KernelCase("ssk", space_sequence, objective_sequence, "sequence, length 20, 11 symbols", nominal_kernel="ssk"),
    KernelCase("hed", space_categorical, objective_categorical, _CAT, nominal_kernel="hed"),
    KernelCase("diffusion", space_categorical, objective_categorical, _CAT, nominal_kernel="diffusion"),
    KernelCase("ordinal", space_ordinal, objective_ordinal, "10 ordinals (5-10 values)", numeric_kernel="ordinal"),
    KernelCase("kendall", space_permutation, objective_permutation, "permutation of 10 items",
               nominal_kernel="kendall"),
    KernelCase("mallows", space_permutation, objective_permutation, "permutation of 10 items",
               nominal_kernel="mallows"),
    KernelCase("casmopolitan_mixture", space_ackley53, objective_mixed,
               "Ackley-53 (50 booleans + 3 reals)"),  # matern52 x transformed_overlap mixture
]}


def pick_cases(names: Sequence[str] | None) -> list[KernelCase]:
    """The :data:`KERNEL_CASES` named (all when ``names`` is empty); ``ValueError`` on unknown names."""
    if not names:
        return list(KERNEL_CASES.values())
    unknown = [n for n in names if n not in KERNEL_CASES]
    if unknown:
        raise ValueError(f"unknown kernel case(s) {unknown}; allowed: {list(KERNEL_CASES)}")
    return [KERNEL_CASES[n] for n in names]
