"""Training labels: the direction of the price move that follows each bar.

Labels are computed on closes (not highs and lows): with bars alone the order of a bar's high and
low is unknown, so a bar that touches both thresholds could not be labelled; closes also match the
prices the backtest trades at. A bar whose horizon runs past the end of the data gets NaN.

>>> import pandas as pd
>>> from research_assets.core.spec import ForwardReturnLabels
>>> bars = pd.DataFrame({"close": [100.0, 103.0, 101.0, 98.0]})
>>> make_labels(bars, ForwardReturnLabels(source="forward_return", horizon=1,
...                                       threshold=0.01)).tolist()
[2.0, 0.0, 0.0, nan]
"""

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from research_assets.core.errors import SpecError
from research_assets.core.spec import ForwardReturnLabels, ZigzagLabels

DOWN, FLAT, UP = 0, 1, 2
CLASS_NAMES = {DOWN: "down", FLAT: "flat", UP: "up"}

# Window rows are processed in chunks of about this many cells, to bound memory for long
# lookaheads on long series (a 100k x 500 window would be 400 MB at once).
_CHUNK_CELLS = 1 << 21
# A move of exactly the threshold counts (1.025 / 1.0 - 1 is a hair below 0.025 in floats).
_EPS = 1e-12


def _zigzag(close: np.ndarray, threshold: float, lookahead: int) -> np.ndarray:
    n = len(close)
    out = np.full(n, np.nan)
    rows = n - lookahead  # bars whose whole lookahead lies inside the data
    if rows <= 0:
        return out
    # Row t holds close[t+1 .. t+lookahead]; a view, nothing is copied.
    windows = sliding_window_view(close[1:], lookahead)
    step = max(1, _CHUNK_CELLS // lookahead)
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        rel = windows[start:stop] / close[start:stop, None] - 1.0
        up = rel >= threshold - _EPS
        down = rel <= -threshold + _EPS
        # First bar at which each threshold is reached; lookahead means never.
        first_up = np.where(up.any(axis=1), up.argmax(axis=1), lookahead)
        first_down = np.where(down.any(axis=1), down.argmax(axis=1), lookahead)
        out[start:stop] = np.where(
            first_up < first_down, UP, np.where(first_down < first_up, DOWN, FLAT)
        )
    return out


def _forward_return(close: np.ndarray, threshold: float, horizon: int) -> np.ndarray:
    n = len(close)
    out = np.full(n, np.nan)
    if n <= horizon:
        return out
    r = close[horizon:] / close[:-horizon] - 1.0
    out[: n - horizon] = np.where(r > threshold, UP, np.where(r < -threshold, DOWN, FLAT))
    return out


def make_labels(bars: pd.DataFrame, labels: ZigzagLabels | ForwardReturnLabels) -> pd.Series:
    """Label each bar ``DOWN`` (0), ``FLAT`` (1) or ``UP`` (2); NaN where the horizon runs past
    the end.

    - ``zigzag``: over closes ``t+1 .. t+lookahead``, ``UP`` if the close first rises by at least
      ``threshold`` (relative to ``close[t]``) before it falls by at least ``threshold``, ``DOWN``
      if it falls first, ``FLAT`` if it does neither.
    - ``forward_return``: ``r = close[t+horizon] / close[t] - 1``; ``UP`` if ``r > threshold``,
      ``DOWN`` if ``r < -threshold``, else ``FLAT``.
    """
    if "close" not in bars.columns:
        raise SpecError("bars lack a 'close' column; labels are computed from closes")
    close = np.ascontiguousarray(bars["close"].to_numpy(dtype=np.float64))
    if isinstance(labels, ZigzagLabels):
        values = _zigzag(close, labels.threshold, labels.lookahead)
    elif isinstance(labels, ForwardReturnLabels):
        values = _forward_return(close, labels.threshold, labels.horizon)
    else:
        raise SpecError(f"unknown label source {getattr(labels, 'source', labels)!r}")
    values[np.isnan(close)] = np.nan  # no reference price, no label
    return pd.Series(values, index=bars.index, name="label")
