"""Prices: defaults, prefix matching of dated model names, user overrides and files."""

import json

import pytest

from mcbo.llm.pricing import DEFAULT_PRICES, Price, PriceTable


def test_cost_per_million_tokens():
    assert Price(0.15, 0.60).cost(1_000_000, 500_000) == pytest.approx(0.45)


def test_dated_model_names_use_the_longest_matching_entry():
    table = PriceTable()
    assert table.price("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.price("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert "llama-3-8b" not in table
    with pytest.raises(ValueError, match="no price known for model 'llama-3-8b'"):
        table.price("llama-3-8b")


def test_user_prices_override_defaults(tmp_path):
    table = PriceTable({"gpt-4o-mini": {"input": 1.0, "output": 2.0}, "local": (0, 0)})
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(1.0)
    assert table.cost("local", 10**6, 10**6) == 0.0
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-model": {"input": 3, "output": 4}}))
    assert PriceTable.from_file(path).price("my-model") == Price(3, 4)
    yaml_path = tmp_path / "prices.yaml"
    yaml_path.write_text("my-model: {input: 5, output: 6}\n")
    assert PriceTable.from_file(yaml_path, include_defaults=False).price("my-model") == Price(5, 6)
    assert PriceTable().with_price("x", 7, 8).price("x") == Price(7, 8)


@pytest.mark.parametrize("bad", [{"input": 1}, {"input": 1, "output": -2}, {"in": 1, "out": 2}, "cheap"])
def test_bad_prices_are_rejected(bad):
    with pytest.raises(ValueError):
        PriceTable({"m": bad})
