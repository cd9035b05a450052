"""Fixtures: the fake Messages API, settings pointed at it, and a realistic research memory."""

import copy
import functools
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from research_assets.core.assessor import assess
from research_assets.core.data import DatasetInfo
from research_assets.core.designer import DesignRequest, OfflineDesigner
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.llm.config import LLMSettings
from tests.llm.fake_anthropic import FakeAnthropic

KEY = "sk-ant-test-SECRET-0123456789abcdef"


def _ds(symbol: str, tf: str, rows: int, start: str, end: str) -> DatasetInfo:
    return DatasetInfo(
        symbol,
        tf,
        Path(f"/data/{symbol}_{tf}.parquet"),
        rows,
        pd.Timestamp(start, tz="UTC"),
        pd.Timestamp(end, tz="UTC"),
    )


DATASETS = [
    _ds("EURUSD", "1h", 6225, "2017-01-01", "2017-12-29"),
    _ds("BTCUSD", "1h", 20111, "2017-07-01", "2019-10-17"),
    _ds("BTCUSD", "1d", 1770, "2014-12-01", "2019-10-17"),
    _ds("AAPL", "1d", 3270, "2000-03-01", "2013-03-01"),
    _ds("MSFT", "1d", 3270, "2000-03-01", "2013-03-01"),
    _ds("IBM", "1d", 3270, "2000-03-01", "2013-03-01"),
    _ds("GOOG", "1d", 2148, "2004-08-19", "2013-03-01"),
    _ds("SP500", "1d", 5031, "1999-01-04", "2018-12-31"),
    _ds("NASDAQ", "1d", 5031, "1999-01-04", "2018-12-31"),
]


def example_spec_dict() -> dict[str, Any]:
    """A valid spec as Claude would send it (no backtest section)."""
    d = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    d.pop("backtest")
    d["name"] = "claude_rsi_sma_eurusd"
    return copy.deepcopy(d)


def _stats(i: int) -> dict[str, float]:
    sharpe = -0.6 + 0.17 * i
    ret = round(4.0 * sharpe + 1.5, 4)
    return {
        "Return [%]": ret,
        "Buy & Hold Return [%]": 11.2,
        "Sharpe Ratio": round(sharpe, 4),
        "Buy & Hold Sharpe Ratio": 0.85,
        "Excess Sharpe": round(sharpe - 0.85, 4),
        "Excess Return [%]": round(ret - 11.2, 4),
        "Beta": round(0.9 - 0.04 * i, 4),
        "Alpha [%]": round(-2.0 + 0.6 * i, 4),
        "Probabilistic Sharpe Ratio": round(min(0.999, 0.4 + 0.03 * i), 4),
        "Deflated Sharpe Ratio": round(min(0.99, 0.2 + 0.04 * i), 4),
        "p-value": round(max(0.001, 0.5 - 0.025 * i), 4),
        "Sortino Ratio": round(1.4 * sharpe, 4),
        "Calmar Ratio": round(0.8 * sharpe, 4),
        "Max. Drawdown [%]": -round(8 + 1.3 * (i % 7), 4),
        "Win Rate [%]": round(44 + 0.9 * i, 4),
        "Profit Factor": round(0.9 + 0.05 * i, 4),
        "# Trades": 30 + 7 * i,
        "Exposure Time [%]": 35.5 + i,
    }


@functools.lru_cache(maxsize=4)
def realistic_memory(n: int = 20) -> ResearchMemory:
    """``n`` researches as the system would record them: offline-designed specs, a mix of
    completed (with rule-based assessments), gate-rejected and failed outcomes. Cached:
    callers must not change it."""
    records: list[ResearchRecord] = []
    designer = OfflineDesigner()
    for i in range(n):
        memory = ResearchMemory(records)
        spec = designer.design(DesignRequest(f"r{i:03d}", seed=i), memory, DATASETS).spec
        lift = round(-0.02 + 0.003 * i, 4)
        training = {
            "test_accuracy": 0.44 + 0.006 * i,
            "test_loss": 0.74 - 0.004 * i,
            "loss_decrease": 0.31,
            "f1": 0.41 + 0.005 * i,
            "baseline_accuracy": round(0.46 + 0.003 * i, 4),
            "accuracy_lift": lift,
            "loss_ratio": round(1.02 - 0.004 * i, 4),
        }
        kind = i % 4
        if kind == 0:
            records.append(
                ResearchRecord(
                    f"r{i:03d}",
                    "rejected",
                    created_at=1_700_000_000 + i,
                    spec=spec,
                    rejected_by="training_gate",
                    rejection_reason="no_accuracy_lift",
                    gate_description=f"accuracy lift {lift:.4g} < 0 (no_accuracy_lift)",
                    training=training,
                )
            )
        elif kind == 1:
            stats = _stats(i)
            records.append(
                ResearchRecord(
                    f"r{i:03d}",
                    "rejected",
                    created_at=1_700_000_000 + i,
                    spec=spec,
                    rejected_by="backtest_gate",
                    rejection_reason="no_edge_over_benchmark",
                    gate_description=(
                        f"excess Sharpe {stats['Excess Sharpe']:.4g} <= 0 "
                        "(no_edge_over_benchmark); "
                        f"p-value {stats['p-value']:.4g} > 0.05 (no_edge_over_random)"
                    ),
                    training=training,
                    backtest=stats,
                )
            )
        elif kind == 2 and i % 8 == 6:
            records.append(
                ResearchRecord(f"r{i:03d}", "failed", created_at=1_700_000_000 + i, spec=spec)
            )
        else:
            stats = _stats(i)
            a = assess(
                spec,
                training,
                stats,
                {
                    f"{s}/{tf}": stats
                    for s in spec.training_data.symbols
                    for tf in spec.training_data.timeframes
                },
            )
            records.append(
                ResearchRecord(
                    f"r{i:03d}",
                    "completed",
                    created_at=1_700_000_000 + i,
                    spec=spec,
                    training=training,
                    backtest=stats,
                    verdict=a.verdict,
                    suggestions=tuple(a.suggestions),
                )
            )
    return ResearchMemory(records)


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def settings(fake: FakeAnthropic) -> LLMSettings:
    """Small timeouts and retry waits, so the error tests stay fast."""
    return LLMSettings(
        api_key=KEY,
        base_url=fake.url,
        model="claude-haiku-5-5",
        max_retries=2,
        timeout_s=2.0,
        max_retry_wait_s=0.05,
        max_turns=8,
    )
