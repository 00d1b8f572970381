"""A hard budget on LLM calls, tokens and money.

Every call first *reserves* its worst case (one call, an upper bound on its tokens, and that bound's
cost); the reservation is refused with :class:`BudgetExceeded` when spent + reserved + this call
could pass any limit, or once the spend has reached a limit, so concurrent calls can never overshoot
together. When the call returns, the reservation is replaced by the usage the server reported
(:meth:`Budget.commit`; never negative: a negative or non-finite amount is recorded as 0 with a
warning); a call that certainly cost nothing releases it (:meth:`Budget.release`); a call whose
outcome is unknown is committed at its reservation by the client.

A commit above its reservation means the server bills more than the worst case a call can cost
(a dishonest or mis-configured server): it is recorded as reported, logged, and the budget then
refuses every further call (:attr:`Budget.overrun`), so the overshoot is bounded by the over-reports
of the calls already in flight (one call when calls are sequential). See docs/llm-instruction-tuning.md.
Thread-safe.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Relative slack when comparing a committed cost with its reservation (float rounding only).
_USD_SLACK = 1e-9


class BudgetExceeded(RuntimeError):
    """Raised before a call that the remaining budget cannot cover."""


@dataclass(frozen=True)
class Reservation:
    """Worst-case usage held for one in-flight call."""

    calls: int
    tokens: int
    usd: float


class Budget:
    """Limits on successful calls, total tokens (prompt + completion) and US dollars; ``None`` = no limit.

    Args:
        max_calls: most API calls that may succeed (cache hits are free and not counted).
        max_tokens: most prompt + completion tokens.
        max_usd: most US dollars, priced by the client's price table.
    """

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None,
                 max_usd: float | None = None) -> None:
        for name, value in (("max_calls", max_calls), ("max_tokens", max_tokens)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"budget {name} must be a non-negative integer or None, got {value!r}")
        if max_usd is not None and (not isinstance(max_usd, (int, float)) or isinstance(max_usd, bool)
                                    or not math.isfinite(max_usd) or max_usd < 0):
            raise ValueError(f"budget max_usd must be a non-negative number or None, got {max_usd!r}")
        self.max_calls, self.max_tokens = max_calls, max_tokens
        self.max_usd = None if max_usd is None else float(max_usd)
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.usd = 0.0
        #: Why further calls are refused after a call reported more usage than its reservation (else ``None``).
        self.overrun: str | None = None
        self._held = Reservation(0, 0, 0.0)
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def limits_money(self) -> bool:
        return self.max_usd is not None

    @property
    def reserved(self) -> Reservation:
        """What the calls in flight hold (all zero when no call is in flight)."""
        with self._lock:
            return self._held

    def _fits(self, calls: int, tokens: int, usd: float) -> str | None:
        """The first limit that ``calls``/``tokens``/``usd`` more (plus what is held) would pass, else ``None``.

        A limit the spend has already reached refuses everything, even a call reserving nothing.
        """
        if self.overrun is not None:
            return self.overrun
        held = self._held
        if self.max_calls is not None and (self.calls >= self.max_calls
                                           or self.calls + held.calls + calls > self.max_calls):
            return f"calls ({self.calls} made, limit {self.max_calls})"
        if self.max_tokens is not None and (self.tokens >= self.max_tokens
                                            or self.tokens + held.tokens + tokens > self.max_tokens):
            return f"tokens ({self.tokens} used, limit {self.max_tokens})"
        if self.max_usd is not None and (self.usd >= self.max_usd
                                         or self.usd + held.usd + usd > self.max_usd + 1e-12):
            return f"money (${self.usd:.6f} spent, limit ${self.max_usd:.6f})"
        return None

    def can_afford(self, calls: int, tokens: int, usd: float) -> bool:
        """Whether ``calls`` more calls using up to ``tokens`` tokens and ``usd`` dollars fit."""
        with self._lock:
            return self._fits(calls, tokens, usd) is None

    def reserve(self, tokens: int, usd: float) -> Reservation:
        """Hold one call's worst case; :class:`BudgetExceeded` names the limit it would pass."""
        with self._lock:
            over = self._fits(1, tokens, usd)
            if over is not None:
                raise BudgetExceeded(f"budget {'stopped' if over is self.overrun else 'exhausted'}: {over}")
            r = Reservation(1, int(tokens), float(usd))
            self._held = Reservation(self._held.calls + 1, self._held.tokens + r.tokens, self._held.usd + r.usd)
            return r

    def release(self, r: Reservation) -> None:
        """Drop a reservation whose call failed."""
        with self._lock:
            self._drop(r)

    def commit(self, r: Reservation, prompt_tokens: int, completion_tokens: int, usd: float) -> None:
        """Replace a reservation with the call's usage as the server reported it (billed).

        Negative or non-finite amounts are nonsense and are recorded as 0, with a warning. Usage above the
        reservation is recorded as reported, and stops every further call (:attr:`overrun`).
        """
        pt = _non_negative("prompt_tokens", prompt_tokens)
        ct = _non_negative("completion_tokens", completion_tokens)
        cost = _non_negative("usd", usd)
        with self._lock:
            self._drop(r)
            self.calls += 1
            self.prompt_tokens += int(pt)
            self.completion_tokens += int(ct)
            self.usd += float(cost)
            over = []
            if self.max_tokens is not None and pt + ct > r.tokens:
                over.append(f"{int(pt + ct)} tokens against a worst case of {r.tokens}")
            if self.max_usd is not None and cost > r.usd * (1 + _USD_SLACK) + 1e-15:
                over.append(f"${cost:.6f} against a worst case of ${r.usd:.6f}")
            if over and self.overrun is None:
                self.overrun = (f"the server reported more usage than a call can cost ({'; '.join(over)}); no "
                                f"further calls, as the budget can no longer be guaranteed")
                logger.warning("budget: %s", self.overrun)

    def _drop(self, r: Reservation) -> None:
        h = self._held
        # With no call in flight, nothing is held: reset exactly, so float rounding cannot accumulate.
        self._held = (Reservation(h.calls - r.calls, h.tokens - r.tokens, h.usd - r.usd) if h.calls > r.calls
                      else Reservation(0, 0, 0.0))

    def summary(self) -> dict[str, float | int | None]:
        """Spent and limits, as plain data."""
        with self._lock:
            return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens, "tokens": self.tokens, "usd": self.usd,
                    "max_calls": self.max_calls, "max_tokens": self.max_tokens, "max_usd": self.max_usd,
                    "overrun": self.overrun}


def _non_negative(name: str, value: float) -> float:
    """``value``, or 0 (with a warning) when it is negative, NaN or infinite."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        logger.warning("budget: nonsense usage %s=%r recorded as 0", name, value)
        return 0.0
    return int(value) if name != "usd" else number


__all__ = ["Budget", "BudgetExceeded", "Reservation"]
