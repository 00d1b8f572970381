"""SQLite cache of LLM responses and of instruction scores.

Two tables:

* ``responses``: request key (SHA-256 of the canonical JSON of endpoint, model, messages and
  sampling settings) -> the response text, its token usage and, when the request asked for token
  log-probabilities, their mean (``NULL`` otherwise). A repeated request is answered from here
  without a call, for free. Files written before the ``mean_logprob`` column existed gain it
  (``ALTER TABLE``) when opened; their rows read back with ``mean_logprob = None``.
* ``scores``: ``(instruction, task, split, model, config)`` -> mean score and number of examples,
  where ``config`` fingerprints everything else that determines the score (prompt template,
  metric, example set). A repeated instruction is scored without any call.

Nothing secret is stored: API keys are not part of requests or keys. One connection is shared
by the threads of a process under a lock; ``":memory:"`` gives a throw-away cache.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL,
    mean_logprob REAL
);
CREATE TABLE IF NOT EXISTS scores (
    instruction TEXT NOT NULL,
    task TEXT NOT NULL,
    split TEXT NOT NULL,
    model TEXT NOT NULL,
    config TEXT NOT NULL,
    score REAL NOT NULL,
    n_examples INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (instruction, task, split, model, config)
);
"""


def request_key(payload: dict[str, Any]) -> str:
    """SHA-256 hex digest of the canonical JSON of a request description."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a ``responses`` table written by an older mcbo up to date: add the nullable ``mean_logprob``."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
    if "mean_logprob" in columns:
        return
    try:
        conn.execute("ALTER TABLE responses ADD COLUMN mean_logprob REAL")
    except sqlite3.OperationalError:  # another process migrated the file in the meantime
        columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
        if "mean_logprob" not in columns:
            raise


@dataclass(frozen=True)
class CachedResponse:
    """A stored response: its text, the usage of the call that produced it, and its mean token
    log-probability (``None`` when it was not asked for or not returned)."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    mean_logprob: float | None = None


class LLMCache:
    """Response and score cache in one SQLite file.

    Args:
        path: database file (created with its folder), or ``":memory:"``.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        _migrate(self._conn)
        self._conn.commit()
        self._lock = threading.Lock()
        self.response_hits = 0
        self.response_misses = 0
        self.score_hits = 0
        self.score_misses = 0

    # ------------------------------------------------------------- responses
    def get_response(self, key: str) -> CachedResponse | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT content, prompt_tokens, completion_tokens, mean_logprob FROM responses WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                self.response_misses += 1
                return None
            self.response_hits += 1
            return CachedResponse(row[0], int(row[1]), int(row[2]), None if row[3] is None else float(row[3]))

    def put_response(self, key: str, model: str, content: str, prompt_tokens: int, completion_tokens: int,
                     mean_logprob: float | None = None) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, content, prompt_tokens, completion_tokens, created, "
                "mean_logprob) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, model, content, int(prompt_tokens), int(completion_tokens), time.time(),
                 None if mean_logprob is None else float(mean_logprob)),
            )
            self._conn.commit()

    # ---------------------------------------------------------------- scores
    def get_score(self, instruction: str, task: str, split: str, model: str, config: str) -> tuple[float, int] | None:
        """``(score, n_examples)`` of a scored instruction, or ``None``."""
        with self._lock:
            row = self._conn.execute(
                "SELECT score, n_examples FROM scores WHERE instruction = ? AND task = ? AND split = ? "
                "AND model = ? AND config = ?", (instruction, task, split, model, config)
            ).fetchone()
            if row is None:
                self.score_misses += 1
                return None
            self.score_hits += 1
            return float(row[0]), int(row[1])

    def put_score(self, instruction: str, task: str, split: str, model: str, config: str, score: float,
                  n_examples: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (instruction, task, split, model, config, float(score), int(n_examples), time.time()),
            )
            self._conn.commit()

    # ------------------------------------------------------------------ misc
    def counts(self) -> dict[str, int]:
        """Stored rows and this session's hits and misses."""
        with self._lock:
            n_resp = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            n_scores = self._conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        return {"responses": int(n_resp), "scores": int(n_scores), "response_hits": self.response_hits,
                "response_misses": self.response_misses, "score_hits": self.score_hits,
                "score_misses": self.score_misses}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "LLMCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CachedResponse", "LLMCache", "request_key"]
