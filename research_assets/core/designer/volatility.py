"""The per-bar volatility a design is scaled by.

:func:`dataset_sigma` measures it on a dataset's bars before the lockbox; :func:`bar_sigma`
guesses it from the symbols' names where the bars cannot be read; :func:`macd_line_scale` is the
spread of a MACD line in units of it.
"""

import functools
import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import median_abs_deviation

from research_assets.core.design_steering import round_sig as _round
from research_assets.core.designer.market import _MINUTES, asset_class
from research_assets.core.errors import ResearchError

if TYPE_CHECKING:
    from research_assets.core.data import DatasetInfo

# Typical daily standard deviation of returns by asset class; other bars scale by sqrt(time).
_SIGMA_1D = {"fx": 0.005, "crypto": 0.045, "stock": 0.02, "index": 0.013}


def bar_sigma(symbols: Sequence[str], timeframe: str) -> float:
    """Typical standard deviation of one bar's return, averaged over the symbols, guessed from
    their names (the fallback where :func:`dataset_sigma` cannot measure it)."""
    daily = sum(_SIGMA_1D[asset_class(s)] for s in symbols) / max(1, len(symbols))
    return daily * math.sqrt(_MINUTES.get(timeframe, 1440) / 1440)


# Fewer log returns than this before the lockbox, and the name-based guess is used instead.
MIN_SIGMA_RETURNS = 50
# Returns beyond this many robust standard deviations (1.4826 x the median absolute deviation)
# are clipped before measuring: an unadjusted split or a bad tick must not set the scale, while
# the fat tails of real returns stay (they are rarely beyond 8).
_SIGMA_CLIP = 8.0


def _lockbox_fraction() -> float:
    from research_assets.core.splits import SplitConfig

    try:
        return SplitConfig.from_env().lockbox
    except ResearchError:  # a misconfigured split fails the research itself, with its message
        return SplitConfig().lockbox


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def dataset_sigma(
    info: "DatasetInfo", start: date | str | None = None, end: date | str | None = None
) -> float | None:
    """The standard deviation of one bar's log return, measured on ``info``'s bars.

    Only the bars before the lockbox count (the newest ``RESEARCH_LOCKBOX_FRACTION`` of the bars
    within ``start``..``end``, as a research splits them), so a design never reads the lockbox.
    Returns clipped at ``_SIGMA_CLIP`` robust standard deviations; rounded to three significant
    digits, so specs stay readable and their fingerprints stable. None where the bars cannot be
    read or hold fewer than ``MIN_SIGMA_RETURNS`` returns. Cached by file, modification time and
    size: a design measures each dataset once.
    """
    path = getattr(info, "path", None)
    if path is None:
        return None
    try:
        st = Path(path).stat()
        start, end = _as_date(start), _as_date(end)
    except (OSError, ValueError):
        return None
    return _measured_sigma(
        str(path),
        info.symbol,
        info.timeframe,
        st.st_mtime_ns,
        st.st_size,
        _lockbox_fraction(),
        start,
        end,
    )


@functools.lru_cache(maxsize=256)
def _measured_sigma(
    path: str,
    symbol: str,
    timeframe: str,
    mtime_ns: int,
    size: int,
    lockbox: float,
    start: date | None,
    end: date | None,
) -> float | None:
    """See :func:`dataset_sigma`; ``mtime_ns`` and ``size`` are only part of the cache key."""
    from research_assets.core.data import load_bars

    try:
        close = load_bars(symbol, timeframe, Path(path).parent, start, end)["close"]
    except (ResearchError, KeyError):
        return None
    values = close.to_numpy(dtype=np.float64)
    values = values[: len(values) - round(len(values) * lockbox)]
    values = values[np.isfinite(values) & (values > 0)]
    r = np.diff(np.log(values))
    if len(r) < MIN_SIGMA_RETURNS:
        return None
    centre = float(np.median(r))
    robust = float(median_abs_deviation(r, scale="normal"))
    if robust > 0:
        r = np.clip(r, centre - _SIGMA_CLIP * robust, centre + _SIGMA_CLIP * robust)
    sigma = float(np.std(r))
    return _round(sigma, 3) if math.isfinite(sigma) and sigma > 0 else None


def macd_line_scale(fast: float, slow: float) -> float:
    """The standard deviation of the MACD line over the close, in units of the per-bar ``sigma``,
    on a random walk: the fast EMA's lag minus the slow one's is ``sum_j (a**j - b**j) r_(t-j)``
    with ``a``, ``b`` the slow and fast EMAs' decays, so its variance is
    ``sigma**2 * sum_j (a**j - b**j)**2``, three geometric series.

    >>> round(macd_line_scale(12, 26), 2), round(macd_line_scale(5, 35), 2)
    (1.14, 2.38)
    """
    b, a = 1 - 2 / (fast + 1), 1 - 2 / (slow + 1)
    var = a * a / (1 - a * a) - 2 * a * b / (1 - a * b) + b * b / (1 - b * b)
    return math.sqrt(max(var, 0.0))
