"""Training: fuzzy features and labels into a small PyTorch MLP, with time splits.

For each dataset ("SYMBOL/TIMEFRAME") features and labels are built on the whole series (indicators
only look back), the series is split by time (``splits.split_periods``), and the train,
validation and backtest-period ("test") rows of all datasets are pooled. Lockbox rows are never
read here. Rows with a NaN feature (indicator warm-up) or a NaN label (horizon past the end) are
dropped within each period.

Choices, documented because the gates read their results:

- The loss is plain, unweighted cross-entropy: the gates compare it with a fixed threshold, and
  class weights would change what "loss" means from spec to spec. ``class_balance`` in the metrics
  shows how skewed the labels are.
- ``loss_decrease`` is ``(initial_loss - val_loss) / initial_loss`` where ``initial_loss`` is the
  validation loss of the freshly initialised (seeded) network before any step, and ``val_loss``
  that of the returned weights: the share of the untrained loss that training removed, on data it
  did not fit. It is negative when no epoch beat the untrained network. Note that learning the
  label frequencies alone already brings the loss down to the labels' entropy (about 0.69 for
  balanced up/down labels with almost no flat ones).
- With early stopping on, training stops after ``patience`` epochs without a validation-loss
  improvement larger than ``min_delta`` and the weights of the best epoch are returned; with it
  off, all epochs run and the last epoch's weights are returned.
- Runs are reproducible: python, numpy and torch are seeded from ``spec.training.seed``, torch's
  deterministic algorithms are on, batches are drawn with a seeded generator, and one thread is
  used by default, so the same spec, data and seed give bit-identical metrics and weights on the
  same machine.
"""

import copy
import math
import os
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from research_assets.core.errors import TrainingError
from research_assets.core.features import feature_columns as spec_feature_columns
from research_assets.core.features import fuzzy_features
from research_assets.core.indicators import compute_indicators
from research_assets.core.labels import CLASS_NAMES, DOWN, FLAT, UP, make_labels
from research_assets.core.spec import StrategySpec
from research_assets.core.splits import Periods, SplitConfig, split_periods

N_CLASSES = 3
MIN_TRAIN_SAMPLES = 200
MIN_EVAL_SAMPLES = 30  # validation and test each
# Position taken for each predicted class.
_POSITION = np.array([0, 0, 0], dtype=np.int64)
_POSITION[DOWN], _POSITION[FLAT], _POSITION[UP] = -1, 0, 1

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def dataset_key(symbol: str, timeframe: str) -> str:
    """The key of one dataset in ``bars_by_dataset`` and in ``TrainedModel.periods``."""
    return f"{symbol}/{timeframe}"


@dataclass(frozen=True)
class TrainingMetrics:
    """What training achieved; ``test_*``, precision, recall and f1 are on the backtest-period
    rows. Precision, recall and f1 are macro averages over the classes that occur in the test
    labels or predictions (a class predicted but never true counts with precision 0)."""

    test_accuracy: float
    test_loss: float
    loss_decrease: float
    precision: float
    recall: float
    f1: float
    val_accuracy: float
    val_loss: float
    epochs_run: int
    best_epoch: int
    train_samples: int
    val_samples: int
    test_samples: int
    class_balance: dict[str, float]  # share of up / flat / down among the train labels
    initial_loss: float = math.nan  # validation loss of the untrained network

    def as_dict(self) -> dict[str, float | int]:
        """Flat figures for metadata and records; ``class_balance`` becomes
        ``class_balance_up`` etc."""
        out: dict[str, float | int] = {
            k: v for k, v in self.__dict__.items() if k != "class_balance"
        }
        for name, share in self.class_balance.items():
            out[f"class_balance_{name}"] = share
        return out


@dataclass
class TrainedModel:
    """A trained network and everything needed to use it again. Plain data: pickles small."""

    spec: StrategySpec
    state_dict: dict[str, torch.Tensor]  # on the CPU
    feature_columns: list[str]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    metrics: TrainingMetrics
    history: list[dict[str, float]]  # per epoch: epoch, train_loss, val_loss, val_accuracy
    periods: dict[str, dict[str, tuple[str, str]]]  # "SYMBOL/TIMEFRAME" -> Periods.bounds
    device: str  # where it was trained
    split: SplitConfig = field(default_factory=SplitConfig)

    def network(self) -> nn.Module:
        """The MLP with the trained weights, on the CPU, in eval mode."""
        net = build_network(self.spec, len(self.feature_columns))
        net.load_state_dict(self.state_dict)
        return net.eval()


def build_network(spec: StrategySpec, n_inputs: int) -> nn.Sequential:
    """The MLP of ``spec.model.architecture``: hidden layers with activation and dropout, then a
    linear layer to the three classes (logits)."""
    arch = spec.model.architecture
    layers: list[nn.Module] = []
    width = n_inputs
    for hidden in arch.hidden_layers:
        layers += [nn.Linear(width, hidden), _ACTIVATIONS[arch.activation]()]
        if arch.dropout > 0:
            layers.append(nn.Dropout(arch.dropout))
        width = hidden
    layers.append(nn.Linear(width, N_CLASSES))
    return nn.Sequential(*layers)


def build_features(spec: StrategySpec, bars: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Fuzzy features ``X`` and labels ``y`` on ``bars.index``.

    All rows are kept: warm-up rows have NaN features and the last ``spec.label_horizon`` rows
    have NaN labels; ``train_model`` drops them within each period, after splitting, so that the
    periods stay aligned with the bars.
    """
    X = fuzzy_features(spec, compute_indicators(bars, spec.indicators))
    y = make_labels(bars, spec.training.labels)
    return X, y


def dataset_periods(spec: StrategySpec, n_bars: int, split: SplitConfig | None = None) -> Periods:
    """The periods ``train_model`` uses for a series of ``n_bars`` bars."""
    return split_periods(n_bars, spec.label_horizon, split or SplitConfig())


def test_period_slice(spec: StrategySpec, n_bars: int, split: SplitConfig | None = None) -> slice:
    """Positional slice of the backtest period (the "test" rows of training)."""
    return dataset_periods(spec, n_bars, split).backtest


test_period_slice.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _rows(X: np.ndarray, y: np.ndarray, s: slice) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = X[s], y[s]
    keep = np.isfinite(xs).all(axis=1) & np.isfinite(ys)
    return xs[keep], ys[keep].astype(np.int64)


@contextmanager
def _torch_settings(seed: int, threads: int) -> Iterator[None]:
    """Seed everything, force deterministic kernels and the thread count; restore afterwards."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # warn_only: an op without a deterministic kernel should warn, not abort a research.
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)


def _resolve_device(device: str | None) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(
                f"device {device!r} was asked for but no CUDA GPU is available; "
                "use device='cpu' or leave it unset"
            )
        # cuBLAS is deterministic only with a fixed workspace; must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    elif dev.type != "cpu":
        raise TrainingError(f"device {device!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def _evaluate(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
    """Loss, accuracy and predicted classes on one whole set, without gradients."""
    net.eval()
    with torch.no_grad():
        logits = net(X)
        loss = F.cross_entropy(logits, y)
        pred = logits.argmax(dim=1)
        acc = (pred == y).float().mean()
    return float(loss), float(acc), pred.cpu().numpy()


def macro_scores(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, float, float]:
    """Macro precision, recall and f1 over the classes in ``y_true`` or ``y_pred``; a class's
    score is 0 where its denominator is 0 (as scikit-learn's ``zero_division=0``)."""
    classes = np.union1d(y_true, y_pred)
    if len(classes) == 0:
        return math.nan, math.nan, math.nan
    precision, recall, f1 = [], [], []
    for c in classes:
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        predicted = float(np.sum(y_pred == c))
        actual = float(np.sum(y_true == c))
        p = tp / predicted if predicted else 0.0
        r = tp / actual if actual else 0.0
        precision.append(p)
        recall.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(precision)), float(np.mean(recall)), float(np.mean(f1))


def _pool(
    spec: StrategySpec, bars_by_dataset: Mapping[str, pd.DataFrame], split: SplitConfig
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, dict[str, tuple[str, str]]]]:
    """Train, validation and test rows of all datasets, pooled; and each dataset's periods."""
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "val": [], "test": []}
    bounds: dict[str, dict[str, tuple[str, str]]] = {}
    columns = spec_feature_columns(spec)
    for key, bars in bars_by_dataset.items():
        try:
            periods = split_periods(len(bars), spec.label_horizon, split)
        except TrainingError as e:
            raise TrainingError(f"{key}: {e}") from None
        X_df, y_s = build_features(spec, bars)
        X = X_df[columns].to_numpy(dtype=np.float64)
        y = y_s.to_numpy(dtype=np.float64)
        parts["train"].append(_rows(X, y, periods.train))
        parts["val"].append(_rows(X, y, periods.validation))
        parts["test"].append(_rows(X, y, periods.backtest))
        # periods.lockbox is deliberately never read.
        bounds[key] = periods.bounds(bars.index)
    pooled = {
        name: (
            np.concatenate([x for x, _ in chunks]) if chunks else np.empty((0, len(columns))),
            np.concatenate([y for _, y in chunks]) if chunks else np.empty(0, dtype=np.int64),
        )
        for name, chunks in parts.items()
    }
    return pooled, bounds


def _check_samples(pooled: dict[str, tuple[np.ndarray, np.ndarray]], spec: StrategySpec) -> None:
    n_train = len(pooled["train"][1])
    if n_train < MIN_TRAIN_SAMPLES:
        raise TrainingError(
            f"only {n_train} training rows remain after dropping indicator warm-up and "
            f"unlabelled rows (at least {MIN_TRAIN_SAMPLES} needed); use more data or more "
            "symbols, shorter indicator periods, or a shorter label horizon"
        )
    for name, what in (("val", "validation"), ("test", "backtest-period")):
        n = len(pooled[name][1])
        if n < MIN_EVAL_SAMPLES:
            raise TrainingError(
                f"only {n} {what} rows remain after dropping warm-up and unlabelled rows (at "
                f"least {MIN_EVAL_SAMPLES} needed); use more data or a shorter label horizon"
            )
    present = np.unique(pooled["train"][1])
    if len(present) < 2:
        only = CLASS_NAMES[int(present[0])]
        raise TrainingError(
            f"every training label is {only!r}, so there is nothing to learn; change "
            f"training.labels (now {spec.training.labels.model_dump()}): e.g. a smaller "
            "threshold, or a longer lookahead/horizon"
        )


def train_model(
    spec: StrategySpec,
    bars_by_dataset: Mapping[str, pd.DataFrame],
    split: SplitConfig | None = None,
    *,
    threads: int = 1,
    device: str | None = None,
) -> TrainedModel:
    """Train the spec's MLP on the pooled train rows of every dataset ("SYMBOL/TIMEFRAME" ->
    bars), early-stopping on the validation rows and scoring on the backtest-period rows.

    Raises ``TrainingError`` when there are too few rows or only one class to learn.
    """
    if not bars_by_dataset:
        raise TrainingError("no market data to train on; pass at least one SYMBOL/TIMEFRAME")
    if threads < 1:
        raise TrainingError(f"threads must be at least 1, got {threads}")
    split = split or SplitConfig()
    dev = _resolve_device(device)
    pooled, bounds = _pool(spec, bars_by_dataset, split)
    _check_samples(pooled, spec)

    X_train, y_train = pooled["train"]
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[~(std > 1e-12)] = 1.0  # a constant feature carries nothing; avoid dividing by 0

    def tensors(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = pooled[name]
        xt = torch.from_numpy(((x - mean) / std).astype(np.float32)).to(dev)
        return xt, torch.from_numpy(y).to(dev)

    counts = np.bincount(y_train, minlength=N_CLASSES) / len(y_train)
    balance = {CLASS_NAMES[c]: float(counts[c]) for c in (UP, FLAT, DOWN)}
    cfg = spec.training
    with _torch_settings(cfg.seed, threads):
        Xt, yt = tensors("train")
        Xv, yv = tensors("val")
        Xs, ys = tensors("test")
        net = build_network(spec, Xt.shape[1]).to(dev)
        # fused: one kernel per step instead of several per parameter (~10% faster on CPU).
        opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, fused=True)
        gen = torch.Generator().manual_seed(cfg.seed)
        initial_loss, _, _ = _evaluate(net, Xv, yv)

        history: list[dict[str, float]] = []
        best_loss, best_epoch, best_state, stale = math.inf, 0, None, 0
        n, bs = len(yt), cfg.batch_size
        stop = cfg.early_stopping
        for epoch in range(1, cfg.epochs + 1):
            net.train()
            # One gather per epoch; the batches are then views, not copies.
            order = torch.randperm(n, generator=gen).to(dev)
            total = torch.zeros((), device=dev)
            for xb, yb in zip(Xt[order].split(bs), yt[order].split(bs), strict=True):
                loss = F.cross_entropy(net(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total.add_(loss.detach(), alpha=len(yb))
            val_loss, val_acc, _ = _evaluate(net, Xv, yv)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": float(total) / n,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            if val_loss < best_loss - stop.min_delta:
                best_loss, best_epoch, stale = val_loss, epoch, 0
                if stop.enabled:
                    best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stop.enabled and stale >= stop.patience:
                    break
        if stop.enabled and best_state is not None:
            net.load_state_dict(best_state)
        else:
            best_epoch = len(history)

        val_loss, val_acc, _ = _evaluate(net, Xv, yv)
        test_loss, test_acc, test_pred = _evaluate(net, Xs, ys)
        precision, recall, f1 = macro_scores(pooled["test"][1], test_pred)
        state = {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}

    metrics = TrainingMetrics(
        test_accuracy=test_acc,
        test_loss=test_loss,
        loss_decrease=(initial_loss - val_loss) / initial_loss if initial_loss > 0 else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
        val_accuracy=val_acc,
        val_loss=val_loss,
        epochs_run=len(history),
        best_epoch=best_epoch,
        train_samples=int(len(y_train)),
        val_samples=int(len(pooled["val"][1])),
        test_samples=int(len(pooled["test"][1])),
        class_balance=balance,
        initial_loss=initial_loss,
    )
    return TrainedModel(
        spec=spec,
        state_dict=state,
        feature_columns=spec_feature_columns(spec),
        feature_mean=mean,
        feature_std=std,
        metrics=metrics,
        history=history,
        periods=bounds,
        device=dev.type,
        split=split,
    )


def predict_classes(model: TrainedModel, bars: pd.DataFrame) -> pd.Series:
    """Predicted class (``DOWN``/``FLAT``/``UP``) per bar, as float with NaN on warm-up bars."""
    X_df = fuzzy_features(model.spec, compute_indicators(bars, model.spec.indicators))
    if list(X_df.columns) != model.feature_columns:
        raise TrainingError(
            f"the spec gives features {list(X_df.columns)} but the model was trained on "
            f"{model.feature_columns}; retrain the model for this spec"
        )
    X = X_df.to_numpy(dtype=np.float64)
    ok = np.isfinite(X).all(axis=1)
    out = np.full(len(X), np.nan)
    if ok.any():
        xt = torch.from_numpy(((X[ok] - model.feature_mean) / model.feature_std).astype(np.float32))
        with torch.no_grad():
            out[ok] = model.network()(xt).argmax(dim=1).numpy()
    return pd.Series(out, index=bars.index, name="predicted_class")


def predict_positions(model: TrainedModel, bars: pd.DataFrame) -> pd.Series:
    """Position per bar: +1 where the model predicts UP, -1 for DOWN, 0 for FLAT and for warm-up
    bars whose features are not yet defined."""
    classes = predict_classes(model, bars).to_numpy()
    positions = np.zeros(len(classes), dtype=np.int64)
    ok = ~np.isnan(classes)
    positions[ok] = _POSITION[classes[ok].astype(np.int64)]
    return pd.Series(positions, index=bars.index, name="position")
