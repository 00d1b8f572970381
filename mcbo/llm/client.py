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
* **Hard budget** (:class:`~mcbo.llm.budget.Budget`): each call reserves its worst case first (prompt
  tokens bounded by the prompt's UTF-8 bytes plus a per-message allowance, completion tokens by
  ``max_tokens``) and is refused with :class:`~mcbo.llm.budget.BudgetExceeded` if that could pass a limit.
* **Response cache** (:class:`~mcbo.llm.cache.LLMCache`): identical requests are answered from SQLite.

The API key is read from the environment variable the user names (default ``OPENAI_API_KEY``) and
handed to the SDK only; it is never logged, stored in the cache, or shown in ``repr``. For a
loopback ``base_url`` (a local server: 127.0.0.0/8, ``localhost``, ``::1``) a missing key is replaced by
a placeholder, since local servers do not check it.
"""

from __future__ import annotations

import email.utils
import ipaddress
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
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
        prompt_tokens, completion_tokens: usage reported by the server (or stored with the cached answer).
        cost_usd: what this call cost (0 for a cache hit; ``nan`` when the model has no price).
        cached: answered from the cache, without a call.
        attempts: HTTP attempts made (0 for a cache hit).
        seconds: wall-clock time including retries and rate-limit waits.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool
    attempts: int
    seconds: float


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
    ) -> ChatResult:
        """One chat completion of ``messages`` (``[{"role": ..., "content": ...}, ...]``).

        Raises:
            BudgetExceeded: the call could pass a budget limit (nothing was sent).
            LLMError: a non-retryable error, or every retry failed.
        """
        messages = _check_messages(messages)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        start = time.perf_counter()
        payload = {"base_url": self.base_url or "default", "model": self.model, "messages": messages,
                   "max_tokens": max_tokens, "temperature": float(temperature), "seed": seed,
                   "stop": list(stop) if stop else None}
        key = request_key(payload)
        if use_cache and self.cache is not None:
            hit = self.cache.get_response(key)
            if hit is not None:
                result = ChatResult(hit.content, hit.prompt_tokens, hit.completion_tokens, 0.0, True, 0,
                                    time.perf_counter() - start)
                self._record(result)
                return result
        prompt_bound = prompt_token_bound(messages)
        usd_bound = self.price.cost(prompt_bound, max_tokens) if self.price is not None else 0.0
        reservation = self.budget.reserve(prompt_bound + max_tokens, usd_bound) if self.budget is not None else None
        try:
            response, attempts = self._send(messages, max_tokens, temperature, seed, stop, prompt_bound + max_tokens)
        except BaseException:
            if reservation is not None:
                self.budget.release(reservation)  # type: ignore[union-attr]
            raise
        text, pt, ct = _parse(response, prompt_bound, max_tokens)
        cost = self.price.cost(pt, ct) if self.price is not None else float("nan")
        self._settle(reservation, pt, ct, cost)
        if self.cache is not None:
            self.cache.put_response(key, self.model, text, pt, ct)
        result = ChatResult(text, pt, ct, cost, False, attempts, time.perf_counter() - start)
        self._record(result)
        return result

    def _settle(self, reservation: Reservation | None, pt: int, ct: int, cost: float) -> None:
        if self.budget is not None and reservation is not None:
            self.budget.commit(reservation, pt, ct, 0.0 if math.isnan(cost) else cost)

    def _send(self, messages: list[dict[str, str]], max_tokens: int, temperature: float, seed: int | None,
              stop: Sequence[str] | None, token_bound: int) -> tuple[Any, int]:
        """POST with retries; returns the SDK response and the number of attempts."""
        oa = self._openai
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": float(temperature),
                                  self.token_param: max_tokens}
        if seed is not None:
            kwargs["seed"] = int(seed)
        if stop:
            kwargs["stop"] = list(stop)
        attempt = 0
        while True:
            attempt += 1
            if self.rate_limiter is not None:
                self.rate_limiter.acquire(token_bound)
            try:
                return self._client.chat.completions.create(**kwargs), attempt
            except oa.APIStatusError as err:
                status = int(err.status_code)
                if status not in _RETRY_STATUS and status < 500:
                    raise LLMError(f"{self.model}: HTTP {status} from the server: {_short(err)}", status) from None
                headers = dict(err.response.headers) if err.response is not None else {}
                reason, wait = f"HTTP {status}", parse_retry_after(headers)
                last: Exception = err
            except oa.APIConnectionError as err:  # includes APITimeoutError
                reason = "timeout" if isinstance(err, oa.APITimeoutError) else f"connection error ({_short(err)})"
                wait, last, status = None, err, None
            if attempt > self.max_retries:
                raise LLMError(f"{self.model}: gave up after {attempt} attempts; last error: {reason}",
                               status) from last
            delay = self._delay(attempt, wait)
            logger.warning("%s: %s; retry %d/%d in %.2fs", self.model, reason, attempt, self.max_retries, delay)
            self.sleep(delay)

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
        row["model"] = self.model
        with self._lock:
            self._calls.append(row)

    def calls_table(self) -> "Any":
        """One row per :meth:`chat` (pandas DataFrame): tokens, cost, cached, attempts, seconds."""
        import pandas as pd

        with self._lock:
            rows = list(self._calls)
        columns = ["model", "prompt_tokens", "completion_tokens", "cost_usd", "cached", "attempts", "seconds"]
        return pd.DataFrame(rows, columns=columns)

    def usage(self) -> dict[str, Any]:
        """Totals over this client's calls: calls made, cache hits, attempts, tokens and dollars."""
        with self._lock:
            rows = list(self._calls)
        paid = [r for r in rows if not r["cached"]]
        costs = [r["cost_usd"] for r in paid]
        return {
            "model": self.model,
            "calls": len(paid),
            "cache_hits": len(rows) - len(paid),
            "attempts": sum(r["attempts"] for r in paid),
            "retries": sum(r["attempts"] - 1 for r in paid),
            "prompt_tokens": sum(r["prompt_tokens"] for r in paid),
            "completion_tokens": sum(r["completion_tokens"] for r in paid),
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


def _parse(response: Any, prompt_bound: int, max_tokens: int) -> tuple[str, int, int]:
    """Text and usage of a chat completion; without a usage field, the worst-case bounds are counted."""
    choices = getattr(response, "choices", None) or []
    if not choices:
        raise LLMError("the server returned no choices")
    text = choices[0].message.content or ""
    usage = getattr(response, "usage", None)
    if usage is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        logger.warning("response without token usage: counting the worst case (%d + %d tokens)", prompt_bound,
                       max_tokens)
        return text, prompt_bound, max_tokens
    return text, int(usage.prompt_tokens), int(usage.completion_tokens)


def _short(err: Exception, limit: int = 200) -> str:
    text = str(err).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["ChatResult", "LLMClient", "LLMError", "LOOPBACK_PLACEHOLDER_KEY", "is_loopback", "parse_retry_after",
           "prompt_token_bound"]
