"""Chat-completion client for any OpenAI-compatible endpoint, on the official ``openai`` SDK.

What it adds to the SDK (whose own retries are switched off, ``max_retries=0``, so that the policy
below is the only one and can be tested):

* **Retries** of rate limits (429), timeouts (408), conflicts (409), server errors (5xx), network
  errors and client-side timeouts, up to ``max_retries`` times. The wait honours the server's
  ``retry-after-ms`` / ``Retry-After`` header (seconds or an HTTP date); without one it is
  exponential backoff ``min(backoff_max, backoff_base * 2^k)`` times a seeded jitter in ``[0.5, 1]``.
  Other errors (bad request, authentication, not found, ...) fail at once.
* **Client-side rate limit** (:class:`~mcbo.llm.rate_limit.RateLimiter`).
* **Token usage and cost** of every call from the server's ``usage`` field and a user-overridable
  :class:`~mcbo.llm.pricing.PriceTable`; one row per call in :meth:`LLMClient.calls_table`.
* **Hard budget** (:class:`~mcbo.llm.budget.Budget`): each HTTP attempt reserves its worst case first
  (prompt tokens bounded by the prompt's UTF-8 bytes plus a per-message allowance, completion tokens
  by ``max_tokens``, which is sent to the server) and is refused with
  :class:`~mcbo.llm.budget.BudgetExceeded` if that could pass a limit. What each attempt is charged:

  - an answer: its reported ``usage`` (an over-report too, which then stops the budget); a missing or
    nonsense field (negative, fractional, not a number, above 2**53) counts as its worst case;
  - HTTP 200 without a usable choice: the same, then :class:`LLMError` (not retried);
  - an unknown outcome (a timeout, a gateway's 502/504/524, a connection dropped after sending, an
    unreadable body: malformed JSON or not a JSON object): the reservation, since the server may have
    completed and billed it; retried, each retry reserving anew;
  - any other HTTP error status, an error object sent with HTTP 200, a connection that could not be
    opened: nothing (the server says it did not complete the call, or nothing was sent).

* **Response cache** (:class:`~mcbo.llm.cache.LLMCache`): identical requests are answered from SQLite.
* **Sampling extras**: nucleus sampling (``top_p``) and the mean token log-probability of the answer
  (``logprobs=True``, read from ``choices[0].logprobs.content[*].logprob``), both optional; a request
  without them is sent, and cached under a key, exactly as before they existed.

Every failure leaves the client as :class:`LLMError` (or :class:`~mcbo.llm.budget.BudgetExceeded`),
never as a raw ``json``/``ValueError``/SDK exception, and never leaks a reservation.

The API key is read from the environment variable the user names (default ``OPENAI_API_KEY``) and
handed to the SDK only; it is never logged, stored in the cache, or shown in ``repr``, and a server
that echoes it in an error body has it replaced by ``[redacted]`` in every message and log line. For
a loopback ``base_url`` (a local server: 127.0.0.0/8, ``localhost``, ``::1``) a missing key is
replaced by a placeholder, since local servers do not check it.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import math
import os
import random
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

from mcbo.llm.budget import Budget, Reservation
from mcbo.llm.cache import LLMCache, request_key
from mcbo.llm.pricing import Price, PriceTable
from mcbo.llm.rate_limit import RateLimiter

logger = logging.getLogger(__name__)

#: Placeholder key sent to loopback servers when the key variable is unset.
LOOPBACK_PLACEHOLDER_KEY = "sk-no-key-needed-for-loopback"
#: Tokens allowed per message (role and chat-format tokens) on top of the content's UTF-8 bytes.
_TOKENS_PER_MESSAGE = 8
_RETRY_STATUS = {408, 409, 429}
#: Statuses a gateway sends when the upstream server may still have completed (and billed) the call.
_UNKNOWN_OUTCOME_STATUS = {502, 504, 524}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Largest token count believed in a ``usage`` field (float64 represents every integer up to it).
MAX_USAGE_TOKENS = 2**53
#: Replaces the API key (and any bearer token) in messages built from server replies.
REDACTED = "[redacted]"
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s'\",}]+")
#: httpx errors raised before a request left this machine (nothing can have been billed).
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout"})


class LLMError(RuntimeError):
    """A call failed for good: a non-retryable error, or retries exhausted."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ChatResult:
    """One chat completion.

    Attributes:
        text: the assistant message's content.
        prompt_tokens, completion_tokens: usage reported by the server for the answer (or stored with the
            cached answer); a missing or nonsense field counts as its worst case.
        cost_usd: what this call cost: the answer's usage priced, plus ``charged_usd`` (0 for a cache hit;
            ``nan`` when the model has no price).
        cached: answered from the cache, without a call.
        attempts: HTTP attempts made (0 for a cache hit).
        seconds: wall-clock time including retries and rate-limit waits.
        charged_attempts: earlier attempts whose outcome was unknown (timeout, dropped connection,
            unreadable answer), each charged its worst case.
        charged_tokens, charged_usd: what those attempts were charged.
        mean_logprob: mean token log-probability of the completion when ``logprobs=True`` was asked and the
            server returned them (read back from the cache on a hit), else ``None``.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool
    attempts: int
    seconds: float
    charged_attempts: int = 0
    charged_tokens: int = 0
    charged_usd: float = 0.0
    mean_logprob: float | None = None


@dataclass
class _Tally:
    """What one :meth:`LLMClient.chat` has done so far: attempts, and charges for unknown outcomes."""

    attempts: int = 0
    charged_attempts: int = 0
    charged_tokens: int = 0
    charged_usd: float = 0.0
    #: usage committed for an answer that then failed (no choices): prompt, completion tokens, usd.
    failed_answer: tuple[int, int, float] | None = None


@dataclass(frozen=True)
class _Reply:
    """A 2xx body, read: ``kind`` is ``"answer"``, ``"no_choices"``, ``"error"`` or ``"unreadable"``."""

    kind: str
    text: str = ""
    usage: Any = None
    detail: str = ""
    status: int | None = None
    mean_logprob: float | None = None


def is_loopback(base_url: str | None) -> bool:
    """Whether ``base_url`` points at this machine (127.0.0.0/8, ``localhost``, ``::1``)."""
    if not base_url:
        return False
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prompt_token_bound(messages: Sequence[Mapping[str, str]]) -> int:
    """Upper bound on the prompt tokens of ``messages``: UTF-8 bytes plus a per-message allowance.

    Byte-level BPE tokenisers never emit more tokens than bytes, so the bound holds for them.
    """
    return sum(len(m["content"].encode("utf-8")) + _TOKENS_PER_MESSAGE for m in messages) + _TOKENS_PER_MESSAGE


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), else ``None``."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    raw_ms = lower.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = lower.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class LLMClient:
    """Chat completions from one model of an OpenAI-compatible endpoint, with the policies above.

    Args:
        model: model name sent to the server.
        base_url: endpoint, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``
            (``None``: the SDK's default, OpenAI).
        api_key_env: name of the environment variable holding the API key.
        prices: price table (default: :class:`PriceTable` defaults). Required to know the model's
            price when ``budget`` limits money.
        budget: hard limits on calls, tokens and dollars (default: none).
        cache: response cache (default: none).
        rate_limiter: client-side rate limit (default: none).
        max_retries: retries after the first attempt of a call.
        backoff_base, backoff_max: exponential backoff (seconds) when the server gives no Retry-After.
        max_retry_after: longest server-requested wait honoured (longer ones are cut to this).
        timeout: seconds before one HTTP attempt times out.
        token_param: name of the completion-length field, ``"max_tokens"`` (widest support) or
            ``"max_completion_tokens"`` (required by some newer OpenAI models).
        seed: seed of the backoff jitter.
        sleep: function used to wait (injectable for tests).
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        prices: PriceTable | None = None,
        budget: Budget | None = None,
        cache: LLMCache | None = None,
        rate_limiter: RateLimiter | None = None,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        max_retry_after: float = 120.0,
        timeout: float = 60.0,
        token_param: str = "max_tokens",
        seed: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import openai  # heavy; imported only when a client is made

        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a non-empty string, got {model!r}")
        if base_url is not None and urlparse(base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(api_key_env, str) or not _ENV_NAME.match(api_key_env):
            raise ValueError(f"api_key_env must be an environment variable name, got {api_key_env!r}")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        for name, value in (("backoff_base", backoff_base), ("backoff_max", backoff_max),
                            ("max_retry_after", max_retry_after), ("timeout", timeout)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if token_param not in ("max_tokens", "max_completion_tokens"):
            raise ValueError(f"token_param must be 'max_tokens' or 'max_completion_tokens', got {token_param!r}")
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.prices = prices if prices is not None else PriceTable()
        self.price: Price | None = self.prices.get(model)
        self.budget, self.cache, self.rate_limiter = budget, cache, rate_limiter
        if budget is not None and budget.limits_money and self.price is None:
            self.prices.price(model)  # raises: a money budget needs the model's price
        if self.price is None:
            logger.warning("no price known for model %r: its cost is not tracked", model)
        self.max_retries, self.backoff_base, self.backoff_max = max_retries, float(backoff_base), float(backoff_max)
        self.max_retry_after, self.timeout, self.token_param = float(max_retry_after), float(timeout), token_param
        self.sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._openai = openai
        self._client = openai.OpenAI(api_key=_api_key(api_key_env, base_url), base_url=base_url,
                                     max_retries=0, timeout=self.timeout)

    def __repr__(self) -> str:
        return f"LLMClient(model={self.model!r}, base_url={self.base_url!r}, api_key_env={self.api_key_env!r})"

    # ---------------------------------------------------------------- calls
    def complete(self, prompt: str, **kwargs: Any) -> ChatResult:
        """One user message ``prompt``; see :meth:`chat`."""
        return self.chat([{"role": "user", "content": prompt}], **kwargs)

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        use_cache: bool = True,
        top_p: float | None = None,
        logprobs: bool = False,
    ) -> ChatResult:
        """One chat completion of ``messages`` (``[{"role": ..., "content": ...}, ...]``).

        Args:
            top_p: nucleus sampling mass in [0, 1], sent when given (``None``: the server's default).
            logprobs: ask for token log-probabilities (``logprobs=True, top_logprobs=1``: llama.cpp's server
                returns them only with ``top_logprobs`` set) and report their mean as
                :attr:`ChatResult.mean_logprob` (``None`` when the server returns none).

        Either argument, when given, is part of the cache key; without them the key is the one of a
        request that has neither, so caches written before they existed keep answering.

        Raises:
            BudgetExceeded: the call, or its next retry, could pass a budget limit (that attempt was not sent).
            LLMError: a non-retryable error, an answer without a usable choice, or every retry failed (never a
                raw ``json``/SDK exception; the API key is redacted from the message).
        """
        messages = _check_messages(messages)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                                  or not 0.0 <= top_p <= 1.0):
            raise ValueError(f"top_p must be a number in [0, 1] or None, got {top_p!r}")
        if not isinstance(logprobs, bool):
            raise ValueError(f"logprobs must be True or False, got {logprobs!r}")
        start = time.perf_counter()
        payload: dict[str, Any] = {"base_url": self.base_url or "default", "model": self.model, "messages": messages,
                                   "max_tokens": max_tokens, "temperature": float(temperature), "seed": seed,
                                   "stop": list(stop) if stop else None}
        # Only when set: a request without them keeps the key it had before they existed.
        if top_p is not None:
            payload["top_p"] = float(top_p)
        if logprobs:
            payload["logprobs"] = True
        key = request_key(payload)
        if use_cache and self.cache is not None:
            hit = self.cache.get_response(key)
            if hit is not None:
                result = ChatResult(hit.content, hit.prompt_tokens, hit.completion_tokens, 0.0, True, 0,
                                    time.perf_counter() - start,
                                    mean_logprob=hit.mean_logprob if logprobs else None)
                self._record(result)
                return result
        fields: dict[str, Any] = {"temperature": float(temperature)}
        if seed is not None:
            fields["seed"] = int(seed)
        if stop:
            fields["stop"] = list(stop)
        if top_p is not None:
            fields["top_p"] = float(top_p)
        if logprobs:
            fields["logprobs"], fields["top_logprobs"] = True, 1
        prompt_bound = prompt_token_bound(messages)
        tally = _Tally()
        try:
            reply, pt, ct, cost = self._send(messages, max_tokens, fields, prompt_bound, tally)
        except BaseException:
            self._record_failure(tally, time.perf_counter() - start)
            raise
        mean_logprob = reply.mean_logprob if logprobs else None
        if self.cache is not None:
            self.cache.put_response(key, self.model, reply.text, pt, ct, mean_logprob)
        charged = tally.charged_usd if self.price is not None else float("nan")
        result = ChatResult(reply.text, pt, ct, cost + charged, False, tally.attempts, time.perf_counter() - start,
                            tally.charged_attempts, tally.charged_tokens, charged, mean_logprob)
        self._record(result)
        return result

    # ------------------------------------------------------------ attempts
    def _reserve(self, prompt_bound: int, max_tokens: int) -> Reservation | None:
        """Hold one attempt's worst case in the budget (:class:`BudgetExceeded` if it could pass a limit)."""
        if self.budget is None:
            return None
        usd = self.price.cost(prompt_bound, max_tokens) if self.price is not None else 0.0
        return self.budget.reserve(prompt_bound + max_tokens, usd)

    def _release(self, reservation: Reservation | None) -> None:
        """The attempt certainly cost nothing (the server said it failed, or nothing was sent)."""
        if reservation is not None:
            self.budget.release(reservation)  # type: ignore[union-attr]

    def _charge(self, reservation: Reservation | None, prompt_bound: int, max_tokens: int, tally: _Tally,
                why: str) -> None:
        """The attempt's outcome is unknown: it may have been billed, so its worst case is recorded."""
        usd = self.price.cost(prompt_bound, max_tokens) if self.price is not None else 0.0
        tally.charged_attempts += 1
        tally.charged_tokens += prompt_bound + max_tokens
        tally.charged_usd += usd
        if reservation is not None:
            self.budget.commit(reservation, prompt_bound, max_tokens, usd)  # type: ignore[union-attr]
        logger.warning("%s: %s; the attempt may have been billed, so its worst case (%d tokens, $%.6f) is "
                       "charged", self.model, why, prompt_bound + max_tokens, usd)

    def _settle(self, reservation: Reservation | None, usage: Any, prompt_bound: int,
                max_tokens: int) -> tuple[int, int, float]:
        """Record an answer's reported usage (nonsense fields: their worst case); tokens and cost."""
        pt, ct = _usage(usage, prompt_bound, max_tokens)
        cost = self.price.cost(pt, ct) if self.price is not None else float("nan")
        if reservation is not None:
            self.budget.commit(reservation, pt, ct, 0.0 if math.isnan(cost) else cost)  # type: ignore[union-attr]
        return pt, ct, cost

    def _send(self, messages: list[dict[str, str]], max_tokens: int, fields: Mapping[str, Any], prompt_bound: int,
              tally: _Tally) -> tuple[_Reply, int, int, float]:
        """POST with retries, each attempt reserving its worst case; the answer, its usage and its cost.

        ``fields`` are the request's sampling fields (temperature, and seed, stop, top_p, logprobs when set).
        """
        oa = self._openai
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, **fields, self.token_param: max_tokens}
        while True:
            reservation = self._reserve(prompt_bound, max_tokens)
            tally.attempts += 1
            attempt = tally.attempts
            status: int | None = None
            wait: float | None = None
            try:
                if self.rate_limiter is not None:
                    self.rate_limiter.acquire(prompt_bound + max_tokens)
            except BaseException:
                self._release(reservation)  # nothing was sent
                raise
            try:
                raw = self._client.chat.completions.with_raw_response.create(**kwargs)
                body = raw.text
            except oa.APIStatusError as err:
                status = int(err.status_code)
                reason = f"HTTP {status} ({self._short(err, 120)})"
                if status in _UNKNOWN_OUTCOME_STATUS:
                    self._charge(reservation, prompt_bound, max_tokens, tally, reason)
                else:
                    self._release(reservation)
                if status not in _RETRY_STATUS and status < 500:
                    raise LLMError(f"{self.model}: HTTP {status} from the server: {self._short(err)}",
                                   status) from None
                headers = dict(err.response.headers) if err.response is not None else {}
                wait = parse_retry_after(headers)
            except oa.APIConnectionError as err:  # includes APITimeoutError
                kind = type(err.__cause__).__name__ if err.__cause__ is not None else ""
                reason = "timeout" if isinstance(err, oa.APITimeoutError) else f"connection error ({kind or 'unknown'})"
                if kind in _NOT_SENT:
                    self._release(reservation)
                else:
                    self._charge(reservation, prompt_bound, max_tokens, tally, reason)
            except oa.OpenAIError as err:  # any other SDK failure: the request may have been served
                reason = f"{type(err).__name__} ({self._short(err, 120)})"
                self._charge(reservation, prompt_bound, max_tokens, tally, reason)
            except BaseException:  # interrupted (or a bug): the request may be out, so it is charged
                self._charge(reservation, prompt_bound, max_tokens, tally, "the attempt was interrupted")
                raise
            else:
                reply = _read_reply(body)
                if reply.kind == "answer":
                    pt, ct, cost = self._settle(reservation, reply.usage, prompt_bound, max_tokens)
                    return reply, pt, ct, cost
                if reply.kind == "no_choices":
                    pt, ct, cost = self._settle(reservation, reply.usage, prompt_bound, max_tokens)
                    tally.failed_answer = (pt, ct, cost)
                    raise LLMError(f"{self.model}: the server answered without a usable choice "
                                   f"({self._redact(reply.detail)})")
                if reply.kind == "error":
                    self._release(reservation)
                    status = reply.status
                    if status is None or (status not in _RETRY_STATUS and status < 500):
                        raise LLMError(f"{self.model}: the server sent an error with HTTP 200: "
                                       f"{self._redact(reply.detail)}", status)
                    reason = f"error with HTTP 200 ({self._redact(reply.detail)[:120]})"
                else:  # unreadable: the server answered, but what it billed cannot be read
                    reason = f"unreadable answer ({self._redact(reply.detail)})"
                    self._charge(reservation, prompt_bound, max_tokens, tally, reason)
            if attempt > self.max_retries:
                raise LLMError(f"{self.model}: gave up after {attempt} attempts; last error: {reason}", status)
            delay = self._delay(attempt, wait)
            logger.warning("%s: %s; retry %d/%d in %.2fs", self.model, reason, attempt, self.max_retries, delay)
            self.sleep(delay)

    def _redact(self, text: str) -> str:
        """``text`` without the API key or any bearer token (servers may echo them in error bodies)."""
        key = getattr(self._client, "api_key", None)
        if isinstance(key, str) and len(key) >= 4:
            text = text.replace(key, REDACTED)
        return _BEARER.sub(f"Bearer {REDACTED}", text)

    def _short(self, err: Exception, limit: int = 200) -> str:
        return _short(self._redact(str(err)), limit)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Wait before retry number ``attempt``: the server's Retry-After, else jittered backoff."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                logger.warning("server asked to wait %.1fs; waiting max_retry_after=%.1fs", retry_after,
                               self.max_retry_after)
            return min(retry_after, self.max_retry_after)
        with self._lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * jitter

    # ----------------------------------------------------------- accounting
    def _record(self, result: ChatResult) -> None:
        row = asdict(result)
        row.pop("text")
        row.pop("mean_logprob")
        row["model"], row["ok"] = self.model, True
        with self._lock:
            self._calls.append(row)

    def _record_failure(self, tally: _Tally, seconds: float) -> None:
        """A row for a failed :meth:`chat` that was charged something (else it cost nothing: no row)."""
        pt, ct, cost = tally.failed_answer or (0, 0, 0.0)
        if tally.charged_attempts == 0 and tally.failed_answer is None:
            return
        charged = tally.charged_usd if self.price is not None else float("nan")
        self._record_row({"model": self.model, "ok": False, "prompt_tokens": pt, "completion_tokens": ct,
                          "cost_usd": cost + charged, "cached": False, "attempts": tally.attempts,
                          "seconds": seconds, "charged_attempts": tally.charged_attempts,
                          "charged_tokens": tally.charged_tokens, "charged_usd": charged})

    def _record_row(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(row)

    def calls_table(self) -> "Any":
        """One row per :meth:`chat` that was answered or charged (pandas DataFrame): ``ok``, tokens, cost,
        cached, attempts, seconds, and the attempts charged their worst case (unknown outcome)."""
        import pandas as pd

        with self._lock:
            rows = list(self._calls)
        columns = ["model", "ok", "prompt_tokens", "completion_tokens", "cost_usd", "cached", "attempts", "seconds",
                   "charged_attempts", "charged_tokens", "charged_usd"]
        return pd.DataFrame(rows, columns=columns)

    def usage(self) -> dict[str, Any]:
        """Totals over this client's calls: calls answered, failed calls that were charged, cache hits,
        attempts, tokens (reported, and charged for unknown outcomes) and dollars (all of it)."""
        with self._lock:
            rows = list(self._calls)
        paid = [r for r in rows if not r["cached"]]
        costs = [r["cost_usd"] for r in paid]
        return {
            "model": self.model,
            "calls": sum(r["ok"] for r in paid),
            "failed_calls": sum(not r["ok"] for r in paid),
            "cache_hits": len(rows) - len(paid),
            "attempts": sum(r["attempts"] for r in paid),
            "retries": sum(r["attempts"] - 1 for r in paid),
            "prompt_tokens": sum(r["prompt_tokens"] for r in paid),
            "completion_tokens": sum(r["completion_tokens"] for r in paid),
            "charged_attempts": sum(r["charged_attempts"] for r in paid),
            "charged_tokens": sum(r["charged_tokens"] for r in paid),
            "cost_usd": float(sum(costs)) if self.price is not None else float("nan"),
        }

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self._client.close()


def _api_key(env: str, base_url: str | None) -> str:
    key = os.environ.get(env)
    if key:
        return key
    if is_loopback(base_url):
        return LOOPBACK_PLACEHOLDER_KEY
    raise ValueError(f"environment variable {env!r} holding the API key is not set (a key is needed for "
                     f"base_url {base_url or 'default (OpenAI)'!r}); export it or name another with api_key_env")


def _check_messages(messages: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be a dict with string 'role' and 'content', got {m!r}")
        if m["role"] not in ("system", "user", "assistant", "developer"):
            raise ValueError(f"messages[{i}]: role must be system, developer, user or assistant, got {m['role']!r}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _read_reply(body: str) -> _Reply:
    """Classify a 2xx body: an answer, a completion without a usable choice, an error object, or unreadable."""
    try:
        data = json.loads(body)
    except ValueError as err:  # json.JSONDecodeError, or text that is not UTF-8
        return _Reply("unreadable", detail=f"malformed JSON: {_short(str(err), 80)}")
    if not isinstance(data, dict):
        kind = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(data), "null")
        return _Reply("unreadable", detail=f"a JSON {kind}, not an object")
    choices = data.get("choices")
    if "error" in data and not choices:
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        code = error.get("code", error.get("status")) if isinstance(error, dict) else None
        status = int(code) if isinstance(code, int) and not isinstance(code, bool) else None
        if isinstance(code, str) and code.isdigit():
            status = int(code)
        return _Reply("error", detail=_short(str(message)), status=status)
    usage = data.get("usage")
    if not isinstance(choices, list) or not choices:
        return _Reply("no_choices", usage=usage, detail="no choices")
    first = choices[0]
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if message is None or not (content is None or isinstance(content, str)):
        return _Reply("no_choices", usage=usage, detail="the first choice has no text message")
    return _Reply("answer", text=content or "", usage=usage, mean_logprob=_mean_logprob(first))


def _mean_logprob(choice: Mapping[str, Any]) -> float | None:
    """Mean of ``choice["logprobs"]["content"][*]["logprob"]``; ``None`` when absent, empty or not all finite numbers."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    values = []
    for token in content:
        value = token.get("logprob") if isinstance(token, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        values.append(float(value))
    return math.fsum(values) / len(values)


def _count(value: Any) -> int | None:
    """``value`` as a token count when it is one (an integer in [0, 2**53]), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    count = int(value)
    return count if 0 <= count <= MAX_USAGE_TOKENS else None


def _usage(usage: Any, prompt_bound: int, max_tokens: int) -> tuple[int, int]:
    """Prompt and completion tokens of a ``usage`` object; a missing or nonsense field counts as its worst case."""
    if not isinstance(usage, dict):
        logger.warning("response without token usage: counting the worst case (%d + %d tokens)", prompt_bound,
                       max_tokens)
        return prompt_bound, max_tokens
    out = []
    for name, bound in (("prompt_tokens", prompt_bound), ("completion_tokens", max_tokens)):
        count = _count(usage.get(name))
        if count is None:
            logger.warning("server reported nonsense usage %s=%s: counting its worst case, %d tokens", name,
                           _short(repr(usage.get(name)), 40), bound)
            count = bound
        out.append(count)
    return out[0], out[1]


def _short(err: Exception, limit: int = 200) -> str:
    text = str(err).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["ChatResult", "LLMClient", "LLMError", "LOOPBACK_PLACEHOLDER_KEY", "is_loopback", "parse_retry_after",
           "prompt_token_bound"]
