"""Time splits: train | gap | validation | gap | backtest | gap | lockbox, oldest to newest.

Each gap is ``horizon`` bars long: a label looks ``horizon`` bars ahead, so without the gap the
labels at the end of one period would be computed from prices of the next. The lockbox is the
newest slice; training never reads it, and only the final assessment does.

>>> p = split_periods(1000, 10, SplitConfig())
>>> p.train, p.validation, p.backtest, p.lockbox
(slice(0, 470, None), slice(480, 630, None), slice(640, 840, None), slice(850, 1000, None))
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from research_assets.core.config import env_fraction
from research_assets.core.errors import ConfigError, TrainingError

PERIODS = ("train", "validation", "backtest", "lockbox")
MIN_TRAIN_FRACTION = 0.3
# Below these sizes a period's metrics are noise (train also needs rows to learn from).
MIN_TRAIN_BARS = 200
MIN_PERIOD_BARS = 50

_ENV_NAMES = {
    "validation": "RESEARCH_VALIDATION_FRACTION",
    "backtest": "RESEARCH_BACKTEST_FRACTION",
    "lockbox": "RESEARCH_LOCKBOX_FRACTION",
}


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of all bars in each later period; train gets the rest, less the gaps."""

    validation: float = 0.15
    backtest: float = 0.20
    lockbox: float = 0.15

    def __post_init__(self) -> None:
        for name in _ENV_NAMES:
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ConfigError(
                    f"the {name} fraction {value} must be between 0 and 1 (exclusive), "
                    f"e.g. {getattr(SplitConfig, name)}; set it with {_ENV_NAMES[name]}"
                )
        if self.train < MIN_TRAIN_FRACTION:
            raise ConfigError(
                f"validation + backtest + lockbox fractions ({self.validation} + {self.backtest} "
                f"+ {self.lockbox}) leave only {self.train:.2f} for training; lower "
                f"{', '.join(_ENV_NAMES.values())} so that at least {MIN_TRAIN_FRACTION} remains"
            )

    @property
    def train(self) -> float:
        return 1.0 - self.validation - self.backtest - self.lockbox

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SplitConfig":
        """Defaults overridden by ``RESEARCH_VALIDATION_FRACTION``,
        ``RESEARCH_BACKTEST_FRACTION`` and ``RESEARCH_LOCKBOX_FRACTION``."""
        defaults = cls()
        values = {
            name: env_fraction(var, getattr(defaults, name), env)
            for name, var in _ENV_NAMES.items()
        }
        for name, value in values.items():
            if value <= 0.0:
                raise ConfigError(
                    f"{_ENV_NAMES[name]}={value} leaves the {name} period empty; set it to a "
                    f"fraction above 0 such as {getattr(defaults, name)}, or unset it"
                )
        train = 1.0 - sum(values.values())
        if train < MIN_TRAIN_FRACTION:
            named = ", ".join(f"{_ENV_NAMES[k]}={v}" for k, v in values.items())
            raise ConfigError(
                f"{named} leave only {train:.2f} of the bars for training; lower them so that "
                f"they sum to at most {1 - MIN_TRAIN_FRACTION:.2f}"
            )
        return cls(**values)


@dataclass(frozen=True)
class Periods:
    """Integer positional slices into a series of bars (``bars.iloc[periods.train]``)."""

    train: slice
    validation: slice
    backtest: slice
    lockbox: slice

    def slices(self) -> dict[str, slice]:
        """The four slices by name, oldest first."""
        return {name: getattr(self, name) for name in PERIODS}

    def bounds(self, index: Sequence | pd.Index) -> dict[str, tuple[str, str]]:
        """First and last timestamp of each period as ISO strings, for metadata."""
        idx = pd.Index(index)
        out: dict[str, tuple[str, str]] = {}
        for name, s in self.slices().items():
            first, last = idx[s.start], idx[s.stop - 1]
            out[name] = (_iso(first), _iso(last))
        return out


def _iso(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def split_periods(n_bars: int, horizon: int, config: SplitConfig) -> Periods:
    """Split ``n_bars`` by time into train, validation, backtest and lockbox, with a gap of
    ``horizon`` bars after each of the first three. The lockbox is the newest
    ``config.lockbox`` fraction of the bars; validation and backtest are their fractions of all
    bars; train is what remains at the start."""
    if horizon < 0:
        raise TrainingError(f"the label horizon must not be negative, got {horizon}")
    n_val = round(n_bars * config.validation)
    n_bt = round(n_bars * config.backtest)
    n_lock = round(n_bars * config.lockbox)
    n_train = n_bars - n_val - n_bt - n_lock - 3 * horizon
    sizes = {"train": n_train, "validation": n_val, "backtest": n_bt, "lockbox": n_lock}
    for name, size in sizes.items():
        minimum = MIN_TRAIN_BARS if name == "train" else MIN_PERIOD_BARS
        if size < minimum:
            raise TrainingError(
                f"{n_bars} bars split with a label horizon of {horizon} leave {max(size, 0)} bars "
                f"for the {name} period (at least {minimum} needed); use more data (a longer "
                "date range or a shorter timeframe), a shorter label horizon (lookahead), or "
                "smaller RESEARCH_*_FRACTION settings"
            )
    train = slice(0, n_train)
    validation = slice(train.stop + horizon, train.stop + horizon + n_val)
    backtest = slice(validation.stop + horizon, validation.stop + horizon + n_bt)
    lockbox = slice(backtest.stop + horizon, n_bars)
    return Periods(train=train, validation=validation, backtest=backtest, lockbox=lockbox)
