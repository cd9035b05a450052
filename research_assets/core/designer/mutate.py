"""A variation of a past research's spec: one or two mutations, weighted by what rejections ask."""

import copy
import math
from collections.abc import Callable
from typing import Any

from research_assets.core.design_steering import decisions, describe_labels
from research_assets.core.design_steering import labels as _labels
from research_assets.core.design_steering import round_sig as _round
from research_assets.core.designer.blocks import (
    _PERIODS,
    DROPOUTS,
    EPOCHS,
    HIDDEN_LAYERS,
    LEARNING_RATES,
    MAX_SYMBOLS,
    _add_indicator,
    _Context,
    _has_volatility,
    _indicator_id,
    _macd_scale,
    _main_period,
    _memberships,
    _spec_sigma,
)
from research_assets.core.designer.market import asset_class, market_costs
from research_assets.core.indicator_catalog import CATALOG
from research_assets.core.memory import ResearchRecord

_Mutation = Callable[[dict[str, Any], _Context], str | None]


def _rename_indicator(d: dict[str, Any], old: str, new: str) -> None:
    """Rename an indicator and the fuzzy sets named after it, with every reference."""
    d["indicators"] = {(new if k == old else k): v for k, v in d["indicators"].items()}
    renamed: dict[str, str] = {}
    for set_id, fs in d["fuzzy_sets"].items():
        ind_id, dot, output = fs["indicator"].partition(".")
        if ind_id == old:
            fs["indicator"] = new + dot + output
            if set_id == old or set_id.startswith(old + "_"):
                renamed[set_id] = new + set_id[len(old) :]
    if set(renamed.values()) & (set(d["fuzzy_sets"]) - set(renamed)):
        return  # a set of that name exists already: keep the set ids
    d["fuzzy_sets"] = {renamed.get(k, k): v for k, v in d["fuzzy_sets"].items()}
    for item in d["nn_inputs"]:
        item["fuzzy_set"] = renamed.get(item["fuzzy_set"], item["fuzzy_set"])


def _rescale_sets(d: dict[str, Any], ind_id: str, output: str, factor: float) -> None:
    """Scale the fuzzy sets reading ``ind_id.output``, when a period change scales that output."""
    kind = d["indicators"][ind_id]["type"]
    for fs in d["fuzzy_sets"].values():
        ref_id, _, ref_output = fs["indicator"].partition(".")
        if ref_id != ind_id or (ref_output or CATALOG[kind].default_output) != output:
            continue
        for m in _set_params(fs):
            m["parameters"] = [_round(x * factor, 4) for x in m["parameters"]]


def _mutate_period(d: dict[str, Any], ctx: _Context) -> str | None:
    ids = [k for k, v in sorted(d["indicators"].items()) if v["type"] in _PERIODS]
    if not ids:
        return None
    ind_id = ctx.rng.choice(ids)
    spec = d["indicators"][ind_id]
    kind = spec["type"]
    old = {k: v for k, v in spec.items() if k != "type"}
    choices = [p for p in _PERIODS[kind] if any(old.get(k) != v for k, v in p.items())]
    new = dict(ctx.rng.choice(choices))
    d["indicators"][ind_id] = {"type": kind, **{**old, **new}}
    # these outputs grow with sqrt(period): keep their memberships on the same footing
    factor = math.sqrt(_main_period(new) / _main_period(old))
    if kind in ("sma", "ema", "roc"):
        _rescale_sets(d, ind_id, "value", factor)
    elif kind == "bbands":
        _rescale_sets(d, ind_id, "width", factor * float(new["nbdev"]) / float(old["nbdev"]))
    elif kind == "macd" and _macd_scale(old) > 0:  # the line's spread depends on both periods
        for output in ("macd", "signal"):
            _rescale_sets(d, ind_id, output, _macd_scale({**old, **new}) / _macd_scale(old))
    new_id = _indicator_id(kind, {**old, **new})
    if ind_id == _indicator_id(kind, {**old}) and new_id not in d["indicators"]:
        _rename_indicator(d, ind_id, new_id)  # keep ids honest: rsi_14 must not hold period 21
    changed = ", ".join(f"{k} {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v)
    return f"{ind_id}: {changed}"


def _set_params(fs: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for k, v in fs.items() if k != "indicator"]


def _mutate_shift_fuzzy(d: dict[str, Any], ctx: _Context) -> str | None:
    set_id = ctx.rng.choice(sorted(d["fuzzy_sets"]))
    fs = d["fuzzy_sets"][set_id]
    lo, hi = _set_span(fs)
    if hi <= lo:
        return None
    frac = ctx.rng.choice((-0.15, -0.1, 0.1, 0.15))
    delta = frac * (hi - lo)
    for m in _set_params(fs):
        if m["type"] == "gaussian":
            m["parameters"] = [_round(m["parameters"][0] + delta, 4), m["parameters"][1]]
        else:
            m["parameters"] = [_round(x + delta, 4) for x in m["parameters"]]
    direction = "up" if frac > 0 else "down"
    return f"fuzzy set {set_id} shifted {direction} by {abs(frac):.0%} of its span"


def _informative_points(m: dict[str, Any]) -> list[float]:
    """Points where a membership changes; an open shoulder's outer points are not (a left
    shoulder ``[-1, -1, -0.005, 0]`` is about -0.005 to 0, not -1)."""
    p = [float(x) for x in m["parameters"]]
    if m["type"] == "gaussian":
        return [p[0] - p[1], p[0] + p[1]]
    a, b, c, d = (p[0], p[1], p[1], p[2]) if m["type"] == "triangular" else p
    points = ([a, b] if a < b else []) + ([c, d] if c < d else [])
    return points or [b, c]


def _set_span(fs: dict[str, Any]) -> tuple[float, float]:
    points = [x for m in _set_params(fs) for x in _informative_points(m)]
    return min(points), max(points)


def _mutate_add_membership(d: dict[str, Any], ctx: _Context) -> str | None:
    ids = [k for k, fs in sorted(d["fuzzy_sets"].items()) if len(_set_params(fs)) < 7]
    if not ids:
        return None
    set_id = ctx.rng.choice(ids)
    fs = d["fuzzy_sets"][set_id]
    lo, hi = _set_span(fs)
    n = len(_set_params(fs))
    if hi <= lo:
        return None
    n_new = max(2, n + 1)
    shape = "gaussian" if all(m["type"] == "gaussian" for m in _set_params(fs)) else "triangular"
    d["fuzzy_sets"][set_id] = {"indicator": fs["indicator"], **_memberships(lo, hi, n_new, shape)}
    return f"fuzzy set {set_id} refined from {n} to {n_new} memberships"


def _mutate_network(d: dict[str, Any], ctx: _Context) -> str | None:
    arch = d["model"]["architecture"]
    what = ctx.rng.choice(("hidden_layers", "dropout", "learning_rate"))
    if what == "hidden_layers":
        old = arch.get("hidden_layers")
        arch["hidden_layers"] = list(ctx.rng.choice([h for h in HIDDEN_LAYERS if h != old]))
        return f"hidden layers {old} -> {arch['hidden_layers']}"
    if what == "dropout":
        old = arch.get("dropout")
        arch["dropout"] = ctx.rng.choice([x for x in DROPOUTS if x != old])
        return f"dropout {old} -> {arch['dropout']}"
    old = d["training"].get("learning_rate")
    d["training"]["learning_rate"] = ctx.rng.choice([x for x in LEARNING_RATES if x != old])
    return f"learning rate {old} -> {d['training']['learning_rate']}"


def _mutate_labels(d: dict[str, Any], ctx: _Context) -> str | None:
    old = d["training"]["labels"]
    tf = d["training_data"]["timeframes"][0]
    sigma = _spec_sigma(d, ctx)
    mode = ctx.steer.label_mode
    if ctx.rng.random() < 0.4:
        source = "forward_return" if old["source"] == "zigzag" else "zigzag"
    else:
        source = old["source"]
    new = _labels(ctx.rng, tf, sigma, mode, source)
    if new == old:
        return None
    d["training"]["labels"] = new
    return f"labels {describe_labels(old)} -> {describe_labels(new)}"


def _mutate_decisions(d: dict[str, Any], ctx: _Context) -> str | None:
    old = (d.get("decisions") or {}).get("confidence_threshold") or None
    section = decisions(ctx.extra_rng, d["training"]["labels"], ctx.steer.label_mode, old)
    new = section["confidence_threshold"] if section else None
    if new == old:
        return None
    d.pop("decisions", None)
    if section:
        d["decisions"] = section
    return f"confidence threshold {old or 'none'} -> {new or 'none'}"


def _mutate_symbols(d: dict[str, Any], ctx: _Context) -> str | None:
    symbols: list[str] = d["training_data"]["symbols"]
    timeframes = d["training_data"]["timeframes"]
    # only symbols available on every timeframe of the spec
    common = set.intersection(*(set(ctx.by_timeframe.get(tf, ())) for tf in timeframes))
    candidates = sorted(common - set(symbols))
    same = [s for s in candidates if asset_class(s) == asset_class(symbols[0])]
    if candidates and len(symbols) < MAX_SYMBOLS and (len(symbols) == 1 or ctx.rng.random() < 0.6):
        added = ctx.rng.choice(same or candidates)
        symbols.append(added)
        d["backtest"] = market_costs(symbols)
        return f"added {added}"
    if len(symbols) > 1:
        removable = [s for s in symbols if s not in ctx.brief.symbols] or symbols
        removed = ctx.rng.choice(removable)
        symbols.remove(removed)
        d["backtest"] = market_costs(symbols)
        return f"removed {removed}"
    return None


def _mutate_add_indicator(d: dict[str, Any], ctx: _Context) -> str | None:
    if len(d["indicators"]) >= 6 or len(d["fuzzy_sets"]) >= 29:
        return None
    present = {v["type"] for v in d["indicators"].values()}
    options: list[tuple[str, str | None]] = []
    if ctx.steer.volatility and not _has_volatility(d):
        options = [(k, o) for k, o in (("atr", "value"), ("bbands", "width")) if k not in present]
    elif ctx.steer.trend_filter and "adx" not in present:
        options = [("adx", "value")]
    options = options or [(k, None) for k in sorted(CATALOG) if k not in present]
    if not options:
        return None
    kind, output = ctx.rng.choice(options)
    ind_id = _add_indicator(d, kind, ctx.rng, _spec_sigma(d, ctx), output)
    return f"added {ind_id}"


def _mutate_remove_indicator(d: dict[str, Any], ctx: _Context) -> str | None:
    if len(d["indicators"]) < 2:
        return None
    protected = set(ctx.brief.indicators)
    ids = [k for k, v in sorted(d["indicators"].items()) if v["type"] not in protected]
    if not ids:
        return None
    ind_id = ctx.rng.choice(ids)
    gone = {s for s, fs in d["fuzzy_sets"].items() if fs["indicator"].partition(".")[0] == ind_id}
    inputs = [i for i in d["nn_inputs"] if i["fuzzy_set"] not in gone]
    if not inputs:
        return None
    del d["indicators"][ind_id]
    d["fuzzy_sets"] = {k: v for k, v in d["fuzzy_sets"].items() if k not in gone}
    d["nn_inputs"] = inputs
    return f"removed {ind_id}"


def _mutate_epochs(d: dict[str, Any], ctx: _Context) -> str | None:
    old = d["training"].get("epochs")
    d["training"]["epochs"] = ctx.rng.choice([e for e in EPOCHS if e != old])
    return f"epochs {old} -> {d['training']['epochs']}"


_MUTATIONS: tuple[tuple[_Mutation, float], ...] = (
    (_mutate_period, 3.0),
    (_mutate_shift_fuzzy, 2.0),
    (_mutate_add_membership, 1.0),
    (_mutate_network, 2.0),
    (_mutate_labels, 2.0),
    (_mutate_decisions, 1.0),
    (_mutate_symbols, 1.5),
    (_mutate_add_indicator, 1.0),
    (_mutate_remove_indicator, 1.0),
    (_mutate_epochs, 0.5),
)


def _mutation_weights(ctx: _Context) -> list[float]:
    weights = []
    for fn, w in _MUTATIONS:
        if fn in (_mutate_labels, _mutate_decisions) and ctx.steer.labels_steered:
            w *= 3  # the labels, and how sure a position must be, are what they point at
        if fn is _mutate_add_indicator and (ctx.steer.volatility or ctx.steer.trend_filter):
            w *= 3
        if ctx.steer.no_edge:  # other inputs rather than tuning these
            if fn in (_mutate_add_indicator, _mutate_remove_indicator):
                w *= 3
            elif fn in (
                _mutate_period,
                _mutate_shift_fuzzy,
                _mutate_add_membership,
                _mutate_network,
                _mutate_epochs,
            ):
                w *= 0.5
        weights.append(w)
    return weights


def _mutate(record: ResearchRecord, ctx: _Context) -> tuple[dict[str, Any], list[str]] | None:
    assert record.spec is not None
    d = copy.deepcopy(record.spec.to_dict())
    if not _restrict_to_available(d, ctx):
        return None
    changes: list[str] = []
    n = 2 if ctx.rng.random() < 0.3 else 1
    weights = _mutation_weights(ctx)
    for _ in range(n * 3):  # some mutations do not apply to every spec
        fn = ctx.rng.choices([m for m, _ in _MUTATIONS], weights=weights)[0]
        change = fn(d, ctx)
        if change:
            changes.append(change)
        if len(changes) >= n:
            break
    if not changes:
        return None
    d["hypothesis"] = (
        f"A variation of {record.spec.name} ({'; '.join(changes)}) does better than its "
        f"{_skill(record)}."
    )[:2000]
    return d, changes


def _skill(record: ResearchRecord) -> str:
    """``Sharpe 1.20 (excess +0.40 over buy & hold)``: what the record is ranked by."""
    excess = record.excess_sharpe
    over = f" (excess {excess:+.2f} over buy & hold)" if excess is not None else ""
    return f"Sharpe {record.sharpe:.2f}{over}"


def _restrict_to_available(d: dict[str, Any], ctx: _Context) -> bool:
    """Keep only symbols and timeframes that have data; False when nothing is left."""
    td = d["training_data"]
    timeframes = [tf for tf in td["timeframes"] if tf in ctx.by_timeframe]
    for tf in timeframes:
        symbols = [s for s in td["symbols"] if s in ctx.by_timeframe[tf]]
        if symbols:
            # every symbol must have data on every timeframe kept
            keep = [t for t in timeframes if all(s in ctx.by_timeframe[t] for s in symbols)]
            td["symbols"], td["timeframes"] = symbols, keep
            return True
    return False
