"""Prices, costs and usage totals."""

import logging
import typing

import anthropic
import pytest

from research_assets.llm.pricing import (
    DEFAULT_MODEL,
    FALLBACK_PRICE,
    PRICES,
    UsageTotals,
    cost_usd,
    empty_usage,
    price_for,
)


def _sdk_models() -> set[str]:
    literal = typing.get_args(anthropic.types.Model)[0]
    return set(typing.get_args(literal))


def test_default_model_is_a_current_haiku_known_to_the_sdk():
    assert DEFAULT_MODEL in _sdk_models()
    assert "haiku" in DEFAULT_MODEL
    cheapest = min(PRICES.values(), key=lambda p: p.input + p.output)
    assert PRICES[DEFAULT_MODEL] == cheapest


def test_priced_models_need_not_be_in_the_sdk_list(caplog):
    """The SDK's model list changes with its releases (2.17 dropped claude-sonnet-4-5); a priced
    model it no longer lists is still priced from the table, never at the fallback rate."""
    caplog.set_level(logging.WARNING)
    usage = {"input_tokens": 50_000, "output_tokens": 0}  # below every long-prompt tier
    for model, price in PRICES.items():
        assert cost_usd(model, usage) == pytest.approx(price.input * 0.05)
    assert "no price for model" not in caplog.text


def test_cost_of_one_request():
    usage = {
        "input_tokens": 50_000,
        "output_tokens": 10_000,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert cost_usd("claude-haiku-5-5", usage) == pytest.approx(0.005 + 0.005)
    assert cost_usd("claude-sonnet-5-5", usage) == pytest.approx(0.1 + 0.1)
    cached = {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 80_000,
        "cache_read_input_tokens": 20_000,
    }
    assert cost_usd("claude-haiku-5-5", cached) == pytest.approx(
        (80_000 * 0.125 + 20_000 * 0.01) / 1e6
    )


def test_long_prompts_cost_more_on_haiku_5_5():
    short = {"input_tokens": 100_000, "output_tokens": 1000}
    long = {"input_tokens": 60_000, "cache_read_input_tokens": 40_001, "output_tokens": 1000}
    assert cost_usd("claude-haiku-5-5", short) == pytest.approx((100_000 * 0.1 + 500) / 1e6)
    assert cost_usd("claude-haiku-5-5", long) == pytest.approx(
        (60_000 * 0.5 + 40_001 * 0.05 + 1000 * 2.5) / 1e6
    )


def test_dated_ids_and_missing_fields():
    assert price_for("claude-haiku-4-5-20251001") == PRICES["claude-haiku-4-5"]
    assert cost_usd("claude-haiku-4-5", {"input_tokens": 1000, "output_tokens": None}) == (
        pytest.approx(0.001)
    )


def test_unknown_model_is_priced_at_the_dearest_rate(caplog):
    caplog.set_level(logging.WARNING)
    usage = {"input_tokens": 1000, "output_tokens": 1000}
    cost = cost_usd("claude-future-9", usage)
    assert cost == pytest.approx((1000 * FALLBACK_PRICE.input + 1000 * FALLBACK_PRICE.output) / 1e6)
    assert cost >= max(cost_usd(m, usage) for m in PRICES)
    assert "claude-future-9" in caplog.text
    assert price_for("claude-future-9") is None


def test_usage_totals_sum_turns():
    totals = UsageTotals(model="claude-haiku-5-5")
    totals.add(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 0,
        }
    )
    totals.add({"input_tokens": 1, "output_tokens": 2, "cache_read_input_tokens": 7})
    d = totals.to_dict()
    assert d == {
        "input_tokens": 11,
        "output_tokens": 7,
        "cache_creation_input_tokens": 3,
        "cache_read_input_tokens": 7,
        "model": "claude-haiku-5-5",
        "cost_usd": pytest.approx((11 * 0.1 + 7 * 0.5 + 3 * 0.125 + 7 * 0.01) / 1e6),
        "turns": 2,
    }
    assert empty_usage("offline")["turns"] == 0
