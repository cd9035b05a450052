"""The keywords of a researcher's brief: the symbols, timeframes, indicators and style it names."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from research_assets.core.indicator_catalog import CATALOG

if TYPE_CHECKING:
    from research_assets.core.data import DatasetInfo

_BRIEF_SYMBOLS = {
    "bitcoin": "BTC",
    "btc": "BTC",
    "euro": "EURUSD",
    "eur": "EURUSD",
    "apple": "AAPL",
    "microsoft": "MSFT",
    "google": "GOOG",
    "alphabet": "GOOG",
    "s&p": "SP500",
    "s&p 500": "SP500",
}
_BRIEF_TIMEFRAMES = {"hourly": "1h", "daily": "1d", "weekly": "1w", "intraday": "1h"}
_BRIEF_INDICATORS = {
    "bollinger": "bbands",
    "stochastic": "stoch",
    "williams": "willr",
    "moving average": "sma",
    "money flow": "mfi",
    "true range": "atr",
    "directional": "adx",
    "rate of change": "roc",
}
_BRIEF_STYLES = (
    ("mean reversion", "mean_reversion"),
    ("mean-reversion", "mean_reversion"),
    ("reversion", "mean_reversion"),
    ("oversold", "mean_reversion"),
    ("overbought", "mean_reversion"),
    ("volatility", "volatility"),
    ("breakout", "volatility"),
    ("trend", "trend"),
    ("momentum", "trend"),
)


@dataclass(frozen=True)
class _Brief:
    """What a brief's keywords ask for (empty when no brief or no keyword matched)."""

    symbols: tuple[str, ...] = ()
    timeframes: tuple[str, ...] = ()
    indicators: tuple[str, ...] = ()
    style: str | None = None

    @classmethod
    def parse(cls, text: str | None, datasets: Sequence["DatasetInfo"]) -> "_Brief":
        if not text:
            return cls()
        low = text.lower()

        def has(word: str) -> bool:
            return re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", low) is not None

        available = sorted({d.symbol for d in datasets})
        wanted: set[str] = {s for s in available if has(s.lower())}
        for alias, target in _BRIEF_SYMBOLS.items():
            if has(alias):
                wanted |= {s for s in available if s.upper().startswith(target)}
        timeframes = {d.timeframe for d in datasets if has(d.timeframe)}
        timeframes |= {tf for w, tf in _BRIEF_TIMEFRAMES.items() if has(w)}
        indicators = {k for k in CATALOG if has(k)}
        indicators |= {k for w, k in _BRIEF_INDICATORS.items() if has(w)}
        style = next((s for w, s in _BRIEF_STYLES if has(w)), None)
        return cls(
            tuple(sorted(wanted)), tuple(sorted(timeframes)), tuple(sorted(indicators)), style
        )

    def __bool__(self) -> bool:
        return bool(self.symbols or self.timeframes or self.indicators or self.style)

    def describe(self) -> str:
        parts = [", ".join(x) for x in (self.symbols, self.timeframes, self.indicators) if x]
        if self.style:
            parts.append(self.style.replace("_", " "))
        return "; ".join(parts)
