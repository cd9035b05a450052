"""A research's inputs as run config from the command line (`dagster asset materialize
--config-json`), and a failed research's reason as the CLI prints it: the message alone, never a
Dagster class name."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from research_assets.state.records import latest_metadata
from tests.cli.test_cli import REPO, last_json, research, table_cells


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


def materialize(home: Path, research_id: str, config: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "research_assets.definitions",
            "--select",
            "strategy_spec",
            "--partition",
            research_id,
            "--config-json",
            json.dumps(config),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        cwd=REPO,
        timeout=600,
    )


def no_class_name(text: str) -> bool:
    return "dagster._" not in text and "Failure" not in text and "Error:" not in text


def test_dagster_asset_materialize_config_json_sets_the_seed_and_a_bad_one_says_why(home):
    research_id = research("trigger", "--seed", "3", home=home).stdout.strip()
    done = materialize(home, research_id, {"ops": {"strategy_spec": {"config": {"seed": 42}}}})
    assert done.returncode == 0, done.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert latest_metadata(instance, "strategy_spec", research_id)["seed"] == 42

    other = research("trigger", home=home).stdout.strip()
    bad = materialize(home, other, {"ops": {"strategy_spec": {"config": {"seed": -1}}}})
    assert bad.returncode != 0
    [r] = last_json(research("status", other, "--json", home=home).stdout)["researches"]
    assert (r["status"], r["reason"]) == ("failed", "config seed must not be negative, got -1"), r
    cells = table_cells(research("status", home=home).stdout, other)
    assert cells["reason"] == "config seed must not be negative, got -1", cells


@pytest.mark.slow
def test_research_run_prints_a_failed_researchs_message_alone(home, tmp_path):
    """A user-caused failure inside a research (too little data for its split): `research run`
    prints the message, in its progress line and its leaderboard, with no exception class."""
    data = tmp_path / "data"
    data.mkdir()
    index = pd.date_range("2020-01-01", periods=120, freq="h")
    close = 1 + np.cumsum(np.random.default_rng(0).normal(0, 0.001, len(index)))
    pd.DataFrame(
        {
            "timestamp": index.strftime("%Y-%m-%d %H:%M"),
            "open": close,
            "high": close + 0.002,
            "low": close - 0.002,
            "close": close,
            "volume": 10,
        }
    ).to_csv(data / "EURUSD_1h.csv", index=False)
    spec = REPO / "research_assets" / "examples" / "rsi_trend_eurusd.yaml"
    result = research(
        "run", "--count", "1", "--spec", str(spec), home=home, env={"MARKET_DATA_DIR": str(data)}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [r] = last_json(research("status", "--json", home=home).stdout)["researches"]
    assert r["status"] == "failed" and r["reason"].startswith("EURUSD/1h: 120 bars"), r
    assert no_class_name(r["reason"]), r["reason"]
    progress = [line for line in result.stderr.splitlines() if line.startswith("[1/1]")]
    assert progress[-1].endswith(": " + r["reason"]), progress
    assert no_class_name(result.stderr) and no_class_name(result.stdout), result.stderr
