"""The offline designer: valid, seeded, novel designs that learn from memory and follow briefs."""

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest

from research_assets.core import design_steering
from research_assets.core.designer import (
    EPOCHS,
    HIDDEN_LAYERS,
    Design,
    Designer,
    DesignRequest,
    OfflineDesigner,
    asset_class,
    bar_sigma,
    dataset_sigma,
    macd_line_scale,
    offline,
    volatility,
)
from research_assets.core.designer.blocks import _Context
from research_assets.core.designer.brief import _Brief
from research_assets.core.designer.mutate import _mutate_period, _set_span
from research_assets.core.designer.offline import _combo
from research_assets.core.errors import DataError
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec, check_safe_name


@dataclass(frozen=True)
class DS:
    """A stand-in for ``data.DatasetInfo``: the designer reads only symbol and timeframe."""

    symbol: str
    timeframe: str


BUNDLED = [
    DS(s, tf)
    for s, tf in [
        ("EURUSD", "1h"), ("BTCUSD", "1h"), ("BTCUSD", "1d"), ("AAPL", "1d"), ("IBM", "1d"),
        ("MSFT", "1d"), ("GOOG", "1d"), ("SP500", "1d"), ("NASDAQ", "1d"),
    ]
]  # fmt: skip
AVAILABLE = {(d.symbol, d.timeframe) for d in BUNDLED}
EXAMPLE = StrategySpec.from_yaml(EXAMPLE_YAML)
D = OfflineDesigner()


def design(seed: int, memory: ResearchMemory | None = None, brief: str | None = None,
           datasets=BUNDLED) -> Design:  # fmt: skip
    return D.design(DesignRequest(f"r{seed}", seed, brief), memory or ResearchMemory(), datasets)


def completed(rid: str, spec: StrategySpec, sharpe: float, t: float = 0.0) -> ResearchRecord:
    return ResearchRecord(rid, "completed", t, spec, backtest={"Sharpe Ratio": sharpe},
                          verdict="neutral")  # fmt: skip


def rejected(rid: str, spec: StrategySpec, reason: str, t: float = 0.0) -> ResearchRecord:
    gate = "training_gate" if reason in TRAINING_REASONS else "backtest_gate"
    return ResearchRecord(rid, "rejected", t, spec, rejected_by=gate, rejection_reason=reason)


TRAINING_REASONS = (
    "accuracy_below_threshold",
    "loss_too_high",
    "insufficient_loss_decrease",
    "no_accuracy_lift",
    "loss_above_baseline",
)


def types(spec: StrategySpec) -> set[str]:
    return {i.type for i in spec.indicators.values()}


def has_volatility_input(spec: StrategySpec) -> bool:
    for set_id in spec.fuzzy_sets:
        ind_id, _, output = spec.indicator_column(set_id).partition(".")
        kind = spec.indicators[ind_id].type
        if kind == "atr" or (kind == "bbands" and output == "width"):
            return True
    return False


def check_spec(spec: StrategySpec, available=AVAILABLE) -> None:
    assert StrategySpec.from_yaml(spec.to_yaml()) == spec
    assert check_safe_name(spec.name, "name") == spec.name
    assert spec.name.endswith("_" + spec.fingerprint()[:6])
    for s in spec.training_data.symbols:
        for tf in spec.training_data.timeframes:
            assert (s, tf) in available


def mixed_memory() -> ResearchMemory:
    """A history with completed researches of different quality and some rejections."""
    records = [completed("best", EXAMPLE, 1.6, t=1.0)]
    for i in range(5):
        spec = design(900 + i).spec
        if i < 2:
            records.append(completed(f"c{i}", spec, 0.2 * i, t=2.0 + i))
        else:
            records.append(rejected(f"x{i}", spec, "win_rate_too_low", t=2.0 + i))
    return ResearchMemory(records)


# -- validity, determinism ---------------------------------------------------------------------


def test_valid_specs_across_200_seeds_without_memory():
    for seed in range(200):
        d = design(seed)
        check_spec(d.spec)
        assert len(d.spec.training_data.timeframes) == 1
        assert d.spec.model.architecture.hidden_layers in HIDDEN_LAYERS
        assert d.spec.training.epochs in EPOCHS and 20 <= d.spec.training.epochs <= 60
        assert len(d.spec.training_data.symbols) <= 4
        assert d.designer == "offline"
        assert d.usage == {"input_tokens": 0, "output_tokens": 0}
        assert d.rationale


def test_valid_specs_across_200_seeds_with_memory():
    memory = mixed_memory()
    for seed in range(200):
        check_spec(design(seed, memory).spec)


def test_deterministic_for_the_same_seed_and_memory():
    memory = mixed_memory()
    for seed in (0, 1, 17, 123):
        a, b = design(seed, memory), design(seed, memory)
        assert a.spec == b.spec and a.rationale == b.rationale


def test_different_seeds_give_different_designs():
    assert len({design(seed).spec.fingerprint() for seed in range(50)}) == 50


def test_independent_of_global_random_state():
    import random

    random.seed(1)
    a = design(5).spec
    random.seed(2)
    assert design(5).spec == a


def test_satisfies_the_designer_protocol():
    designer: Designer = D
    assert designer.name == "offline"


# -- datasets ----------------------------------------------------------------------------------


def test_uses_only_available_datasets():
    datasets = [DS("EURUSD", "1h"), DS("GOOG", "1d")]
    allowed = {(d.symbol, d.timeframe) for d in datasets}
    for seed in range(100):
        check_spec(design(seed, datasets=datasets).spec, allowed)


def test_exploited_record_with_missing_data_is_restricted_to_what_exists():
    data = EXAMPLE.to_dict()
    data["training_data"]["symbols"] = ["EURUSD", "GBPUSD"]  # no GBPUSD data
    memory = ResearchMemory([completed("best", StrategySpec.from_dict(data), 2.0)])
    for seed in range(60):
        check_spec(design(seed, memory).spec)


def test_no_datasets_is_a_clear_error():
    with pytest.raises(DataError, match="no market data is available"):
        design(0, datasets=[])


def test_works_with_the_real_dataset_list():
    from research_assets.core.data import list_datasets

    datasets = list_datasets()
    allowed = {(d.symbol, d.timeframe) for d in datasets}
    for seed in range(20):
        check_spec(design(seed, datasets=datasets).spec, allowed)


def test_label_thresholds_suit_the_timeframe():
    fx, btc_daily = [], []
    for seed in range(200):
        spec = design(seed).spec
        labels = spec.training.labels
        if labels.source != "zigzag":
            continue
        if spec.training_data.symbols == ["EURUSD"]:
            fx.append(labels.threshold)
        if spec.training_data.symbols == ["BTCUSD"] and spec.training_data.timeframes == ["1d"]:
            btc_daily.append(labels.threshold)
    assert fx and btc_daily
    assert max(fx) < 0.01  # hourly EUR/USD moves about 0.1% a bar
    assert min(btc_daily) > 0.03  # daily BTC moves about 4% a bar


def test_asset_classes_and_sigma():
    assert [asset_class(s) for s in ("EURUSD", "BTCUSD", "SP500", "AAPL")] == [
        "fx", "crypto", "index", "stock",
    ]  # fmt: skip
    assert bar_sigma(["EURUSD"], "1h") == pytest.approx(0.005 * math.sqrt(1 / 24))
    assert bar_sigma(["BTCUSD"], "1d") > bar_sigma(["BTCUSD"], "1h")


def test_fx_designs_get_fx_costs():
    for seed in range(100):
        spec = design(seed).spec
        if spec.training_data.symbols == ["EURUSD"]:
            assert spec.backtest.commission < 0.001
            return
    pytest.fail("no EURUSD design in 100 seeds")


# -- volatility measured from the data ---------------------------------------------------------


def _write(directory, kind: str, sigma: float, symbols=("AAPL",), seed: int = 0) -> list:
    """Synthetic daily bars of per-bar volatility ``sigma`` under ``symbols``; their datasets."""
    from research_assets.core.data import list_datasets
    from research_assets.core.synthetic import SyntheticMarket, write_market_data

    write_market_data(
        directory, kind, seed, symbols=symbols, market=SyntheticMarket(bars=2000, sigma=sigma)
    )
    return list_datasets(directory)


def _multiplier(spec: StrategySpec, sigma: float) -> float:
    return spec.training.labels.threshold / (sigma * math.sqrt(spec.label_horizon))


def test_volatility_is_measured_from_the_bars_not_guessed_from_the_name(tmp_path):
    # "AAPL" and "IBM" look like stocks (2% a day); these bars move 0.5% a day
    datasets = _write(tmp_path, "noise", 0.005, symbols=("AAPL", "IBM"))
    assert bar_sigma(["AAPL"], "1d") == 0.02
    for info in datasets:
        assert dataset_sigma(info) == pytest.approx(0.005, rel=0.05)
    thresholds = 0
    for seed in range(60):
        d = design(seed, datasets=datasets)
        spec = d.spec
        assert "measured on the bars before the lockbox" in d.rationale
        labels = spec.training.labels
        if labels.threshold:  # the multipliers of the table, of the measured sigma
            thresholds += 1
            table = (
                design_steering.ZIGZAG_M
                if labels.source == "zigzag"
                else design_steering.DEADZONE_D
            )
            m = _multiplier(spec, 0.005)
            assert min(abs(m - x) for x in table) < 0.08 * m, (labels, m)
    assert thresholds >= 10


def test_zigzag_labels_are_not_mostly_flat_on_any_market(tmp_path):
    """With the volatility measured, unsteered zigzag labels leave flat a minority class on a
    random walk, whatever its scale and name (a guess 1.3 times too large made most bars flat)."""
    from research_assets.core.data import load_bars
    from research_assets.core.labels import FLAT, make_labels

    checked = 0
    for sigma, symbol in ((0.004, "AAPL"), (0.03, "EURUSD")):
        datasets = _write(tmp_path / symbol, "noise", sigma, symbols=(symbol,))
        bars = load_bars(symbol, "1d", tmp_path / symbol)
        for seed in range(60):
            spec = design(seed, datasets=datasets).spec
            if spec.training.labels.source != "zigzag":
                continue
            labels = make_labels(bars, spec.training.labels).dropna()
            flat = float((labels == FLAT).mean())
            assert flat < 0.5, (spec.training.labels, flat)
            checked += 1
    assert checked >= 10


def test_volatility_never_reads_the_lockbox(tmp_path, monkeypatch):
    from research_assets.core.data import list_datasets
    from research_assets.core.synthetic import SyntheticMarket, synthetic_bars

    bars = synthetic_bars("noise", 0, SyntheticMarket(bars=2000, sigma=0.01))
    r = np.diff(np.log(bars["close"].to_numpy()), prepend=np.log(bars["close"].iloc[0]))
    n_lock = round(len(bars) * 0.15)
    r[-n_lock:] *= 10  # the newest 15% (the default lockbox) is ten times as volatile
    close = np.exp(np.cumsum(r))
    opens = np.concatenate([[close[0]], close[:-1]])
    frame = bars.assign(
        open=opens,
        close=close,
        high=np.maximum(opens, close) * 1.001,
        low=np.minimum(opens, close) * 0.999,
    )
    frame.reset_index().to_parquet(tmp_path / "WILD_1d.parquet", index=False)
    (info,) = list_datasets(tmp_path)
    assert np.std(np.diff(np.log(close))) > 0.03  # over every bar, the lockbox dominates
    assert dataset_sigma(info) == pytest.approx(0.01, rel=0.05)
    monkeypatch.setenv("RESEARCH_LOCKBOX_FRACTION", "0.3")  # more held back: still calm
    assert dataset_sigma(info) == pytest.approx(0.01, rel=0.05)
    # a spec's date range: its own lockbox is the newest 15% of the bars in the range
    monkeypatch.delenv("RESEARCH_LOCKBOX_FRACTION")
    start, end = bars.index[0].date(), bars.index[int(len(bars) * 0.6)].date()
    assert dataset_sigma(info, start, end) == pytest.approx(0.01, rel=0.05)


def test_volatility_falls_back_to_the_name_when_the_bars_cannot_be_read(tmp_path):
    datasets = _write(tmp_path, "noise", 0.005, symbols=("AAPL",))
    (info,) = datasets
    info.path.unlink()  # listed, then gone
    assert dataset_sigma(info) is None
    assert dataset_sigma(DS("AAPL", "1d")) is None  # no file at all
    d = design(0, datasets=datasets)
    assert "guessed from the symbols' names" in d.rationale
    check_spec(d.spec, {("AAPL", "1d")})
    # too few bars before the lockbox to measure: guessed too
    (info,) = _write(tmp_path / "short", "noise", 0.005, symbols=("IBM",))
    assert dataset_sigma(info, None, info.start.date() + timedelta(days=40)) is None
    assert dataset_sigma(info) == pytest.approx(0.005, rel=0.05)


def test_designs_on_the_real_data_are_fast_and_deterministic():
    import time

    from research_assets.core.data import list_datasets

    datasets = list_datasets()
    volatility._measured_sigma.cache_clear()
    started = time.perf_counter()
    first = design(7, datasets=datasets)
    assert time.perf_counter() - started < 1.0  # every dataset measured, well under a second
    assert design(7, datasets=datasets) == first
    assert "measured on the bars before the lockbox" in first.rationale


# -- MACD reads its line ------------------------------------------------------------------------


def _macd_sets(spec: StrategySpec) -> list[tuple[str, str]]:
    out = []
    for set_id in spec.fuzzy_sets:
        ind_id, _, output = spec.indicator_column(set_id).partition(".")
        if spec.indicators[ind_id].type == "macd":
            out.append((ind_id, output or "hist"))
    return out


def test_macd_inputs_read_the_line_never_the_histogram_alone():
    found = []
    for seed in range(200):
        spec = design(seed).spec
        found += _macd_sets(spec)
    assert found and all(output == "macd" for _, output in found)


def test_macd_line_scale_matches_the_line_on_a_random_walk():
    from research_assets.core.indicators import compute_indicators
    from research_assets.core.spec import IndicatorSpec
    from research_assets.core.synthetic import synthetic_bars

    bars = synthetic_bars("noise", 1, bars=20000)
    sigma = float(np.std(np.diff(np.log(bars["close"].to_numpy()))))
    for fast, slow in ((8, 17), (12, 26), (5, 35)):
        ind = IndicatorSpec.model_validate(
            {"type": "macd", "fast_period": fast, "slow_period": slow, "signal_period": 9}
        )
        line = compute_indicators(bars, {"m": ind})["m.macd"].dropna()
        assert float(line.std()) / sigma == pytest.approx(macd_line_scale(fast, slow), rel=0.15)


def test_period_mutation_rescales_the_macd_line_sets():
    import random

    data = EXAMPLE.to_dict()
    data["indicators"] = {
        "macd_12_26_9": {"type": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9}
    }
    data["fuzzy_sets"] = {
        "macd_12_26_9_macd": {
            "indicator": "macd_12_26_9.macd",
            "low": {"type": "triangular", "parameters": [-0.02, -0.02, 0]},
            "high": {"type": "triangular", "parameters": [0, 0.02, 0.02]},
        }
    }
    data["nn_inputs"] = [{"fuzzy_set": "macd_12_26_9_macd"}]
    ctx = _Context(random.Random(1), {"1h": ["EURUSD"]}, design_steering.Steer(), _Brief())
    assert _mutate_period(data, ctx)
    ((new_id, params),) = data["indicators"].items()
    ((set_id, fs),) = data["fuzzy_sets"].items()
    expected = (
        0.02
        * macd_line_scale(params["fast_period"], params["slow_period"])
        / (macd_line_scale(12, 26))
    )
    assert fs["high"]["parameters"][1] == pytest.approx(expected, rel=1e-3)
    StrategySpec.from_dict(data)


# -- novelty -----------------------------------------------------------------------------------


def test_never_repeats_a_fingerprint_in_memory():
    # memory holds exactly what these seeds would design with no memory
    previous = [design(seed).spec for seed in range(40)]
    memory = ResearchMemory(
        [completed(f"c{i}", s, 0.5 + i / 100, t=float(i)) for i, s in enumerate(previous)]
    )
    seen = memory.fingerprints()
    for seed in range(40):
        assert design(seed, memory).spec.fingerprint() not in seen


def test_running_researches_are_not_repeated_either():
    spec = design(3).spec
    memory = ResearchMemory([ResearchRecord("run", "running", 1.0, spec)])
    assert design(3, memory).spec.fingerprint() != spec.fingerprint()


def test_falls_back_to_a_new_seed_when_every_design_was_tried(monkeypatch):
    fixed = EXAMPLE.to_dict()
    monkeypatch.setattr(offline, "_explore", lambda ctx: (dict(fixed), "fixed"))
    memory = ResearchMemory([ResearchRecord("old", "completed", 1.0, EXAMPLE)])
    d = design(0, memory)
    assert d.spec.fingerprint() not in memory.fingerprints()
    assert d.spec.training.seed != EXAMPLE.training.seed
    assert "new seed" in d.rationale


def test_avoids_rejected_combinations():
    previous = [design(seed).spec for seed in range(100)]
    memory = ResearchMemory(
        [rejected(f"x{i}", s, "sharpe_too_low", float(i)) for i, s in enumerate(previous)]
    )
    blocked = {_combo(s) for s in previous}
    for seed in range(100, 160):
        assert _combo(design(seed, memory).spec) not in blocked


# -- exploitation ------------------------------------------------------------------------------


def _shares_best(spec: StrategySpec) -> bool:
    return "EURUSD" in spec.training_data.symbols and bool(types(spec) & {"rsi", "sma"})


def test_exploits_the_best_completed_record():
    worse = design(901).spec
    memory = ResearchMemory([completed("best", EXAMPLE, 1.6, 2.0), completed("w", worse, 0.1)])
    with_memory = [design(seed, memory) for seed in range(200)]
    baseline = sum(_shares_best(design(seed).spec) for seed in range(200)) / 200
    share = sum(_shares_best(d.spec) for d in with_memory) / 200
    assert share > baseline + 0.25
    exploits = [d for d in with_memory if d.rationale.startswith("Exploits")]
    assert 0.45 < len(exploits) / 200 < 0.75  # about 60% exploit
    from_best = [d for d in exploits if "research best" in d.rationale]
    assert len(from_best) > len(exploits) - len(from_best)  # the best is picked most
    assert all("1.60" in d.rationale for d in from_best)


def test_exploit_changes_are_small():
    memory = ResearchMemory([completed("best", EXAMPLE, 1.6)])
    for seed in range(100):
        d = design(seed, memory)
        if not d.rationale.startswith("Exploits"):
            continue
        spec = d.spec
        assert spec.fingerprint() != EXAMPLE.fingerprint()
        # one or two mutations: most of the original survives
        same = sum(
            [
                spec.training_data == EXAMPLE.training_data,
                spec.model == EXAMPLE.model,
                spec.training.labels == EXAMPLE.training.labels,
                spec.fuzzy_sets == EXAMPLE.fuzzy_sets,
                spec.indicators == EXAMPLE.indicators,
                spec.training.epochs == EXAMPLE.training.epochs,
            ]
        )
        assert same >= 3


def test_no_completed_research_means_explore():
    memory = ResearchMemory([rejected("x", EXAMPLE, "loss_too_high")])
    for seed in range(20):
        assert design(seed, memory).rationale.startswith("Explores")


def test_fuzzy_set_span_ignores_open_shoulders():
    trend = EXAMPLE.to_dict()["fuzzy_sets"]["trend"]
    assert _set_span(trend) == (-0.005, 0.005)
    rsi = EXAMPLE.to_dict()["fuzzy_sets"]["rsi_zone"]
    assert _set_span(rsi) == (0, 100)


def test_period_mutation_keeps_ids_honest():
    memory = ResearchMemory([completed("best", EXAMPLE, 1.6)])
    for seed in range(200):
        spec = design(seed, memory).spec
        for ind_id, ind in spec.indicators.items():
            if ind_id.startswith(("rsi_", "sma_")) and ind.type in ("rsi", "sma"):
                assert ind_id == f"{ind.type}_{ind.params['period']}"


# -- learning from rejections ------------------------------------------------------------------


def _rejections(reason: str, n: int = 4) -> ResearchMemory:
    return ResearchMemory(
        [rejected(f"x{i}", design(800 + i).spec, reason, float(i)) for i in range(n)]
    )


def _explored(memory: ResearchMemory, n: int = 80) -> list[StrategySpec]:
    return [design(seed, memory).spec for seed in range(n)]


def _two_class(spec: StrategySpec) -> bool:
    labels = spec.training.labels
    return labels.source == "forward_return" and labels.threshold == 0


@pytest.mark.parametrize("reason", TRAINING_REASONS[:3])
def test_training_rejections_ask_for_two_class_labels(reason):
    steered = _explored(_rejections(reason))
    baseline = _explored(ResearchMemory())
    assert all(map(_two_class, steered))
    assert sum(map(_two_class, baseline)) < len(baseline) * 0.7


def test_win_rate_rejections_ask_for_longer_horizons():
    steered = _explored(_rejections("win_rate_too_low"))
    baseline = _explored(ResearchMemory())
    assert all(map(_two_class, steered))
    for spec in steered:
        horizons = design_steering.HORIZONS[spec.training_data.timeframes[0]]
        assert spec.label_horizon in horizons[len(horizons) // 2 :]
    horizon = sum(s.label_horizon for s in steered) / len(steered)
    assert horizon > sum(s.label_horizon for s in baseline) / len(baseline)


def test_unsteered_designs_explore_both_label_sources():
    sources = {design(seed).spec.training.labels.source for seed in range(40)}
    assert sources == {"zigzag", "forward_return"}


def test_drawdown_rejections_add_a_volatility_input():
    steered = _explored(_rejections("drawdown_too_high"))
    baseline = _explored(ResearchMemory())
    assert all(has_volatility_input(s) for s in steered)
    assert sum(map(has_volatility_input, baseline)) < len(baseline) * 0.7


def test_sharpe_rejections_add_a_trend_filter():
    steered = _explored(_rejections("sharpe_too_low"))
    assert all("adx" in types(s) for s in steered)


def test_steering_is_explained_in_the_rationale():
    d = design(0, _rejections("drawdown_too_high"))
    assert "4 drawdown_too_high" in d.rationale
    assert "volatility input" in d.rationale


def test_a_single_old_rejection_does_not_dominate_a_long_history():
    memory = ResearchMemory(
        [rejected("old", design(700).spec, "drawdown_too_high", 0.0)]
        + [rejected(f"x{i}", design(800 + i).spec, "loss_too_high", 1.0 + i) for i in range(10)]
    )
    steer = design_steering.Steer.from_memory(memory)
    assert steer.easier_labels and not steer.volatility


# -- briefs ------------------------------------------------------------------------------------


def test_brief_names_symbol_timeframe_indicator_and_style():
    brief = "Look for a volatility breakout on daily bitcoin using Bollinger bands"
    for seed in range(40):
        d = design(seed, brief=brief)
        spec = d.spec
        assert spec.training_data.symbols == ["BTCUSD"]
        assert spec.training_data.timeframes == ["1d"]
        assert "bbands" in types(spec)
        assert spec.description.startswith("volatility design")
        assert "The brief asked for BTCUSD; 1d; bbands; volatility." in d.rationale


def test_brief_with_several_stocks_and_mean_reversion():
    brief = "mean reversion with RSI on AAPL and MSFT"
    for seed in range(40):
        spec = design(seed, brief=brief).spec
        assert set(spec.training_data.symbols) == {"AAPL", "MSFT"}
        assert "rsi" in types(spec)
        assert types(spec) & {"rsi", "stoch", "willr", "cci", "bbands", "mfi"}


def test_brief_trend_biases_indicator_choice():
    trend = {"sma", "ema", "macd", "adx", "roc"}
    with_brief = [design(seed, brief="a trend following idea").spec for seed in range(60)]
    assert all(types(s) & trend for s in with_brief)
    assert all(s.description.startswith("trend design") for s in with_brief)


def test_brief_restricts_exploitation_to_compatible_records():
    # the best record trades EURUSD; a BTCUSD brief must not mutate it
    memory = ResearchMemory([completed("best", EXAMPLE, 1.6)])
    for seed in range(40):
        d = design(seed, memory, brief="BTCUSD hourly")
        assert d.spec.training_data.symbols == ["BTCUSD"]
        assert not d.rationale.startswith("Exploits")


def test_brief_compatible_record_is_exploited():
    memory = ResearchMemory([completed("best", EXAMPLE, 1.6)])
    rationales = [
        design(seed, memory, brief="more EURUSD with rsi").rationale for seed in range(40)
    ]
    assert any(r.startswith("Exploits") for r in rationales)


def test_unknown_brief_words_change_nothing():
    assert design(4, brief="something entirely different").spec == design(4).spec


def test_fuzzy_sets_are_meaningful_on_the_bundled_data():
    """Sets are scaled to each market: nearly every membership is active on some bars."""
    from research_assets.core.data import list_datasets, load_bars
    from research_assets.core.features import fuzzy_features
    from research_assets.core.indicators import compute_indicators

    datasets = list_datasets()
    bars: dict[tuple[str, str], object] = {}
    active = total = 0
    for seed in range(20):
        spec = design(seed, datasets=datasets).spec
        for symbol in spec.training_data.symbols:
            key = (symbol, spec.training_data.timeframes[0])
            if key not in bars:
                bars[key] = load_bars(*key)
            features = fuzzy_features(spec, compute_indicators(bars[key], spec.indicators))
            share = (features.dropna() > 0.5).mean()
            active += int((share > 0.02).sum())
            total += len(share)
    assert active / total > 0.9


def test_period_mutation_renames_sets_and_rescales_price_relative_memberships():
    import random

    data = EXAMPLE.to_dict()
    data["indicators"] = {"sma_20": {"type": "sma", "period": 20}}
    data["fuzzy_sets"] = {
        "sma_20": {
            "indicator": "sma_20",
            "near": {"type": "triangular", "parameters": [-0.01, 0, 0.01]},
        }
    }
    data["nn_inputs"] = [{"fuzzy_set": "sma_20"}]
    ctx = _Context(random.Random(0), {"1h": ["EURUSD"]}, design_steering.Steer(), _Brief())
    assert _mutate_period(data, ctx)
    (new_id,) = data["indicators"]
    period = data["indicators"][new_id]["period"]
    assert new_id == f"sma_{period}" != "sma_20"
    assert list(data["fuzzy_sets"]) == [new_id]
    assert data["nn_inputs"] == [{"fuzzy_set": new_id}]
    edge = data["fuzzy_sets"][new_id]["near"]["parameters"][2]
    assert edge == pytest.approx(0.01 * math.sqrt(period / 20), rel=1e-3)
    StrategySpec.from_dict(data)


# -- steering by the significance and benchmark gates -------------------------------------------


def _horizon_share(specs: list[StrategySpec], half: str) -> float:
    """The share of specs whose label horizon is in the shorter or longer half of the table."""
    count = 0
    for spec in specs:
        horizons = design_steering.HORIZONS[spec.training_data.timeframes[0]]
        short = horizons[: (len(horizons) + 1) // 2]
        count += (spec.label_horizon in short) == (half == "short")
    return count / len(specs)


def _threshold_in_sigmas(spec: StrategySpec) -> float:
    """The label threshold over sigma * sqrt(horizon): the multiplier the designer drew."""
    sigma = bar_sigma(spec.training_data.symbols, spec.training_data.timeframes[0])
    return spec.training.labels.threshold / (sigma * math.sqrt(spec.label_horizon))


def test_too_few_trades_asks_for_shorter_horizons_and_smaller_thresholds():
    steered = _explored(_rejections("too_few_trades"))
    baseline = _explored(ResearchMemory())
    assert _horizon_share(steered, "short") == 1.0
    assert _horizon_share(baseline, "short") < 0.8
    for spec in steered:
        labels = spec.training.labels
        if labels.source == "forward_return":
            assert labels.threshold == 0  # no dead zone: never flat, so never out of a trade
        else:  # zigzag thresholds of 0.35-0.5 sigmas, where unsteered ones are 0.5-0.8
            assert _threshold_in_sigmas(spec) < 0.65
    steer = design_steering.Steer.from_memory(_rejections("too_few_trades"))
    assert steer.more_trades and steer.label_mode == "more_trades"
    assert (
        "more trades (shorter horizons, smaller label thresholds)"
        in design(0, _rejections("too_few_trades")).rationale
    )


def test_no_edge_over_buy_and_hold_asks_for_a_flat_class():
    steered = _explored(_rejections("no_edge_over_benchmark"))
    for spec in steered:
        labels = spec.training.labels
        if labels.source == "forward_return":  # a dead zone of 0.25-0.5 sigmas
            assert 0.2 < _threshold_in_sigmas(spec) < 0.6
        else:  # only moves of 1-1.3 sigmas are up or down: flat is common
            assert _threshold_in_sigmas(spec) > 0.9
    baseline = _explored(ResearchMemory())
    no_zone = [s for s in baseline if _two_class(s)]
    assert len(no_zone) > len(baseline) * 0.3  # unsteered, two-class labels are common
    d = design(0, _rejections("no_edge_over_benchmark"))
    assert "less market exposure" in d.rationale


@pytest.mark.parametrize(
    "reason", ["no_edge_over_random", "not_significant", "no_accuracy_lift", "loss_above_baseline"]
)
def test_no_real_edge_asks_for_other_inputs_rather_than_tuning(reason):
    # the rejected researches all used RSI and SMA
    stale = [rejected(f"x{i}", EXAMPLE, reason, float(i)) for i in range(4)]
    memory = ResearchMemory([*stale, completed("best", EXAMPLE, 1.6, 10.0)])
    steer = design_steering.Steer.from_memory(memory)
    assert steer.no_edge and dict(steer.stale_types) == {"rsi": 4, "sma": 4}
    assert steer.label_mode == "normal"  # the labels are not what these reasons point at
    designs = [design(seed, memory) for seed in range(200)]
    # explores more: about a quarter exploit, where about 60% do otherwise
    exploits = sum(d.rationale.startswith("Exploits") for d in designs)
    assert exploits / 200 < 0.4
    # fresh designs use the rejected researches' indicator types less often than unsteered ones
    fresh = [d.spec for d in designs if d.rationale.startswith("Explores")]
    unsteered = _explored(ResearchMemory(), 200)

    def share(specs: list[StrategySpec]) -> float:
        return sum(bool(types(s) & {"rsi", "sma"}) for s in specs) / len(specs)

    assert share(fresh) < share(unsteered) - 0.1
    assert "other inputs rather than tuning" in designs[0].rationale
    assert "fewer of rsi, sma" in designs[0].rationale


def test_no_real_edge_mutates_indicators_rather_than_their_parameters():
    memory = ResearchMemory(
        [
            *(
                rejected(f"x{i}", design(800 + i).spec, "not_significant", float(i))
                for i in range(4)
            ),
            completed("best", EXAMPLE, 1.6, 10.0),
        ]
    )
    plain = ResearchMemory([completed("best", EXAMPLE, 1.6, 10.0)])

    def indicator_changes(m: ResearchMemory) -> float:
        exploits = [
            d for seed in range(300) if (d := design(seed, m)).rationale.startswith("Exploits")
        ]
        return sum(types(d.spec) != types(EXAMPLE) for d in exploits) / len(exploits)

    assert indicator_changes(memory) > indicator_changes(plain) + 0.1


def test_the_label_group_with_most_rejections_wins():
    memory = ResearchMemory(
        [rejected(f"t{i}", design(800 + i).spec, "too_few_trades", float(i)) for i in range(3)]
        + [
            rejected(f"b{i}", design(850 + i).spec, "no_edge_over_benchmark", 10.0 + i)
            for i in range(5)
        ]
    )
    steer = design_steering.Steer.from_memory(memory)
    assert steer.more_trades and steer.stand_aside
    assert steer.label_mode == "stand_aside"
    tie = ResearchMemory(
        [rejected(f"t{i}", design(800 + i).spec, "too_few_trades", float(i)) for i in range(3)]
        + [rejected(f"w{i}", design(850 + i).spec, "win_rate_too_low", 10.0 + i) for i in range(3)]
    )
    assert design_steering.Steer.from_memory(tie).label_mode == "more_trades"


def test_steered_designs_are_deterministic_and_valid():
    memory = ResearchMemory(
        [
            rejected(f"x{i}", design(800 + i).spec, reason, float(i))
            for i, reason in enumerate(
                [
                    "too_few_trades",
                    "no_edge_over_benchmark",
                    "not_significant",
                    "no_edge_over_random",
                    "no_accuracy_lift",
                    "loss_above_baseline",
                ]
                * 2
            )
        ]
        + [completed("best", EXAMPLE, 1.6, 20.0)]
    )
    for seed in range(60):
        a, b = design(seed, memory), design(seed, memory)
        assert a.spec == b.spec and a.rationale == b.rationale
        check_spec(a.spec)


# -- memory: what designers read ----------------------------------------------------------------


def test_best_ranks_by_excess_sharpe_over_buy_and_hold():
    def done(rid: str, sharpe: float, **figures: float) -> ResearchRecord:
        return ResearchRecord(
            rid, "completed", 1.0, EXAMPLE, backtest={"Sharpe Ratio": sharpe, **figures}
        )

    memory = ResearchMemory(
        [
            done("riding", 1.9, **{"Excess Sharpe": 0.1}),  # high Sharpe, mostly the market's
            done("timing", 0.9, **{"Excess Sharpe": 0.7}),
            done("derived", 1.2, **{"Buy & Hold Sharpe Ratio": 0.8}),  # excess 0.4, from the two
            done("old", 2.5),  # an older report: no benchmark figures, ranked after
        ]
    )
    assert [r.research_id for r in memory.best(4)] == ["timing", "derived", "riding", "old"]
    assert memory.records[2].excess_sharpe == pytest.approx(0.4)
    assert memory.records[3].excess_sharpe is None
    nan = done("nan", 1.0, **{"Excess Sharpe": math.nan, "Buy & Hold Sharpe Ratio": math.nan})
    assert nan.excess_sharpe is None


def test_exploiting_quotes_the_excess_sharpe():
    best = ResearchRecord(
        "best", "completed", 1.0, EXAMPLE, backtest={"Sharpe Ratio": 1.6, "Excess Sharpe": 0.45}
    )
    exploits = [
        d
        for seed in range(20)
        if (d := design(seed, ResearchMemory([best]))).rationale.startswith("Exploits")
    ]
    assert exploits
    assert all(
        "backtest-period Sharpe 1.60 (excess +0.45 over buy & hold)" in d.rationale
        for d in exploits
    )


def test_a_record_carries_the_gate_description_and_the_new_figures():
    figures = {
        "Sharpe Ratio": 0.81234,
        "Excess Sharpe": -0.21234,
        "Excess Return [%]": -12.34567,
        "Buy & Hold Sharpe Ratio": 1.02468,
        "Deflated Sharpe Ratio": 0.61234,
        "p-value": 0.31234,
        "Beta": 0.94321,
    }
    record = ResearchRecord(
        "r1",
        "rejected",
        1.0,
        EXAMPLE,
        rejected_by="backtest_gate",
        rejection_reason="no_edge_over_benchmark",
        gate_description="excess Sharpe -0.2123 <= 0 (no_edge_over_benchmark); p-value 0.3123 > "
        "0.05 (no_edge_over_random)",
        training={"test_accuracy": 0.52, "accuracy_lift": 0.011, "loss_ratio": 0.991},
        backtest=figures,
    )
    d = record.to_prompt_dict()
    assert d["rejection_reason"] == "no_edge_over_benchmark"
    assert d["gate_description"].startswith("excess Sharpe -0.2123 <= 0")
    assert d["backtest"] == {k: round(v, 4) for k, v in figures.items()}
    assert d["training"]["accuracy_lift"] == 0.011
    # a completed research has no gate description
    ok = ResearchRecord("r2", "completed", 1.0, EXAMPLE, backtest=figures)
    assert "gate_description" not in ok.to_prompt_dict()


# -- decisions.confidence_threshold ----------------------------------------------------------


def _threshold(spec: StrategySpec) -> float | None:
    return spec.decisions.confidence_threshold if spec.decisions is not None else None


def test_explores_confidence_thresholds_suited_to_the_labels():
    specs = _explored(ResearchMemory(), 120)
    with_threshold = [s for s in specs if _threshold(s) is not None]
    assert 0.3 < len(with_threshold) / len(specs) < 0.7  # about half
    for spec in with_threshold:
        classes = 2 if _two_class(spec) else 3
        table = design_steering.CONFIDENCE[classes]
        assert _threshold(spec) in table  # above 1/2 for two classes, 1/3 for three
        # close to a coin flip: higher thresholds left models with a real edge without a trade
        assert 1 / classes < _threshold(spec) <= (0.55 if classes == 2 else 0.5)
    assert {2, 3} == {2 if _two_class(s) else 3 for s in with_threshold}
    d = design(0)
    assert (
        "positions only where the most probable class" in d.rationale
        or "positions from the most probable class" in d.rationale
    )


def test_confidence_threshold_follows_the_steering():
    # more trades: every bar trades its most probable class
    assert all(_threshold(s) is None for s in _explored(_rejections("too_few_trades"), 60))
    # less market exposure: always a threshold, from the upper values
    aside = _explored(_rejections("no_edge_over_benchmark"), 60)
    for spec in aside:
        table = design_steering.CONFIDENCE[2 if _two_class(spec) else 3]
        assert _threshold(spec) in table[1:]


def test_mutations_change_the_confidence_threshold():
    memory = ResearchMemory([completed("best", EXAMPLE, 1.6)])
    changed = [
        d for seed in range(300) if "confidence threshold" in (d := design(seed, memory)).rationale
    ]
    assert changed
    for d in changed:
        assert "confidence threshold none -> " in d.rationale
        assert _threshold(d.spec) in design_steering.CONFIDENCE[3]  # the example's zigzag labels
    best = ResearchRecord(
        "best",
        "completed",
        1.0,
        StrategySpec.from_dict({**EXAMPLE.to_dict(), "decisions": {"confidence_threshold": 0.6}}),
        backtest={"Sharpe Ratio": 1.6},
    )
    # too few trades: mutations remove the threshold
    steered = ResearchMemory([best, *_rejections("too_few_trades").records])
    removed = [
        d
        for seed in range(300)
        if "confidence threshold 0.6 -> none" in (d := design(seed, steered)).rationale
    ]
    assert removed and all(d.spec.decisions is None for d in removed)
