"""The fault catalogue shared by ``tests/reliability`` and ``benchmarks/reliability.py``.

Four kinds of bad input, each case run by one function that returns an :class:`Outcome` (what was
tried, how it failed, and which promise it broke, if any):

* :data:`LLM_FAULTS`: faults the loopback OpenAI-compatible server (:mod:`tests.llm.loopback`)
  injects into one call of :class:`~mcbo.llm.client.LLMClient` (:func:`run_llm_fault`), plus a run
  that spends a whole budget against an honest server that keeps failing
  (:func:`run_budget_exhaustion`) and one against a server that over-reports its usage
  (:func:`run_dishonest_server`);
* :data:`INSTRUCT_FAULTS`: the same faults met by a whole ``mcbo instruct`` run (:func:`run_instruct_fault`);
* :data:`BAD_SPACES`: search spaces and ``ask`` sizes that must be refused at once;
* :data:`BAD_STATES`: hand edits of a solver's save file;
* :data:`BAD_CHECKPOINTS`: hand edits of a NAP (TNP) checkpoint.

Promises checked: no raw exception (only ``LLMError``/``BudgetExceeded``/``ValueError``), every
``ValueError`` names what it is about, a budget reservation never leaks, the recorded spend is never
negative and never below what an honest server billed, the API key never appears in an error or a
log line, and what an honest server bills never passes the budget's limit.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

#: The API key the fault runs use (set in :data:`KEY_ENV`); it must never show up in errors or logs.
SECRET = "sk-reliability-0123456789abcdef"
KEY_ENV = "MCBO_RELIABILITY_KEY"
#: Prompt of every call (distinct suffixes keep calls apart).
PROMPT = "Instruction: Write the first letter of the input.\n\nInput: window\nOutput:"
#: Client settings of the fault runs: short timeouts, no waiting between retries.
TIMEOUT, MAX_RETRIES, MAX_TOKENS = 0.25, 2, 16


@dataclass
class Outcome:
    """What one case did.

    Attributes:
        case, kind: the case's name and its kind (``llm``, ``space``, ``save file``, ``checkpoint``).
        inputs: inputs tried (calls made, spaces built, files loaded).
        faults: faults injected.
        clean_errors: errors raised as the documented exception with a usable message.
        raw: raw tracebacks (any other exception).
        problems: promises broken (leaked reservation, negative spend, under-recorded spend, leaked key, ...).
        overshoot_usd: what an honest server billed beyond the budget's limit (``nan`` when not measured).
        detail: one line about what happened.
    """

    case: str
    kind: str
    inputs: int = 0
    faults: int = 0
    clean_errors: int = 0
    raw: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    overshoot_usd: float = math.nan
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.raw and not self.problems


# ------------------------------------------------------------------------------------------ LLM faults
#: name -> (loopback fault, whether the server is honest: bills no more than it reports and than the bound).
LLM_FAULTS: dict[str, tuple[tuple[Any, ...], bool]] = {
    "over-reported usage ($1.80 for one call)": (("usage", {"prompt_tokens": 600_000, "completion_tokens": 600_000}),
                                                 False),
    "negative usage": (("usage", {"prompt_tokens": -3_000_000, "completion_tokens": -3_000_000}), True),
    "non-integer usage": (("usage", {"prompt_tokens": "12 tokens", "completion_tokens": 1}), True),
    "fractional usage": (("usage", {"prompt_tokens": 7.5, "completion_tokens": 1}), True),
    "boolean and huge usage": (("usage", {"prompt_tokens": True, "completion_tokens": 10**30}), True),
    "usage missing": (("usage", None), True),
    "timeout after completing": (("delay", 2 * TIMEOUT), True),
    "connection reset after completing": (("reset",), True),
    "malformed JSON body": (("body", 200, '{"id": "x", "choices": [{"message": '), True),
    "HTML body with HTTP 200": (("body", 200, "<html>upstream error</html>", "text/html"), True),
    "JSON array body": (("body", 200, "[]"), True),
    "no choices": (("body", 200, json.dumps({"id": "x", "choices": [], "usage": {"prompt_tokens": 9,
                                                                                  "completion_tokens": 0}})), True),
    "choice without a message": (("body", 200, json.dumps({"id": "x", "choices": [{"index": 0}]})), True),
    "error body with HTTP 200": (("body", 200, json.dumps({"error": {"message": "model overloaded",
                                                                     "type": "server_error"}})), True),
    "retryable error body with HTTP 200": (("body", 200, json.dumps({"error": {"message": "slow down",
                                                                               "code": 429}})), True),
    "API key echoed in a 401 body": (("echo_key", 401), True),
    "API key echoed in a 500 body": (("echo_key", 500), True),
    "gateway timeout (504)": (("status", 504), True),
}


def _client(server: Any, budget: Any, **kwargs: Any) -> Any:
    from mcbo.llm.client import LLMClient
    from mcbo.llm.pricing import PriceTable

    prices = PriceTable({"toy": {"input": 1.0, "output": 2.0}})
    kwargs.setdefault("max_retries", MAX_RETRIES)
    return LLMClient("toy", server.base_url, api_key_env=KEY_ENV, prices=prices, budget=budget, timeout=TIMEOUT,
                     sleep=lambda seconds: None, **kwargs)


class _LogText(logging.Handler):
    """Collects every log line of ``mcbo`` while a case runs (to look for the key)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> "_LogText":
        logger = logging.getLogger("mcbo")
        self._saved = (logger.level, logger.propagate)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False  # the expected warnings stay out of the caller's output
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("mcbo")
        logger.removeHandler(self)
        logger.setLevel(self._saved[0])
        logger.propagate = self._saved[1]


def _billed_usd(server: Any, since: int) -> float:
    """What an honest provider bills for the answers the server produced after the first ``since``."""
    return sum((p * 1.0 + c * 2.0) / 1e6 for p, c in server.billed[since:])


def _call(client: Any, prompt: str, out: Outcome, texts: list[str]) -> str:
    """One call; counts a clean error or keeps a raw traceback. ``"ok"``, ``"budget"``, ``"error"`` or ``"raw"``."""
    from mcbo.llm.budget import BudgetExceeded
    from mcbo.llm.client import LLMError

    out.inputs += 1
    try:
        client.complete(prompt, max_tokens=MAX_TOKENS)
        return "ok"
    except (LLMError, BudgetExceeded) as err:
        out.clean_errors += 1
        texts.append(str(err))
        return "budget" if isinstance(err, BudgetExceeded) else "error"
    except Exception:  # noqa: BLE001 -- a raw exception is what this catalogue looks for
        out.raw.append(traceback.format_exc(limit=4))
        return "raw"


def _check_common(out: Outcome, budget: Any, texts: list[str], logs: _LogText) -> None:
    from mcbo.llm.budget import Reservation

    if budget.reserved != Reservation(0, 0, 0.0):
        out.problems.append(f"leaked reservation {budget.reserved}")
    if budget.usd < 0 or budget.tokens < 0:
        out.problems.append(f"negative spend (${budget.usd:.6f}, {budget.tokens} tokens)")
    if any(SECRET in t for t in texts + logs.lines):
        out.problems.append("API key shown in an error or a log line")


def run_llm_fault(server: Any, name: str, calls: int = 3) -> Outcome:
    """Inject fault ``name`` into the first request, then make ``calls`` calls; check every promise.

    Needs ``os.environ[KEY_ENV] == SECRET``.
    """
    from mcbo.llm.budget import Budget

    action, honest = LLM_FAULTS[name]
    out = Outcome(name, "llm", faults=1)
    budget = Budget(max_usd=1.0)
    client = _client(server, budget)
    since, requests = len(server.billed), server.n_chat_requests
    server.script(action)
    texts: list[str] = []
    with _LogText() as logs:
        for i in range(calls):
            _call(client, f"{PROMPT} {i}", out, texts)
            if budget.usd < 0:
                out.problems.append(f"negative spend after call {i}: ${budget.usd:.6f}")
        server.wait_idle()
    client.close()
    _check_common(out, budget, texts, logs)
    billed = _billed_usd(server, since)
    if honest and billed > budget.usd + 1e-12:
        out.problems.append(f"recorded ${budget.usd:.6f} but the server billed ${billed:.6f}")
    if not honest:
        if budget.overrun is None:
            out.problems.append("an over-report did not stop further calls")
        if server.n_chat_requests - requests > 1:
            out.problems.append(f"{server.n_chat_requests - requests - 1} calls sent after the over-report")
    out.detail = (f"{server.n_chat_requests - requests} requests, recorded ${budget.usd:.6f}, honest bill "
                  f"${billed:.6f}" + (f"; {texts[0][:90]}" if texts else ""))
    return out


#: Faults an honest but flaky server plays, in turn with good answers, while a budget is spent.
FLAKY_CYCLE: list[tuple[Any, ...] | None] = [
    ("delay", 2 * TIMEOUT), None, ("reset",), None, ("body", 200, "{not json"), ("status", 504), None,
    ("usage", {"prompt_tokens": -5, "completion_tokens": 1}), ("status", 500), None,
    ("body", 200, json.dumps({"choices": []})), ("usage", None), None,
]


def run_budget_exhaustion(server: Any, limit_usd: float = 0.002, threads: int = 1, max_calls: int = 400) -> Outcome:
    """Spend a ``limit_usd`` budget from ``threads`` threads against an honest server that keeps failing
    (:data:`FLAKY_CYCLE`); the overshoot is what the server billed beyond the limit (must be <= 0)."""
    from mcbo.llm.budget import Budget

    out = Outcome(f"budget ${limit_usd} spent against a flaky honest server ({threads} thread"
                  f"{'s' if threads > 1 else ''})", "llm")
    budget = Budget(max_usd=limit_usd)
    client = _client(server, budget)
    since, requests = len(server.billed), server.n_chat_requests
    server.script(*(FLAKY_CYCLE * (max_calls // len(FLAKY_CYCLE) + 1)))
    texts: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(max_calls // threads):
            local = Outcome("", "")
            result = _call(client, f"{PROMPT} {k}-{i}", local, texts)
            with lock:
                out.inputs += local.inputs
                out.clean_errors += local.clean_errors
                out.raw.extend(local.raw)
                if budget.usd < 0:
                    out.problems.append("negative spend")
            if result == "budget":
                return

    with _LogText() as logs:
        pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        server.wait_idle()
    server.clear_script()  # nothing left queued for the next case
    client.close()
    _check_common(out, budget, texts, logs)
    billed = _billed_usd(server, since)
    n_requests = server.n_chat_requests - requests
    out.faults = sum(1 for a in (FLAKY_CYCLE * (n_requests // len(FLAKY_CYCLE) + 1))[:n_requests] if a is not None)
    out.overshoot_usd = max(0.0, billed - limit_usd)
    if billed > budget.usd + 1e-12:
        out.problems.append(f"recorded ${budget.usd:.6f} but the server billed ${billed:.6f}")
    if budget.usd > limit_usd + 1e-12:
        out.problems.append(f"recorded spend ${budget.usd:.6f} passed the limit ${limit_usd}")
    out.detail = (f"{n_requests} requests, honest bill ${billed:.6f}, recorded ${budget.usd:.6f}, limit "
                  f"${limit_usd}")
    return out


def run_dishonest_server(server: Any, limit_usd: float = 1.0, over_tokens: int = 5_000) -> Outcome:
    """A server that reports ``over_tokens`` prompt tokens per call (more than any call can cost): the first
    over-report is recorded and stops every further call, so the overshoot is at most one call's over-report."""
    from mcbo.llm.budget import Budget

    out = Outcome("dishonest server over-reporting on every call (sequential)", "llm")
    budget = Budget(max_usd=limit_usd)
    client = _client(server, budget)
    requests = server.n_chat_requests
    server.fault = ("usage", {"prompt_tokens": over_tokens, "completion_tokens": 1})
    texts: list[str] = []
    try:
        with _LogText() as logs:
            for i in range(5):
                _call(client, f"{PROMPT} {i}", out, texts)
            server.wait_idle()
    finally:
        server.fault = None
    client.close()
    out.faults = server.n_chat_requests - requests
    _check_common(out, budget, texts, logs)
    reported = (over_tokens + 2.0) / 1e6
    if abs(budget.usd - reported * out.faults) > 1e-12:
        out.problems.append(f"recorded ${budget.usd:.6f}, not the ${reported * out.faults:.6f} reported")
    if out.faults != 1:
        out.problems.append(f"{out.faults - 1} calls sent after the first over-report")
    then = texts[0][:80] if texts else ""
    out.detail = f"{out.faults} request(s), recorded ${budget.usd:.6f} as reported; then: {then}"
    return out


# ------------------------------------------------------------------------------------------ mcbo instruct
#: name -> (faults scripted on the first requests, fault on every later request, extra arguments, whether
#: an honest provider's bill must stay within the recorded spend, whether the run must find an incumbent).
INSTRUCT_FAULTS: dict[str, tuple[list[Any], Any, list[str], bool, bool]] = {
    "malformed JSON body mid-run": ([("body", 200, '{"choices": [{"message": ')], None, ["--concurrency", "1"],
                                    True, True),
    "timeouts after completing": ([("delay", 2 * TIMEOUT), None, None], None, [], True, True),
    "negative usage on every call": ([], ("usage", {"prompt_tokens": -5_000_000, "completion_tokens": 1}), [],
                                     True, True),
    "over-reporting server, --budget-usd 0.01": ([], ("usage", {"prompt_tokens": 600_000,
                                                                "completion_tokens": 600_000}),
                                                 ["--budget-usd", "0.01", "--concurrency", "2"], False, False),
    "API key echoed while writing the pool": ([], ("echo_key", 401), ["--pool-size", "4"], True, False),
}
#: Candidate instructions of the instruct runs (a pool file, so no embedding model is needed).
INSTRUCT_POOL = ["Write the first letter of the input.", "Give the last letter.", "Name the first character.",
                 "Return the second word."]


@dataclass
class InstructRun:
    """What one ``mcbo instruct`` run printed and wrote."""

    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    requests: int = 0


def run_instruct_fault(server: Any, folder: Path, name: str) -> tuple[Outcome, InstructRun]:
    """One ``mcbo instruct`` run (4-instruction pool, 3 evaluations of 2 examples) meeting fault ``name``.

    Needs ``os.environ[KEY_ENV] == SECRET``.
    """
    from mcbo.llm.cli import add_commands

    script, fault, extra, honest, needs_incumbent = INSTRUCT_FAULTS[name]
    out, run = Outcome(name, "instruct", inputs=1), InstructRun()
    parser = argparse.ArgumentParser(prog="mcbo")
    add_commands(parser.add_subparsers(dest="command", required=True))
    pool = folder / "pool.txt"
    pool.write_text("\n".join(INSTRUCT_POOL))
    argv = ["instruct", "--task", "first_letter", "--base-url", server.base_url, "--model", "toy", "--api-key-env",
            KEY_ENV, "--price-in", "1", "--price-out", "2", "--cache", "none", "--no-progress", "--n-examples", "2",
            "--evals", "3", "--n-init", "2", "--no-test", "--embedder", "hashing", "--timeout", str(TIMEOUT),
            "--out", str(folder / "out")]
    argv += [] if "--pool-size" in extra else ["--pool-file", str(pool)]
    argv += extra if "--budget-usd" in extra else [*extra, "--budget-usd", "1"]
    since, requests = len(server.billed), server.n_chat_requests
    server.script(*script)
    server.fault = fault
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with _LogText() as logs, contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
            try:
                run.rc = args.func(args)
            except Exception:  # noqa: BLE001 -- a raw exception is what this catalogue looks for
                out.raw.append(traceback.format_exc(limit=4))
            server.wait_idle()
    finally:
        server.fault = None
        server.clear_script()
    run.stdout, run.stderr, run.requests = stdout.getvalue(), stderr.getvalue(), server.n_chat_requests - requests
    out.faults = (sum(a is not None for a in script[:run.requests])
                  + (max(0, run.requests - len(script)) if fault is not None else 0))
    report_path = folder / "out" / "report.json"
    run.report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    if run.rc == 1 and not out.raw:
        out.clean_errors = 1  # the run ended as documented: exit status 1 with a message
    if any(SECRET in text for text in (run.stdout, run.stderr, *logs.lines)):
        out.problems.append("API key shown on stdout, stderr or in a log line")
    if needs_incumbent and (run.rc != 0 or not run.report.get("best_instruction")):
        out.problems.append(f"no incumbent (exit status {run.rc}): {run.stderr.strip()[:120]}")
    budget = run.report.get("usage", {}).get("budget", {})
    if budget and (budget["usd"] < 0 or run.report["usage"]["cost_usd"] < 0):
        out.problems.append("negative spend in the report")
    billed = _billed_usd(server, since)
    if honest and budget:
        if billed > budget["usd"] + 1e-12:
            out.problems.append(f"recorded ${budget['usd']:.6f} but the server billed ${billed:.6f}")
        out.overshoot_usd = max(0.0, billed - budget["max_usd"])
    if not honest and (budget.get("overrun") is None or run.requests > 2):
        out.problems.append(f"the over-report did not stop the run ({run.requests} requests)")
    spent = f"${budget['usd']:.6f}" if budget else "n/a"
    printed = [line for line in run.stdout.splitlines() if line.startswith(("stopped", "budget stopped",
                                                                              "instructions scored"))]
    said = (errors or printed or [""])[-1]
    out.detail = f"exit {run.rc}, {run.requests} requests, recorded {spent}, honest bill ${billed:.6f}; {said[:100]}"
    return out, run


# ------------------------------------------------------------------------------------------ bad spaces
def _ask_huge() -> None:
    from mcbo.solvers import build_solver
    from mcbo.space import Real, SearchSpace

    build_solver("rs", SearchSpace([Real("x", 0, 1), Real("y", 0, 1)]), seed=0).ask(10**9)


def _space(make: Callable[[], Any]) -> Callable[[], None]:
    def build() -> None:
        from mcbo.space import SearchSpace

        SearchSpace([make()])

    return build


def _bad_spaces() -> dict[str, tuple[Callable[[], None], str]]:
    from mcbo.space import Categorical, Integer, Ordinal, Permutation, Real, Sequence

    nan = float("nan")
    return {
        "Real('x', -1e308, 1e308): range overflows float64": (_space(lambda: Real("x", -1e308, 1e308)), "'x'"),
        "Real('x', 0, 10**400): bound beyond float64": (_space(lambda: Real("x", 0, 10**400)), "'x'"),
        "Integer('i', 0, 3, step=5): step larger than the range": (_space(lambda: Integer("i", 0, 3, step=5)),
                                                                    "'i'"),
        "Integer('i', 0, 10**20): beyond 2**53": (_space(lambda: Integer("i", 0, 10**20)), "'i'"),
        "Integer('i', -2**53, 2**53): range wider than 2**53": (_space(lambda: Integer("i", -2**53, 2**53)),
                                                                 "'i'"),
        "Categorical('c', ['a', nan]): NaN category": (_space(lambda: Categorical("c", ["a", nan])), "'c'"),
        "Ordinal('o', [1.0, nan]): NaN value": (_space(lambda: Ordinal("o", [1.0, nan])), "'o'"),
        "Permutation('p', [1, nan]): NaN item": (_space(lambda: Permutation("p", [1, nan])), "'p'"),
        "Sequence('s', [[1], [2]], 3): unhashable symbols": (_space(lambda: Sequence("s", [[1], [2]], 3)), "'s'"),
        "solver.ask(10**9)": (_ask_huge, "at most"),
    }


#: name -> (what to run, text the ValueError must contain); built lazily (imports mcbo).
BAD_SPACES: Callable[[], dict[str, tuple[Callable[[], None], str]]] = _bad_spaces


def run_bad_input(kind: str, name: str, run: Callable[[], None], must_name: str) -> Outcome:
    """Run one bad input: it must raise ``ValueError`` whose message contains ``must_name``."""
    out = Outcome(name, kind, inputs=1, faults=1)
    try:
        run()
    except ValueError as err:
        message = str(err)
        if must_name in message:
            out.clean_errors = 1
        else:
            out.problems.append(f"ValueError does not name {must_name}: {message[:120]}")
        out.detail = message
    except Exception:  # noqa: BLE001 -- a raw exception is what this catalogue looks for
        out.raw.append(traceback.format_exc(limit=4))
        out.detail = out.raw[-1].strip().splitlines()[-1][:160]
    else:
        out.problems.append("accepted")
        out.detail = "accepted"
    return out


# ------------------------------------------------------------------------------------- bad save files
def _saved_state(solver_name: str = "rs") -> tuple[Any, dict[str, Any]]:
    """A small run's solver and its state (2 ok records, 1 failed, 2 pending)."""
    from mcbo.solvers import build_solver
    from mcbo.space import Categorical, Integer, Real, SearchSpace

    space = SearchSpace([Real("x", 0, 1), Integer("k", 0, 9), Categorical("c", ["a", "b"])])
    solver = build_solver(solver_name, space, seed=0)
    points = solver.ask(3)
    solver.tell(points, [1.0, None, 0.5])
    solver.ask(2)
    return solver, json.loads(json.dumps(solver.state_dict(), default=str))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    """An edit setting ``state[...]`` at a dotted path (``records.0.value``) to ``value``."""
    def edit(state: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node: Any = state
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return state

    return edit


def _drop(path: str) -> Callable[[dict[str, Any]], Any]:
    def edit(state: dict[str, Any]) -> dict[str, Any]:
        *parents, last = path.split(".")
        node: Any = state
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[int(last) if isinstance(node, list) else last]
        return state

    return edit


#: name -> (solver recipe, edit of the saved state dict (returns the new state, or a str: the file's text),
#: the field the ValueError must name).
BAD_STATES: dict[str, tuple[str, Callable[[dict[str, Any]], Any], str]] = {
    "NaN value marked ok": ("rs", _set("records.0.value", math.nan), "records[0].value"),
    "infinite value marked ok": ("rs", _set("records.0.value", math.inf), "records[0].value"),
    "unknown status": ("rs", _set("records.1.status", "pending"), "records[1].status"),
    "duplicate index": ("rs", _set("records.2.index", 1), "records[2].index"),
    "garbage pending point": ("rs", _set("pending.0", {"point": {"x": "garbage"}}), "pending[0].point"),
    "pending entry without a point": ("rs", _set("pending.1", {"ask_seconds": 0.1}), "pending[1]"),
    "record without a status": ("rs", _drop("records.0.status"), "records[0]"),
    "record that is a string": ("rs", _set("records.1", "ok"), "records[1]"),
    "records not a list": ("rs", _set("records", {"0": 1}), "'records'"),
    "records missing": ("rs", _drop("records"), "'records'"),
    "point with an unknown parameter": ("rs", _set("records.0.point.zz", 1), "records[0].point"),
    "point out of range": ("rs", _set("records.0.point.k", 99), "records[0].point"),
    "negative eval_seconds": ("rs", _set("records.0.eval_seconds", -1), "records[0].eval_seconds"),
    "error that is not a string": ("rs", _set("records.1.error", 5), "records[1].error"),
    "garbage numpy generator state": ("rs", _set("np_rng", {"bit_generator": "PCG64", "state": 5}), "'np_rng'"),
    "garbage torch generator state": ("rs", _set("torch_gen", "not base64!"), "'torch_gen'"),
    "state that is a list": ("rs", lambda state: [state], "JSON object"),
    "truncated file": ("rs", lambda state: json.dumps(state)[:200], "not valid JSON"),
    "hill-climbing state without its extra fields": ("hc", _set("extra", {}), "'extra'"),
    "extra that is a list": ("hc", _set("extra", [1, 2]), "'extra'"),
}


def run_bad_state(name: str, folder: Path) -> Outcome:
    """Save a small run, apply edit ``name`` to the file, load it into a fresh solver: one clean ``ValueError``
    naming the field, and the solver left as it was."""
    from mcbo.solvers import build_solver

    recipe, edit, must_name = BAD_STATES[name]
    solver, state = _saved_state(recipe)
    edited = edit(state)
    path = folder / f"state-{list(BAD_STATES).index(name)}.json"
    path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    fresh = build_solver(recipe, solver.space, seed=1)
    fresh.tell(fresh.ask(1), [3.0])
    before = fresh.history.to_json()
    out = run_bad_input("save file", name, lambda: fresh.load(path), must_name)
    if not out.raw and fresh.history.to_json() != before:
        out.problems.append("a failed load changed the solver")
    if not out.raw and str(path) not in out.detail:
        out.problems.append("the error does not name the file")
    return out


# ------------------------------------------------------------------------------------ bad checkpoints
def _checkpoint(folder: Path) -> tuple[Any, dict[str, Any], Path]:
    import torch

    from mcbo.models.tnp import Featuriser, TNPNetwork, save_checkpoint
    from mcbo.space import Categorical, Real, SearchSpace

    space = SearchSpace([Real("x", 0, 1), Categorical("c", list("abc"))])
    torch.manual_seed(0)
    net = TNPNetwork(Featuriser(space).n_features, torch.linspace(-3, 3, 9), d_model=8, n_heads=2, n_layers=1,
                     d_ff=8)
    path = save_checkpoint(folder / "good.pt", net, space)
    return space, torch.load(path, weights_only=True), path


def _weights(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda payload: edit(payload["state_dict"])


def _bad_checkpoints() -> dict[str, tuple[Callable[[dict[str, Any]], None], str]]:
    import torch

    return {
        "arch missing": (lambda p: p.pop("arch"), "'arch'"),
        "arch with an unknown key": (lambda p: p["arch"].update(width=3), "'arch'"),
        "arch d_model not an integer": (lambda p: p["arch"].update(d_model="big"), "'arch.d_model'"),
        "arch that does not fit the weights": (lambda p: p["arch"].update(d_model=16), "'state_dict'"),
        "space_signature missing": (lambda p: p.pop("space_signature"), "'space_signature'"),
        "space that is garbage": (lambda p: p.update(space={"params": [{"type": "real", "name": "x"}]}), "'space'"),
        "state_dict missing": (lambda p: p.pop("state_dict"), "'state_dict'"),
        "borders missing": (_weights(lambda w: w.pop("borders")), "'state_dict.borders'"),
        "borders not increasing": (_weights(lambda w: w.update(borders=torch.zeros(9))), "'state_dict'"),
        "a weight of the wrong shape": (_weights(lambda w: w.update({"query": torch.zeros(3)})), "'state_dict'"),
        "an unknown weight": (_weights(lambda w: w.update({"extra.weight": torch.zeros(2)})), "'state_dict'"),
        "a weight that is not a tensor": (_weights(lambda w: w.update({"query": [0.0] * 8})), "'state_dict.query'"),
        "NaN weights": (_weights(lambda w: w["query"].fill_(float("nan"))), "'state_dict.query'"),
        "info not a dict": (lambda p: p.update(info=[1]), "'info'"),
    }


#: name -> (edit of the checkpoint payload, the field the ValueError must name); built lazily (imports torch).
BAD_CHECKPOINTS: Callable[[], dict[str, tuple[Callable[[dict[str, Any]], None], str]]] = _bad_checkpoints


def run_bad_checkpoint(name: str, folder: Path) -> Outcome:
    """Save a tiny TNP, apply edit ``name`` to the payload, load it: one clean ``ValueError`` naming the field."""
    import torch

    from mcbo.models.tnp import load_checkpoint

    edit, must_name = BAD_CHECKPOINTS()[name]
    space, payload, _ = _checkpoint(folder)
    edit(payload)
    path = folder / f"checkpoint-{list(BAD_CHECKPOINTS()).index(name)}.pt"
    torch.save(payload, path)
    return run_bad_input("checkpoint", name, lambda: load_checkpoint(path, space), must_name)


def key_env() -> dict[str, str]:
    """The environment the LLM fault runs need (the key they watch for)."""
    return {KEY_ENV: SECRET}


__all__ = ["BAD_CHECKPOINTS", "BAD_SPACES", "BAD_STATES", "FLAKY_CYCLE", "INSTRUCT_FAULTS", "KEY_ENV", "LLM_FAULTS",
           "InstructRun", "Outcome", "SECRET", "key_env", "run_bad_checkpoint", "run_bad_input", "run_bad_state",
           "run_budget_exhaustion", "run_dishonest_server", "run_instruct_fault", "run_llm_fault"]
