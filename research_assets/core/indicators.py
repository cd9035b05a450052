"""Indicator columns for a strategy, computed with TA-Lib.

Every output of every indicator becomes a column ``"<indicator_id>.<output>"`` on the bars' index.
Outputs in price units are divided by the close as ``indicator_catalog.CATALOG`` describes, so a
fuzzy set means the same on EUR/USD at 1.1 and BTC/USD at 60,000. Warm-up bars are NaN. Indicators
only look back, so computing them on a whole series leaks nothing from later bars into earlier ones.

>>> import numpy as np, pandas as pd
>>> idx = pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC", name="timestamp")
>>> close = pd.Series(np.linspace(1.0, 1.6, 60), index=idx)
>>> bars = pd.DataFrame({"open": close, "high": close + 0.01, "low": close - 0.01,
...                      "close": close, "volume": 1.0})
>>> from research_assets.core.spec import IndicatorSpec
>>> frame = compute_indicators(bars, {"sma_5": IndicatorSpec(type="sma", period=5)})
>>> list(frame.columns), bool(frame["sma_5.value"].iloc[:4].isna().all())
(['sma_5.value'], True)
"""

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import talib

from research_assets.core.errors import SpecError
from research_assets.core.indicator_catalog import CATALOG
from research_assets.core.spec import IndicatorSpec

_Arrays = dict[str, np.ndarray]
_Params = dict[str, int | float]


def _ratio(num: np.ndarray, den: np.ndarray, fill: float) -> np.ndarray:
    """``num / den`` with ``fill`` where the denominator is 0 (flat prices), NaN kept."""
    out = np.full_like(num, fill)
    np.divide(num, den, out=out, where=den != 0)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def _rsi(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": talib.RSI(b["close"], timeperiod=p["period"])}


def _macd(b: _Arrays, p: _Params) -> _Arrays:
    macd, signal, hist = talib.MACD(
        b["close"],
        fastperiod=p["fast_period"],
        slowperiod=p["slow_period"],
        signalperiod=p["signal_period"],
    )
    close = b["close"]
    return {"macd": macd / close, "signal": signal / close, "hist": hist / close}


def _bbands(b: _Arrays, p: _Params) -> _Arrays:
    close = b["close"]
    upper, middle, lower = talib.BBANDS(
        close, timeperiod=p["period"], nbdevup=p["nbdev"], nbdevdn=p["nbdev"], matype=0
    )
    spread = upper - lower
    return {
        # A zero-width band (flat prices) puts the close at its middle.
        "percent_b": _ratio(close - lower, spread, 0.5),
        "width": _ratio(spread, middle, 0.0),
        "upper": upper / close - 1.0,
        "middle": middle / close - 1.0,
        "lower": lower / close - 1.0,
    }


def _atr(b: _Arrays, p: _Params) -> _Arrays:
    atr = talib.ATR(b["high"], b["low"], b["close"], timeperiod=p["period"])
    return {"value": atr / b["close"]}


def _sma(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": b["close"] / talib.SMA(b["close"], timeperiod=p["period"]) - 1.0}


def _ema(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": b["close"] / talib.EMA(b["close"], timeperiod=p["period"]) - 1.0}


def _stoch(b: _Arrays, p: _Params) -> _Arrays:
    k, d = talib.STOCH(
        b["high"],
        b["low"],
        b["close"],
        fastk_period=p["fastk_period"],
        slowk_period=p["slowk_period"],
        slowk_matype=0,
        slowd_period=p["slowd_period"],
        slowd_matype=0,
    )
    return {"k": k, "d": d}


def _adx(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": talib.ADX(b["high"], b["low"], b["close"], timeperiod=p["period"])}


def _cci(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": talib.CCI(b["high"], b["low"], b["close"], timeperiod=p["period"])}


def _willr(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": talib.WILLR(b["high"], b["low"], b["close"], timeperiod=p["period"])}


def _roc(b: _Arrays, p: _Params) -> _Arrays:
    return {"value": talib.ROC(b["close"], timeperiod=p["period"])}


def _mfi(b: _Arrays, p: _Params) -> _Arrays:
    return {
        "value": talib.MFI(b["high"], b["low"], b["close"], b["volume"], timeperiod=p["period"])
    }


_COMPUTE: dict[str, Callable[[_Arrays, _Params], _Arrays]] = {
    "rsi": _rsi,
    "macd": _macd,
    "bbands": _bbands,
    "atr": _atr,
    "sma": _sma,
    "ema": _ema,
    "stoch": _stoch,
    "adx": _adx,
    "cci": _cci,
    "willr": _willr,
    "roc": _roc,
    "mfi": _mfi,
}


def _price_arrays(bars: pd.DataFrame) -> _Arrays:
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise SpecError(
            f"bars lack the column(s) {', '.join(missing)}; indicators need open, high, low, "
            "close and volume (load bars with research_assets.core.data.load_bars)"
        )
    # TA-Lib wants contiguous float64 arrays.
    return {
        c: np.ascontiguousarray(bars[c].to_numpy(dtype=np.float64))
        for c in ("open", "high", "low", "close", "volume")
    }


def compute_indicators(bars: pd.DataFrame, indicators: Mapping[str, IndicatorSpec]) -> pd.DataFrame:
    """One column ``"<id>.<output>"`` per output of each indicator, on ``bars.index``.

    Columns come in the order of ``indicators`` and, within one indicator, of the catalog's
    outputs. Values are float64; warm-up bars (and bars too few for the period) are NaN.
    """
    arrays = _price_arrays(bars)
    columns: dict[str, np.ndarray] = {}
    for ind_id, ind in indicators.items():
        info = CATALOG.get(ind.type)
        compute = _COMPUTE.get(ind.type)
        if info is None or compute is None:
            raise SpecError(
                f"indicator {ind_id!r} has type {ind.type!r}, which cannot be computed; "
                f"available: {', '.join(sorted(_COMPUTE))}"
            )
        if len(bars) == 0:
            outputs = {name: np.empty(0) for name in info.outputs}
        else:
            outputs = compute(arrays, ind.params)
        for name in info.outputs:
            columns[f"{ind_id}.{name}"] = np.asarray(outputs[name], dtype=np.float64)
    return pd.DataFrame(columns, index=bars.index)
