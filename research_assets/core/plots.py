"""Equity-curve images for Dagster's markdown metadata.

matplotlib is imported inside :func:`equity_curve_png`, so importing this module is cheap, and the
figure is drawn on a private ``Figure`` with the Agg canvas: no pyplot, no global backend switch,
no figure left registered anywhere. The PNG carries no timestamp or version, so the same input
gives the same bytes.

>>> idx = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
>>> png = equity_curve_png({"BTCUSD/1d": pd.Series([100.0, 110.0, 105.0], index=idx)})
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", len(png) < 80_000
(True, True)
>>> png_markdown(b"\\x89PNG", alt="curve")
'![curve](data:image/png;base64,iVBORw==)'
"""

import base64
import io
from collections.abc import Mapping, Sequence

import pandas as pd

__all__ = ["equity_curve_png", "png_markdown"]

_SIZE_INCHES = (8.0, 4.0)
_DPI = 80  # 640x320 pixels: readable in the Dagster UI and far below the 80 KB budget
_MAX_POINTS = 2000  # per line; more points than pixels only bloat the PNG


def equity_curve_png(
    equities: Mapping[str, pd.Series], title: str = "", boundaries: Sequence[pd.Timestamp] = ()
) -> bytes:
    """One line per dataset, each rebased to 100 at its first bar, as PNG bytes; a dotted
    vertical line at each of ``boundaries`` (where a walk-forward fold's test slice starts).

    Long series are thinned to at most ~2000 evenly spaced points (always keeping the last), which
    is more than the image has pixels across. An empty mapping gives a placeholder image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE_INCHES, dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    drawn = 0
    for name, equity in equities.items():
        values = equity.dropna()
        if values.empty or values.iloc[0] == 0:
            continue
        step = max(1, len(values) // _MAX_POINTS)
        thinned = values.iloc[::step]
        if thinned.index[-1] != values.index[-1]:
            thinned = pd.concat([thinned, values.iloc[-1:]])
        ax.plot(
            thinned.index,
            thinned.to_numpy() / values.iloc[0] * 100.0,
            label=str(name),
            linewidth=1.0,
        )
        drawn += 1
    if drawn:
        ax.axhline(100.0, color="grey", linewidth=0.6, linestyle="--")
        for boundary in boundaries:
            ax.axvline(boundary, color="grey", linewidth=0.6, linestyle=":")
        ax.legend(loc="best", fontsize="small", frameon=False)
    else:
        ax.text(0.5, 0.5, "no equity data", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("equity (start = 100)")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    if title:
        ax.set_title(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    # No "Software" text chunk: the bytes depend on the data only (given one matplotlib version).
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str = "equity curve") -> str:
    """A markdown image with the PNG inlined as a base64 data URI."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
