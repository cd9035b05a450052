"""The indicators a strategy may use: parameters, bounds and outputs.

This table is the one source of truth for spec validation, for the computation in
``indicators.py`` and for what designers are told is available. Outputs that are in price units
(moving averages, bands, MACD, ATR) are expressed relative to the close (``x / close - 1`` or
``x / close``), so a fuzzy set means the same on EUR/USD at 1.1 and BTC/USD at 10,000.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Param:
    default: int | float
    minimum: int | float
    maximum: int | float
    kind: type = int


@dataclass(frozen=True)
class IndicatorInfo:
    name: str
    description: str
    params: dict[str, Param]
    outputs: tuple[str, ...]
    default_output: str
    # A typical range of each output, for designers choosing fuzzy-set parameters.
    typical_range: dict[str, tuple[float, float]] = field(default_factory=dict)

    def lookback(self, params: dict[str, float]) -> int:
        """Bars an indicator needs before its first valid value (a safe upper bound)."""
        periods = [int(v) for k, v in params.items() if k.endswith("period")]
        return 3 * max(periods, default=1)


def _period(default: int, maximum: int = 200) -> Param:
    return Param(default, 2, maximum, int)


CATALOG: dict[str, IndicatorInfo] = {
    info.name: info
    for info in [
        IndicatorInfo(
            "rsi",
            "Relative Strength Index, 0 to 100",
            {"period": _period(14)},
            ("value",),
            "value",
            {"value": (0, 100)},
        ),
        IndicatorInfo(
            "macd",
            "MACD line, signal and histogram, each divided by the close",
            {"fast_period": _period(12), "slow_period": _period(26), "signal_period": _period(9)},
            ("macd", "signal", "hist"),
            "hist",
            {"macd": (-0.05, 0.05), "signal": (-0.05, 0.05), "hist": (-0.01, 0.01)},
        ),
        IndicatorInfo(
            "bbands",
            "Bollinger Bands: percent_b (0 at the lower band, 1 at the upper), width "
            "((upper - lower) / middle), and each band as band / close - 1",
            {"period": _period(20), "nbdev": Param(2.0, 0.5, 5.0, float)},
            ("percent_b", "width", "upper", "middle", "lower"),
            "percent_b",
            {"percent_b": (-0.5, 1.5), "width": (0, 0.3)},
        ),
        IndicatorInfo(
            "atr",
            "Average True Range divided by the close (volatility as a fraction of price)",
            {"period": _period(14)},
            ("value",),
            "value",
            {"value": (0, 0.1)},
        ),
        IndicatorInfo(
            "sma",
            "Distance of the close from its simple moving average: close / sma - 1",
            {"period": _period(20, 400)},
            ("value",),
            "value",
            {"value": (-0.2, 0.2)},
        ),
        IndicatorInfo(
            "ema",
            "Distance of the close from its exponential moving average: close / ema - 1",
            {"period": _period(20, 400)},
            ("value",),
            "value",
            {"value": (-0.2, 0.2)},
        ),
        IndicatorInfo(
            "stoch",
            "Slow stochastic oscillator %K and %D, 0 to 100",
            {
                "fastk_period": _period(14),
                "slowk_period": Param(3, 1, 50, int),
                "slowd_period": Param(3, 1, 50, int),
            },
            ("k", "d"),
            "k",
            {"k": (0, 100), "d": (0, 100)},
        ),
        IndicatorInfo(
            "adx",
            "Average Directional Index (trend strength), 0 to 100",
            {"period": _period(14)},
            ("value",),
            "value",
            {"value": (0, 60)},
        ),
        IndicatorInfo(
            "cci",
            "Commodity Channel Index, mostly -200 to 200",
            {"period": _period(20)},
            ("value",),
            "value",
            {"value": (-200, 200)},
        ),
        IndicatorInfo(
            "willr",
            "Williams %R, -100 to 0",
            {"period": _period(14)},
            ("value",),
            "value",
            {"value": (-100, 0)},
        ),
        IndicatorInfo(
            "roc",
            "Rate of change over the period, in percent",
            {"period": _period(10)},
            ("value",),
            "value",
            {"value": (-10, 10)},
        ),
        IndicatorInfo(
            "mfi",
            "Money Flow Index (volume-weighted RSI), 0 to 100",
            {"period": _period(14)},
            ("value",),
            "value",
            {"value": (0, 100)},
        ),
    ]
}


def describe_catalog() -> list[dict[str, object]]:
    """The catalog as plain data, for designers and the CLI."""
    return [
        {
            "type": info.name,
            "description": info.description,
            "params": {
                name: {
                    "default": p.default,
                    "min": p.minimum,
                    "max": p.maximum,
                    "type": p.kind.__name__,
                }
                for name, p in info.params.items()
            },
            "outputs": list(info.outputs),
            "default_output": info.default_output,
            "typical_range": {k: list(v) for k, v in info.typical_range.items()},
        }
        for info in CATALOG.values()
    ]
