"""The leaderboard: every research in one table, ranked, and a picture comparing them.

Plain data in, plain data out (no Dagster): the status of each research as `research status
--json` prints it, plus the pooled out-of-sample figures the status view keeps beside it. The
ranking is `research run`'s: completed researches first, by out-of-sample (backtest-period)
Sharpe, best first, then the rest by the same figure; ties by age. Lockbox figures are shown
beside, never used to rank.

The picture (:func:`comparison_png`) is drawn like core/plots.py's equity curves: a private
``Figure`` on the Agg canvas, no pyplot, no timestamp in the PNG.

>>> done = LeaderboardEntry.from_status(
...     {"id": "r-1", "status": "completed", "strategy": "s", "created_at": 1.0, "cost_usd": 0.1,
...      "lockbox": {"A/1d": {"Sharpe Ratio": 0.5}, "B/1d": {"Sharpe Ratio": 1.5}}}, sharpe=1.2)
>>> done.lockbox_sharpe
1.0
>>> rejected = LeaderboardEntry.from_status(
...     {"id": "r-2", "status": "rejected", "reason": "sharpe_too_low",
...      "reason_detail": "Sharpe -0.9 < -0.5 (sharpe_too_low)", "created_at": 2.0}, sharpe=-0.9)
>>> [e.research for e in rank([rejected, done])], rejected.reason
(['r-1', 'r-2'], 'Sharpe -0.9 < -0.5 (sharpe_too_low)')
>>> comparison_png([done, rejected])[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from research_assets.core.names import Status

__all__ = ["COLUMNS", "LeaderboardEntry", "comparison_png", "rank", "rows"]

# The table's columns, in order, with their type: the rank, then the entry's fields.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "int"),
    ("research", "string"),
    ("status", "string"),
    ("strategy", "string"),
    ("sharpe", "float"),
    ("excess_return_pct", "float"),
    ("deflated_sharpe", "float"),
    ("lockbox_sharpe", "float"),
    ("lockbox_return_pct", "float"),
    ("lockbox_excess_return_pct", "float"),
    ("cost_usd", "float"),
    ("reason", "string"),
)

_SIZE_INCHES = (10.0, 4.5)
_DPI = 80  # 800x360 pixels, like the equity curves: readable in the UI, small in the event log


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mean_over_datasets(stats: Mapping[str, Mapping[str, Any]] | None, key: str) -> float | None:
    """One figure of a period's per-dataset statistics, averaged over the datasets that have it
    (what `research run`'s leaderboard prints for the lockbox)."""
    values = [v for s in (stats or {}).values() if (v := _number(s.get(key))) is not None]
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class LeaderboardEntry:
    """One research's row: where it ended, why, and its out-of-sample and lockbox figures."""

    research: str
    status: str
    strategy: str | None
    created_at: float
    # Backtest period (out of sample), pooled over the research's datasets.
    sharpe: float | None
    excess_return_pct: float | None  # over buy & hold on the same bars
    deflated_sharpe: float | None
    # Lockbox (only a completed research has one), averaged over its datasets.
    lockbox_sharpe: float | None
    lockbox_return_pct: float | None
    lockbox_excess_return_pct: float | None
    cost_usd: float
    reason: str | None  # in numbers where a gate rejected it, else the reason code

    @classmethod
    def from_status(
        cls,
        status: Mapping[str, Any],
        sharpe: float | None = None,
        excess_return: float | None = None,
        deflated_sharpe: float | None = None,
    ) -> "LeaderboardEntry":
        """From a status document (``research status --json``'s entry) and the pooled
        backtest-period figures kept beside it."""
        lockbox = status.get("lockbox")
        return cls(
            research=str(status["id"]),
            status=str(status["status"]),
            strategy=status.get("strategy"),
            created_at=float(status.get("created_at") or 0.0),
            sharpe=_number(sharpe),
            excess_return_pct=_number(excess_return),
            deflated_sharpe=_number(deflated_sharpe),
            lockbox_sharpe=_mean_over_datasets(lockbox, "Sharpe Ratio"),
            lockbox_return_pct=_mean_over_datasets(lockbox, "Return [%]"),
            lockbox_excess_return_pct=_mean_over_datasets(lockbox, "Excess Return [%]"),
            cost_usd=float(status.get("cost_usd") or 0.0),
            reason=status.get("reason_detail") or status.get("reason") or None,
        )


def rank(entries: Iterable[LeaderboardEntry]) -> list[LeaderboardEntry]:
    """Completed researches first, each group by out-of-sample Sharpe (best first, none last),
    then by age (oldest first)."""
    return sorted(
        entries,
        key=lambda e: (
            e.status != Status.COMPLETED,
            -(e.sharpe if e.sharpe is not None else -math.inf),
            e.created_at,
            e.research,
        ),
    )


def rows(entries: Iterable[LeaderboardEntry], digits: int = 4) -> list[dict[str, Any]]:
    """The ranked table: one dict per research with :data:`COLUMNS` as keys, floats rounded."""
    out = []
    for position, entry in enumerate(rank(entries), 1):
        row: dict[str, Any] = {"rank": position}
        for name, kind in COLUMNS[1:]:
            value = getattr(entry, name)
            row[name] = round(value, digits) if kind == "float" and value is not None else value
        out.append(row)
    return out


def comparison_png(entries: Sequence[LeaderboardEntry]) -> bytes:
    """Two panels as PNG bytes. Left: each completed research's out-of-sample Sharpe against its
    lockbox Sharpe, with the line where they are equal (points below it did worse on data no
    choice ever saw), and their rank correlation over three or more. Right: out-of-sample Sharpe
    of completed and rejected researches, as histograms. A leaderboard without figures gives
    placeholder panels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_SIZE_INCHES, dpi=_DPI)
    FigureCanvasAgg(fig)
    scatter, spread = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})

    pairs = [
        (e.sharpe, e.lockbox_sharpe)
        for e in entries
        if e.sharpe is not None and e.lockbox_sharpe is not None
    ]
    title = f"completed researches: {len(pairs)}"
    if pairs:
        xs, ys = zip(*pairs, strict=True)
        # One square frame holding the points and zero, so the diagonal is the 45-degree line.
        low, high = min(0.0, *xs, *ys), max(0.0, *xs, *ys)
        pad = max((high - low) * 0.05, 0.1)
        low, high = low - pad, high + pad
        scatter.plot(
            [low, high],
            [low, high],
            color="grey",
            linewidth=0.8,
            linestyle="--",
            label="lockbox = out of sample",
        )
        scatter.axhline(0.0, color="grey", linewidth=0.5)
        scatter.axvline(0.0, color="grey", linewidth=0.5)
        scatter.scatter(xs, ys, s=14, alpha=0.6, edgecolors="none")
        scatter.set_xlim(low, high)
        scatter.set_ylim(low, high)
        scatter.legend(loc="upper left", fontsize="small", frameon=False)
        if len(pairs) >= 3:
            title += f", rank correlation {_spearman(xs, ys):.2f}"
    else:
        scatter.text(
            0.5,
            0.5,
            "no completed research yet",
            ha="center",
            va="center",
            transform=scatter.transAxes,
        )
    scatter.set_xlabel("out-of-sample Sharpe (backtest period)")
    scatter.set_ylabel("lockbox Sharpe")
    scatter.set_title(title, fontsize="medium")
    scatter.grid(True, linewidth=0.3, alpha=0.5)

    by_status = {
        status: [e.sharpe for e in entries if e.status == status and e.sharpe is not None]
        for status in (Status.COMPLETED, Status.REJECTED)
    }
    if any(by_status.values()):
        values = [v for vs in by_status.values() for v in vs]
        low, high = min(values), max(values)
        if high - low < 1e-9:  # one value: a bin around it
            low, high = low - 0.5, high + 0.5
        for status, vs in by_status.items():
            if vs:
                spread.hist(
                    vs, bins=20, range=(low, high), alpha=0.6, label=f"{status} ({len(vs)})"
                )
        spread.legend(loc="best", fontsize="small", frameon=False)
    else:
        spread.text(
            0.5,
            0.5,
            "no out-of-sample figures yet",
            ha="center",
            va="center",
            transform=spread.transAxes,
        )
    counts = Counter(e.status for e in entries)
    spread.set_title(
        ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no researches",
        fontsize="small",
    )
    spread.set_xlabel("out-of-sample Sharpe")
    spread.set_ylabel("researches")
    spread.grid(True, linewidth=0.3, alpha=0.5)

    fig.tight_layout()
    drawn = io.BytesIO()
    fig.savefig(drawn, format="png", metadata={"Software": None})
    # The leaderboard is rebuilt whenever a research ends, and each build's picture stays in the
    # event log: 64 colours (Pillow, matplotlib's own dependency) make it ~3x smaller.
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(drawn).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
        buffer, format="PNG", optimize=True
    )
    return buffer.getvalue()


def _spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    import pandas as pd

    return float(pd.Series(xs).rank().corr(pd.Series(ys).rank()))
