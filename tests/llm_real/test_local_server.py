"""Starting and stopping llama.cpp's server (real process, real model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from mcbo.llm.local_server import DEFAULT_MODEL_ALIAS, LocalServer, LocalServerError, free_port, stop_pid
from tests.llm_real.conftest import model_or_skip


def _models(base_url: str) -> list[str]:
    with urllib.request.urlopen(f"{base_url}/models", timeout=10) as reply:
        return [m["id"] for m in json.loads(reply.read())["data"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_session_server_lists_its_model(llm_server):
    assert _models(llm_server.base_url) == [DEFAULT_MODEL_ALIAS]
    assert llm_server.base_url.startswith("http://127.0.0.1:")


def test_start_and_stop_by_pid(tmp_path):
    model = model_or_skip()
    with LocalServer(model, log_path=tmp_path / "log") as server:
        pid = server.pid
        assert pid is not None and _alive(pid)
        assert _models(server.base_url) == [DEFAULT_MODEL_ALIAS]
    assert server.pid is None
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.base_url}/models", timeout=2)


def test_command_line_start_stop_with_pid_file(tmp_path):
    model = model_or_skip()
    pid_file = tmp_path / "server.pid"
    cmd = [sys.executable, "-m", "mcbo.llm.local_server"]
    started = subprocess.run([*cmd, "start", "--pid-file", str(pid_file), "--model", str(model),
                              "--log-file", str(tmp_path / "log")], capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr
    base_url = started.stdout.strip()
    pid = int(pid_file.read_text())
    try:
        assert _models(base_url) == [DEFAULT_MODEL_ALIAS]
        again = subprocess.run([*cmd, "start", "--pid-file", str(pid_file)], capture_output=True, text=True,
                               timeout=60)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = subprocess.run([*cmd, "stop", "--pid-file", str(pid_file)], capture_output=True, text=True,
                                 timeout=60)
    assert stopped.returncode == 0 and not pid_file.exists()
    for _ in range(50):  # the detached server is reaped by init once it exits
        if not _alive(pid):
            break
        time.sleep(0.1)
    assert not _alive(pid)


def test_stop_pid_leaves_other_processes_alone():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert stop_pid(sleeper.pid) is False  # not a llama.cpp server
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_startup_failure_reports_the_log(tmp_path):
    model_or_skip()
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF but not really")
    server = LocalServer(bad, port=free_port(), log_path=tmp_path / "log", startup_timeout=60)
    with pytest.raises(LocalServerError, match="exited with status"):
        server.start()
    assert server.pid is None
