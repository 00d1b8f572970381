"""Reliability under faults: bad servers, bad spaces, bad save files and bad checkpoints, and what each one does.

Runs the fault catalogue of ``tests/reliability/faults.py``: a loopback OpenAI-compatible server that over-reports,
under-reports and garbles its usage, completes calls after the client timed out, drops connections, sends
malformed JSON, answers without choices, sends errors with HTTP 200 and echoes the API key, met by the LLM client
one call at a time, by a client spending a whole budget (1 and 4 threads) and by whole ``mcbo instruct`` runs;
then search spaces and ``ask`` sizes float64 cannot hold, hand-edited solver save files and malformed NAP
checkpoints. Per kind and per case: inputs tried, faults injected, clean errors (the documented exception with a
message naming the field), raw tracebacks, broken promises (leaked reservation, negative or under-recorded spend,
a key shown, a solver changed by a failed load, ...), and the budget overshoot against an honest server (what it
billed beyond the budget's limit; must be 0).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reliability.py

Exit status 1 when any case raised a raw traceback or broke a promise.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import header_markdown, markdown_table, write_markdown  # noqa: E402
from tests.llm.loopback import LoopbackLLM  # noqa: E402
from tests.reliability.faults import (  # noqa: E402
    BAD_CHECKPOINTS,
    BAD_SPACES,
    BAD_STATES,
    INSTRUCT_FAULTS,
    KEY_ENV,
    LLM_FAULTS,
    SECRET,
    Outcome,
    run_bad_checkpoint,
    run_bad_input,
    run_bad_state,
    run_budget_exhaustion,
    run_dishonest_server,
    run_instruct_fault,
    run_llm_fault,
)

KINDS = ("llm", "instruct", "space", "save file", "checkpoint")
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reliability.py"


def run_all(folder: Path) -> list[Outcome]:
    """Every case of the catalogue, in order."""
    os.environ[KEY_ENV] = SECRET
    outcomes: list[Outcome] = []
    with LoopbackLLM() as server:
        outcomes += [run_llm_fault(server, name) for name in LLM_FAULTS]
        outcomes += [run_budget_exhaustion(server, threads=threads) for threads in (1, 4)]
        outcomes.append(run_dishonest_server(server))
        for i, name in enumerate(INSTRUCT_FAULTS):
            case = folder / f"instruct{i}"
            case.mkdir()
            outcomes.append(run_instruct_fault(server, case, name)[0])
    outcomes += [run_bad_input("space", name, run, must) for name, (run, must) in BAD_SPACES().items()]
    outcomes += [run_bad_state(name, folder) for name in BAD_STATES]
    outcomes += [run_bad_checkpoint(name, folder) for name in BAD_CHECKPOINTS()]
    return outcomes


def _overshoot(values: list[float]) -> str:
    measured = [v for v in values if not math.isnan(v)]
    return f"${max(measured):.6f}" if measured else "n/a"


def summary_rows(outcomes: list[Outcome]) -> list[dict[str, object]]:
    rows = []
    for kind in (*KINDS, "all"):
        group = [o for o in outcomes if kind in ("all", o.kind)]
        rows.append({"kind": kind, "cases": len(group), "inputs tried": sum(o.inputs for o in group),
                     "faults injected": sum(o.faults for o in group),
                     "clean errors": sum(o.clean_errors for o in group),
                     "raw tracebacks": sum(len(o.raw) for o in group),
                     "broken promises": sum(len(o.problems) for o in group),
                     "budget overshoot (honest server)": _overshoot([o.overshoot_usd for o in group])})
    return rows


def case_rows(outcomes: list[Outcome], folder: Path) -> list[dict[str, object]]:
    rows = []
    for o in outcomes:
        what = "; ".join(o.problems) or (o.raw[-1].strip().splitlines()[-1] if o.raw else o.detail)
        what = what.replace(str(folder), "<tmp>")
        rows.append({"kind": o.kind, "case": o.case, "inputs": o.inputs, "faults": o.faults,
                     "clean errors": o.clean_errors, "raw": len(o.raw), "broken": len(o.problems),
                     "overshoot": "n/a" if math.isnan(o.overshoot_usd) else f"${o.overshoot_usd:.6f}",
                     "what happened": what[:150] + ("..." if len(what) > 150 else "")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="reliability.md", help="report file name under benchmarks/results/")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        outcomes = run_all(folder)
        cases = case_rows(outcomes, folder)
    seconds = time.perf_counter() - start
    summary = summary_rows(outcomes)
    description = __doc__.split("\n\n", 1)[1]
    text = "\n".join([
        header_markdown("Reliability under faults", description,
                        {"command": COMMAND, "cases": len(outcomes), "seconds": f"{seconds:.1f}",
                         "client": "timeout 0.25 s per attempt, 2 retries, no wait between retries (mcbo "
                                   "instruct: its defaults, --timeout 0.25)",
                         "prices": "toy model, $1 / $2 per 1M input / output tokens"}),
        "## Summary", "", markdown_table(summary), "",
        "Budget overshoot (honest server): the most an honest server billed beyond a budget's limit, over the "
        "cases that spend a budget against one (0 is the promise; see docs/llm-instruction-tuning.md for what a "
        "dishonest server can take).", "",
        "## Cases", "", markdown_table(cases), ""])
    path = write_markdown(args.out, text)
    print(markdown_table(summary))
    print(f"\n{len(outcomes)} cases in {seconds:.1f}s; report: {path}")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
