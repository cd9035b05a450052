"""Does the lab overfit? Out-of-sample figures against the lockbox, over many researches.

A research is chosen and judged on its out-of-sample (backtest-period) figures; the lockbox is
data no designer, gate or assessment ever saw. If out-of-sample Sharpe ratios mean something,
the researches that did better there also do better on the lockbox: their rank correlation is
positive, and the Sharpe ratio decays little from one to the other. A correlation at or below 0
over enough researches says that what the lab selects on is noise.

>>> report = overfitting_report([(1.0, 0.8, 2.0), (2.0, 1.5, -1.0), (0.5, 0.1, 3.0)], trials=7)
>>> [report[k] for k in ("rank_corr_oos_lockbox", "mean_sharpe_decay",
...                      "lockbox_beats_buy_and_hold")]
[1.0, 0.3667, 0.6667]
"""

import math
from collections.abc import Iterable, Mapping
from typing import Any

from scipy import stats as sps

__all__ = ["MIN_RESEARCHES_FOR_WARNING", "lockbox_outcome", "overfitting_report"]

MIN_RESEARCHES_FOR_WARNING = 10


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def lockbox_outcome(lockbox: Mapping[str, Mapping[str, Any]] | None) -> tuple[float, float] | None:
    """The lockbox's Sharpe ratio and excess return over buy & hold [%], each the mean over the
    datasets that have it, or None when the lockbox has no Sharpe ratio."""
    if not lockbox:
        return None
    sharpes, excess = [], []
    for stats in lockbox.values():
        sharpe = _finite(stats.get("Sharpe Ratio"))
        if sharpe is not None:
            sharpes.append(sharpe)
        ret, held = _finite(stats.get("Return [%]")), _finite(stats.get("Buy & Hold Return [%]"))
        if ret is not None and held is not None:
            excess.append(ret - held)
    if not sharpes:
        return None
    return sum(sharpes) / len(sharpes), (sum(excess) / len(excess) if excess else math.nan)


def overfitting_report(
    outcomes: Iterable[tuple[float, float, float]], trials: int
) -> dict[str, Any]:
    """``outcomes``: one ``(out-of-sample Sharpe, lockbox Sharpe, lockbox excess return [%])`` per
    completed research. Returns the trials so far and, over those researches, the Spearman rank
    correlation of the two Sharpe ratios, the mean decay (out-of-sample minus lockbox), the share
    that beat buy & hold on the lockbox, and a warning when the correlation is at or below 0
    over at least :data:`MIN_RESEARCHES_FOR_WARNING` researches."""
    pairs = [(o, lb, ex) for o, lb, ex in outcomes if math.isfinite(o) and math.isfinite(lb)]
    n = len(pairs)
    corr = decay = beats = None
    if n >= 2:
        rho = sps.spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
        corr = round(float(rho), 4) if math.isfinite(rho) else None
    if n:
        decay = round(sum(o - lb for o, lb, _ in pairs) / n, 4)
        known = [ex for _, _, ex in pairs if math.isfinite(ex)]
        beats = round(sum(ex > 0 for ex in known) / len(known), 4) if known else None
    warning = None
    if n >= MIN_RESEARCHES_FOR_WARNING and corr is not None and corr <= 0:
        warning = (
            f"over {n} completed researches, out-of-sample and lockbox Sharpe ratios have a "
            f"rank correlation of {corr:.2f}: what the lab selects on does not carry to "
            "unseen data (overfitting)"
        )
    return {
        "trials": trials,
        "completed_with_lockbox": n,
        "rank_corr_oos_lockbox": corr,
        "mean_sharpe_decay": decay,
        "lockbox_beats_buy_and_hold": beats,
        "warning": warning,
    }
