"""The `research` command with Claude as designer and assessor, and the daily LLM budget.

Real processes on a real instance on disk; the real ``anthropic`` SDK in them talks to the local
fake Messages API served by this test process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.defs.test_claude_research import (
    ASSESS_USAGE,
    ASSESSMENT,
    DESIGN_USAGE,
    KEY,
    api_usage,
    assessment_reply,
    cost,
    design_reply,
)
from tests.gate_support import OPEN_GATES_ENV
from tests.llm.fake_anthropic import FakeAnthropic

REPO = Path(__file__).resolve().parents[2]
OPEN_GATES = OPEN_GATES_ENV


def research(*args: str, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RESEARCH_", "GATE_", "ANTHROPIC_", "DAGSTER_HOME", "MARKET_DATA_DIR"))
    }
    return subprocess.run(
        [sys.executable, "-m", "research_assets.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, "DAGSTER_HOME": str(home), **env},
        timeout=300,
        cwd=REPO,
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def home(tmp_path) -> Path:
    path = tmp_path / "dagster_home"
    path.mkdir()
    return path


@pytest.mark.slow
def test_claude_research_spends_the_budget_and_later_triggers_are_refused(home, fake):
    spent = cost(DESIGN_USAGE, ASSESS_USAGE)
    env = {
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": fake.url,
        "RESEARCH_LLM_MAX_RETRIES": "0",
        "RESEARCH_LLM_TIMEOUT_S": "60",
        "RESEARCH_LLM_MAX_RETRY_WAIT_S": "0.01",
        **OPEN_GATES,
    }
    below = {**env, "RESEARCH_DAILY_BUDGET_USD": f"{spent / 2:.9f}"}

    # `run --count 2`, one research in flight at a time: the first is admitted (nothing spent
    # yet) and designed and assessed by Claude; it costs more than the budget, so the second is
    # never started.
    fake.push(design_reply(), assessment_reply())
    # (--timeout: should the daemon stall, the CLI gives up and stops it before our timeout.)
    run = research(
        "run",
        "--count",
        "2",
        "--seed",
        "1",
        "--timeout",
        "240",
        "--json",
        home=home,
        env={**below, "RESEARCH_MAX_CONCURRENT": "1"},
    )
    assert run.returncode == 3, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    payload = last_json(run.stdout)
    assert len(payload["researches"]) == 1, run.stderr
    [done] = payload["researches"]
    assert payload["refused"]["reason"] == "budget_exhausted"
    assert "budget_exhausted" in run.stderr
    assert len(fake.requests) == 2  # one design, one assessment; no second design
    assert (done["status"], done["designer"], done["verdict"]) == (
        "completed",
        "claude",
        ASSESSMENT["verdict"],
    )
    assert done["strategy"] == "claude_fast_eurusd"
    tokens = {
        k: api_usage(DESIGN_USAGE)[k] + api_usage(ASSESS_USAGE)[k] for k in api_usage(DESIGN_USAGE)
    }
    assert done["tokens"] == tokens
    assert done["cost_usd"] == pytest.approx(spent, abs=1e-6)

    # `trigger` with the budget below what was spent: refused, nothing recorded.
    refused = research("trigger", "--json", home=home, env=below)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    answer = last_json(refused.stdout)
    assert answer["triggered"] is False
    assert answer["reason"] == "budget_exhausted"
    assert answer["spent_usd"] == pytest.approx(spent, abs=1e-6)
    assert answer["budget_usd"] == pytest.approx(spent / 2)
    assert "RESEARCH_DAILY_BUDGET_USD" in answer["message"]
    assert "refused (budget_exhausted)" in refused.stderr

    # A budget of 0 means no limit: the same trigger is admitted.
    unlimited = research(
        "trigger", "--json", home=home, env={**env, "RESEARCH_DAILY_BUDGET_USD": "0"}
    )
    assert unlimited.returncode == 0, unlimited.stdout + unlimited.stderr
    triggered = last_json(unlimited.stdout)
    assert triggered["triggered"] is True and triggered["id"].startswith("r-")

    # `status` reads the tokens and dollars back from the instance.
    status = research("status", "--json", home=home, env={})
    assert status.returncode == 0, status.stdout + status.stderr
    by_id = {r["id"]: r for r in last_json(status.stdout)["researches"]}
    assert set(by_id) == {done["id"], triggered["id"]}
    assert by_id[done["id"]]["tokens"] == tokens
    assert by_id[done["id"]]["cost_usd"] == pytest.approx(spent, abs=1e-6)
    assert by_id[done["id"]]["designer"] == "claude"
    assert by_id[triggered["id"]]["status"] == "queued"
    assert by_id[triggered["id"]]["cost_usd"] == 0
    assert not any(by_id[triggered["id"]]["tokens"].values())
    assert len(fake.requests) == 2  # nothing but the run called the API

    # The key was used, but no process printed it and the instance did not store it.
    assert fake.headers[0]["authorization"] == f"Bearer {KEY}"
    for proc in (run, refused, unlimited, status):
        assert KEY not in proc.stdout and KEY not in proc.stderr
    assert not [p for p in home.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
