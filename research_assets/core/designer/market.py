"""What a symbol's name tells about its market, and what trading that market costs."""

from collections.abc import Sequence

# Minutes per bar of each timeframe a design may use.
_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440, "1w": 10080}
# Round-trip costs are a property of the market, not a design choice: one table per asset class.
_COSTS = {
    "fx": (0.0001, 0.00005),
    "crypto": (0.001, 0.0005),
    "stock": (0.0005, 0.0002),
    "index": (0.0003, 0.0001),
}
_FX = {"EUR", "USD", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK"}
_CRYPTO = ("BTC", "ETH", "LTC", "XRP", "SOL", "ADA", "DOGE")
_INDEX = {"SP500", "SPX", "NASDAQ", "NDX", "DJI", "DJIA", "DAX", "FTSE", "NIKKEI", "RUT", "VIX"}


def asset_class(symbol: str) -> str:
    """``fx``, ``crypto``, ``index`` or ``stock``, guessed from the symbol's name."""
    s = symbol.upper()
    if s.startswith(_CRYPTO):
        return "crypto"
    if len(s) == 6 and s[:3] in _FX and s[3:] in _FX:
        return "fx"
    if s in _INDEX:
        return "index"
    return "stock"


def market_costs(symbols: Sequence[str]) -> dict[str, float]:
    """Backtest costs for trading ``symbols``: a property of the market, not a design choice.

    The dearest market among the symbols sets the costs, so none is flattered.
    """
    commission, slippage = max(_COSTS[asset_class(s)] for s in symbols)
    return {"commission": commission, "slippage": slippage}
