"""Time splits: walk-forward folds over the history, then the lockbox, oldest to newest.

The newest ``lockbox`` fraction of the bars is held back. The history before it (less a gap)
ends in the out-of-sample ("backtest") period, cut into ``folds`` consecutive test slices. Each
fold's model trains on everything before its test slice (an expanding window) and stops early on
the window's newest ``validation`` bars::

    fold 1:  train | gap | validation | gap | test 1
    fold 2:  train ..................... | gap | validation | gap | test 2
    ...
    final:   train ...................................... | gap | validation | gap | lockbox

Each gap is ``horizon`` bars long: a label looks ``horizon`` bars ahead, so without the gap the
labels at the end of a training window would be computed from prices of the slice it is tested on
(the purge). The final model trains on all the history before the lockbox and is the only one
that ever sees the lockbox; training never reads the lockbox, and only the leaderboard does.

The out-of-sample period is ``folds`` x ``backtest`` of the bars, at most what leaves
``MIN_TRAIN_FRACTION`` of them for the first fold's training: with the defaults (4 folds of 0.20,
validation 0.15, lockbox 0.15) 0.40 of the bars, in 4 slices of 0.10. With one fold it is one
split, train | validation | backtest | lockbox, as before walk-forward.

>>> p = split_periods(1000, 10, SplitConfig())
>>> [f.test for f in p.folds]
[slice(440, 540, None), slice(540, 640, None), slice(640, 740, None), slice(740, 840, None)]
>>> p.folds[0].train, p.folds[0].validation, p.backtest, p.lockbox
(slice(0, 270, None), slice(280, 430, None), slice(440, 840, None), slice(850, 1000, None))
>>> p.final.train, p.final.validation
(slice(0, 680, None), slice(690, 840, None))
>>> one = split_periods(1000, 10, SplitConfig(folds=1))
>>> one.folds[0].train, one.folds[0].validation, one.backtest
(slice(0, 470, None), slice(480, 630, None), slice(640, 840, None))
"""

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from research_assets.core.config import env_fraction, env_int
from research_assets.core.errors import ConfigError, TrainingError

# The periods a report can be computed on: out of sample (walk-forward) and the lockbox.
PERIODS = ("backtest", "lockbox")
MIN_TRAIN_FRACTION = 0.3
# Below these sizes a period's metrics are noise (train also needs rows to learn from).
MIN_TRAIN_BARS = 200
MIN_PERIOD_BARS = 50
MIN_FOLD_BARS = 20  # one test slice; the out-of-sample period as a whole needs MIN_PERIOD_BARS
MAX_FOLDS = 20
FOLDS_ENV = "RESEARCH_WALK_FORWARD_FOLDS"

_ENV_NAMES = {
    "validation": "RESEARCH_VALIDATION_FRACTION",
    "backtest": "RESEARCH_BACKTEST_FRACTION",
    "lockbox": "RESEARCH_LOCKBOX_FRACTION",
}


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of all bars in the validation window, in each walk-forward test slice (at most
    what leaves ``MIN_TRAIN_FRACTION`` for the first fold's training) and in the lockbox; and the
    number of walk-forward folds."""

    validation: float = 0.15
    backtest: float = 0.20
    lockbox: float = 0.15
    folds: int = 4

    def __post_init__(self) -> None:
        if (
            isinstance(self.folds, bool)
            or not isinstance(self.folds, int)
            or not 1 <= self.folds <= MAX_FOLDS
        ):
            raise ConfigError(
                f"{FOLDS_ENV}={self.folds!r}: the number of walk-forward folds must be a whole "
                f"number from 1 (one split) to {MAX_FOLDS}, e.g. 4"
            )
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
        """The first training window's share with one fold (the most the splits can leave)."""
        return 1.0 - self.validation - self.backtest - self.lockbox

    @property
    def out_of_sample(self) -> float:
        """The out-of-sample (backtest) period's share of the bars, all folds together."""
        room = 1.0 - self.validation - self.lockbox - MIN_TRAIN_FRACTION
        return min(self.folds * self.backtest, max(room, self.backtest))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SplitConfig":
        """Defaults overridden by ``RESEARCH_VALIDATION_FRACTION``,
        ``RESEARCH_BACKTEST_FRACTION``, ``RESEARCH_LOCKBOX_FRACTION`` and
        ``RESEARCH_WALK_FORWARD_FOLDS``."""
        defaults = cls()
        folds = env_int(FOLDS_ENV, defaults.folds, env)
        if not 1 <= folds <= MAX_FOLDS:
            raise ConfigError(
                f"{FOLDS_ENV}={folds} is out of range: set it to a whole number from 1 (one "
                f"split, no walk-forward) to {MAX_FOLDS}, or unset it to use {defaults.folds}"
            )
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
        return cls(**values, folds=folds)


@dataclass(frozen=True)
class Fold:
    """One model's periods: it trains on ``train``, stops early on ``validation`` and is judged
    on ``test``; integer positional slices into a series of bars."""

    train: slice
    validation: slice
    test: slice

    def bounds(self, index: Sequence | pd.Index) -> dict[str, tuple[str, str]]:
        """First and last timestamp of each slice as ISO strings, for metadata."""
        idx = pd.Index(index)
        return {
            name: (_iso(idx[s.start]), _iso(idx[s.stop - 1]))
            for name, s in (
                ("train", self.train),
                ("validation", self.validation),
                ("test", self.test),
            )
        }


@dataclass(frozen=True)
class Periods:
    """The walk-forward folds, oldest first, and the final model that the lockbox tests."""

    folds: tuple[Fold, ...]
    final: Fold

    @property
    def backtest(self) -> slice:
        """The out-of-sample period: the folds' test slices, which tile it."""
        return slice(self.folds[0].test.start, self.folds[-1].test.stop)

    @property
    def lockbox(self) -> slice:
        return self.final.test

    def slices(self) -> dict[str, slice]:
        """The backtest and lockbox slices by name, oldest first."""
        return {"backtest": self.backtest, "lockbox": self.lockbox}

    def bounds(self, index: Sequence | pd.Index) -> dict[str, tuple[str, str]]:
        """First and last timestamp of the backtest and lockbox periods, for metadata."""
        idx = pd.Index(index)
        return {
            name: (_iso(idx[s.start]), _iso(idx[s.stop - 1])) for name, s in self.slices().items()
        }


def _iso(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _fold(test: slice, n_val: int, horizon: int) -> Fold:
    """Train | gap | validation | gap | test, the training window expanding from bar 0."""
    validation = slice(test.start - horizon - n_val, test.start - horizon)
    return Fold(slice(0, max(validation.start - horizon, 0)), validation, test)


def _too_few(n_bars: int, horizon: int, what: str, size: int, minimum: int) -> TrainingError:
    return TrainingError(
        f"{n_bars} bars split with a label horizon of {horizon} leave {max(size, 0)} bars for "
        f"the {what} (at least {minimum} needed); use more data (a longer date range or a "
        f"shorter timeframe), a shorter label horizon (lookahead), fewer walk-forward folds "
        f"({FOLDS_ENV}), or smaller RESEARCH_*_FRACTION settings"
    )


def split_periods(n_bars: int, horizon: int, config: SplitConfig) -> Periods:
    """Split ``n_bars`` by time into walk-forward folds and the lockbox (see the module's
    docstring), with a gap of ``horizon`` bars before every validation and test slice."""
    if horizon < 0:
        raise TrainingError(f"the label horizon must not be negative, got {horizon}")
    n_val = round(n_bars * config.validation)
    n_lock = round(n_bars * config.lockbox)
    n_oos = round(n_bars * config.out_of_sample)
    history_end = n_bars - n_lock - horizon
    oos_start = history_end - n_oos
    cuts = [oos_start + round(n_oos * k / config.folds) for k in range(config.folds + 1)]
    tests = [slice(a, b) for a, b in itertools.pairwise(cuts)]
    folds = tuple(_fold(test, n_val, horizon) for test in tests)
    final = _fold(slice(n_bars - n_lock, n_bars), n_val, horizon)
    first_train = oos_start - 2 * horizon - n_val
    for what, size, minimum in (
        ("validation period", n_val, MIN_PERIOD_BARS),
        ("backtest period", n_oos, MIN_PERIOD_BARS),
        ("lockbox period", n_lock, MIN_PERIOD_BARS),
        ("smallest walk-forward test slice", min(t.stop - t.start for t in tests), MIN_FOLD_BARS),
        ("first fold's train period", first_train, MIN_TRAIN_BARS),
    ):
        if size < minimum:
            raise _too_few(n_bars, horizon, what, size, minimum)
    return Periods(folds, final)


def split_datasets(
    indexes: Mapping[str, pd.Index], horizon: int, config: SplitConfig
) -> dict[str, Periods]:
    """The periods of each of a spec's datasets (key -> its bars' timestamps), cut at the same
    moments in time, so that no dataset's model trains on the dates another dataset is tested
    or locked away on (their prices move together).

    One dataset is split by :func:`split_periods`. Several are split on the union of their
    timestamps, and each dataset's periods are the bars between the same cut timestamps, with
    its own gap of ``horizon`` of its bars before each validation and test slice, and before
    the lockbox. The datasets are expected to cover the same dates (``pipeline.load_spec_bars``
    clips them to the dates they all cover).
    """
    if len(indexes) == 1:
        [(key, index)] = indexes.items()
        try:
            return {key: split_periods(len(index), horizon, config)}
        except TrainingError as e:
            raise TrainingError(f"{key}: {e}") from None
    union = pd.Index([])
    for index in indexes.values():
        union = union.union(pd.Index(index))
    try:
        common = split_periods(len(union), horizon, config)
    except TrainingError as e:
        raise TrainingError(f"{', '.join(indexes)} together: {e}") from None
    out = {}
    for key, index in indexes.items():
        index = pd.Index(index)

        def at(j: int, index: pd.Index = index) -> int:
            """The dataset's first bar at or after the union's bar ``j``."""
            return len(index) if j >= len(union) else int(index.searchsorted(union[j]))

        def gap(j: int, index: pd.Index = index, at=at) -> int:
            """Bars to leave out before the cut at the union's bar ``j``: the horizon, and one
            more where this dataset's bar before the cut is still open at it (a daily bar
            across an hourly cut), so that no label reaches past the cut."""
            first = at(j)
            return horizon + int(
                j < len(union) and first < len(index) and index[first] != union[j] and first > 0
            )

        lock_start = at(common.lockbox.start)

        def fold(f: Fold, end: int, at=at, gap=gap) -> Fold:
            start, val_start = at(f.test.start), at(f.validation.start)
            validation = slice(val_start, max(start - gap(f.test.start), val_start))
            train = slice(0, max(val_start - gap(f.validation.start), 0))
            return Fold(train, validation, slice(start, end))

        folds = [fold(f, at(f.test.stop)) for f in common.folds]
        last = folds[-1]
        folds[-1] = Fold(
            last.train,
            last.validation,
            slice(last.test.start, min(last.test.stop, lock_start - gap(common.lockbox.start))),
        )
        periods = Periods(tuple(folds), fold(common.final, len(index)))
        for name, part in (
            ("backtest period", periods.backtest),
            ("lockbox", periods.lockbox),
            *((f"validation of fold {k + 1}", f.validation) for k, f in enumerate(periods.folds)),
            ("final model's validation", periods.final.validation),
        ):
            if part.stop - part.start < 2:
                raise TrainingError(
                    f"{key}: its bars leave {max(part.stop - part.start, 0)} for the {name} "
                    f"when split at the same dates as the spec's other datasets; research it "
                    f"with datasets of the same timeframe, or alone"
                )
        out[key] = periods
    return out
