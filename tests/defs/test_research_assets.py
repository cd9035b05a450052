"""Whole researches through the real assets, on a real (temporary) instance."""

import dagster as dg
import pytest

from research_assets.core.names import GATED_ASSETS
from research_assets.definitions import defs
from research_assets.defs.jobs import RESEARCH_ASSETS
from research_assets.defs.resources import QualityGatesResource
from research_assets.state.records import (
    latest_metadata,
    load_memory,
    load_statuses,
    record_request,
)
from tests.gate_support import OPEN_GATES
from tests.lockbox_support import (
    LOCKBOX_STATS,
    assert_no_lockbox,
    give_lockbox_sentinel_figures,
)

pytestmark = pytest.mark.slow


def run_research(instance, research_id, spec, gates=None, selection=None, checks=True):
    record_request(instance, research_id, seed=3, spec=spec)
    resources = {"gates": QualityGatesResource(**(gates or OPEN_GATES))}
    assets = RESEARCH_ASSETS
    sel = selection or dg.AssetSelection.assets(*assets)
    if not checks:
        sel = sel.without_checks()
    return dg.materialize(
        assets,
        instance=instance,
        partition_key=research_id,
        selection=sel,
        resources={**defs.resources, **resources},
        raise_on_error=False,
        tags={"research/id": research_id},
    )


def check_outcome(result, gate):
    """The gate's outcome in this run from its checks (one per criterion): [True] when every
    criterion passed, [False] when one failed, [] when the gate was not evaluated."""
    asset = dg.AssetKey(GATED_ASSETS[gate])
    evals = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.asset_key == asset
    ]
    if not evals:
        return []
    assert [ev.check_name for ev in evals] == [
        c.name for c in defs.resolve_assets_def(asset).check_specs
    ]
    return [all(ev.passed for ev in evals)]


def test_research_passes_both_gates_and_completes(instance, small_spec):
    result = run_research(instance, "r-pass", small_spec)
    assert result.success
    assert check_outcome(result, "training_gate") == [True]
    assert check_outcome(result, "backtest_gate") == [True]
    [status] = load_statuses(instance, ["r-pass"])
    assert status.status == "completed"
    assert status.phase == "done"
    assert status.gates == {"training_gate": "passed", "backtest_gate": "passed"}
    assert status.strategy == small_spec.name
    assert set(status.backtest) == {"EURUSD/1h"}
    assert set(status.lockbox) == {"EURUSD/1h"}
    assert "Sharpe Ratio" in status.backtest["EURUSD/1h"]
    assert status.verdict in ("promising", "neutral", "poor")

    # the walk-forward folds, in the UI: a table per fold on both assets, boundaries on the plot
    model_md = latest_metadata(instance, "trained_model", "r-pass")
    report_md = latest_metadata(instance, "backtest_report", "r-pass")
    model_folds = [r.data for r in model_md["folds"].records]
    report_folds = [r.data for r in report_md["folds"].records]
    assert [row["fold"] for row in model_folds] == [1, 2, 3, 4]
    assert {"accuracy_lift", "label_entropy", "test_samples"} <= set(model_folds[0])
    assert [(row["dataset"], row["fold"]) for row in report_folds] == [
        ("EURUSD/1h", k) for k in (1, 2, 3, 4)
    ]
    assert report_folds[0]["start"] == report_md["bounds"]["EURUSD/1h"][0]
    assert len(model_md["fold_periods"]["walk_forward"]["EURUSD/1h"]) == 4
    assert report_md["equity_curve"].startswith("![backtest equity curve](data:image/png")


def test_failing_training_gate_rejects_and_stops_downstream(instance, small_spec):
    gates = {**OPEN_GATES, "min_accuracy": 0.99}
    result = run_research(instance, "r-acc", small_spec, gates=gates)
    assert not result.success
    assert check_outcome(result, "training_gate") == [False]
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"strategy_spec", "trained_model"}
    [status] = load_statuses(instance, ["r-acc"])
    assert status.status == "rejected"
    assert status.reason == "accuracy_below_threshold"
    assert status.gates == {"training_gate": "failed", "backtest_gate": None}
    assert status.backtest is None and status.lockbox is None


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"min_win_rate": 0.99}, "win_rate_too_low"),
        ({"max_drawdown": 0.0}, "drawdown_too_high"),
        ({"min_sharpe": 100.0}, "sharpe_too_low"),
    ],
)
def test_failing_backtest_gate_rejects_with_reason(instance, small_spec, override, reason):
    result = run_research(instance, "r-bt", small_spec, gates={**OPEN_GATES, **override})
    assert not result.success
    assert check_outcome(result, "training_gate") == [True]
    assert check_outcome(result, "backtest_gate") == [False]
    [status] = load_statuses(instance, ["r-bt"])
    assert (status.status, status.reason) == ("rejected", reason)
    assert status.gates == {"training_gate": "passed", "backtest_gate": "failed"}
    assert status.lockbox is None


def test_checks_cannot_be_deselected_from_a_gated_asset(instance, small_spec):
    # Inline check specs make the gate part of the asset: Dagster refuses a launch without it.
    with pytest.raises(dg.DagsterInvalidDefinitionError) as raised:
        run_research(instance, "r-nochk", small_spec, checks=False)
    assert "does not support subsetting" in str(raised.value.__cause__)


def test_later_launch_of_downstream_cannot_get_past_a_failed_gate(instance, small_spec):
    first = run_research(
        instance, "r-later", small_spec, gates={**OPEN_GATES, "min_loss_decrease": 0.99}
    )
    assert check_outcome(first, "training_gate") == [False]
    # A blocking check only blocks inside its own run; a second run of what lies downstream
    # must still refuse, because the gate's recorded outcome says no.
    downstream = dg.AssetSelection.assets("backtest_report", "assessment", "lockbox_report")
    second = run_research(instance, "r-later", small_spec, selection=downstream)
    assert not second.success
    failures = [e for e in second.all_events if e.is_step_failure]
    assert [f.step_key for f in failures] == ["backtest_report"]
    message = failures[0].step_failure_data.error.message
    assert "training_gate did not pass" in message and "insufficient_loss_decrease" in message
    assert second.get_asset_materialization_events() == []
    [status] = load_statuses(instance, ["r-later"])
    assert (status.status, status.reason) == ("rejected", "insufficient_loss_decrease")


def test_memory_remembers_rejections_and_never_holds_lockbox(instance, small_spec, monkeypatch):
    # The lockbox backtest really runs, and reports sentinel figures that appear nowhere else.
    periods = give_lockbox_sentinel_figures(monkeypatch)
    run_research(instance, "r-ok", small_spec)
    run_research(instance, "r-no", small_spec, gates={**OPEN_GATES, "min_sharpe": 100.0})
    assert periods == ["backtest", "lockbox", "backtest"]
    ok, _no = load_statuses(instance, ["r-ok", "r-no"])
    assert ok.lockbox == {"EURUSD/1h": LOCKBOX_STATS}  # the leaderboard has them
    memory = load_memory(instance)
    by_id = {r.research_id: r for r in memory.records}
    assert by_id["r-no"].rejection_reason == "sharpe_too_low"
    assert by_id["r-no"].rejected_by == "backtest_gate"
    assert by_id["r-ok"].status == "completed"
    prompt_view = [r.to_prompt_dict() for r in memory.records]
    assert "lockbox" not in repr(prompt_view).lower()
    assert_no_lockbox(memory.records, prompt_view, where="memory")
    assert by_id["r-ok"].backtest == ok.backtest_summary  # backtest-period figures are visible
    # The designer's memory excludes the research being designed.
    assert "r-ok" not in {r.research_id for r in load_memory(instance, exclude=["r-ok"]).records}


def test_same_spec_same_seed_gives_same_metrics(instance, small_spec):
    run_research(instance, "r-a", small_spec)
    run_research(instance, "r-b", small_spec)
    a, b = load_statuses(instance, ["r-a", "r-b"])
    assert a.training == b.training
    assert a.backtest == b.backtest


def test_report_metadata_of_datasets_with_missing_figures():
    """A dataset whose backtest made no trade has no Sharpe ratio (NaN): its row of the
    statistics table shows an empty cell, and the other datasets' rows are unchanged."""
    from research_assets.core.pipeline import BacktestReport
    from research_assets.defs.assets import _report_metadata

    stats = {
        "BTCUSD/1h": {"# Trades": 12.0, "Sharpe Ratio": 1.5},
        "EURUSD/1h": {"# Trades": 0.0, "Sharpe Ratio": float("nan")},
    }
    report = BacktestReport("lockbox", stats, {"# Trades": 12.0, "Sharpe Ratio": 1.5})
    table = _report_metadata(report)["statistics"]
    assert [c.name for c in table.schema.columns] == ["dataset", "# Trades", "Sharpe Ratio"]
    assert [r.data for r in table.records] == [
        {"dataset": "BTCUSD/1h", "# Trades": 12.0, "Sharpe Ratio": 1.5},
        {"dataset": "EURUSD/1h", "# Trades": 0.0, "Sharpe Ratio": None},
    ]


def refusal(result):
    """The one step failure of a run: (its step, its message, its reason)."""
    [failure] = [e for e in result.all_events if e.is_step_failure]
    data = failure.step_failure_data
    assert data.user_failure_data is not None, data.error.to_string()
    reason = data.user_failure_data.metadata["reason"].value
    return failure.step_key, data.user_failure_data.description, reason


def test_asset_refuses_when_its_upstream_was_not_materialized(instance, small_spec):
    # `--select 'strategy_spec+'`: only strategy_spec and its direct children, so assessment is
    # launched without backtest_report. It refuses with a reason, not a FileNotFoundError.
    from research_assets.core.spec import StrategySpec

    data = small_spec.to_dict()
    data["training"]["epochs"] = 1
    spec = StrategySpec.from_dict(data)
    first = run_research(
        instance,
        "r-part",
        spec,
        selection=dg.AssetSelection.assets("strategy_spec").downstream(depth=1),
    )
    assert not first.success
    assert check_outcome(first, "training_gate") == [True]
    hint = "run the whole research with --select 'strategy_spec*'"
    assert refusal(first) == (
        "assessment",
        f"backtest_report has not been materialized for research r-part, so assessment cannot "
        f"run; {hint}",
        "backtest_report_not_materialized",
    )
    [status] = load_statuses(instance, ["r-part"])
    assert (status.status, status.reason) == ("failed", "backtest_report_not_materialized")
    assert status.gates == {"training_gate": "passed", "backtest_gate": None}

    # lockbox_report alone: no backtest_report (so no backtest gate) ...
    alone = dg.AssetSelection.assets("lockbox_report")
    second = run_research(instance, "r-part", spec, selection=alone)
    assert refusal(second) == (
        "lockbox_report",
        f"backtest_report has not been materialized for research r-part, so lockbox_report "
        f"cannot run; {hint}",
        "backtest_report_not_materialized",
    )
    # ... and then no assessment, which the lockbox always comes after.
    run_research(instance, "r-part", spec, selection=dg.AssetSelection.assets("backtest_report"))
    third = run_research(instance, "r-part", spec, selection=alone)
    assert refusal(third)[2] == "assessment_not_materialized"
    assert third.get_asset_materialization_events() == []
    [status] = load_statuses(instance, ["r-part"])
    assert (status.status, status.reason) == ("failed", "assessment_not_materialized")
