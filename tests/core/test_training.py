"""Training: determinism, early stopping, the lockbox left unread, prediction and pickling."""

import copy
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from research_assets.core.data import load_bars
from research_assets.core.errors import TrainingError
from research_assets.core.features import feature_columns
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.core.splits import SplitConfig, split_periods
from research_assets.core.training import (
    TrainedModel,
    build_features,
    macro_scores,
    predict_classes,
    predict_positions,
    test_period_slice,
    train_model,
    walk_forward_positions,
)


def make_bars(n: int = 5000, seed: int = 0, vol: float = 0.003) -> pd.DataFrame:
    """Geometric random walk with consistent OHLC."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol / 2, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol / 2, n)))
    idx = pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.uniform(100, 1000, n),
        },
        index=idx,
    )


def make_spec(**training) -> StrategySpec:
    """The example spec with quick training settings (overridable)."""
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training"].update({"epochs": 4, "batch_size": 128, **training})
    return StrategySpec.from_dict(data)


BARS = make_bars()
DATA = {"EURUSD/1h": BARS}


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    return train_model(make_spec(), DATA)


def test_metrics_are_sane(model):
    m = model.metrics
    assert 0 <= m.test_accuracy <= 1 and 0 <= m.val_accuracy <= 1
    assert m.test_loss > 0 and m.val_loss > 0 and m.initial_loss > 0
    assert m.loss_decrease == pytest.approx((m.initial_loss - m.val_loss) / m.initial_loss)
    assert 0 <= m.precision <= 1 and 0 <= m.recall <= 1 and 0 <= m.f1 <= 1
    assert sum(m.class_balance.values()) == pytest.approx(1.0)
    assert list(m.class_balance) == ["up", "flat", "down"]
    final_history = [h for h in model.history if h["model"] == "final"]
    assert m.epochs_run == len(final_history) and 1 <= m.best_epoch <= m.epochs_run
    assert [h["model"] for h in model.history if h["epoch"] == 1] == [
        "fold 1",
        "fold 2",
        "fold 3",
        "fold 4",
        "final",
    ]
    flat = m.as_dict()
    assert all(isinstance(v, int | float) for v in flat.values())
    assert flat["class_balance_up"] == m.class_balance["up"]
    assert {"test_accuracy", "test_loss", "loss_decrease", "accuracy_lift", "loss_ratio"} <= set(
        flat
    )
    assert m.folds == 4 and len(model.folds) == 4 and len(model.fold_metrics) == 4


def test_figures_against_the_labels_own_baseline(model):
    """The baseline is always predicting each fold's training majority class, and the loss of
    knowing only the training label frequencies; the pooled figures weight folds by test rows."""
    spec = model.spec
    X, y = build_features(spec, BARS)
    p = split_periods(len(BARS), spec.label_horizon, SplitConfig())
    ok = (X.notna().all(axis=1) & y.notna()).to_numpy()
    labels = y.to_numpy()
    hits, rows, entropy = 0, 0, 0.0
    for f, row in zip(p.folds, model.fold_metrics, strict=True):
        train = labels[f.train][ok[f.train]].astype(int)
        test = labels[f.test][ok[f.test]].astype(int)
        majority = np.bincount(train).argmax()
        shares = np.bincount(train) / len(train)
        h = -sum(q * math.log(q) for q in shares if q > 0)
        assert row["baseline_accuracy"] == pytest.approx(np.mean(test == majority))
        assert row["label_entropy"] == pytest.approx(h)
        hits += np.sum(test == majority)
        rows += len(test)
        entropy += h * len(test)
    m = model.metrics
    assert m.baseline_accuracy == pytest.approx(hits / rows)
    assert m.accuracy_lift == pytest.approx(m.test_accuracy - hits / rows)
    assert m.label_entropy == pytest.approx(entropy / rows)
    assert m.loss_ratio == pytest.approx(m.test_loss / m.label_entropy)


def test_sample_counts_follow_the_periods(model):
    spec = model.spec
    X, y = build_features(spec, BARS)
    p = split_periods(len(BARS), spec.label_horizon, SplitConfig())
    ok = X.notna().all(axis=1) & y.notna()
    # the final model's train and validation rows; every fold's test rows
    assert model.metrics.train_samples == int(ok.iloc[p.final.train].sum())
    assert model.metrics.val_samples == int(ok.iloc[p.final.validation].sum())
    assert model.metrics.test_samples == int(ok.iloc[p.backtest].sum())
    for f, row in zip(p.folds, model.fold_metrics, strict=True):
        assert row["train_samples"] == int(ok.iloc[f.train].sum())
        assert row["test_samples"] == int(ok.iloc[f.test].sum())
    assert model.periods == {"EURUSD/1h": p.bounds(BARS.index)}
    assert model.fold_periods == {"EURUSD/1h": [f.bounds(BARS.index) for f in p.folds]}
    assert model.final_periods == {"EURUSD/1h": p.final.bounds(BARS.index)}
    assert test_period_slice(spec, len(BARS)) == p.backtest


def test_model_fields(model):
    assert model.feature_columns == feature_columns(model.spec)
    assert model.feature_mean.shape == model.feature_std.shape == (5,)
    assert (model.feature_std > 0).all()
    assert model.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert all(t.device.type == "cpu" for t in model.state_dict.values())
    assert list(model.history[0]) == ["model", "epoch", "train_loss", "val_loss", "val_accuracy"]


def test_same_seed_same_result_and_settings_restored(model):
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    again = train_model(make_spec(), DATA)
    assert again.metrics == model.metrics
    assert again.history == model.history
    assert again.state_dict.keys() == model.state_dict.keys()
    for k, v in model.state_dict.items():
        assert torch.equal(v, again.state_dict[k]), k
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det


def test_another_seed_gives_other_weights(model):
    other = train_model(make_spec(seed=8), DATA)
    assert not torch.equal(other.state_dict["0.weight"], model.state_dict["0.weight"])


def test_lockbox_bars_are_never_read(model):
    p = split_periods(len(BARS), model.spec.label_horizon, SplitConfig())
    corrupted = BARS.copy()
    noise = np.random.default_rng(9).uniform(50, 5000, (len(corrupted) - p.lockbox.start, 1))
    corrupted.iloc[p.lockbox] = corrupted.iloc[p.lockbox].to_numpy() * noise
    again = train_model(make_spec(), {"EURUSD/1h": corrupted})
    assert again.metrics == model.metrics
    for k, v in model.state_dict.items():
        assert torch.equal(v, again.state_dict[k]), k


def test_early_stopping_stops_and_restores_the_best_epoch():
    spec = make_spec(epochs=60, learning_rate=0.05, early_stopping={"enabled": True, "patience": 2})
    m = train_model(spec, DATA, SplitConfig(folds=1))
    assert m.metrics.epochs_run < 60
    assert m.metrics.epochs_run == m.metrics.best_epoch + 2
    (row,) = m.fold_metrics
    assert row["epochs_run"] == row["best_epoch"] + 2
    fold = [h for h in m.history if h["model"] == "fold 1"]
    best = min(h["val_loss"] for h in fold)
    assert fold[row["best_epoch"] - 1]["val_loss"] == best
    assert m.metrics.val_loss == pytest.approx(best, rel=1e-6)  # one fold: its validation


def test_without_early_stopping_all_epochs_run():
    spec = make_spec(epochs=6, learning_rate=0.05, early_stopping={"enabled": False})
    m = train_model(spec, DATA, SplitConfig(folds=1))
    assert m.metrics.epochs_run == m.metrics.best_epoch == 6
    fold = [h for h in m.history if h["model"] == "fold 1"]
    assert len(fold) == 6
    assert m.metrics.val_loss == pytest.approx(fold[-1]["val_loss"], rel=1e-6)


def test_datasets_are_pooled(model):
    both = train_model(make_spec(), {"EURUSD/1h": BARS, "GBPUSD/1h": make_bars(5000, seed=1)})
    single = train_model(make_spec(), {"GBPUSD/1h": make_bars(5000, seed=1)})
    assert set(both.periods) == {"EURUSD/1h", "GBPUSD/1h"}
    for key in ("train_samples", "val_samples", "test_samples"):
        total = getattr(model.metrics, key) + getattr(single.metrics, key)
        assert getattr(both.metrics, key) == total


def test_each_fold_trades_its_own_test_slice_only(model):
    """Out of sample, a fold's network trades only its slice: changing one fold's weights
    changes positions there and nowhere else; outside the slices there is no position."""
    pos = walk_forward_positions(model, "EURUSD/1h", BARS)
    p = split_periods(len(BARS), model.spec.label_horizon, SplitConfig())
    assert (pos.iloc[: p.backtest.start] == 0).all() and (pos.iloc[p.backtest.stop :] == 0).all()
    altered = copy.deepcopy(model)
    net = altered.folds[1]
    net.state_dict = {k: torch.zeros_like(v) for k, v in net.state_dict.items()}
    last = [k for k in net.state_dict if k.endswith("bias")][-1]
    net.state_dict[last][2] = 1.0  # always UP
    changed = walk_forward_positions(altered, "EURUSD/1h", BARS)
    second = p.folds[1].test
    assert (changed.iloc[second] == 1).all()
    pd.testing.assert_series_equal(changed.drop(BARS.index[second]), pos.drop(BARS.index[second]))
    with pytest.raises(TrainingError, match="not trained on GBPUSD/1h"):
        walk_forward_positions(model, "GBPUSD/1h", BARS)


def test_a_confidence_threshold_stands_aside_when_unsure(model):
    data = model.spec.to_dict()
    data["decisions"] = {"confidence_threshold": 0.99}
    cautious = copy.deepcopy(model)
    cautious.spec = StrategySpec.from_dict(data)
    flat = (predict_positions(cautious, BARS) == 0).mean()
    assert flat > (predict_positions(model, BARS) == 0).mean()
    assert model.spec.fingerprint() != cautious.spec.fingerprint()
    data.pop("decisions")
    assert StrategySpec.from_dict(data).fingerprint() == model.spec.fingerprint()


def test_predict_positions(model):
    pos = predict_positions(model, BARS)
    assert pos.index.equals(BARS.index) and pos.name == "position"
    assert set(pos.unique()) <= {-1, 0, 1}
    assert (pos.iloc[:49] == 0).all()  # 50-bar average still warming up
    classes = predict_classes(model, BARS)
    ok = classes.notna()
    assert (pos[ok] == classes[ok].map({0.0: -1, 1.0: 0, 2.0: 1})).all()


def test_pickle_round_trip_predicts_the_same(model):
    blob = pickle.dumps(model)
    assert len(blob) < 100_000
    restored = pickle.loads(blob)
    assert restored.metrics == model.metrics and restored.spec == model.spec
    pd.testing.assert_series_equal(
        predict_positions(restored, BARS), predict_positions(model, BARS)
    )


def test_too_few_rows_is_a_training_error():
    with pytest.raises(TrainingError, match="EURUSD/1h"):
        train_model(make_spec(), {"EURUSD/1h": make_bars(400)})
    with pytest.raises(TrainingError, match="training rows"):
        # The periods exist, but warm-up of a 400-bar average eats the train rows.
        data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
        data["indicators"]["sma_50"]["period"] = 400
        train_model(StrategySpec.from_dict(data), {"EURUSD/1h": make_bars(1200)})


def test_a_single_class_is_a_training_error():
    spec = make_spec(labels={"source": "zigzag", "threshold": 0.5, "lookahead": 5})
    with pytest.raises(TrainingError, match="label of the walk-forward fold 1 is 'flat'"):
        train_model(spec, DATA)


def test_macro_scores():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    p, r, f = macro_scores(y_true, y_pred)
    # Per class precision 1/2, 2/3, 1; recall 1/2, 1, 1/2.
    assert p == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert r == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1s = [0.5, 2 * (2 / 3) / (5 / 3), 2 * 0.5 / 1.5]
    assert f == pytest.approx(sum(f1s) / 3)
    # A class never true nor predicted does not count; one predicted but never true scores 0.
    assert macro_scores(np.array([1, 1]), np.array([1, 1])) == (1.0, 1.0, 1.0)
    assert macro_scores(np.array([1, 1]), np.array([1, 2]))[0] == pytest.approx(0.5)
    assert all(math.isnan(x) for x in macro_scores(np.array([]), np.array([])))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_returns_cpu_weights():
    m = train_model(make_spec(), DATA, device="cuda")
    assert m.device == "cuda"
    assert all(t.device.type == "cpu" for t in m.state_dict.values())
    again = train_model(make_spec(), DATA, device="cuda")
    assert again.metrics == m.metrics


@pytest.mark.parametrize("symbol", ["EURUSD", "BTCUSD"])
def test_real_bars(symbol):
    bars = load_bars(symbol, "1h")
    m = train_model(make_spec(epochs=3), {f"{symbol}/1h": bars}, threads=1)
    assert m.metrics.train_samples > 1000
    assert all(math.isfinite(v) for v in m.metrics.as_dict().values())
    assert m.periods[f"{symbol}/1h"]["lockbox"][1] == bars.index[-1].isoformat()
    pos = predict_positions(m, bars)
    assert len(pos) == len(bars) and set(pos.unique()) <= {-1, 0, 1}
