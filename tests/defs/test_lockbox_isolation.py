"""The lockbox reaches the leaderboard and nothing else: not the memory a designer reads, not the
Claude designer's or assessor's requests (prompts and every tool result), not a gate, not an
assessment.

Lockbox reports here carry sentinel figures that appear nowhere else (tests/lockbox_support.py),
so a leak is a number found where it must not be, in any of the forms the code writes numbers
in. The first test shows that a leaked lockbox figure would be found in each of those places; the
others put sentinel lockboxes in a real instance (synthetic researches of every kind, and whole
researches run through the real assets, whose lockbox backtest really runs and then reports the
sentinels) and look for them everywhere a designer, a gate or an assessment reads or writes.
Designs and assessments by Claude go through the real ``anthropic`` SDK to the local fake
Messages API (tests/llm/fake_anthropic.py), which records every request body.
"""

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from research_assets.core.assessor import assess
from research_assets.core.data import DatasetInfo
from research_assets.core.designer import DesignRequest, OfflineDesigner
from research_assets.core.gates import GateThresholds, evaluate_backtest_gate
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.definitions import defs
from research_assets.defs import assets as asset_defs
from research_assets.defs.jobs import RESEARCH_ASSETS
from research_assets.defs.resources import QualityGatesResource
from research_assets.llm.assessor import ClaudeAssessor
from research_assets.llm.config import LLMSettings
from research_assets.llm.designer import ClaudeDesigner, memory_text, record_line
from research_assets.state.records import load_memory, load_statuses, record_request
from tests.defs.test_research_index import backtest_stats, build
from tests.gate_support import OPEN_GATES
from tests.llm.fake_anthropic import FakeAnthropic, message, tool_use
from tests.lockbox_support import (
    LOCKBOX_STATS,
    assert_no_lockbox,
    give_lockbox_sentinel_figures,
    lockbox_fields,
)

KEY = "sk-ant-test-lockbox-7a1e"
DATASET = "EURUSD/1h"  # what every research here trades
ALL_FIELDS = set(LOCKBOX_STATS)
# The figures of a record on its line in the Claude designer's first message.
LINE_FIELDS = {
    "Return [%]",
    "Buy & Hold Return [%]",
    "Sharpe Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "# Trades",
    "Excess Sharpe",
    "Excess Return [%]",
    "Beta",
    "Deflated Sharpe Ratio",
    "p-value",
}
GATE_FIELDS = {
    "Sharpe Ratio",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "# Trades",
    "p-value",
    "Excess Sharpe",
    "Deflated Sharpe Ratio",
}
ASSESSMENT = {
    "verdict": "neutral",
    "summary": "Sharpe near zero on EURUSD 1h; the RSI zones add little over the trend filter.",
    "strengths": ["Trades often enough for the figures to mean something."],
    "weaknesses": ["Win rate close to 50% leaves little margin over costs."],
    "suggestions": ["Add an ATR input (period 14) to stand aside in volatile hours."],
    "hypotheses": ["A 24-bar forward-return label keeps the edge with fewer trades."],
}
DATASETS = [
    DatasetInfo(
        "EURUSD",
        "1h",
        Path("/data/EURUSD_1h.parquet"),
        6225,
        pd.Timestamp("2017-01-01", tz="UTC"),
        pd.Timestamp("2017-12-29", tz="UTC"),
    )
]


@pytest.fixture
def fake():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def llm_env(monkeypatch, fake: FakeAnthropic):
    """Claude designs and assesses (a key and the fake's address, as a deployment sets them)."""
    for name in list(os.environ):
        if name.startswith(("RESEARCH_", "GATE_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("RESEARCH_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("RESEARCH_LLM_TIMEOUT_S", "15")
    return monkeypatch


def fast_spec(name: str, epochs: int = 3) -> dict[str, Any]:
    """A valid spec as Claude would save it (no backtest section), quick to train."""
    d = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    d.pop("backtest")
    d["name"] = name
    d["training"]["epochs"] = epochs
    d["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    return d


def save_design(spec: dict[str, Any]):
    return message(tool_use("save_strategy_config", {"spec": spec, "rationale": "A probe."}))


def save_assessment():
    return message(tool_use("save_assessment", ASSESSMENT))


def recent(**args):
    return message(tool_use("get_recent_strategies", args))


def materialize(instance, research_id, selection=None):
    """The research's assets (or ``selection`` of them), as the research job runs them."""
    return dg.materialize(
        RESEARCH_ASSETS,
        instance=instance,
        partition_key=research_id,
        selection=dg.AssetSelection.assets(*(selection or [a.key for a in RESEARCH_ASSETS])),
        resources={**(defs.resources or {}), "gates": QualityGatesResource(**OPEN_GATES)},
        raise_on_error=False,
        tags={"research/id": research_id},
    )


def written(result) -> dict[str, list[Any]]:
    """What a run wrote: per asset the metadata of its materializations, per gate its
    evaluations (passed, description, metadata)."""
    out: dict[str, list[Any]] = defaultdict(list)
    for e in result.all_events:
        if e.event_type_value == "ASSET_MATERIALIZATION":
            m = e.event_specific_data.materialization
            out[m.asset_key.to_user_string()].append(m.metadata)
        elif e.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = e.event_specific_data
            out[ev.metadata["gate"].value].append((ev.passed, ev.description, ev.metadata))
    return out


def spy(monkeypatch, calls: list, owner: Any, name: str) -> None:
    """Record each call of ``owner.name`` (its arguments, a memory as its list of records, and
    what it returned), changing nothing."""
    real = getattr(owner, name)

    def recorded(*args, **kwargs):
        result = real(*args, **kwargs)
        seen = tuple(list(a.records) if isinstance(a, ResearchMemory) else a for a in args)
        calls.append((name, seen, kwargs, result))
        return result

    monkeypatch.setattr(owner, name, recorded)


def spy_on_readers(monkeypatch) -> list:
    """Spies on everything that reads a research's figures: both gates, both assessors and both
    designers (whose arguments include the memory they were given)."""
    calls: list = []
    for owner, name in (
        (asset_defs, "evaluate_training_gate"),
        (asset_defs, "evaluate_backtest_gate"),
        (asset_defs, "assess"),
        (ClaudeAssessor, "assess"),
        (OfflineDesigner, "design"),
        (ClaudeDesigner, "design"),
    ):
        spy(monkeypatch, calls, owner, name)
    return calls


def memory_of(calls: list, designer: type) -> list[list[ResearchRecord]]:
    """The memory (its records) each design by ``designer`` was given."""
    return [
        args[2]
        for name, args, _kw, _r in calls
        if name == "design" and isinstance(args[0], designer)
    ]


# -- a leak would be seen ----------------------------------------------------------------------


def test_a_leaked_lockbox_figure_would_be_found_in_every_format(small_spec):
    """Were lockbox figures given to memory, a gate or an assessor, the checks below would find
    them in what each writes: the sentinels survive every rounding and format on the way."""
    leaked = ResearchRecord(
        "r-leak",
        "completed",
        1.0,
        spec=small_spec,
        backtest=dict(LOCKBOX_STATS),
        training={"test_accuracy": 0.55, "test_loss": 0.69},
    )
    memory = ResearchMemory([leaked])
    assert lockbox_fields(leaked.to_prompt_dict()) == ALL_FIELDS
    assert lockbox_fields(record_line(leaked)) == LINE_FIELDS
    assert lockbox_fields(memory_text(memory)) == LINE_FIELDS

    # The Claude designer: its first message, and the get_recent_strategies tool's result.
    with FakeAnthropic() as fake:
        settings = LLMSettings(api_key=KEY, base_url=fake.url, max_retries=0, timeout_s=15.0)
        fake.push(recent(limit=50, include_specs=True), save_design(fast_spec("probe")))
        ClaudeDesigner(settings).design(DesignRequest("r-new", 1), memory, DATASETS)
        assert lockbox_fields(fake.requests[0]["messages"][0]["content"]) == LINE_FIELDS
        assert lockbox_fields(fake.tool_results(1)) == ALL_FIELDS
        assert lockbox_fields(*fake.raw) == ALL_FIELDS

        # The Claude assessor's prompt.
        fake.push(save_assessment())
        ClaudeAssessor(settings).assess(
            small_spec, {"test_accuracy": 0.55}, LOCKBOX_STATS, {DATASET: LOCKBOX_STATS}
        )
        assert lockbox_fields(fake.raw[-1]) == ALL_FIELDS

    # The offline designer, exploiting the best completed research, quotes its Sharpe.
    rationales = [
        OfflineDesigner().design(DesignRequest(f"r{seed}", seed), memory, DATASETS).rationale
        for seed in range(8)
    ]
    assert "Sharpe Ratio" in lockbox_fields(rationales)

    # A gate's metadata and description, and the rule-based assessment.
    gate = evaluate_backtest_gate(LOCKBOX_STATS, GateThresholds())
    assert lockbox_fields(gate.metadata()) == GATE_FIELDS
    # the description names the failing checks: with every check failing, each figure
    failing = GateThresholds(
        min_win_rate=1.0,
        max_drawdown=0.0,
        min_sharpe=1e6,
        min_trades=1e9,
        min_deflated_sharpe=1.0,
        max_p_value=0.0,
        min_excess_sharpe=1e6,
    )
    assert (
        lockbox_fields(evaluate_backtest_gate(LOCKBOX_STATS, failing).description()) == GATE_FIELDS
    )
    verdict = assess(small_spec, {"test_accuracy": 0.55}, LOCKBOX_STATS, {DATASET: LOCKBOX_STATS})
    assert {"Sharpe Ratio", "Max. Drawdown [%]", "# Trades"} <= lockbox_fields(verdict)


# -- memory, from an instance whose researches have sentinel lockboxes -----------------------


@pytest.mark.slow
def test_no_designer_reads_a_lockbox_figure(instance, small_spec, fake, llm_env):
    built = build(instance, small_spec, per_kind=1)  # researches of every kind
    statuses = load_statuses(instance)
    completed = [s for s in statuses if s.status == "completed"]
    assert len(completed) == 2
    for s in completed:  # the lockbox figures are in the instance, for the leaderboard
        assert s.lockbox == {DATASET: LOCKBOX_STATS}
        assert lockbox_fields(s.to_json()) == ALL_FIELDS

    # The memory built from the instance, in every view of it.
    memory = load_memory(instance)
    assert len(memory) == len(built)
    assert {r.research_id for r in memory.best()} == {s.id for s in completed}
    assert_no_lockbox(
        memory.records,
        [r.to_prompt_dict() for r in memory.records],
        [record_line(r) for r in memory.records],
        memory_text(memory),
        where="memory",
    )

    calls = spy_on_readers(llm_env)
    # The offline designer, through the strategy_spec asset.
    llm_env.setenv("RESEARCH_DESIGNER", "offline")
    record_request(instance, "r-offline", seed=11)
    result = materialize(instance, "r-offline", ["strategy_spec"])
    assert result.success
    [offline_memory] = memory_of(calls, OfflineDesigner)
    assert {r.research_id for r in offline_memory} == set(built)
    assert_no_lockbox(offline_memory, written(result), calls, where="the offline designer")

    # Claude, through the strategy_spec asset: the first message and every page of records.
    llm_env.delenv("RESEARCH_DESIGNER")
    fake.push(
        recent(limit=50, include_specs=True),
        recent(status="completed"),
        recent(status="rejected", offset=1, limit=2),
        save_design(fast_spec("probe")),
    )
    record_request(instance, "r-claude", seed=12)
    result = materialize(instance, "r-claude", ["strategy_spec"])
    assert result.success
    assert len(fake.raw) == 4
    [claude_memory] = memory_of(calls, ClaudeDesigner)
    assert "r-offline" in {r.research_id for r in claude_memory}
    assert_no_lockbox(claude_memory, written(result), calls, where="Claude's design")
    assert_no_lockbox(*fake.raw, where="Claude's requests")
    # The tools answered with the records, backtest-period figures included.
    every = json.loads(fake.tool_results(1)[0]["content"])
    assert every["total"] == len(claude_memory)
    by_id = {r["id"]: r for r in every["records"]}
    for s in completed:
        i = built[s.id][1]
        assert by_id[s.id]["backtest"]["Sharpe Ratio"] == round(
            backtest_stats(i)["Sharpe Ratio"], 4
        )
        assert "spec" in by_id[s.id]
    assert {r["id"] for r in json.loads(fake.tool_results(2)[0]["content"])["records"]} == {
        s.id for s in completed
    }


# -- gates, assessments and the next design, in whole researches --------------------------------


@pytest.mark.slow
def test_whole_researches_keep_their_lockbox_from_gates_assessments_and_designs(
    instance, fake, llm_env
):
    periods = give_lockbox_sentinel_figures(llm_env)
    calls = spy_on_readers(llm_env)

    # r-1, designed and assessed by Claude; its lockbox backtest reports the sentinels.
    fake.push(save_design(fast_spec("lockbox_probe_a")), save_assessment())
    record_request(instance, "r-1", seed=1)
    first = materialize(instance, "r-1")
    assert first.success
    assert "lockbox" in periods
    [r1] = load_statuses(instance, ["r-1"])
    assert r1.status == "completed"
    assert r1.lockbox == {DATASET: LOCKBOX_STATS}
    assert_no_lockbox(r1.backtest, r1.backtest_summary, r1.training, where="r-1's backtest")

    # r-1 again, from training on, with its lockbox now in the instance: both gates and the
    # rule-based assessor run again.
    llm_env.setenv("RESEARCH_DESIGNER", "offline")
    again = materialize(instance, "r-1", ["trained_model", "backtest_report", "assessment"])
    assert again.success
    # r-3, designed offline from a memory that holds r-1.
    record_request(instance, "r-3", seed=3)
    offline = materialize(instance, "r-3", ["strategy_spec"])
    assert offline.success
    # r-2, designed by Claude (who reads every record) from the same memory, then assessed.
    llm_env.delenv("RESEARCH_DESIGNER")
    fake.push(
        recent(limit=50, include_specs=True),
        save_design(fast_spec("lockbox_probe_b", epochs=4)),
        save_assessment(),
    )
    record_request(instance, "r-2", seed=2)
    second = materialize(instance, "r-2")
    assert second.success

    # Each reader ran where expected, and was given and gave back no lockbox figure.
    names = [c[0] for c in calls]
    assert names.count("evaluate_training_gate") == names.count("evaluate_backtest_gate") == 3
    assert [(c[0], type(c[1][0]).__name__) for c in calls if c[0] in ("assess", "design")] == [
        ("design", "ClaudeDesigner"),
        ("assess", "ClaudeAssessor"),  # r-1
        ("assess", "StrategySpec"),  # r-1 again: the rule-based assessor
        ("design", "OfflineDesigner"),  # r-3
        ("design", "ClaudeDesigner"),
        ("assess", "ClaudeAssessor"),
    ]  # r-2
    assert_no_lockbox(calls, where="a gate, an assessor or a designer")
    for designer in (OfflineDesigner, ClaudeDesigner):
        assert "r-1" in {r.research_id for m in memory_of(calls, designer) for r in m}

    # Every request to Claude: both designs (prompts and tool results) and both assessments.
    assert len(fake.raw) == 5
    assert "r-1 completed" in fake.requests[2]["messages"][0]["content"]
    assert "r-1" in fake.tool_results(3)[0]["content"]
    assert_no_lockbox(*fake.raw, where="Claude's requests")

    # What the runs wrote: every asset's metadata and every gate evaluation, but the lockbox's.
    for result in (first, again, offline, second):
        out = written(result)
        lockbox = out.pop("lockbox_report", [])
        assert_no_lockbox(out, where="the runs' metadata and gates")
        if result in (first, second):
            assert lockbox_fields(lockbox) == ALL_FIELDS
            assert {"training_gate", "backtest_gate", "assessment"} <= set(out)
    assert lockbox_fields(load_statuses(instance, ["r-2"])[0].lockbox) == ALL_FIELDS
    # Only lockbox_report backtested the lockbox (r-1 and r-2, once each).
    assert periods == ["backtest", "lockbox", "backtest", "backtest", "lockbox"]
