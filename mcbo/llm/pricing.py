"""Token prices of hosted LLMs and the cost of a call.

Prices are US dollars per million tokens (input = prompt, output = completion). The defaults are
OpenAI's published standard-tier list prices as of mid 2025 (openai.com/api/pricing); providers
change them, and other OpenAI-compatible services price differently, so every run can override
them: with a mapping, a JSON/YAML file ``{model: {input: ..., output: ...}}``, or on the command line.
A model is matched exactly, else by the longest default/user entry that prefixes it (so
``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Price:
    """USD per million input (prompt) and output (completion) tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        for name in ("input_per_mtok", "output_per_mtok"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"price {name} must be a finite number >= 0, got {value!r}")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD cost of ``prompt_tokens`` in and ``completion_tokens`` out."""
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


#: Standard-tier list prices (USD / 1M tokens), OpenAI, mid 2025. Override for other providers or dates.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "o4-mini": Price(1.10, 4.40),
    "o3": Price(2.00, 8.00),
}


def _as_price(model: str, value: Any) -> Price:
    if isinstance(value, Price):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"input", "output"}
        if unknown or not {"input", "output"} <= set(value):
            raise ValueError(f"price of model {model!r}: expected keys 'input' and 'output' (USD per 1M tokens), "
                             f"got {sorted(value)}")
        return Price(value["input"], value["output"])
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return Price(value[0], value[1])
    raise ValueError(f"price of model {model!r}: expected {{input: USD/1M, output: USD/1M}}, got {value!r}")


class PriceTable:
    """Model name -> :class:`Price`, defaults overridden by the user's entries.

    Args:
        prices: user prices, ``{model: Price | {"input": x, "output": y} | (x, y)}``.
        include_defaults: start from :data:`DEFAULT_PRICES`.
    """

    def __init__(self, prices: Mapping[str, Any] | None = None, include_defaults: bool = True) -> None:
        self._prices: dict[str, Price] = dict(DEFAULT_PRICES) if include_defaults else {}
        for model, value in (prices or {}).items():
            if not isinstance(model, str) or not model:
                raise ValueError(f"price table keys must be model names, got {model!r}")
            self._prices[model] = _as_price(model, value)

    @classmethod
    def from_file(cls, path: str | Path, include_defaults: bool = True) -> "PriceTable":
        """Read ``{model: {input: USD/1M, output: USD/1M}}`` from a JSON or YAML file."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"price file {str(path)!r} does not exist")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"price file {str(path)!r} must hold a mapping of model -> prices")
        return cls(data, include_defaults=include_defaults)

    def with_price(self, model: str, input_per_mtok: float, output_per_mtok: float) -> "PriceTable":
        """A copy with ``model`` priced as given."""
        out = PriceTable(include_defaults=False)
        out._prices = {**self._prices, model: Price(input_per_mtok, output_per_mtok)}
        return out

    def get(self, model: str) -> Price | None:
        """The price of ``model`` (exact, else longest prefix match), or ``None`` when unknown."""
        if model in self._prices:
            return self._prices[model]
        matches = [name for name in self._prices if model.startswith(name)]
        return self._prices[max(matches, key=len)] if matches else None

    def price(self, model: str) -> Price:
        """The price of ``model``; ``ValueError`` naming the model when unknown."""
        found = self.get(model)
        if found is None:
            raise ValueError(f"no price known for model {model!r}; give one (USD per 1M input/output tokens) with "
                             f"a price table entry, a price file, or --price-in/--price-out; known: "
                             f"{sorted(self._prices)}")
        return found

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD cost of one call of ``model``."""
        return self.price(model).cost(prompt_tokens, completion_tokens)

    def __contains__(self, model: str) -> bool:
        return self.get(model) is not None


__all__ = ["DEFAULT_PRICES", "Price", "PriceTable"]
