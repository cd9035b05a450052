"""Training: fuzzy features and labels into a small PyTorch MLP, walk-forward.

For each dataset ("SYMBOL/TIMEFRAME") features and labels are built on the whole series (indicators
only look back) and the series is split by time into walk-forward folds and the lockbox
(``splits.split_periods``). One network is trained per fold on the pooled train rows of all
datasets, stopping early on the pooled validation rows, and scored on the fold's test rows; the
out-of-sample ("test") figures pool every fold's test rows. A final network trains on all the
history before the lockbox: it is the one the lockbox is backtested with. Lockbox rows are never
read here. Rows with a NaN feature (indicator warm-up) or a NaN label (horizon past the end) are
dropped within each period.

Choices, documented because the gates read their results:

- The loss is plain, unweighted cross-entropy: the gates compare it with a fixed threshold, and
  class weights would change what "loss" means from spec to spec. ``class_balance`` in the metrics
  shows how skewed the labels are.
- ``loss_decrease`` is ``(initial_loss - val_loss) / initial_loss`` where ``initial_loss`` is the
  validation loss of the freshly initialised (seeded) network before any step, and ``val_loss``
  that of the returned weights (pooled over the folds): the share of the untrained loss that
  training removed, on data it did not fit. It is negative when no epoch beat the untrained
  network. Learning the label frequencies alone already brings the loss down to the labels'
  entropy (about 0.69 for balanced up/down labels with almost no flat ones), which is why the
  figures a gate should judge are relative to the labels' own baseline:
- ``baseline_accuracy`` is the accuracy of always predicting the training labels' majority class
  (each fold's own) on the test rows, and ``accuracy_lift`` the model's accuracy above it;
  ``label_entropy`` is the entropy (nats) of the training labels' class frequencies, the loss of
  a model that knows only those frequencies, and ``loss_ratio`` is ``test_loss / label_entropy``:
  below 1 the model predicts the test labels better than the frequencies do.
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
from research_assets.core.splits import (
    Fold,
    Periods,
    SplitConfig,
    split_datasets,
    split_periods,
)

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
    """What training achieved; ``test_*``, precision, recall, f1 and the baseline figures are on
    the out-of-sample rows of every walk-forward fold, pooled; ``val_*`` pool the folds'
    validation rows. Precision, recall and f1 are macro averages over the classes that occur in
    the test labels or predictions (a class predicted but never true counts with precision 0).
    ``epochs_run``, ``best_epoch``, ``train_samples`` and ``class_balance`` are the final
    model's (trained on all the history before the lockbox)."""

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
    initial_loss: float = math.nan  # validation loss of the untrained networks, pooled
    baseline_accuracy: float = math.nan  # always the training labels' majority class
    accuracy_lift: float = math.nan  # test_accuracy - baseline_accuracy
    label_entropy: float = math.nan  # nats; the loss of knowing only the class frequencies
    loss_ratio: float = math.nan  # test_loss / label_entropy
    folds: int = 1  # walk-forward folds

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
class FittedNetwork:
    """The weights of one trained network and the feature scaling it was trained with."""

    state_dict: dict[str, torch.Tensor]  # on the CPU
    feature_mean: np.ndarray
    feature_std: np.ndarray

    def probabilities(self, spec: StrategySpec, X: np.ndarray) -> np.ndarray:
        """Class probabilities per row of raw features ``X``; NaN rows where a feature is NaN."""
        out = np.full((len(X), N_CLASSES), np.nan)
        ok = np.isfinite(X).all(axis=1)
        if ok.any():
            net = build_network(spec, X.shape[1])
            net.load_state_dict(self.state_dict)
            scaled = ((X[ok] - self.feature_mean) / self.feature_std).astype(np.float32)
            with torch.no_grad():
                out[ok] = torch.softmax(net.eval()(torch.from_numpy(scaled)), dim=1).numpy()
        return out


@dataclass
class TrainedModel:
    """The trained networks and everything needed to use them again. Plain data: pickles small.

    ``state_dict``, ``feature_mean`` and ``feature_std`` are the final network's (trained on all
    the history before the lockbox); ``folds`` holds one network per walk-forward fold, whose test
    slices of each dataset are ``fold_periods[dataset][i]["test"]``.
    """

    spec: StrategySpec
    state_dict: dict[str, torch.Tensor]  # on the CPU
    feature_columns: list[str]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    metrics: TrainingMetrics
    history: list[dict[str, float | str]]  # per model and epoch: model, epoch, losses, accuracy
    periods: dict[str, dict[str, tuple[str, str]]]  # "SYMBOL/TIMEFRAME" -> Periods.bounds
    device: str  # where it was trained
    split: SplitConfig = field(default_factory=SplitConfig)
    folds: list[FittedNetwork] = field(default_factory=list)
    # "SYMBOL/TIMEFRAME" -> per fold, Fold.bounds (train, validation, test); and the final's
    fold_periods: dict[str, list[dict[str, tuple[str, str]]]] = field(default_factory=dict)
    final_periods: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    fold_metrics: list[dict[str, float | int]] = field(default_factory=list)

    @property
    def final(self) -> FittedNetwork:
        return FittedNetwork(self.state_dict, self.feature_mean, self.feature_std)

    def network(self) -> nn.Module:
        """The final MLP with the trained weights, on the CPU, in eval mode."""
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


def label_entropy(labels: np.ndarray) -> float:
    """Entropy in nats of the class frequencies of ``labels``: the cross-entropy loss of a model
    that predicts those frequencies for every row.

    >>> round(label_entropy(np.array([0, 2, 0, 2])), 4), label_entropy(np.array([1, 1]))
    (0.6931, 0.0)
    """
    p = np.bincount(labels, minlength=N_CLASSES) / max(len(labels), 1)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0: no "-0.0" for a single class


Rows = tuple[np.ndarray, np.ndarray]


@dataclass
class _Dataset:
    """One dataset's raw features, labels and periods."""

    X: np.ndarray
    y: np.ndarray
    periods: Periods


def _prepare(
    spec: StrategySpec, bars_by_dataset: Mapping[str, pd.DataFrame], split: SplitConfig
) -> dict[str, _Dataset]:
    columns = spec_feature_columns(spec)
    periods = split_datasets(
        {key: bars.index for key, bars in bars_by_dataset.items()}, spec.label_horizon, split
    )
    out = {}
    for key, bars in bars_by_dataset.items():
        X_df, y_s = build_features(spec, bars)
        out[key] = _Dataset(
            X_df[columns].to_numpy(dtype=np.float64), y_s.to_numpy(dtype=np.float64), periods[key]
        )
    return out


def _pool(datasets: Mapping[str, _Dataset], fold: int | None, part: str) -> Rows:
    """The rows of ``part`` (train, validation or test) of one fold of every dataset (at least
    one), pooled; ``fold`` None is the final model's. The final model's test (the lockbox) is
    never asked for."""
    chunks = []
    for d in datasets.values():
        f: Fold = d.periods.final if fold is None else d.periods.folds[fold]
        chunks.append(_rows(d.X, d.y, getattr(f, part)))
    return np.concatenate([x for x, _ in chunks]), np.concatenate([y for _, y in chunks])


def _check_samples(name: str, train: Rows, val: Rows, spec: StrategySpec) -> None:
    n_train = len(train[1])
    if n_train < MIN_TRAIN_SAMPLES:
        raise TrainingError(
            f"only {n_train} training rows remain for the {name} after dropping indicator "
            f"warm-up and unlabelled rows (at least {MIN_TRAIN_SAMPLES} needed); use more data "
            "or more symbols, shorter indicator periods, a shorter label horizon, or fewer "
            "walk-forward folds (RESEARCH_WALK_FORWARD_FOLDS)"
        )
    n_val = len(val[1])
    if n_val < MIN_EVAL_SAMPLES:
        raise TrainingError(
            f"only {n_val} validation rows remain for the {name} after dropping warm-up and "
            f"unlabelled rows (at least {MIN_EVAL_SAMPLES} needed); use more data or a shorter "
            "label horizon"
        )
    present = np.unique(train[1])
    if len(present) < 2:
        only = CLASS_NAMES[int(present[0])]
        raise TrainingError(
            f"every training label of the {name} is {only!r}, so there is nothing to learn; "
            f"change training.labels (now {spec.training.labels.model_dump()}): e.g. a smaller "
            "threshold, or a longer lookahead/horizon"
        )


@dataclass
class _Fit:
    network: FittedNetwork
    net: nn.Module
    history: list[dict[str, float]]
    initial_loss: float  # validation loss before any step
    val_loss: float
    val_accuracy: float
    best_epoch: int


def _fit(spec: StrategySpec, train: Rows, val: Rows, dev: torch.device, threads: int) -> _Fit:
    """One network trained on ``train``, early-stopping on ``val``; seeded by the spec."""
    X_train, y_train = train
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[~(std > 1e-12)] = 1.0  # a constant feature carries nothing; avoid dividing by 0

    def tensors(rows: Rows) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = rows
        xt = torch.from_numpy(((x - mean) / std).astype(np.float32)).to(dev)
        return xt, torch.from_numpy(y).to(dev)

    cfg = spec.training
    with _torch_settings(cfg.seed, threads):
        Xt, yt = tensors(train)
        Xv, yv = tensors(val)
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
        state = {k: v.detach().to("cpu").clone() for k, v in net.state_dict().items()}
    return _Fit(
        FittedNetwork(state, mean, std), net, history, initial_loss, val_loss, val_acc, best_epoch
    )


def train_model(
    spec: StrategySpec,
    bars_by_dataset: Mapping[str, pd.DataFrame],
    split: SplitConfig | None = None,
    *,
    threads: int = 1,
    device: str | None = None,
) -> TrainedModel:
    """Train the spec's MLP walk-forward on every dataset ("SYMBOL/TIMEFRAME" -> bars): one
    network per fold, scored on its test rows, and a final one on all the history before the
    lockbox (see the module's docstring).

    Raises ``TrainingError`` when there are too few rows or only one class to learn.
    """
    if not bars_by_dataset:
        raise TrainingError("no market data to train on; pass at least one SYMBOL/TIMEFRAME")
    if threads < 1:
        raise TrainingError(f"threads must be at least 1, got {threads}")
    split = split or SplitConfig()
    dev = _resolve_device(device)
    datasets = _prepare(spec, bars_by_dataset, split)

    def rows(fold: int | None) -> tuple[Rows, Rows]:
        return _pool(datasets, fold, "train"), _pool(datasets, fold, "validation")

    # Check every model's rows before spending time on any of them.
    for k in range(split.folds):
        _check_samples(f"walk-forward fold {k + 1}", *rows(k), spec)
    _check_samples("final model", *rows(None), spec)
    tests = [_pool(datasets, k, "test") for k in range(split.folds)]
    n_test = sum(len(y) for _, y in tests)
    if n_test < MIN_EVAL_SAMPLES:
        raise TrainingError(
            f"only {n_test} out-of-sample rows remain after dropping warm-up and unlabelled rows "
            f"(at least {MIN_EVAL_SAMPLES} needed); use more data or a shorter label horizon"
        )

    history: list[dict[str, float | str]] = []
    networks: list[FittedNetwork] = []
    fold_metrics: list[dict[str, float | int]] = []
    true, pred = [], []
    sums = dict.fromkeys(
        ("loss", "correct", "baseline", "entropy", "val_loss", "val_correct", "initial", "n_val"),
        0.0,
    )
    for k, (X_test, y_test) in enumerate(tests):
        train, val = rows(k)
        fit = _fit(spec, train, val, dev, threads)
        networks.append(fit.network)
        history += [{"model": f"fold {k + 1}", **h} for h in fit.history]
        majority = int(np.bincount(train[1], minlength=N_CLASSES).argmax())
        entropy = label_entropy(train[1])
        n, n_val = len(y_test), len(val[1])
        loss, acc, predicted = (
            (math.nan, math.nan, np.empty(0, dtype=np.int64))
            if n == 0
            else _evaluate(
                fit.net,
                torch.from_numpy(
                    ((X_test - fit.network.feature_mean) / fit.network.feature_std).astype(
                        np.float32
                    )
                ).to(dev),
                torch.from_numpy(y_test).to(dev),
            )
        )
        baseline = float(np.mean(y_test == majority)) if n else math.nan
        true.append(y_test)
        pred.append(predicted)
        if n:
            sums["loss"] += loss * n
            sums["correct"] += acc * n
            sums["baseline"] += baseline * n
            sums["entropy"] += entropy * n
        sums["val_loss"] += fit.val_loss * n_val
        sums["val_correct"] += fit.val_accuracy * n_val
        sums["initial"] += fit.initial_loss * n_val
        sums["n_val"] += n_val
        fold_metrics.append(
            {
                "fold": k + 1,
                "train_samples": len(train[1]),
                "val_samples": n_val,
                "test_samples": n,
                "test_accuracy": acc,
                "baseline_accuracy": baseline,
                "accuracy_lift": acc - baseline,
                "test_loss": loss,
                "label_entropy": entropy,
                "epochs_run": len(fit.history),
                "best_epoch": fit.best_epoch,
            }
        )
    final_train, final_val = rows(None)
    final = _fit(spec, final_train, final_val, dev, threads)
    history += [{"model": "final", **h} for h in final.history]

    y_true, y_pred = np.concatenate(true), np.concatenate(pred)
    precision, recall, f1 = macro_scores(y_true, y_pred)
    test_loss, test_acc = sums["loss"] / n_test, sums["correct"] / n_test
    baseline_acc, entropy = sums["baseline"] / n_test, sums["entropy"] / n_test
    val_loss, initial_loss = sums["val_loss"] / sums["n_val"], sums["initial"] / sums["n_val"]
    counts = np.bincount(final_train[1], minlength=N_CLASSES) / len(final_train[1])
    metrics = TrainingMetrics(
        test_accuracy=test_acc,
        test_loss=test_loss,
        loss_decrease=(initial_loss - val_loss) / initial_loss if initial_loss > 0 else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
        val_accuracy=sums["val_correct"] / sums["n_val"],
        val_loss=val_loss,
        epochs_run=len(final.history),
        best_epoch=final.best_epoch,
        train_samples=int(len(final_train[1])),
        val_samples=int(len(final_val[1])),
        test_samples=int(n_test),
        class_balance={CLASS_NAMES[c]: float(counts[c]) for c in (UP, FLAT, DOWN)},
        initial_loss=initial_loss,
        baseline_accuracy=baseline_acc,
        accuracy_lift=test_acc - baseline_acc,
        label_entropy=entropy,
        loss_ratio=test_loss / entropy if entropy > 0 else math.inf,
        folds=split.folds,
    )
    index = {key: bars.index for key, bars in bars_by_dataset.items()}
    return TrainedModel(
        spec=spec,
        state_dict=final.network.state_dict,
        feature_columns=spec_feature_columns(spec),
        feature_mean=final.network.feature_mean,
        feature_std=final.network.feature_std,
        metrics=metrics,
        history=history,
        periods={key: d.periods.bounds(index[key]) for key, d in datasets.items()},
        device=dev.type,
        split=split,
        folds=networks,
        fold_periods={
            key: [f.bounds(index[key]) for f in d.periods.folds] for key, d in datasets.items()
        },
        final_periods={key: d.periods.final.bounds(index[key]) for key, d in datasets.items()},
        fold_metrics=fold_metrics,
    )


def _features(model: TrainedModel, bars: pd.DataFrame) -> np.ndarray:
    X_df = fuzzy_features(model.spec, compute_indicators(bars, model.spec.indicators))
    if list(X_df.columns) != model.feature_columns:
        raise TrainingError(
            f"the spec gives features {list(X_df.columns)} but the model was trained on "
            f"{model.feature_columns}; retrain the model for this spec"
        )
    return X_df.to_numpy(dtype=np.float64)


def positions_from_probabilities(probabilities: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """+1 where UP is the most probable class, -1 for DOWN, 0 for FLAT; 0 where the most probable
    class's probability is below ``threshold`` (the spec's ``decisions.confidence_threshold``)
    and on rows without probabilities (indicator warm-up).

    >>> p = np.array([[0.5, 0.1, 0.4], [0.2, 0.2, 0.6], [np.nan] * 3])  # down, flat, up
    >>> positions_from_probabilities(p).tolist(), positions_from_probabilities(p, 0.55).tolist()
    ([-1, 1, 0], [0, 1, 0])
    """
    positions = np.zeros(len(probabilities), dtype=np.int64)
    ok = np.isfinite(probabilities).all(axis=1)
    if ok.any():
        best = probabilities[ok].argmax(axis=1)
        confident = probabilities[ok].max(axis=1) >= threshold
        positions[ok] = np.where(confident, _POSITION[best], 0)
    return positions


def _threshold(spec: StrategySpec) -> float:
    return spec.decisions.confidence_threshold if spec.decisions is not None else 0.0


def predict_classes(model: TrainedModel, bars: pd.DataFrame) -> pd.Series:
    """The final network's predicted class (``DOWN``/``FLAT``/``UP``) per bar, as float with NaN
    on warm-up bars."""
    probabilities = model.final.probabilities(model.spec, _features(model, bars))
    out = np.full(len(bars), np.nan)
    ok = np.isfinite(probabilities).all(axis=1)
    out[ok] = probabilities[ok].argmax(axis=1)
    return pd.Series(out, index=bars.index, name="predicted_class")


def predict_positions(model: TrainedModel, bars: pd.DataFrame) -> pd.Series:
    """The final network's position per bar (what the lockbox is backtested with): see
    :func:`positions_from_probabilities`."""
    probabilities = model.final.probabilities(model.spec, _features(model, bars))
    return pd.Series(
        positions_from_probabilities(probabilities, _threshold(model.spec)),
        index=bars.index,
        name="position",
    )


def walk_forward_positions(model: TrainedModel, key: str, bars: pd.DataFrame) -> pd.Series:
    """Out-of-sample positions of dataset ``key``: on each walk-forward test slice, the position
    of the network that was trained before it; 0 outside the slices."""
    if key not in model.fold_periods:
        raise TrainingError(f"the model was not trained on {key}; retrain it")
    X = _features(model, bars)
    positions = np.zeros(len(bars), dtype=np.int64)
    for network, bounds in zip(model.folds, model.fold_periods[key], strict=True):
        start, end = (pd.Timestamp(t) for t in bounds["test"])
        rows = (bars.index >= start) & (bars.index <= end)
        positions[rows] = positions_from_probabilities(
            network.probabilities(model.spec, X[rows]), _threshold(model.spec)
        )
    return pd.Series(positions, index=bars.index, name="position")
