"""PROVENANCE.md documents every bundled data file, with the right row count and range."""

import re

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
