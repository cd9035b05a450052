"""PROVENANCE.md documents every bundled data file, with the right row count and range."""

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow.parquet as pq
import pytest

from research_assets.core.data import BUNDLED_DATA_DIR, load_bars

PROVENANCE = BUNDLED_DATA_DIR / "PROVENANCE.md"
PARQUET_FILES = sorted(p.name for p in BUNDLED_DATA_DIR.glob("*.parquet"))


def _section(name: str) -> str:
    text = PROVENANCE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"PROVENANCE.md has no section for {name}"
    return match.group(1)


def test_there_are_bundled_files() -> None:
    assert len(PARQUET_FILES) >= 9


@pytest.mark.parametrize("name", PARQUET_FILES)
def test_each_parquet_file_is_documented(name: str) -> None:
    section = _section(name)
    rows = int(re.search(r"^- Rows: (\d+)$", section, re.M).group(1))  # type: ignore[union-attr]
    assert rows == pq.ParquetFile(BUNDLED_DATA_DIR / name).metadata.num_rows
    for field in ("Source package:", "Path inside the package:", "Licence:", "Normalisation:"):
        assert f"- {field}" in section, (name, field)
    symbol, timeframe = name.removesuffix(".parquet").rsplit("_", 1)
    bars = load_bars(symbol, timeframe, directory=BUNDLED_DATA_DIR)
    assert f"- First timestamp: {bars.index[0].isoformat()}" in section
    assert f"- Last timestamp: {bars.index[-1].isoformat()}" in section


def test_summary_table_lists_each_file_with_its_rows() -> None:
    text = PROVENANCE.read_text(encoding="utf-8")
    for name in PARQUET_FILES:
        rows = pq.ParquetFile(BUNDLED_DATA_DIR / name).metadata.num_rows
        assert f"| {name} | {rows} |" in text


# --- the two corrections: split/dividend adjustment and bad-print repairs ----------------------

STOCK_FILES = ["AAPL_1d.parquet", "IBM_1d.parquet", "MSFT_1d.parquet", "GOOG_1d.parquet"]
RULE = (
    "where low < 0.5 * min(open, close), low is set to min(open, close); where high > "
    "2 * max(open, close), high is set to max(open, close)"
)


def _build_script() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "scripts" / "build_sample_data.py"
    name = "build_sample_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


def _corrections_table() -> dict[str, tuple[int, str]]:
    text = _section("Corrections to the sources")
    rows = re.findall(r"^\| (\S+\.parquet) \| (\d+) \| (.*) \|$", text, re.M)
    return {name: (int(count), listed) for name, count, listed in rows}


def test_corrections_section_states_the_rule_and_the_adjustment() -> None:
    text = _section("Corrections to the sources")
    assert RULE in text
    assert "factor = Adj Close / Close" in text
    assert all(name in text for name in STOCK_FILES)


def test_bad_print_repairs_are_counted_and_listed_for_every_file() -> None:
    table = _corrections_table()
    assert sorted(table) == PARQUET_FILES
    assert table["BTCUSD_1d.parquet"] == (1, "2017-04-15 00:00 low 0.06 -> 1173.74")
    for name, (count, listed) in table.items():
        if name != "BTCUSD_1d.parquet":
            assert (count, listed) == (0, "-"), name


@pytest.mark.parametrize("name", PARQUET_FILES)
def test_each_section_reports_the_bad_print_rule(name: str) -> None:
    section = _section(name)
    count = _corrections_table()[name][0]
    if count:
        assert f": {count} value(s) repaired, each listed below" in section
        assert len(re.findall(r"^  - Repaired bad print ", section, re.M)) == count
    else:
        assert "Bad-print rule (see Corrections to the sources at the top): no bar" in section


def test_btc_daily_section_lists_the_repair_and_the_kept_wide_bar() -> None:
    section = _section("BTCUSD_1d.parquet")
    assert (
        "Repaired bad print 2017-04-15 00:00 low 0.06 -> 1173.74 (source bar: open 1173.74, "
        "high 1190.99, low 0.06, close 1178.85)." in section
    )
    assert "Bar 2015-01-14 00:00 has high/low > 2" in section
    assert "judged a real trade, not a bad print" in section
    assert "The 1h file starts 2017-07-01 11:00" in section
    assert "Bar 2017-04-15 00:00 has high/low > 2" not in section


@pytest.mark.parametrize("name", PARQUET_FILES)
def test_only_the_stocks_are_adjusted_and_they_match_adj_close(name: str) -> None:
    section = _section(name)
    adjusted = "Split- and dividend-adjusted with the source's `Adj Close`" in section
    assert adjusted == (name in STOCK_FILES)
    if adjusted:
        rel = re.search(r"largest relative difference ([0-9.e+-]+)\)", section)
        assert rel and float(rel.group(1)) <= 1e-9
        assert "Prices are NOT adjusted" not in section


def test_stock_sections_show_each_split_before_and_after() -> None:
    aapl, msft = _section("AAPL_1d.parquet"), _section("MSFT_1d.parquet")
    for section, day in ((aapl, "2000-06-21"), (aapl, "2005-02-28"), (msft, "2003-02-18")):
        assert f"Factor steps x2.0000 on {day} (2-for-1 split)." in section
        line = re.search(rf"^  - 2-for-1 split on {day}: .*$", section, re.M)
        assert line, day
        gaps = [float(g) for g in re.findall(r"([+-]\d+\.\d)%", line.group(0))]
        assert gaps[0] < -45 and gaps[2] < -45  # unadjusted open gap and close to close
        assert abs(gaps[1]) < 5 and abs(gaps[3]) < 15  # adjusted
    assert "special dividend" in msft
    assert "(not a split date: a real move)" in aapl


# --- the build script's correction functions on small frames ----------------------------------


def _frame(
    rows: list[tuple[float, float, float, float, float]], start: str = "2020-01-01"
) -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(rows), freq="D", tz="UTC", unit="ns")
    frame = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"])
    frame.insert(0, "timestamp", ts)
    return frame


def test_repair_bad_prints_changes_only_the_extreme_and_lists_it() -> None:
    script = _build_script()
    frame = _frame(
        [
            (100.0, 101.0, 0.06, 100.5, 5.0),  # bad low
            (100.0, 250.0, 99.0, 101.0, 5.0),  # bad high
            (100.0, 199.0, 50.0, 101.0, 5.0),  # wide but inside the rule: kept
        ]
    )
    notes: list[str] = []
    fixed, repairs = script._repair_bad_prints(frame, notes)
    assert fixed[["low", "high"]].values.tolist() == [[100.0, 101.0], [99.0, 101.0], [50.0, 199.0]]
    assert fixed[["open", "close", "volume"]].equals(frame[["open", "close", "volume"]])
    assert [r.describe() for r in repairs] == [
        "2020-01-01 00:00 low 0.06 -> 100.0",
        "2020-01-02 00:00 high 250.0 -> 101.0",
    ]
    assert "2 value(s) repaired" in notes[0]
    assert notes[1].startswith("Repaired bad print 2020-01-01 00:00 low 0.06 -> 100.0")
    assert frame["low"].iloc[0] == 0.06  # the input is not changed in place
    clean: list[str] = []
    assert script._repair_bad_prints(fixed, clean)[1] == []
    assert "no bar matched" in clean[0]


def test_adjustment_scales_prices_and_volume_and_keeps_bars_valid() -> None:
    script = _build_script()
    # AAPL's 2-for-1 split on the second bar; adj_close is on the post-split basis
    rows = [(100.0, 102.0, 98.0, 100.0, 1000.0), (50.0, 51.0, 49.5, 50.5, 2100.0)]
    frame = _frame(rows, start="2000-06-20")
    frame["adj_close"] = [50.0, 50.5]
    notes: list[str] = []
    out = script._adjust_for_splits_and_dividends("AAPL", frame, notes)
    assert list(out.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert out.iloc[0, 1:].tolist() == [50.0, 51.0, 49.0, 50.0, 2000.0]
    assert out.iloc[1, 1:].tolist() == [50.0, 51.0, 49.5, 50.5, 2100.0]
    assert (out["low"] <= out[["open", "close"]].min(axis=1)).all()
    assert (out["high"] >= out[["open", "close"]].max(axis=1)).all()
    assert any("largest relative difference 0.0e+00" in n for n in notes)
    assert "Factor steps x2.0000 on 2000-06-21 (2-for-1 split)." in notes
    # a factor step that nobody has labelled stops the build
    with pytest.raises(SystemExit, match="unexplained adjustment factor step on 2000-06-21"):
        script._adjust_for_splits_and_dividends("IBM", frame, [])
    with pytest.raises(SystemExit, match="Adj Close is missing or not positive"):
        script._adjust_for_splits_and_dividends("AAPL", frame.assign(adj_close=[0.0, 1.0]), [])
