"""Dagster's `dg` CLI on this project: the README's `dg launch` and `dagster asset materialize`
commands, as given there, each run a triggered research to its end, and `dg check defs` (which
`make test` runs) loads the definitions."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from tests.gate_support import OPEN_GATES_ENV

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
README = (REPO / "README.md").read_text()


def documented(pattern: str) -> str:
    """The one selection the README gives in ``pattern``."""
    found = re.findall(pattern, README)
    assert len(found) == 1, found
    return found[0]


# The README's two commands for running a triggered research, by their selections.
DG_LAUNCH = documented(r"dg launch --assets '([^']+)' --partition \"\$ID\"")
MATERIALIZE = documented(r"--select '([^']+)' --partition \"\$ID\"")
# The assets of one research, each partitioned by research.
RESEARCH_ASSETS = {
    "strategy_spec",
    "trained_model",
    "backtest_report",
    "assessment",
    "lockbox_report",
}


def run(*command: str, home: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(home), **OPEN_GATES_ENV}
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout
    )


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


@pytest.fixture
def spec_file(tmp_path, small_spec) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(small_spec.to_yaml())
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            lambda id_: [str(BIN / "dg"), "launch", "--assets", DG_LAUNCH, "--partition", id_],
            id="dg_launch",
        ),
        pytest.param(
            lambda id_: [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "research_assets.definitions",
                "--select",
                MATERIALIZE,
                "--partition",
                id_,
            ],
            id="dagster_asset_materialize",
        ),
    ],
)
def test_the_readme_runs_a_triggered_research_to_its_end(home, spec_file, command):
    trigger = run(str(BIN / "research"), "trigger", "--spec", str(spec_file), home=home)
    assert trigger.returncode == 0, trigger.stderr
    research_id = trigger.stdout.strip()

    done = run(*command(research_id), home=home)
    assert done.returncode == 0, done.stderr[-3000:]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        materialized = {
            name
            for name in RESEARCH_ASSETS
            if research_id in instance.get_materialized_partitions(dg.AssetKey(name))
        }
    assert materialized == RESEARCH_ASSETS
    status = run(str(BIN / "research"), "status", research_id, "--json", home=home)
    [research] = json.loads(status.stdout.strip().splitlines()[-1])["researches"]
    assert (research["status"], research["phase"]) == ("completed", "done")


def test_dg_check_defs_loads_the_definitions(tmp_path):
    result = run(str(BIN / "dg"), "check", "defs", home=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "All definitions loaded successfully." in result.stdout
