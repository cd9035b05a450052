"""Market data: the bundled sample, the user's own files, and their validation.

Data files are named ``SYMBOL_TIMEFRAME.parquet`` or ``SYMBOL_TIMEFRAME.csv`` (e.g.
``EURUSD_1h.csv``) and live in ``$MARKET_DATA_DIR`` when it is set, else in the sample bundled
with the package (see ``research_assets/data/PROVENANCE.md``).

A file needs a time column (``timestamp``, ``date``, ``time`` or ``datetime``; a Parquet file may
use a DatetimeIndex instead) and ``open, high, low, close`` columns, plus an optional ``volume``
(0.0 when absent). Names are case-insensitive. Naive timestamps are taken as UTC.

Every bar set returned by :func:`load_bars` has passed :func:`validate_bars`: a UTC DatetimeIndex
named ``timestamp``, strictly ascending, and float64 ``open, high, low, close, volume`` with
positive finite prices, ``low <= open, close <= high`` and non-negative volume. Anything else is a
:class:`DataError` naming the file, the row and the problem.

>>> bars = load_bars("EURUSD", "1h", directory=BUNDLED_DATA_DIR)
>>> list(bars.columns), str(bars.index.tz), bars.index.name
(['open', 'high', 'low', 'close', 'volume'], 'UTC', 'timestamp')
"""

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from research_assets.core.errors import DataError
from research_assets.core.spec import TIMEFRAMES, check_safe_name

__all__ = [
    "BUNDLED_DATA_DIR",
    "COLUMNS",
    "DataError",
    "DatasetInfo",
    "list_datasets",
    "load_bars",
    "market_data_dir",
    "validate_bars",
]

BUNDLED_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
ENV_VAR = "MARKET_DATA_DIR"
COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
TIME_COLUMNS = ("timestamp", "datetime", "date", "time")  # preference order if several exist
# Relative slack for open/close vs [low, high]: float rounding in sources, not real violations.
RANGE_TOLERANCE = 1e-9

# SYMBOL_TIMEFRAME.ext; the timeframe is the part after the last "_" so symbols may contain "_".
_FILE_NAME = re.compile(r"^(?P<symbol>.+)_(?P<timeframe>[^_]+)\.(?P<ext>csv|parquet)$")
_FILE_HELP = (
    "Data files are named SYMBOL_TIMEFRAME.csv or SYMBOL_TIMEFRAME.parquet (e.g. EURUSD_1h.csv) "
    f"with timeframe one of {', '.join(TIMEFRAMES)}."
)


@dataclass(frozen=True)
class DatasetInfo:
    """One available data file and what it holds."""

    symbol: str
    timeframe: str
    path: Path
    rows: int
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def key(self) -> str:
        return f"{self.symbol}/{self.timeframe}"


def market_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$MARKET_DATA_DIR`` if set (it must be an existing directory), else the bundled sample."""
    env = os.environ if env is None else env
    value = (env.get(ENV_VAR) or "").strip()
    if not value:
        return BUNDLED_DATA_DIR
    path = Path(value).expanduser()
    if not path.exists():
        raise DataError(
            f"{ENV_VAR} is set to {value!r}, which does not exist. Create that directory and put "
            f"your data files in it, or unset {ENV_VAR} to use the bundled sample data. "
            + _FILE_HELP
        )
    if not path.is_dir():
        raise DataError(
            f"{ENV_VAR} is set to {value!r}, which is a file, not a directory. Point it at the "
            f"directory that holds your data files, or unset {ENV_VAR} to use the bundled sample "
            "data. " + _FILE_HELP
        )
    return path


def _resolve_dir(directory: Path | None) -> Path:
    if directory is None:
        return market_data_dir()
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"Market data directory {directory} does not exist or is not a directory.")
    return directory


def _scan(directory: Path) -> dict[tuple[str, str], list[Path]]:
    """Data files by (symbol, timeframe), from file names only (nothing is read)."""
    found: dict[tuple[str, str], list[Path]] = {}
    for path in directory.iterdir():
        m = _FILE_NAME.match(path.name)
        if not m or m["timeframe"] not in TIMEFRAMES or not path.is_file():
            continue
        try:
            check_safe_name(m["symbol"], "symbol")
        except ValueError:
            continue
        found.setdefault((m["symbol"], m["timeframe"]), []).append(path)
    return dict(sorted(found.items()))


def _single(paths: list[Path]) -> Path:
    if len(paths) > 1:
        names = " and ".join(sorted(p.name for p in paths))
        raise DataError(
            f"Both {names} exist in {paths[0].parent}: keep only one of them so it is clear which "
            "one to use."
        )
    return paths[0]


def list_datasets(directory: Path | None = None) -> list[DatasetInfo]:
    """Every valid-looking data file in ``directory`` (default: :func:`market_data_dir`).

    Files whose names are not ``SYMBOL_TIMEFRAME.csv|parquet`` with a known timeframe are
    ignored. Each listed file is loaded (and cached) to report its rows and date range, so a
    malformed file raises :class:`DataError` here too.
    """
    directory = _resolve_dir(directory)
    infos = []
    for (symbol, timeframe), paths in _scan(directory).items():
        path = _single(paths)
        bars = _load_file(path)
        infos.append(DatasetInfo(symbol, timeframe, path, len(bars), bars.index[0], bars.index[-1]))
    return infos


def load_bars(
    symbol: str,
    timeframe: str,
    directory: Path | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """Validated OHLCV bars for ``symbol``/``timeframe``, optionally limited to [start, end].

    ``start`` and ``end`` are inclusive calendar dates in UTC. The result is a fresh copy: callers
    may modify it freely.
    """
    try:
        check_safe_name(symbol, "symbol")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if timeframe not in TIMEFRAMES:
        raise DataError(f"Timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}.")
    from_env = directory is None and bool(os.environ.get(ENV_VAR, "").strip())
    directory = _resolve_dir(directory)
    datasets = _scan(directory)
    paths = datasets.get((symbol, timeframe))
    if not paths:
        raise DataError(_unknown_message(symbol, timeframe, directory, datasets, from_env))
    path = _single(paths)
    bars = _load_file(path).copy()
    if start is None and end is None:
        return bars
    return _filter_dates(bars, path, start, end)


def _unknown_message(
    symbol: str,
    timeframe: str,
    directory: Path,
    datasets: Mapping[tuple[str, str], object],
    from_env: bool,
) -> str:
    available = ", ".join(f"{s}/{tf}" for s, tf in datasets) or "none"
    where = (
        f"The directory comes from {ENV_VAR}: add the file there, or unset {ENV_VAR} to use the "
        "bundled sample data."
        if from_env
        else f"To use your own data, set {ENV_VAR} to a directory of data files."
    )
    return (
        f"No market data for {symbol}/{timeframe} in {directory} (looked for "
        f"{symbol}_{timeframe}.parquet and {symbol}_{timeframe}.csv). Available: {available}. "
        f"{where} {_FILE_HELP}"
    )


def _day_start(d: date) -> pd.Timestamp:
    return pd.Timestamp(d.year, d.month, d.day, tz="UTC")


def _filter_dates(
    bars: pd.DataFrame, path: Path, start: date | None, end: date | None
) -> pd.DataFrame:
    if start is not None and end is not None and start > end:
        raise DataError(f"Date range start {start} is after end {end}; swap them.")
    mask = np.ones(len(bars), dtype=bool)
    if start is not None:
        mask &= bars.index >= _day_start(start)
    if end is not None:
        mask &= bars.index < _day_start(end) + pd.Timedelta(days=1)
    if not mask.any():
        raise DataError(
            f"{path}: no bars between {start or 'the start'} and {end or 'the end'} (inclusive); "
            f"the file covers {bars.index[0].date()} to {bars.index[-1].date()}. Choose dates "
            "inside that range."
        )
    return bars.loc[mask]


# --- reading ----------------------------------------------------------------------------------


def _load_file(path: Path) -> pd.DataFrame:
    """Validated bars of one file, cached by path, modification time and size.

    The cached frame is shared: callers that hand it out must copy it.
    """
    resolved = path.resolve()
    try:
        st = resolved.stat()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}).") from None
    return _load_cached(str(resolved), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    """Read and validate ``path``; the mtime and size are only part of the cache key."""
    del mtime_ns, size
    return validate_bars(_read_raw(Path(path)), path)


def _read_raw(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty. Add a header row and data rows, or delete it.")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        # strings throughout, so the validator can say which cell is not a number or a date
        return pd.read_csv(path, dtype=str, encoding="utf-8-sig", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file is empty. Add a header row and data rows, or delete it."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV (UTF-8, comma-separated)"
        raise DataError(f"{path}: cannot be read as {kind}: {exc}") from None


# --- validation -------------------------------------------------------------------------------


def _row_error(source: str, row: int, when: object, problem: str, fix: str) -> DataError:
    """An error for 0-based position ``row`` (reported 1-based, as data rows in the file)."""
    stamp = "" if when is None else f" (timestamp {when})"
    return DataError(f"{source}, row {row + 1}{stamp}: {problem}. {fix}")


def _num(x: float) -> str:
    """A cell value as the user wrote it (1.05, not np.float64(1.05))."""
    return repr(float(x))


def _first(mask: np.ndarray) -> int:
    return int(np.argmax(mask))


def _columns(df: pd.DataFrame, source: str) -> tuple[dict[str, str], str | None]:
    """Map lower-case names to the frame's own; pick the time column (None: use the index)."""
    by_lower: dict[str, str] = {}
    for col in df.columns:
        key = str(col).strip().lower()
        if key in by_lower:
            raise DataError(
                f"{source}: columns {by_lower[key]!r} and {col!r} have the same name ignoring "
                "case; keep only one."
            )
        by_lower[key] = col
    time_col = next((by_lower[c] for c in TIME_COLUMNS if c in by_lower), None)
    missing = [c for c in PRICE_COLUMNS if c not in by_lower]
    if time_col is None and not isinstance(df.index, pd.DatetimeIndex):
        missing.insert(0, "timestamp (or date, time, datetime)")
    if missing:
        found = ", ".join(repr(str(c)) for c in df.columns) or "none"
        raise DataError(
            f"{source}: missing column(s) {', '.join(missing)}; found {found}. The header must "
            "name a time column (timestamp, date, time or datetime) and open, high, low, close "
            "and optionally volume (case-insensitive)."
        )
    return by_lower, time_col


def _parse_times(values: pd.Series | pd.Index, source: str) -> pd.DatetimeIndex:
    """Timestamps as a UTC DatetimeIndex (naive taken as UTC), or a DataError at the bad row."""
    fix = (
        "Use ISO 8601 timestamps such as 2020-01-31 or 2020-01-31 14:00:00 (UTC unless an offset "
        "like +02:00 is given)."
    )
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed = pd.DatetimeIndex(values)
        parsed = parsed.tz_localize("UTC") if parsed.tz is None else parsed.tz_convert("UTC")
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        raise _row_error(source, 0, None, "the time column holds numbers, not dates", fix)
    else:
        text = pd.Series(np.asarray(values, dtype=object))
        parsed = _parse_text_times(text)
        if parsed is None:
            i = _first_unparseable(text)
            raise _row_error(source, i, None, f"cannot parse timestamp {text.iloc[i]!r}", fix)
    bad = np.asarray(parsed.isna())
    if bad.any():
        raise _row_error(source, _first(bad), None, "the timestamp is missing", fix)
    try:
        return parsed.as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise DataError(f"{source}: a timestamp is outside years 1677-2262. {fix}") from None


def _parse_text_times(text: pd.Series) -> pd.DatetimeIndex | None:
    """Parse as ISO 8601 (date-only and date-time may mix), else one format inferred from the
    first row; None when neither fits every row. Per-row guessing is never used: it would read
    01.02 and 13.02 with different day/month orders without a word."""
    for fmt in ("ISO8601", None):
        try:
            return pd.DatetimeIndex(pd.to_datetime(text, utc=True, format=fmt))
        except (ValueError, TypeError, OverflowError):
            continue
    return None


def _first_unparseable(text: pd.Series) -> int:
    """Position of the first row that breaks the file's dominant timestamp format."""
    present = text.notna().to_numpy()
    if not present.any():
        return 0
    first = text.iloc[_first(present)]
    formats = ["ISO8601"]
    guessed = guess_datetime_format(first) if isinstance(first, str) else None
    if guessed:
        formats.append(guessed)
    best: np.ndarray | None = None
    for fmt in formats:
        try:
            parsed = pd.to_datetime(text, utc=True, format=fmt, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            continue
        bad = np.asarray(parsed.isna()) & present
        if best is None or bad.sum() < best.sum():
            best = bad
    if best is None or not best.any():
        return _first(present)
    return _first(best)


def _numbers(df: pd.DataFrame, col: str, name: str, source: str, index: pd.Index) -> np.ndarray:
    """A column as float64; text that is not a number is an error at its row."""
    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return np.asarray(raw, dtype="float64")  # Parquet: already numbers, nothing to parse
    values = pd.to_numeric(raw, errors="coerce")
    not_number = np.asarray(values.isna() & raw.notna() & (raw.astype(str).str.strip() != ""))
    if not_number.any():
        i = _first(not_number)
        raise _row_error(
            source,
            i,
            index[i],
            f"{name} {raw.iloc[i]!r} is not a number",
            "Write plain decimal numbers such as 1.2345 (no thousands separators or units).",
        )
    return np.asarray(values, dtype="float64")


def validate_bars(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check raw bars and return them normalised (see the module docstring for the rules).

    ``df`` is a frame as read from a file: a time column (or a DatetimeIndex) and OHLC(V)
    columns in any case. ``source`` names the file in error messages. Rows are reported 1-based
    in the order given, as data rows of the file (the header is not counted).
    """
    source = str(source)
    if len(df) == 0:
        raise DataError(
            f"{source}: the file has no data rows. Add bars below the header, or delete the file."
        )
    by_lower, time_col = _columns(df, source)
    index = _parse_times(df.index if time_col is None else df[time_col], source)

    ts = index.asi8
    back = ts[1:] < ts[:-1]
    if back.any():
        i = _first(back) + 1
        raise _row_error(
            source,
            i,
            index[i],
            f"timestamps are not in ascending order (row {i} has {index[i - 1]})",
            "Sort the rows by time, oldest first.",
        )
    same = ts[1:] == ts[:-1]
    if same.any():
        i = _first(same) + 1
        raise _row_error(
            source,
            i,
            index[i],
            f"duplicate timestamp (row {i} has the same time)",
            "Remove one of the two rows.",
        )

    data = {c: _numbers(df, by_lower[c], c, source, index) for c in PRICE_COLUMNS}
    if "volume" in by_lower:
        data["volume"] = _numbers(df, by_lower["volume"], "volume", source, index)
    else:
        data["volume"] = np.zeros(len(df))

    for col in PRICE_COLUMNS:
        v = data[col]
        bad = ~np.isfinite(v) | (v <= 0)
        if bad.any():
            i = _first(bad)
            problem = (
                f"{col} is missing" if np.isnan(v[i]) else f"{col} is {_num(v[i])}, not positive"
            )
            raise _row_error(
                source, i, index[i], problem, "Prices must be finite numbers above zero."
            )
    o, h, lo, c = data["open"], data["high"], data["low"], data["close"]
    bad = h < lo
    if bad.any():
        i = _first(bad)
        raise _row_error(
            source,
            i,
            index[i],
            f"high {_num(h[i])} is below low {_num(lo[i])}",
            "Check that the high and low columns are not swapped.",
        )
    hi_tol, lo_tol = h * (1 + RANGE_TOLERANCE), lo * (1 - RANGE_TOLERANCE)
    for name, v in (("open", o), ("close", c)):
        bad = (v > hi_tol) | (v < lo_tol)
        if bad.any():
            i = _first(bad)
            raise _row_error(
                source,
                i,
                index[i],
                f"{name} {_num(v[i])} is outside [low {_num(lo[i])}, high {_num(h[i])}]",
                "Every bar needs low <= open, close <= high; fix the row.",
            )
    vol = data["volume"]
    bad = ~np.isfinite(vol) | (vol < 0)
    if bad.any():
        i = _first(bad)
        problem = "volume is missing" if np.isnan(vol[i]) else f"volume {_num(vol[i])} is negative"
        raise _row_error(
            source, i, index[i], problem, "Volume must be zero or more (or drop the column)."
        )

    out = pd.DataFrame({col: data[col] for col in COLUMNS}, index=index.rename("timestamp"))
    return out
