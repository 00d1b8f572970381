"""A loopback OpenAI-compatible chat-completions server for the tests (127.0.0.1, ephemeral port).

It answers ``POST /v1/chat/completions`` deterministically from the prompt, reports token usage
(one token per whitespace-separated word, plus 4 per message), records every request (path,
headers, JSON body), and plays scripted faults on the next requests (:meth:`LoopbackLLM.script`), or
on every request (:attr:`LoopbackLLM.fault`):

* ``("status", code, headers)``: an HTTP error (429 with ``Retry-After``, 500, 400, ...);
* ``("delay", seconds)``: answer late (a client-side timeout; the answer is still billed);
* ``("usage", {...})``: answer, reporting this ``usage`` object instead of the true one (over- or
  negative usage, non-integer fields, a missing field);
* ``("body", code, text[, content_type])``: reply with this raw body (malformed JSON, an error
  object with HTTP 200, a completion without choices);
* ``("echo_key", code)``: an error body that echoes the request's API key;
* ``("reset",)``: complete the answer (billed), then drop the connection without replying.

Asked for ``logprobs`` *with* ``top_logprobs`` (as llama.cpp's server, which ignores ``logprobs``
alone), an answer carries ``choices[0].logprobs.content``: one entry per whitespace-separated word,
with the log-probabilities of :func:`toy_logprobs`.

:attr:`LoopbackLLM.billed` lists the ``(prompt_tokens, completion_tokens)`` an honest provider would
bill: the true usage of every answer the server produced, whether or not the client received it.

The default responder is a toy instruction follower for one :class:`InstructionTask`: prompted with
``Instruction: ...\\n\\nInput: ...\\nOutput:`` it gives the task's accepted answer with probability
``skill(instruction)`` (a deterministic hash decides per input), where ``skill`` is the share of the
task's ``keywords`` found in the instruction; asked to write an instruction from exemplars, it
picks one of ``instructions`` by a hash of the prompt and seed.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

from mcbo.llm.tasks import InstructionTask, normalize

_EVAL = re.compile(r"^Instruction: (?P<instruction>.*)\n\nInput: (?P<input>.*)\nOutput:$", re.DOTALL)


def unit_hash(*parts: object) -> float:
    """Deterministic uniform number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def toy_logprobs(content: str) -> list[float]:
    """Log-probabilities the server reports for ``content``: one per word, in (-2, 0], from a hash of the word."""
    return [-round(2 * unit_hash("logprob", i, word), 6) for i, word in enumerate(content.split() or [""])]


class ToyFollower:
    """Answers a task's inputs correctly with probability ``skill(instruction)``."""

    def __init__(self, task: InstructionTask, keywords: Sequence[str], instructions: Sequence[str] = ()) -> None:
        self.answers = {e.input: e.outputs[0] for split in task.splits.values() for e in split}
        self.keywords = [normalize(k) for k in keywords]
        self.instructions = list(instructions)

    def skill(self, instruction: str) -> float:
        words = set(normalize(instruction).split())
        return sum(k in words for k in self.keywords) / len(self.keywords)

    def __call__(self, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        match = _EVAL.match(prompt)
        if match:
            instruction, inp = match["instruction"], match["input"]
            if inp in self.answers and unit_hash(instruction, inp) < self.skill(instruction):
                return self.answers[inp]
            return "I am not sure."
        if self.instructions and "input-output pairs" in prompt:
            i = int(unit_hash(prompt, body.get("seed")) * len(self.instructions))
            return f"Instruction: {self.instructions[i]}\n"
        return "echo: " + " ".join(prompt.split()[:8])


class LoopbackLLM:
    """The server; use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, responder: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.responder = responder or (lambda body: "echo: " + body["messages"][-1]["content"][:40])
        self.requests: list[dict[str, Any]] = []
        #: True usage ``(prompt_tokens, completion_tokens)`` of every answer produced (what an honest provider bills).
        self.billed: list[tuple[int, int]] = []
        #: Fault played on every request when the script is empty (``None``: answer normally).
        self.fault: tuple[Any, ...] | None = None
        self._script: deque[tuple[Any, ...]] = deque()
        self._busy = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                with server._lock:
                    server._busy += 1
                try:
                    self._answer()
                finally:
                    with server._lock:
                        server._busy -= 1

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                    action = server._script.popleft() if server._script else server.fault
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                kind = action[0] if action is not None else None
                if kind == "status":
                    code, headers = action[1], (action[2] if len(action) > 2 else {})
                    return self._json(code, {"error": {"message": f"scripted {code}", "type": "server_error",
                                                       "code": code}}, headers)
                if kind == "echo_key":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    return self._json(action[1], {"error": {"message": f"Incorrect API key provided: {key}",
                                                            "type": "invalid_request_error"}})
                if kind == "body":
                    content_type = action[3] if len(action) > 3 else "application/json"
                    return self._send(action[1], action[2].encode(), content_type)
                if kind == "delay":
                    time.sleep(action[1])
                content = server.responder(body)
                prompt_tokens = sum(len(m["content"].split()) + 4 for m in body["messages"])
                completion_tokens = max(1, len(content.split()))
                with server._lock:
                    server.billed.append((prompt_tokens, completion_tokens))
                if kind == "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return None
                usage = action[1] if kind == "usage" else {
                    "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens}
                choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                          "finish_reason": "stop"}
                if body.get("logprobs") and body.get("top_logprobs"):
                    words = content.split() or [""]
                    choice["logprobs"] = {"content": [
                        {"token": w, "logprob": lp, "top_logprobs": [{"token": w, "logprob": lp}]}
                        for w, lp in zip(words, toy_logprobs(content))]}
                self._json(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "toy"), "choices": [choice], "usage": usage,
                })

            def _json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                self._send(code, json.dumps(payload).encode(), "application/json", headers)

            def _send(self, code: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, *actions: tuple[Any, ...]) -> None:
        """Queue faults (see the module doc; ``(None,)``: answer normally) for the next requests."""
        with self._lock:
            self._script.extend(actions)

    def clear_script(self) -> None:
        """Drop the faults still queued."""
        with self._lock:
            self._script.clear()

    @property
    def n_chat_requests(self) -> int:
        return sum(r["path"] == "/v1/chat/completions" for r in self.requests)

    @property
    def billed_tokens(self) -> int:
        """Tokens an honest provider bills for every answer produced so far."""
        with self._lock:
            return sum(p + c for p, c in self.billed)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being handled (late answers to timed-out clients are billed by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._busy == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError("the loopback server is still handling a request")

    def start(self) -> "LoopbackLLM":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LoopbackLLM":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
