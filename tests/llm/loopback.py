"""A loopback OpenAI-compatible chat-completions server for the tests (127.0.0.1, ephemeral port).

It answers ``POST /v1/chat/completions`` deterministically from the prompt, reports token usage
(one token per whitespace-separated word, plus 4 per message), records every request (path,
headers, JSON body), and plays scripted failures on the next requests: an HTTP status with headers
(429 with ``Retry-After``, 500, 400, ...) or a delay before answering (client-side timeouts).

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
        self._script: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "body": body,
                                            "headers": {k.lower(): v for k, v in self.headers.items()}})
                    action = server._script.popleft() if server._script else None
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                if action is not None and action[0] == "status":
                    code, headers = action[1], (action[2] if len(action) > 2 else {})
                    return self._json(code, {"error": {"message": f"scripted {code}", "type": "server_error",
                                                       "code": code}}, headers)
                if action is not None and action[0] == "delay":
                    time.sleep(action[1])
                content = server.responder(body)
                prompt_tokens = sum(len(m["content"].split()) + 4 for m in body["messages"])
                completion_tokens = max(1, len(content.split()))
                self._json(200, {
                    "id": f"chatcmpl-{len(server.requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "toy"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                              "total_tokens": prompt_tokens + completion_tokens},
                })

            def _json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
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
        """Queue actions for the next requests: ``("status", code, headers)`` or ``("delay", seconds)``."""
        with self._lock:
            self._script.extend(actions)

    @property
    def n_chat_requests(self) -> int:
        return sum(r["path"] == "/v1/chat/completions" for r in self.requests)

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
