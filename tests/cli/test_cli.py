"""The `research` command as a user runs it: a real process, a real instance on disk."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from tests.gate_support import BACKTEST_OPEN_ENV, TRAINING_OPEN_ENV

REPO = Path(__file__).resolve().parents[2]
STATUSES = {"queued", "running", "completed", "rejected", "failed", "cancelled"}
GATE_VALUES = {"passed", "failed", None}


def research(*args, home: Path | None, env: dict | None = None, timeout: int = 600):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DAGSTER_HOME", None)
    if home is not None:
        full_env["DAGSTER_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "research_assets.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


@pytest.fixture
def small_spec_file(tmp_path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(EXAMPLE_YAML.replace("epochs: 40", "epochs: 6"))
    return path


def assert_contract(payload: dict) -> None:
    assert set(payload) == {"researches"}
    for r in payload["researches"]:
        for key in (
            "id",
            "status",
            "phase",
            "reason",
            "reason_detail",
            "strategy",
            "gates",
            "backtest",
            "lockbox",
        ):
            assert key in r, key
        assert r["status"] in STATUSES
        assert set(r["gates"]) == {"training_gate", "backtest_gate"}
        assert set(r["gates"].values()) <= GATE_VALUES
        for figures in (r["backtest"] or {}, r["lockbox"] or {}):
            for key, stats in figures.items():
                symbol, timeframe = key.split("/")
                assert symbol and timeframe
                assert "Sharpe Ratio" in stats and "# Trades" in stats


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--count", "0"], "must be at least 1"),
        (["run", "--count", "two"], "must be a whole number"),
        (["trigger", "--seed", "-3"], "must not be negative"),
        (["explode"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2_with_a_message(home, args, message):
    result = research(*args, home=home)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RESEARCH_WALK_FORWARD_FOLDS": "0"}, "RESEARCH_WALK_FORWARD_FOLDS=0 is out of range"),
        ({"GATE_BACKTEST_MAX_P_VALUE": "5"}, "GATE_BACKTEST_MAX_P_VALUE=5.0 is out of range"),
    ],
)
def test_a_bad_setting_is_refused_before_any_research_is_triggered(home, env, message):
    result = research("run", "--count", "1", home=home, env=env)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    status = research("status", "--json", home=home)
    assert last_json(status.stdout)["researches"] == []


def test_missing_dagster_home_is_a_clear_error(tmp_path):
    result = research("status", home=tmp_path / "nope")
    assert result.returncode == 1
    assert "is not a directory" in result.stderr and "Traceback" not in result.stderr


def test_unknown_research_id(home):
    result = research("status", "r-nope", home=home)
    assert result.returncode == 1
    assert "no research with id 'r-nope'" in result.stderr


def test_bad_spec_names_the_field(home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE_YAML.replace("period: 14", "period: 1"))
    result = research("trigger", "--spec", str(bad), home=home)
    assert result.returncode == 1
    assert "indicators.rsi_14" in result.stderr and "outside [2, 200]" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_market_data_names_file_and_row(home, tmp_path, small_spec_file):
    data = tmp_path / "data"
    data.mkdir()
    (data / "EURUSD_1h.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2020-01-01 00:00,1.0,1.1,0.9,1.05,10\n"
        "2020-01-01 01:00,1.0,0.8,0.9,1.05,10\n"
    )
    result = research(
        "run",
        "--count",
        "1",
        "--spec",
        str(small_spec_file),
        home=home,
        env={"MARKET_DATA_DIR": str(data)},
    )
    assert result.returncode == 1
    assert "EURUSD_1h.csv" in result.stderr and "row 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_trigger_prints_an_id_and_status_shows_it_queued(home):
    result = research("trigger", "--seed", "4", home=home)
    assert result.returncode == 0, result.stderr
    research_id = result.stdout.strip()
    assert research_id.startswith("r-")
    status = research("status", research_id, "--json", home=home)
    payload = last_json(status.stdout)
    assert_contract(payload)
    assert payload["researches"][0]["status"] == "queued"
    assert payload["researches"][0]["phase"] == "designing"


def test_short_commands_print_everything_before_their_quick_exit(home):
    # Short commands leave with os._exit (cli.entry), which flushes nothing itself: output small
    # enough to sit in the buffer, and output larger than a pipe's, must arrive whole, and a
    # reader that stops early must not get a traceback. Buffered, as a user's shell runs it.
    import dagster as dg

    buffered = {"PYTHONUNBUFFERED": ""}
    research_id = research("trigger", "--seed", "4", home=home, env=buffered).stdout.strip()
    assert research_id.startswith("r-")
    ids = [f"r-20260101-000000-{i:04x}" for i in range(400)]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("research", ids)
    result = research("status", "--json", home=home, env=buffered)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) > 2**16
    assert [r["id"] for r in last_json(result.stdout)["researches"]] == [*ids, research_id]
    table = research("status", home=home, env=buffered)
    assert table.stdout.splitlines()[-1].startswith(research_id)

    env = {**os.environ, "DAGSTER_HOME": str(home), **buffered}
    status = subprocess.Popen(
        [sys.executable, "-m", "research_assets.cli", "status", "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    status.stdout.read(100)
    status.stdout.close()  # the reader goes away (as `research status | head -1` does)
    stderr = status.stderr.read().decode()
    assert status.wait(timeout=120) == 141  # as a process killed by SIGPIPE
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


@pytest.mark.slow
def test_run_json_contract(home):
    result = research("run", "--count", "2", "--seed", "3", "--json", home=home)
    assert result.returncode == 0, result.stderr
    payload = last_json(result.stdout)
    assert_contract(payload)
    assert len(payload["researches"]) == 2
    assert all(r["status"] in ("completed", "rejected") for r in payload["researches"])
    # status reads the same records back later.
    again = last_json(research("status", "--json", home=home).stdout)
    assert [r["id"] for r in again["researches"]] == [r["id"] for r in payload["researches"]]


def documented_selection() -> str:
    """The selection README's "The `research` command" gives `dagster asset materialize`."""
    found = re.findall(r"--select '([^']+)' --partition \"\$ID\"", (REPO / "README.md").read_text())
    assert len(found) == 1, found
    return found[0]


# Every check of a gate opened, so that a test provokes exactly the one it closes.
OPEN_TRAINING = TRAINING_OPEN_ENV
OPEN_BACKTEST = BACKTEST_OPEN_ENV
NUMBER = r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?"
# Why each provoked rejection says it was rejected: the observed figure against the threshold.
SHARPE_TOO_LOW = rf"{NUMBER} < 100 \(sharpe_too_low\)"
ACCURACY_BELOW = rf"{NUMBER} < 0\.99 \(accuracy_below_threshold\)"


def table_row(stdout: str, research_id: str) -> str:
    [row] = [line for line in stdout.splitlines() if research_id in line.split()]
    return row


def table_cells(stdout: str, research_id: str) -> dict[str, str]:
    """One row of a table the CLI prints, by column name (names are apart by two spaces or
    more; cells start where their column's name does)."""
    header = next(
        line
        for line in stdout.splitlines()
        if line.split()[:2] in (["#", "research"], ["research", "status"])
    )
    names = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    row = table_row(stdout, research_id)
    return {
        name: row[start : names[i + 1][0] if i + 1 < len(names) else None].strip()
        for i, (start, name) in enumerate(names)
    }


@pytest.fixture
def fast_spec_file(tmp_path, small_spec) -> Path:
    """The small spec with two epochs: it trades, and the gate thresholds decide its outcome."""
    data = small_spec.to_dict()
    data["training"]["epochs"] = 2
    path = tmp_path / "fast.yaml"
    path.write_text(StrategySpec.from_dict(data).to_yaml())
    return path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("gates", "status", "reason", "gate_outcomes", "why"),
    [
        (
            {**OPEN_TRAINING, "GATE_TRAINING_MIN_ACCURACY": "0.99"},
            "rejected",
            "accuracy_below_threshold",
            {"training_gate": "failed", "backtest_gate": None},
            ACCURACY_BELOW,
        ),
        (
            {**OPEN_TRAINING, **OPEN_BACKTEST, "GATE_BACKTEST_MIN_SHARPE": "100"},
            "rejected",
            "sharpe_too_low",
            {"training_gate": "passed", "backtest_gate": "failed"},
            SHARPE_TOO_LOW,
        ),
        (
            {**OPEN_TRAINING, **OPEN_BACKTEST},
            "completed",
            None,
            {"training_gate": "passed", "backtest_gate": "passed"},
            None,
        ),
    ],
    ids=["training_gate", "backtest_gate", "completed"],
)
def test_trigger_then_dagster_asset_materialize(
    home, fast_spec_file, gates, status, reason, gate_outcomes, why
):
    """The README's commands, as given there: the research runs to its verdict."""
    research_id = research("trigger", "--spec", str(fast_spec_file), home=home).stdout.strip()
    env = {**os.environ, "DAGSTER_HOME": str(home), **gates}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "research_assets.definitions",
            "--select",
            documented_selection(),
            "--partition",
            research_id,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    payload = last_json(research("status", research_id, "--json", home=home).stdout)
    assert_contract(payload)
    [r] = payload["researches"]
    assert (r["status"], r["reason"], r["gates"]) == (status, reason, gate_outcomes), done.stderr[
        -2000:
    ]
    assert r["strategy"] == "rsi_trend_eurusd"
    # Why, in numbers: in the JSON beside the reason code, and in `research status`'s table.
    row = table_row(research("status", home=home).stdout, research_id)
    if why is None:
        assert r["reason_detail"] is None and re.search(r" \d+\.\d{4}$", row), row  # cost last
    else:
        assert re.search(why, r["reason_detail"]), r["reason_detail"]
        assert row.endswith(r["reason_detail"]), row
    if status == "completed":
        assert done.returncode == 0, done.stderr[-2000:]
        assert r["phase"] == "done" and r["verdict"]
        assert set(r["backtest"]) == set(r["lockbox"]) == {"EURUSD/1h"}
    else:
        # A failing gate halts the run: nothing after the gate was materialized.
        assert done.returncode != 0
        assert r["lockbox"] is None
        assert (r["backtest"] is None) == (reason == "accuracy_below_threshold")


@pytest.mark.slow
def test_run_leaderboard_shows_a_backtest_rejection_with_its_figures_and_why(home, fast_spec_file):
    """`research run`, as `make demo` runs it: a research rejected at the backtest gate shows its
    backtest-period figures in the leaderboard as a completed one would, an empty lockbox (never
    evaluated for it), and why it was rejected in numbers, in its progress line too."""
    gates = {**OPEN_TRAINING, **OPEN_BACKTEST, "GATE_BACKTEST_MIN_SHARPE": "100"}
    result = research("run", "--count", "1", "--spec", str(fast_spec_file), home=home, env=gates)
    assert result.returncode == 0, result.stderr[-2000:]
    [r] = last_json(research("status", "--json", home=home).stdout)["researches"]
    assert (r["status"], r["reason"]) == ("rejected", "sharpe_too_low"), r
    assert re.search(SHARPE_TOO_LOW, r["reason_detail"]), r["reason_detail"]
    assert r["backtest"] and r["lockbox"] is None

    cells = table_cells(result.stdout, r["id"])
    assert cells["status"] == "rejected" and cells["reason"] == r["reason_detail"], cells
    for column in ("sharpe", "return%", "excess%", "maxdd%", "win%", "trades", "dsr"):
        assert re.fullmatch(NUMBER, cells[column]), (column, cells)
    assert [cells[c] for c in ("lockbox sharpe", "lockbox ret%", "lockbox excess%")] == [
        "-",
        "-",
        "-",
    ], cells
    progress = [line for line in result.stderr.splitlines() if line.startswith("[1/1]")]
    assert progress[-1].endswith(": " + r["reason_detail"]), progress
    # `research status` shows the same: the figures it has room for, and why.
    status = table_cells(research("status", home=home).stdout, r["id"])
    assert status["reason"] == r["reason_detail"] and status["sharpe"] == cells["sharpe"]
    assert (status["excess%"], status["dsr"]) == (cells["excess%"], cells["dsr"]), status
