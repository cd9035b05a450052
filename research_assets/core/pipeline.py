"""One plain function per research phase, so each phase runs and tests without Dagster.

The Dagster assets in ``defs/assets.py`` call exactly these functions and attach metadata.
"""

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from research_assets.core.backtest import BacktestResult, run_backtest
from research_assets.core.data import load_bars
from research_assets.core.errors import DataError, TrainingError
from research_assets.core.memory import ResearchMemory
from research_assets.core.metrics import periods_per_year, summarize
from research_assets.core.significance import PooledSeries, benchmark_stats, pooled_significance
from research_assets.core.spec import StrategySpec
from research_assets.core.splits import SplitConfig
from research_assets.core.training import (
    TrainedModel,
    predict_positions,
    train_model,
    walk_forward_positions,
)

# The periods a report can be computed on: "backtest" is the walk-forward out-of-sample period;
# "lockbox" is only ever evaluated for the leaderboard.
PERIODS = ("backtest", "lockbox")
# The statistics of each walk-forward fold's test slice, in the report's fold table.
FOLD_STATS = (
    "Return [%]",
    "Buy & Hold Return [%]",
    "Sharpe Ratio",
    "# Trades",
    "Win Rate [%]",
    "Exposure Time [%]",
)


def load_spec_bars(spec: StrategySpec, data_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """The bars of every symbol and timeframe of a spec, limited to its date range and, for
    several datasets, to the dates they all cover: their periods are then cut at the same
    moments (``splits.split_datasets``), so none is trained on dates another is tested on."""
    dr = spec.training_data.date_range
    out = {}
    for key in spec.dataset_keys():
        symbol, timeframe = key.split("/")
        out[key] = load_bars(
            symbol,
            timeframe,
            data_dir,
            start=dr.start if dr else None,
            end=dr.end if dr else None,
        )
    if len(out) > 1:
        first = max(bars.index[0] for bars in out.values())
        last = min(bars.index[-1] for bars in out.values())
        if first >= last:
            spans = ", ".join(
                f"{k} {b.index[0]:%Y-%m-%d} to {b.index[-1]:%Y-%m-%d}" for k, b in out.items()
            )
            raise DataError(
                f"the spec's datasets cover no common dates ({spans}); research datasets "
                "that overlap in time together, or each alone"
            )
        out = {key: bars.loc[first:last] for key, bars in out.items()}
    return out


def train(
    spec: StrategySpec,
    data_dir: Path | None = None,
    *,
    split: SplitConfig | None = None,
    threads: int = 1,
    device: str | None = None,
) -> TrainedModel:
    """Train the spec's model walk-forward on all its datasets (``split`` from the environment
    when None: ``RESEARCH_WALK_FORWARD_FOLDS`` and the ``RESEARCH_*_FRACTION`` settings)."""
    bars = load_spec_bars(spec, data_dir)
    return train_model(spec, bars, split or SplitConfig.from_env(), threads=threads, device=device)


@dataclass(frozen=True)
class Trials:
    """How many strategies were tried on overlapping datasets, this one included, and the
    variance (ddof 1) of their annualised Sharpe ratios: what the Deflated Sharpe Ratio deflates
    by. One trial, nothing to deflate by, by default."""

    count: int = 1
    sharpe_variance: float = 0.0


@dataclass(frozen=True)
class TrialHistory:
    """The strategies tried before this one on overlapping datasets and their Sharpe ratios; the
    backtest adds this one's own to make its :class:`Trials`."""

    count: int = 0
    sharpes: tuple[float, ...] = ()

    @classmethod
    def from_memory(
        cls, memory: ResearchMemory, spec: StrategySpec, before: float | None = None
    ) -> "TrialHistory":
        count, sharpes = memory.trials_on(spec.dataset_keys(), before)
        return cls(count, tuple(sharpes))

    def with_this(self, sharpe: float) -> Trials:
        sharpes = [*self.sharpes, *([sharpe] if math.isfinite(sharpe) else [])]
        return Trials(self.count + 1, statistics.variance(sharpes) if len(sharpes) >= 2 else 0.0)


@dataclass
class BacktestReport:
    """Backtest of a trained model on one period of each of its datasets."""

    period: str
    stats: dict[str, dict[str, float]]  # dataset key -> statistics labelled with units
    # aggregate over datasets, what the backtest gate reads: metrics.summarize, with the
    # significance figures of the datasets pooled into one portfolio (significance.py)
    summary: dict[str, float]
    equity: dict[str, pd.Series] = field(default_factory=dict)
    bounds: dict[str, tuple[str, str]] = field(default_factory=dict)
    trials: Trials = field(default_factory=Trials)
    # dataset key -> per walk-forward fold: its test slice's bounds and FOLD_STATS (backtest only)
    folds: dict[str, list[dict[str, float | str]]] = field(default_factory=dict)


def backtest(
    model: TrainedModel,
    data_dir: Path | None = None,
    period: str = "backtest",
    trials: Trials | TrialHistory | None = None,
) -> BacktestReport:
    """Run the model's signals through the backtest engine on ``period`` of every dataset.

    Features are computed on the whole series (indicators only look back), then the signals are
    cut to the period's bounds, which were fixed when the model was trained. On the backtest
    period each walk-forward fold's network trades its own test slice, and the slices are
    backtested as one continuous period (and each on its own, for the fold table); the lockbox is
    traded by the final network. Each dataset's
    statistics include the benchmark and significance figures of ``significance.py``. The
    Deflated Sharpe Ratio deflates by ``trials``: given as :class:`Trials`, as they are; as a
    :class:`TrialHistory`, with this strategy's own Sharpe ratio added; one trial when None. The
    random timings are seeded by the spec's seed: the same spec, data and seed give the same
    report.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    spec = model.spec
    costs = spec.backtest
    results: dict[str, tuple[pd.DataFrame, BacktestResult]] = {}
    folds: dict[str, list[dict[str, float | str]]] = {}
    for key, bars in load_spec_bars(spec, data_dir).items():
        if key not in model.periods:
            raise TrainingError(f"the model was not trained on {key}; retrain it")
        start, end = model.periods[key][period]
        if period == "backtest":
            positions = walk_forward_positions(model, key, bars)
        else:
            positions = predict_positions(model, bars)
        window = bars.loc[pd.Timestamp(start) : pd.Timestamp(end)]
        results[key] = (
            window,
            run_backtest(
                window,
                positions.loc[window.index],
                commission=costs.commission,
                slippage=costs.slippage,
            ),
        )
        if period == "backtest":
            folds[key] = []
            for i, bounds in enumerate(model.fold_periods[key], start=1):
                first, last = bounds["test"]
                part = bars.loc[pd.Timestamp(first) : pd.Timestamp(last)]
                result = run_backtest(
                    part,
                    positions.loc[part.index],
                    commission=costs.commission,
                    slippage=costs.slippage,
                )
                folds[key].append(
                    {
                        "fold": i,
                        "start": first,
                        "end": last,
                        **{k: result.stats[k] for k in FOLD_STATS},
                    }
                )
    if not isinstance(trials, Trials):
        sharpe = summarize({k: r.stats for k, (_, r) in results.items()})["Sharpe Ratio"]
        trials = (trials or TrialHistory()).with_this(sharpe)
    stats: dict[str, dict[str, float]] = {}
    for key, (window, result) in results.items():
        significance = benchmark_stats(
            result.equity.to_numpy(),
            window["close"].to_numpy(),
            result.positions.to_numpy(),
            periods_per_year(window.index),
            trials=trials.count,
            sharpe_variance=trials.sharpe_variance,
            seed=spec.training.seed,
        )
        stats[key] = {**result.stats, **significance}
    summary = summarize(stats)
    if len(results) > 1:  # significance of the strategy as a whole, not of its weakest dataset
        summary.update(
            pooled_significance(
                [
                    PooledSeries(
                        window.index,
                        r.equity.to_numpy(),
                        window["close"].to_numpy(),
                        r.positions.to_numpy(),
                    )
                    for window, r in results.values()
                ],
                trials=trials.count,
                sharpe_variance=trials.sharpe_variance,
                seed=spec.training.seed,
            )
        )
    return BacktestReport(
        period,
        stats,
        summary,
        {k: r.equity for k, (_, r) in results.items()},
        {k: tuple(model.periods[k][period]) for k in results},
        trials,
        folds,
    )
