"""Model prices and token accounting: USD per million tokens, per model.

``DEFAULT_MODEL`` is Claude Haiku 5.5 (``claude-haiku-5-5`` in the installed SDK's
``anthropic.types.Model``), the cheapest current model: $0.10 input, $0.50 output, $0.125
5-minute cache write and $0.01 cache read per million tokens, for prompts up to 100,000 tokens.
A design prompt is well under that; above it (input + cache writes + cache reads of one request)
Haiku 5.5 bills every token of that request at five times the rate, which ``cost_usd`` applies.

Cache writes are priced at the 5-minute rate: the requests here only use 5-minute
``cache_control`` breakpoints. Other surcharges (the US-only ``inference_geo``, long context on
Sonnet 4.5 with the 1M-context beta) do not apply to these requests and are not modelled.

Prices are from the Claude pricing page (October 2026). A model missing from ``PRICES`` (a new
one set through ``RESEARCH_LLM_MODEL``) is priced at the dearest rates in the table,
``FALLBACK_PRICE``, and a warning is logged once: the daily budget may then over-count but never
under-counts. Add the model to ``PRICES`` to price it exactly.
"""

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Price:
    """USD per million tokens; ``long_prompt`` applies to requests above ``long_threshold``."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    long_threshold: int | None = None
    long_prompt: "Price | None" = None


def _p(i: float, o: float, w: float, r: float) -> Price:
    return Price(input=i, output=o, cache_write=w, cache_read=r)


DEFAULT_MODEL = "claude-haiku-5-5"

_HAIKU_4_5 = _p(1.0, 5.0, 1.25, 0.10)
_SONNET_4 = _p(3.0, 15.0, 3.75, 0.30)
_OPUS_4_5 = _p(5.0, 25.0, 6.25, 0.50)

PRICES: dict[str, Price] = {
    "claude-haiku-5-5": Price(
        0.10, 0.50, 0.125, 0.01, long_threshold=100_000, long_prompt=_p(0.50, 2.50, 0.625, 0.05)
    ),
    "claude-haiku-4-5": _HAIKU_4_5,
    "claude-sonnet-5-5": _p(2.0, 10.0, 2.50, 0.10),
    "claude-sonnet-5": _p(2.0, 10.0, 2.50, 0.20),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-opus-5-5": _p(4.0, 20.0, 5.0, 0.20),
    "claude-opus-5": _OPUS_4_5,
    "claude-opus-4-8": _OPUS_4_5,
    "claude-opus-4-7": _OPUS_4_5,
    "claude-opus-4-6": _OPUS_4_5,
    "claude-opus-4-5": _OPUS_4_5,
    "claude-fable-5-1": _p(10.0, 50.0, 12.50, 0.25),
    "claude-mythos-5-1": _p(10.0, 50.0, 12.50, 0.25),
    "claude-fable-5": _p(10.0, 50.0, 12.50, 1.0),
    "claude-mythos-5": _p(10.0, 50.0, 12.50, 1.0),
}

# The dearest rate of each kind in the table: what an unknown model is charged.
FALLBACK_PRICE = Price(
    input=max(p.input for p in PRICES.values()),
    output=max(p.output for p in PRICES.values()),
    cache_write=max(p.cache_write for p in PRICES.values()),
    cache_read=max(p.cache_read for p in PRICES.values()),
)

_DATED = re.compile(r"^(?P<alias>.+)-\d{8}$")
_warned: set[str] = set()

USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def price_for(model: str) -> Price | None:
    """The price of ``model`` (a dated ID such as ``claude-haiku-4-5-20251001`` is priced as its
    alias), or None when it is not in ``PRICES``."""
    if model in PRICES:
        return PRICES[model]
    m = _DATED.match(model)
    return PRICES.get(m.group("alias")) if m else None


def known_models() -> list[str]:
    return sorted(PRICES)


def _tokens(usage: Mapping[str, Any] | Any, key: str) -> int:
    """A token count from a usage mapping or an SDK ``Usage``; missing or null counts as 0."""
    raw = usage.get(key) if isinstance(usage, Mapping) else getattr(usage, key, None)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return 0
    return max(0, int(raw))


def cost_usd(model: str, usage: Mapping[str, Any] | Any) -> float:
    """Dollars for one request's ``usage`` (``input_tokens``, ``output_tokens``,
    ``cache_creation_input_tokens``, ``cache_read_input_tokens``; a mapping or an SDK ``Usage``).

    Price one request at a time: a long-prompt tier depends on that request's own prompt size.
    """
    price = price_for(model)
    if price is None:
        price = FALLBACK_PRICE
        if model not in _warned:
            _warned.add(model)
            log.warning(
                "no price for model %r: its cost is counted at the dearest known rates "
                "($%s/$%s per million input/output tokens); known models: %s",
                model,
                price.input,
                price.output,
                ", ".join(known_models()),
            )
    n = {key: _tokens(usage, key) for key in USAGE_KEYS}
    prompt = n["input_tokens"] + n["cache_creation_input_tokens"] + n["cache_read_input_tokens"]
    if price.long_prompt is not None and price.long_threshold and prompt > price.long_threshold:
        price = price.long_prompt
    total = (
        n["input_tokens"] * price.input
        + n["output_tokens"] * price.output
        + n["cache_creation_input_tokens"] * price.cache_write
        + n["cache_read_input_tokens"] * price.cache_read
    )
    return total / 1_000_000


@dataclass
class UsageTotals:
    """Tokens and dollars summed over the requests (turns) of one design or assessment."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0
    turns: int = 0

    def add(self, usage: Mapping[str, Any] | Any) -> None:
        """Count one request's usage (priced on its own, see ``cost_usd``)."""
        self.input_tokens += _tokens(usage, "input_tokens")
        self.output_tokens += _tokens(usage, "output_tokens")
        self.cache_creation_input_tokens += _tokens(usage, "cache_creation_input_tokens")
        self.cache_read_input_tokens += _tokens(usage, "cache_read_input_tokens")
        self.cost_usd += cost_usd(self.model, usage)
        self.turns += 1

    def to_dict(self) -> dict[str, Any]:
        """The flat dict stored in ``Design.usage`` and in run metadata."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "model": self.model,
            "cost_usd": self.cost_usd,
            "turns": self.turns,
        }


def empty_usage(model: str) -> dict[str, Any]:
    """A usage dict for work that called no model (the offline designer and assessor)."""
    return UsageTotals(model=model).to_dict()
