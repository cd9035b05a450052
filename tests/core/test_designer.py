"""The offline designer: valid, seeded, novel designs that learn from memory and follow briefs."""

import math
from dataclasses import dataclass

import pytest

from research_assets.core import designer as designer_mod
from research_assets.core.designer import (
    EPOCHS,
    HIDDEN_LAYERS,
    Design,
    Designer,
    DesignRequest,
    OfflineDesigner,
    _combo,
    _set_span,
    asset_class,
    bar_sigma,
)
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


TRAINING_REASONS = ("accuracy_below_threshold", "loss_too_high", "insufficient_loss_decrease")


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
    monkeypatch.setattr(designer_mod, "_explore", lambda ctx: (dict(fixed), "fixed"))
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


@pytest.mark.parametrize("reason", TRAINING_REASONS)
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
        horizons = designer_mod._HORIZONS[spec.training_data.timeframes[0]]
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
    steer = designer_mod._Steer.from_memory(memory)
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
    ctx = designer_mod._Context(
        random.Random(0), {"1h": ["EURUSD"]}, designer_mod._Steer(), designer_mod._Brief()
    )
    assert designer_mod._mutate_period(data, ctx)
    (new_id,) = data["indicators"]
    period = data["indicators"][new_id]["period"]
    assert new_id == f"sma_{period}" != "sma_20"
    assert list(data["fuzzy_sets"]) == [new_id]
    assert data["nn_inputs"] == [{"fuzzy_set": new_id}]
    edge = data["fuzzy_sets"][new_id]["near"]["parameters"][2]
    assert edge == pytest.approx(0.01 * math.sqrt(period / 20), rel=1e-3)
    StrategySpec.from_dict(data)
