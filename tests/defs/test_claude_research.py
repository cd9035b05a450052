"""Whole researches designed and assessed by Claude, through Dagster.

The real ``anthropic`` SDK talks to the local fake Messages API (``tests/llm/fake_anthropic``):
the key and base URL reach the designer the way a deployment gives them, as environment
variables read by ``DesignerResource`` when the run needs them.
"""

import os
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from research_assets.core.designer import market_costs
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.definitions import defs
from research_assets.defs.jobs import RESEARCH_ASSETS
from research_assets.defs.resources import QualityGatesResource
from research_assets.llm.pricing import DEFAULT_MODEL, cost_usd
from research_assets.state.records import (
    latest_metadata,
    load_statuses,
    record_request,
    spent_today_usd,
)
from tests.gate_support import OPEN_GATES
from tests.llm.fake_anthropic import FakeAnthropic, Reply, error, message, tool_use

KEY = "sk-ant-test-SECRET-4f9c"
MAX_RETRIES = 1  # RESEARCH_LLM_MAX_RETRIES: a request is tried twice

# What the fake model is billed for; the costs are priced by the package's own table.
DESIGN_USAGE = dict(input_tokens=5000, output_tokens=800, cache_creation=2000, cache_read=1000)
ASSESS_USAGE = dict(input_tokens=3000, output_tokens=400, cache_creation=0, cache_read=2000)
ASSESSMENT = {
    "verdict": "neutral",
    "summary": "Sharpe near zero on EURUSD 1h; the RSI zones add little over the trend filter.",
    "strengths": ["Trades often enough for the figures to mean something."],
    "weaknesses": ["Win rate close to 50% leaves little margin over costs."],
    "suggestions": ["Add an ATR input (period 14) to stand aside in volatile hours."],
    "hypotheses": ["A 24-bar forward-return label keeps the edge with fewer trades."],
}


def api_usage(u: dict[str, int]) -> dict[str, int]:
    """The fake's usage keywords as the API names them."""
    return {
        "input_tokens": u["input_tokens"],
        "output_tokens": u["output_tokens"],
        "cache_creation_input_tokens": u["cache_creation"],
        "cache_read_input_tokens": u["cache_read"],
    }


def cost(*usages: dict[str, int]) -> float:
    return sum(cost_usd(DEFAULT_MODEL, api_usage(u)) for u in usages)


def fast_spec(name: str = "claude_fast_eurusd") -> dict[str, Any]:
    """A valid spec as Claude would save it (no backtest section) that trains in a second or
    two: two-class forward-return labels, three epochs."""
    d = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    d.pop("backtest")
    d["name"] = name
    d["training"]["epochs"] = 3
    d["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    return d


def billed(*content: dict[str, Any], usage: dict[str, int]) -> Reply:
    """A model turn billed ``usage``."""
    return message(
        *content,
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_creation=usage["cache_creation"],
        cache_read=usage["cache_read"],
    )


def design_reply(spec: dict[str, Any] | None = None, usage=DESIGN_USAGE) -> Reply:
    return billed(
        tool_use(
            "save_strategy_config",
            {"spec": spec or fast_spec(), "rationale": "RSI zones in a trend."},
        ),
        usage=usage,
    )


def assessment_reply(usage=ASSESS_USAGE) -> Reply:
    return billed(tool_use("save_assessment", ASSESSMENT), usage=usage)


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def llm_env(monkeypatch, fake: FakeAnthropic):
    """A key and the fake's address, as a deployment sets them; one retry, no waits (nothing
    here waits for a timeout: the fake answers at once)."""
    for name in list(os.environ):
        if name.startswith(("RESEARCH_", "GATE_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("RESEARCH_LLM_MAX_RETRIES", str(MAX_RETRIES))
    monkeypatch.setenv("RESEARCH_LLM_TIMEOUT_S", "15")
    monkeypatch.setenv("RESEARCH_LLM_MAX_RETRY_WAIT_S", "0.01")
    return monkeypatch


def run_research(instance: dg.DagsterInstance, research_id: str, seed: int = 3):
    """One research as the research job runs it, designed by whichever designer is set."""
    record_request(instance, research_id, seed=seed)
    return dg.materialize(
        RESEARCH_ASSETS,
        instance=instance,
        partition_key=research_id,
        resources={**(defs.resources or {}), "gates": QualityGatesResource(**OPEN_GATES)},
        raise_on_error=False,
        tags={"research/id": research_id},
    )


def step_failures(result) -> dict[str, Any]:
    return {e.step_key: e.step_failure_data for e in result.all_events if e.is_step_failure}


def failure_reason(data: Any) -> str | None:
    md = data.user_failure_data.metadata if data.user_failure_data else {}
    value = md.get("reason")
    return getattr(value, "value", value)


def materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def usage_md(md: dict[str, Any]) -> dict[str, Any]:
    return {k.removeprefix("usage/"): v for k, v in md.items() if k.startswith("usage/")}


# -- Claude designs and assesses ---------------------------------------------------------------


@pytest.mark.slow
def test_claude_designs_and_assesses_and_usage_is_recorded(instance, fake, llm_env):
    fake.push(design_reply(), assessment_reply())
    result = run_research(instance, "r-claude")
    assert result.success, step_failures(result)
    assert materialized(result) == {a.key.to_user_string() for a in RESEARCH_ASSETS}

    # Two requests, with the key from the environment (in a header only).
    assert len(fake.requests) == 2
    assert fake.headers[0]["authorization"] == f"Bearer {KEY}"
    assert [t["name"] for t in fake.requests[0]["tools"]][-1] == "save_strategy_config"
    assert [t["name"] for t in fake.requests[1]["tools"]] == ["save_assessment"]

    # The spec is the one the model saved, with market costs (not the model's) for backtests.
    spec_md = latest_metadata(instance, "strategy_spec", "r-claude")
    assert spec_md["designer"] == "claude"
    assert spec_md["strategy"] == "claude_fast_eurusd"
    expected = StrategySpec.from_dict({**fast_spec(), "backtest": market_costs(["EURUSD"])})
    assert StrategySpec.from_dict(spec_md["spec"]) == expected
    assert spec_md["rationale"] == "RSI zones in a trend."
    design_cost = cost(DESIGN_USAGE)
    assert usage_md(spec_md) == {
        **api_usage(DESIGN_USAGE),
        "model": DEFAULT_MODEL,
        "cost_usd": pytest.approx(design_cost),
        "turns": 1,
    }

    assessment_md = latest_metadata(instance, "assessment", "r-claude")
    assert assessment_md["assessor"] == "claude"
    assert assessment_md["verdict"] == "neutral"
    assert assessment_md["suggestions"] == ASSESSMENT["suggestions"]
    assert assessment_md["assessment"] == ASSESSMENT
    assess_cost = cost(ASSESS_USAGE)
    assert usage_md(assessment_md) == {
        **api_usage(ASSESS_USAGE),
        "model": DEFAULT_MODEL,
        "cost_usd": pytest.approx(assess_cost),
        "turns": 1,
    }
    assert design_cost > 0 and assess_cost > 0

    # The status sums both calls; the day's spend counts them once.
    [status] = load_statuses(instance, ["r-claude"], with_specs=True)
    assert (status.status, status.phase, status.reason) == ("completed", "done", None)
    assert (status.designer, status.verdict) == ("claude", "neutral")
    assert status.spec == expected
    assert status.suggestions == tuple(ASSESSMENT["suggestions"])
    assert status.tokens == {
        k: api_usage(DESIGN_USAGE)[k] + api_usage(ASSESS_USAGE)[k] for k in api_usage(DESIGN_USAGE)
    }
    assert status.cost_usd == pytest.approx(design_cost + assess_cost)
    assert status.to_json()["cost_usd"] == pytest.approx(design_cost + assess_cost, abs=1e-6)
    assert spent_today_usd(instance) == pytest.approx(design_cost + assess_cost)


# -- which designer --------------------------------------------------------------------------


@pytest.mark.slow
def test_offline_designer_with_a_key_set_never_calls_claude(instance, fake, llm_env):
    llm_env.setenv("RESEARCH_DESIGNER", "offline")
    result = run_research(instance, "r-offline")
    assert result.success, step_failures(result)
    assert fake.requests == []  # no request reached the API, for design or assessment
    assert latest_metadata(instance, "strategy_spec", "r-offline")["designer"] == "offline"
    assert latest_metadata(instance, "assessment", "r-offline")["assessor"] == "rule-based"
    [status] = load_statuses(instance, ["r-offline"])
    assert (status.status, status.designer) == ("completed", "offline")
    assert status.cost_usd == 0 and not any(status.tokens.values())
    assert spent_today_usd(instance) == 0


@pytest.mark.parametrize("key", [None, "", "   "])
def test_claude_designer_without_a_key_fails_the_research_clearly(instance, fake, llm_env, key):
    llm_env.setenv("RESEARCH_DESIGNER", "claude")
    if key is None:
        llm_env.delenv("ANTHROPIC_API_KEY")
    else:
        llm_env.setenv("ANTHROPIC_API_KEY", key)
    result = run_research(instance, "r-nokey")
    assert not result.success
    failures = step_failures(result)
    assert list(failures) == ["strategy_spec"]  # the step failed; nothing downstream ran
    assert materialized(result) == set()
    message_text = failures["strategy_spec"].error.message
    assert "ANTHROPIC_API_KEY" in message_text and "RESEARCH_DESIGNER=offline" in message_text
    assert "Traceback" not in message_text.splitlines()[0]
    assert failure_reason(failures["strategy_spec"]) == "llm_config_error"
    assert fake.requests == []
    [status] = load_statuses(instance, ["r-nokey"])
    assert (status.status, status.phase, status.reason) == (
        "failed",
        "designing",
        "llm_config_error",
    )
    assert status.cost_usd == 0


# -- an unavailable API ------------------------------------------------------------------------


@pytest.mark.slow
def test_persistent_529_fails_one_research_and_the_next_completes(instance, fake, llm_env):
    # One billed turn, then the API stays overloaded (asking for a 120 s wait each time).
    first_turn = dict(input_tokens=4000, output_tokens=120, cache_creation=1500, cache_read=0)
    overloaded = error(529, "overloaded_error", "Overloaded", headers={"retry-after": "120"})
    fake.push(
        billed(tool_use("get_available_symbols", {}), usage=first_turn),
        *[overloaded] * (MAX_RETRIES + 1),
    )
    started = time.monotonic()
    result = run_research(instance, "r-529")
    elapsed = time.monotonic() - started
    assert not result.success
    assert len(fake.requests) == 1 + MAX_RETRIES + 1  # RESEARCH_LLM_MAX_RETRIES was applied
    assert elapsed < 60  # retry-after was capped by RESEARCH_LLM_MAX_RETRY_WAIT_S
    failures = step_failures(result)
    assert list(failures) == ["strategy_spec"]
    assert failure_reason(failures["strategy_spec"]) == "llm_unavailable"
    message_text = failures["strategy_spec"].error.message
    assert "unavailable" in message_text and "529" in message_text
    assert materialized(result) == set()

    [failed] = load_statuses(instance, ["r-529"])
    assert (failed.status, failed.reason) == ("failed", "llm_unavailable")
    # The billed first turn counts, for the research and for the day's budget.
    assert failed.tokens == api_usage(first_turn)
    assert failed.cost_usd == pytest.approx(cost(first_turn))
    assert spent_today_usd(instance) == pytest.approx(cost(first_turn))

    # The API is back: the next research in the same instance is not affected.
    fake.push(design_reply(), assessment_reply())
    result = run_research(instance, "r-after", seed=4)
    assert result.success, step_failures(result)
    assert len(fake.requests) == 1 + MAX_RETRIES + 1 + 2
    failed, done = load_statuses(instance, ["r-529", "r-after"])
    assert (failed.status, failed.reason) == ("failed", "llm_unavailable")
    assert (done.status, done.designer, done.verdict) == ("completed", "claude", "neutral")
    assert done.cost_usd == pytest.approx(cost(DESIGN_USAGE, ASSESS_USAGE))
    assert spent_today_usd(instance) == pytest.approx(cost(first_turn, DESIGN_USAGE, ASSESS_USAGE))
    # The failed research shows in the next design's memory.
    assert "r-529" in fake.requests[-2]["messages"][0]["content"]


@pytest.mark.slow
def test_failed_assessment_fails_the_research_and_its_billed_turns_count(instance, fake, llm_env):
    # Designed and trained; the assessment's first answer is invalid (billed), then the API
    # stays overloaded.
    bad_turn = dict(input_tokens=2500, output_tokens=300, cache_creation=0, cache_read=0)
    fake.push(
        design_reply(),
        billed(tool_use("save_assessment", {"verdict": "great"}), usage=bad_turn),
        *[error(529, "overloaded_error", "Overloaded")] * (MAX_RETRIES + 1),
    )
    result = run_research(instance, "r-assess")
    assert not result.success
    assert len(fake.requests) == 1 + 1 + MAX_RETRIES + 1
    failures = step_failures(result)
    assert list(failures) == ["assessment"]
    assert failure_reason(failures["assessment"]) == "llm_unavailable"
    assert materialized(result) == {"strategy_spec", "trained_model", "backtest_report"}

    observed = [
        r.asset_observation.metadata
        for r in instance.fetch_observations(dg.AssetKey("assessment"), limit=10).records
    ]
    assert [md["failed"].value for md in observed] == [True]
    assert observed[0]["usage/input_tokens"].value == bad_turn["input_tokens"]

    [status] = load_statuses(instance, ["r-assess"])
    assert (status.status, status.reason, status.designer) == (
        "failed",
        "llm_unavailable",
        "claude",
    )
    assert status.lockbox is None and status.verdict is None
    assert status.tokens == {
        k: api_usage(DESIGN_USAGE)[k] + api_usage(bad_turn)[k] for k in api_usage(DESIGN_USAGE)
    }
    assert status.cost_usd == pytest.approx(cost(DESIGN_USAGE, bad_turn))
    assert spent_today_usd(instance) == pytest.approx(cost(DESIGN_USAGE, bad_turn))


# -- the key is never stored -------------------------------------------------------------------


def files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if needle in path.read_bytes():
                found.append(str(path.relative_to(root)))
    return sorted(found)


@pytest.mark.slow
def test_the_api_key_never_reaches_the_instance_storage(instance, tmp_path, fake, llm_env):
    # A completed research, and two failed ones whose error bodies echo the key (as a
    # misbehaving proxy might): a 401 (llm_config_error) and a persistent 529 (llm_unavailable).
    echoed = f"invalid x-api-key: {KEY}"
    fake.push(design_reply(), assessment_reply())
    ok = run_research(instance, "r-ok")
    fake.push(error(401, "authentication_error", echoed))
    rejected = run_research(instance, "r-401", seed=5)
    fake.push(*[error(529, "overloaded_error", echoed)] * (MAX_RETRIES + 1))
    overloaded = run_research(instance, "r-529", seed=6)
    assert ok.success and not rejected.success and not overloaded.success
    assert all(h["authorization"] == f"Bearer {KEY}" for h in fake.headers)  # the key was used
    statuses = {s.id: (s.status, s.reason) for s in load_statuses(instance)}
    assert statuses == {
        "r-ok": ("completed", None),
        "r-401": ("failed", "llm_config_error"),
        "r-529": ("failed", "llm_unavailable"),
    }
    message_401 = step_failures(rejected)["strategy_spec"].error.message
    assert "[redacted]" in message_401 and "ANTHROPIC_API_KEY was rejected" in message_401

    home = tmp_path  # the `instance` fixture's DAGSTER_HOME
    # The walk reads what the runs stored: the sqlite event logs, pickles and compute logs.
    assert any(p.endswith(".db") for p in files_containing(home, b"claude_fast_eurusd"))
    assert files_containing(home, b"r-ok")
    assert any("compute_logs" in p for p in files_containing(home, b"strategy_spec"))
    stored = [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()]
    assert any(p.startswith("storage/strategy_spec/") for p in stored)
    assert any("compute_logs" in p for p in stored)

    for needle in (KEY.encode(), KEY.encode("utf-16-le"), b"SECRET-4f9c"):
        assert files_containing(home, needle) == [], needle

    runs = instance.get_runs()
    assert len(runs) == 3
    for run in runs:
        assert KEY not in repr(run.run_config) and KEY not in repr(run.tags)
        assert "SECRET" not in repr(run)
    for run in runs:
        for event in instance.all_logs(run.run_id):
            assert "SECRET" not in repr(event)
