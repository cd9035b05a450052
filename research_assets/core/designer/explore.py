"""A fresh design: a market, a style, indicators of that style, a network and labels."""

from typing import Any

from research_assets.core.design_steering import decisions, describe_decisions, describe_labels
from research_assets.core.design_steering import labels as _labels
from research_assets.core.designer.blocks import (
    DROPOUTS,
    EPOCHS,
    HIDDEN_LAYERS,
    LEARNING_RATES,
    MAX_SYMBOLS,
    _add_indicator,
    _Context,
    _has_volatility,
)
from research_assets.core.designer.market import asset_class, market_costs
from research_assets.core.indicator_catalog import CATALOG

_STYLES = {
    "trend": ("sma", "ema", "macd", "adx", "roc"),
    "mean_reversion": ("rsi", "stoch", "willr", "cci", "bbands", "mfi"),
    "volatility": ("atr", "bbands", "adx"),
}
_HYPOTHESES = {
    "trend": "Price keeps moving in the direction of an established trend long enough to trade.",
    "mean_reversion": "Stretched oscillator readings revert towards the middle within the horizon.",
    "volatility": "Volatility regimes tell when moves run and when to stand aside.",
}


def _explore(ctx: _Context) -> tuple[dict[str, Any], str]:
    rng, brief, steer = ctx.rng, ctx.brief, ctx.steer
    timeframes = sorted(ctx.by_timeframe)
    if brief.symbols:
        with_brief = [tf for tf in timeframes if set(brief.symbols) & set(ctx.by_timeframe[tf])]
        timeframes = with_brief or timeframes
    if brief.timeframes:
        timeframes = [tf for tf in timeframes if tf in brief.timeframes] or timeframes
    tf = rng.choice(timeframes)
    available = ctx.by_timeframe[tf]
    named = [s for s in brief.symbols if s in available]
    if named:
        symbols = named[:MAX_SYMBOLS]
    else:
        anchor = rng.choice(available)
        same = [s for s in available if s != anchor and asset_class(s) == asset_class(anchor)]
        extra = rng.choice((0, 0, 1, 2, 3)) if same else 0
        symbols = [anchor, *rng.sample(same, min(extra, len(same)))]
    sigma, measured = ctx.sigma(symbols, tf)

    style = brief.style or rng.choice(sorted(_STYLES))
    kinds: list[str] = [k for k in brief.indicators if k in CATALOG][:3]
    pool = list(_STYLES[style])
    if not any(k in pool for k in kinds):
        kinds.append(steer.pick_kind(rng, pool))
    n_total = max(len(kinds), rng.choice((2, 2, 3, 3, 4)))
    others = [k for k in sorted(CATALOG) if k not in kinds]
    while len(kinds) < n_total:
        # mostly from the style's pool, sometimes anything in the catalog
        choices = [k for k in pool if k not in kinds] if rng.random() < 0.6 else others
        choices = [k for k in choices if k not in kinds] or [k for k in others if k not in kinds]
        kinds.append(steer.pick_kind(rng, choices))

    d: dict[str, Any] = {
        "name": "draft",
        "training_data": {"symbols": symbols, "timeframes": [tf]},
        "indicators": {},
        "fuzzy_sets": {},
        "nn_inputs": [],
    }
    for kind in kinds:
        _add_indicator(d, kind, rng, sigma)
    added = []
    if steer.volatility and not _has_volatility(d):
        _add_indicator(d, "atr", rng, sigma)
        added.append("an ATR volatility input (drawdowns were rejected)")
    if steer.trend_filter and "adx" not in kinds:
        _add_indicator(d, "adx", rng, sigma)
        added.append("an ADX trend-strength filter (Sharpe was rejected)")
    d["model"] = {
        "type": "mlp",
        "architecture": {
            "hidden_layers": list(rng.choice(HIDDEN_LAYERS)),
            "activation": rng.choice(("relu", "relu", "tanh", "gelu")),
            "dropout": rng.choice(DROPOUTS),
        },
    }
    d["training"] = {
        "labels": _labels(rng, tf, sigma, steer.label_mode),
        "epochs": rng.choice(EPOCHS),
        "learning_rate": rng.choice(LEARNING_RATES),
        "batch_size": 256,
        "early_stopping": {"enabled": True, "patience": 8},
        "seed": 42,
    }
    section = decisions(ctx.extra_rng, d["training"]["labels"], steer.label_mode)
    if section:
        d["decisions"] = section
    d["backtest"] = market_costs(symbols)
    types = ", ".join(sorted({v["type"] for v in d["indicators"].values()}))
    d["description"] = f"{style.replace('_', ' ')} design on {', '.join(symbols)} {tf}: {types}."
    d["hypothesis"] = _HYPOTHESES[style]
    labels = d["training"]["labels"]
    note = (
        f"Explores a fresh {style.replace('_', ' ')} design on {', '.join(symbols)} {tf} with "
        f"{types}; {describe_labels(labels)}, sized for a per-bar volatility of about "
        f"{sigma:.2%} ({_SIGMA_SOURCE[measured]}); {describe_decisions(section)}."
    )
    if added:
        note += " It adds " + " and ".join(added) + "."
    return d, note


_SIGMA_SOURCE = {
    True: "measured on the bars before the lockbox",
    False: "guessed from the symbols' names",
}
