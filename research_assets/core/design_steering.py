"""What the offline designer learns from recent rejections, and the labels it designs with.

A gate's rejection reason says what was wrong; each group of reasons asks for one change:

=====================================================  ==========================================
reasons                                                the next designs
=====================================================  ==========================================
``accuracy_below_threshold``, ``loss_too_high``,       easier labels: two-class forward returns
``insufficient_loss_decrease`` (the seeds' absolute    (no dead zone)
training checks)
``win_rate_too_low``                                   fewer, steadier signals: two-class forward
                                                       returns over the longer horizons
``too_few_trades``                                     more trades: the shorter horizons and
                                                       smaller label thresholds
``no_edge_over_benchmark``                             less market exposure: three-class labels
                                                       with a dead zone, so that flat (no
                                                       position) is a class of its own and the
                                                       model stands aside instead of riding the
                                                       market (down predictions go short)
``drawdown_too_high``                                  a volatility input (ATR, Bollinger width)
``sharpe_too_low``                                     an ADX trend-strength filter
``no_edge_over_random``, ``not_significant``,          no real edge: other inputs rather than
``no_accuracy_lift``, ``loss_above_baseline``          tuning. Explore more often than exploit,
                                                       mutate by adding or removing indicators
                                                       more than by tuning them, and prefer the
                                                       indicator types those rejections used least
=====================================================  ==========================================

A group is active when it has at least a fifth of the ``RECENT_REJECTIONS`` newest rejections
(and at least one), so one old failure does not dominate a long history. Only one label change
can apply at a time: the active label group with the most rejections wins (ties in the order of
``_LABEL_MODES``). Unsteered designs draw exactly as they did before steering existed, so the
same seed and an empty memory give the same spec.
"""

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from research_assets.core.memory import ResearchMemory

RECENT_REJECTIONS = 20  # steering looks at this many of the newest rejections
EXPLOIT_PROBABILITY = 0.6
# When the recent rejections say there was no real edge, tuning the best design is worth less.
EXPLOIT_PROBABILITY_WITHOUT_EDGE = 0.25

EASIER = ("accuracy_below_threshold", "insufficient_loss_decrease", "loss_too_high")
SELECTIVE = ("win_rate_too_low",)
MORE_TRADES = ("too_few_trades",)
STAND_ASIDE = ("no_edge_over_benchmark",)
VOLATILITY = ("drawdown_too_high",)
TREND_FILTER = ("sharpe_too_low",)
NO_EDGE = ("no_edge_over_random", "not_significant", "no_accuracy_lift", "loss_above_baseline")
# Label modes in order of precedence on a tie, with the reasons that ask for each.
_LABEL_MODES = (
    ("more_trades", MORE_TRADES),
    ("stand_aside", STAND_ASIDE),
    ("selective", SELECTIVE),
    ("easier", EASIER),
)

# Label lookaheads / horizons in bars per timeframe: about half a day to two days intraday,
# one to four weeks on daily bars.
HORIZONS = {
    "1m": (15, 30, 60),
    "5m": (12, 24, 48),
    "15m": (8, 16, 32),
    "30m": (8, 16, 32),
    "1h": (8, 12, 24, 48),
    "4h": (6, 12, 24),
    "1d": (3, 5, 10, 20),
    "1w": (2, 4, 8),
}
# Multipliers of sigma * sqrt(horizon): zigzag thresholds and forward-return dead zones. On a
# random walk (with sigma measured from the bars, any market) a zigzag of 0.5 / 0.65 / 0.8 sigmas
# is flat on about 5-20% / 15-35% / 30-45% of the bars (the shorter the lookahead, the more), so
# flat is never much more common than up or down. At 1.0 sigma it is flat on about half of them:
# the majority class, which a model barely beats (an accuracy lift of 0 in the research-quality
# benchmark, on planted trends too), and out of the market; that is for standing aside.
ZIGZAG_M = (0.5, 0.65, 0.8)
DEADZONE_D = (0.0, 0.0, 0.25)
ZIGZAG_M_MORE_TRADES = (0.35, 0.5)  # smaller moves count: more, shorter swings
ZIGZAG_M_STAND_ASIDE = (1.0, 1.3)  # only clear moves are up or down; the rest is flat
DEADZONE_D_STAND_ASIDE = (0.25, 0.5)
# decisions.confidence_threshold: no position unless the most probable class is at least this
# probable. With two classes (forward returns, no dead zone) the most probable is above 0.5 by
# construction; with three, above 1/3. Half of unsteered designs take the most probable class.
# The values stay close to a coin flip: a model that learnt something real (an accuracy lift of
# 0.05-0.1 over the majority class) rarely gives a class much more than the labels' frequency,
# and 0.6-0.65 left
# such models without a trade on two- and three-class labels alike (research_quality.py
# --diagnose).
CONFIDENCE = {2: (0.51, 0.53, 0.55), 3: (0.4, 0.45, 0.5)}
CONFIDENCE_SHARE = 0.5


@dataclass(frozen=True)
class Steer:
    """Lessons from recent rejections (see the module docstring)."""

    easier_labels: bool = False
    selective: bool = False
    more_trades: bool = False
    stand_aside: bool = False
    volatility: bool = False
    trend_filter: bool = False
    no_edge: bool = False
    label_mode: str = "normal"
    counts: tuple[tuple[str, int], ...] = ()
    # how often each indicator type was used by the recent researches that showed no edge
    stale_types: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_memory(cls, memory: ResearchMemory) -> "Steer":
        recent = [r for r in memory.rejected() if r.rejection_reason][:RECENT_REJECTIONS]
        counts: dict[str, int] = {}
        stale: dict[str, int] = {}
        for r in recent:
            reason = r.rejection_reason or ""
            counts[reason] = counts.get(reason, 0) + 1
            if reason in NO_EDGE and r.spec is not None:
                for kind in {i.type for i in r.spec.indicators.values()}:
                    stale[kind] = stale.get(kind, 0) + 1
        floor = max(1.0, 0.2 * len(recent))

        def weight(reasons: Sequence[str]) -> int:
            return sum(counts.get(x, 0) for x in reasons)

        active = {
            mode: weight(reasons) for mode, reasons in _LABEL_MODES if weight(reasons) >= floor
        }
        # the most rejections first; on a tie, the order of _LABEL_MODES (max keeps the first)
        mode = max(active, key=lambda m: active[m]) if active else "normal"
        return cls(
            easier_labels="easier" in active,
            selective="selective" in active,
            more_trades="more_trades" in active,
            stand_aside="stand_aside" in active,
            volatility=weight(VOLATILITY) >= floor,
            trend_filter=weight(TREND_FILTER) >= floor,
            no_edge=weight(NO_EDGE) >= floor,
            label_mode=mode,
            counts=tuple(sorted(counts.items())),
            stale_types=tuple(sorted(stale.items())),
        )

    @property
    def exploit_probability(self) -> float:
        return EXPLOIT_PROBABILITY_WITHOUT_EDGE if self.no_edge else EXPLOIT_PROBABILITY

    @property
    def labels_steered(self) -> bool:
        return self.label_mode != "normal"

    def pick_kind(self, rng: random.Random, choices: Sequence[str]) -> str:
        """One indicator type from ``choices``: uniformly, or, when the recent researches showed
        no edge, with weight ``1 / (1 + uses)`` by how often those researches used it."""
        if not self.no_edge:
            return rng.choice(choices)
        uses = dict(self.stale_types)
        return rng.choices(list(choices), weights=[1 / (1 + uses.get(k, 0)) for k in choices])[0]

    def describe(self) -> str:
        if not self.counts:
            return ""
        seen = ", ".join(f"{n} {reason}" for reason, n in self.counts)
        actions = {
            "easier": "easier-to-learn two-class labels",
            "selective": "fewer, steadier signals over longer horizons",
            "more_trades": "more trades (shorter horizons, smaller label thresholds)",
            "stand_aside": "less market exposure (labels with a dead zone, so the model stands "
            "aside when no clear move is due)",
        }
        what = [actions[self.label_mode]] if self.labels_steered else []
        if self.volatility:
            what.append("a volatility input")
        if self.trend_filter:
            what.append("an ADX trend-strength filter")
        if self.no_edge:
            least = sorted(dict(self.stale_types).items(), key=lambda kv: (-kv[1], kv[0]))[:3]
            used = ", ".join(k for k, _ in least)
            what.append(
                "other inputs rather than tuning (no real edge was found"
                + (f"; fewer of {used}" if used else "")
                + ")"
            )
        text = ", ".join(what) if what else "no change (no reason dominates)"
        return f"Recent rejections ({seen}) steer towards {text}."


def round_sig(x: float, digits: int = 3) -> float:
    """Round to significant digits, so specs read cleanly and fingerprints stay stable."""
    if x == 0 or not math.isfinite(x):
        return 0.0
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def labels(
    rng: random.Random, timeframe: str, sigma: float, mode: str, source: str | None = None
) -> dict[str, Any]:
    """Labels from the per-timeframe table, scaled by volatility: zigzag thresholds are
    ``m * sigma * sqrt(lookahead)`` and forward-return dead zones ``d * sigma * sqrt(horizon)``.

    ``mode`` (``Steer.label_mode``): ``normal``; ``easier`` (two-class forward returns);
    ``selective`` (the same over the longer horizons); ``more_trades`` (the shorter horizons,
    smaller zigzag thresholds, no dead zone); ``stand_aside`` (larger zigzag thresholds or a
    forward-return dead zone: a flat class of its own). ``easier`` and ``selective`` override
    ``source``.
    """
    horizons = HORIZONS.get(timeframe, HORIZONS["1d"])
    if mode in ("easier", "selective"):
        h = rng.choice(horizons[len(horizons) // 2 :] if mode == "selective" else horizons)
        return {"source": "forward_return", "horizon": h, "threshold": 0.0}
    source = source or rng.choice(("forward_return", "forward_return", "zigzag"))
    if mode == "more_trades":
        h = rng.choice(horizons[: (len(horizons) + 1) // 2])
        zigzag_m, deadzone_d = ZIGZAG_M_MORE_TRADES, (0.0,)
    elif mode == "stand_aside":
        h = rng.choice(horizons)
        zigzag_m, deadzone_d = ZIGZAG_M_STAND_ASIDE, DEADZONE_D_STAND_ASIDE
    else:
        h = rng.choice(horizons)
        zigzag_m, deadzone_d = ZIGZAG_M, DEADZONE_D
    if source == "zigzag":
        m = rng.choice(zigzag_m)
        return {
            "source": "zigzag",
            "threshold": min(0.5, round_sig(m * sigma * math.sqrt(h), 2)),
            "lookahead": h,
        }
    dz = rng.choice(deadzone_d)
    return {
        "source": "forward_return",
        "horizon": h,
        "threshold": min(0.5, round_sig(dz * sigma * math.sqrt(h), 2)),
    }


def label_classes(labels: dict[str, Any]) -> int:
    """2 for forward returns without a dead zone (never flat), else 3."""
    return 2 if labels["source"] == "forward_return" and not labels["threshold"] else 3


def decisions(
    rng: random.Random, labels: dict[str, Any], mode: str, old: float | None = None
) -> dict[str, float] | None:
    """A ``decisions`` section (a confidence threshold from ``CONFIDENCE`` for the labels'
    number of classes), or None for the default (always the most probable class).

    ``more_trades`` never sets one (a bar without a confident class is a bar out of the market);
    ``stand_aside`` always does, from the upper values; otherwise half the time. ``old`` (a
    mutation): a value other than it, or None where it was set and the mode allows none.
    """
    if mode == "more_trades":
        return None
    table = CONFIDENCE[label_classes(labels)]
    if mode == "stand_aside":
        table = table[1:]
    elif old is not None and rng.random() < 0.4:
        return None  # a mutation back to the most probable class
    elif old is None and rng.random() >= CONFIDENCE_SHARE:
        return None
    choices = [x for x in table if x != old] or list(table)
    return {"confidence_threshold": rng.choice(choices)}


def describe_decisions(section: dict[str, float] | None) -> str:
    if not section:
        return "positions from the most probable class"
    return (
        f"positions only where the most probable class has a probability of at least "
        f"{section['confidence_threshold']:g}"
    )


def describe_labels(labels: dict[str, Any]) -> str:
    if labels["source"] == "zigzag":
        return f"zigzag labels of {labels['threshold']:.2%} within {labels['lookahead']} bars"
    zone = f"a {labels['threshold']:.2%} dead zone" if labels["threshold"] else "no dead zone"
    return f"forward-return labels over {labels['horizon']} bars with {zone}"
