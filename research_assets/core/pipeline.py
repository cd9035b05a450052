"""One plain function per research phase, so each phase runs and tests without Dagster.

The Dagster assets in ``defs/assets.py`` call exactly these functions and attach metadata.
"""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from research_assets.core.backtest import run_backtest
from research_assets.core.data import load_bars
from research_assets.core.errors import TrainingError
from research_assets.core.memory import ResearchMemory
from research_assets.core.metrics import periods_per_year, summarize
from research_assets.core.significance import benchmark_stats
from research_assets.core.spec import StrategySpec
from research_assets.core.splits import SplitConfig
from research_assets.core.training import TrainedModel, predict_positions, train_model

# The periods a report can be computed on. "lockbox" is only ever evaluated for the leaderboard.
PERIODS = ("backtest", "lockbox")


def dataset_keys(spec: StrategySpec) -> list[str]:
    """``SYMBOL/TIMEFRAME`` for every dataset a spec trains and backtests on."""
    return spec.dataset_keys()


def load_spec_bars(spec: StrategySpec, data_dir: Path | None = None) -> dict[str, pd.DataFrame]:
    """The bars of every symbol and timeframe of a spec, limited to its date range."""
    dr = spec.training_data.date_range
    out = {}
    for key in dataset_keys(spec):
        symbol, timeframe = key.split("/")
        out[key] = load_bars(
            symbol, timeframe, data_dir,
            start=dr.start if dr else None, end=dr.end if dr else None,
        )
    return out


def train(
    spec: StrategySpec,
    data_dir: Path | None = None,
    *,
    split: SplitConfig | None = None,
    threads: int = 1,
    device: str | None = None,
) -> TrainedModel:
    """Train the spec's model on the train period of all its datasets."""
    bars = load_spec_bars(spec, data_dir)
    return train_model(spec, bars, split or SplitConfig.from_env(), threads=threads, device=device)


@dataclass(frozen=True)
class Trials:
    """The strategies tried before this one on overlapping datasets, this one included, and the
    variance of their annualised Sharpe ratios: what the Deflated Sharpe Ratio deflates by."""

    count: int = 1
    sharpe_variance: float = 0.0

    @classmethod
    def from_memory(cls, memory: ResearchMemory, spec: StrategySpec) -> "Trials":
        tried, variance = memory.trials_on(spec.dataset_keys())
        return cls(tried + 1, variance)


@dataclass
class BacktestReport:
    """Backtest of a trained model on one period of each of its datasets."""

    period: str
    stats: dict[str, dict[str, float]]  # dataset key -> statistics labelled with units
    summary: dict[str, float]  # aggregate over datasets, what the backtest gate reads
    equity: dict[str, pd.Series] = field(default_factory=dict)
    bounds: dict[str, tuple[str, str]] = field(default_factory=dict)
    trials: Trials = field(default_factory=Trials)


def backtest(model: TrainedModel, data_dir: Path | None = None, period: str = "backtest",
             trials: Trials | None = None) -> BacktestReport:
    """Run the model's signals through the backtest engine on ``period`` of every dataset.

    Features are computed on the whole series (indicators only look back), then the signals are
    cut to the period's bounds, which were fixed when the model was trained. Each dataset's
    statistics include the benchmark and significance figures of ``significance.py``, deflated
    by ``trials`` (one trial, nothing to deflate by, when not given); the random timings are
    seeded by the spec's seed, so the same spec, data and seed give the same report.
    """
    trials = trials or Trials()
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, got {period!r}")
    spec = model.spec
    costs = spec.backtest
    stats: dict[str, dict[str, float]] = {}
    equity: dict[str, pd.Series] = {}
    bounds: dict[str, tuple[str, str]] = {}
    for key, bars in load_spec_bars(spec, data_dir).items():
        if key not in model.periods:
            raise TrainingError(f"the model was not trained on {key}; retrain it")
        start, end = model.periods[key][period]
        positions = predict_positions(model, bars)
        window = bars.loc[pd.Timestamp(start):pd.Timestamp(end)]
        result = run_backtest(
            window, positions.loc[window.index],
            commission=costs.commission, slippage=costs.slippage,
        )
        significance = benchmark_stats(
            result.equity.to_numpy(), window["close"].to_numpy(), result.positions.to_numpy(),
            periods_per_year(window.index), trials=trials.count,
            sharpe_variance=trials.sharpe_variance, seed=spec.training.seed,
        )
        stats[key] = {**result.stats, **significance}
        equity[key] = result.equity
        bounds[key] = (start, end)
    return BacktestReport(period, stats, summarize(stats), equity, bounds, trials)

