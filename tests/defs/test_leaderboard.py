"""The leaderboard asset: what it shows agrees with `research status`, and declarative automation
requests it, and only it, when a research ends (a verdict at either gate, or completion)."""

import base64
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from research_assets.core.gates import GateThresholds
from research_assets.definitions import defs
from research_assets.defs.jobs import RESEARCH_ASSETS
from research_assets.defs.leaderboard import (
    leaderboard,
    leaderboard_after_failed_run,
    leaderboard_job,
)
from research_assets.defs.resources import QualityGatesResource
from research_assets.state.records import load_statuses, record_cancel, record_request
from tests.gate_support import OPEN_GATES, open_thresholds

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LEADERBOARD = dg.AssetKey("leaderboard")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


@pytest.fixture
def instance(home: Path):
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst


def run_research(instance, research_id, spec, gates: GateThresholds | None = None, selection=None):
    record_request(instance, research_id, seed=3, spec=spec)
    thresholds = dataclasses.asdict(gates or GateThresholds(**OPEN_GATES))
    return dg.materialize(
        RESEARCH_ASSETS,
        instance=instance,
        partition_key=research_id,
        selection=selection or dg.AssetSelection.assets(*RESEARCH_ASSETS),
        resources={**defs.resources, "gates": QualityGatesResource(**thresholds)},
        raise_on_error=False,
        tags={"research/id": research_id},
    )


def requested(result: dg.EvaluateAutomationConditionsResult) -> set[dg.AssetKey]:
    return {ap.asset_key for ap in result._requested_asset_partitions}  # noqa: SLF001


def build_leaderboard(instance) -> dict:
    result = dg.materialize([leaderboard], instance=instance)
    assert result.success
    [mat] = result.asset_materializations_for_node("leaderboard")
    return mat.metadata


def research_status_json(home: Path) -> dict[str, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "research_assets.cli", "status", "--json"],
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {r["id"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])["researches"]}


def test_automation_requests_only_the_leaderboard_when_a_research_ends(instance, small_spec):
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert requested(tick) == set()

    # Rejected at the training gate: trained_model is materialized, the research has ended.
    run_research(instance, "r-train", small_spec, open_thresholds(min_accuracy=0.99))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {LEADERBOARD}  # no research asset, only the leaderboard
    # Requested once: nothing new, nothing requested (the request itself resets it).
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == set()
    build_leaderboard(instance)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == set()

    # Rejected at the backtest gate, then one that completes: each end requests it again.
    run_research(instance, "r-back", small_spec, open_thresholds(min_sharpe=100.0))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {LEADERBOARD}
    run_research(instance, "r-done", small_spec)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {LEADERBOARD}

    # A research that ends while a leaderboard run is in flight: not requested twice at once, and
    # requested again once that run has ended (it may have read the statuses before the end).
    run = instance.create_run_for_job(
        defs.resolve_job_def(leaderboard_job.name),
        asset_selection=frozenset({LEADERBOARD}),
        status=dg.DagsterRunStatus.STARTED,
    )
    run_research(instance, "r-late", small_spec, open_thresholds(min_accuracy=0.99))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == set()
    instance.report_run_canceled(run)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert requested(tick) == {LEADERBOARD}

    # A research's failed run (the training gate failed it) requests the leaderboard too; the
    # leaderboard's own run does not.
    [failed] = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": "r-train"}))
    assert failed.status == dg.DagsterRunStatus.FAILURE
    answer = leaderboard_after_failed_run(run_ended(instance, failed))
    assert isinstance(answer, dg.RunRequest)
    assert answer.tags == {"research/leaderboard": "true"}  # the run queue's one-at-a-time
    own = instance.get_run_by_id(run.run_id)
    assert isinstance(leaderboard_after_failed_run(run_ended(instance, own)), dg.SkipReason)


def test_the_run_queue_runs_one_leaderboard_at_a_time_beside_the_research_workers():
    for path in (REPO / "dagster_home" / "dagster.yaml", REPO / "deploy" / "dagster.yaml"):
        runs = yaml.safe_load(path.read_text())["concurrency"]["runs"]
        limits = {
            (rule["key"], str(rule.get("value"))): rule["limit"]
            for rule in runs["tag_concurrency_limits"]
        }
        assert limits[("research/leaderboard", "None")] == 1
        workers = limits[("research/worker", "cpu")] + limits[("research/worker", "gpu")]
        # A leaderboard run never waits for, or takes, a research worker's run slot.
        assert workers + 1 <= runs["max_concurrent_runs"], path
    automation = defs.get_sensor_def("leaderboard_automation")
    assert automation.run_tags == {"research/leaderboard": "true"}
    assert defs.resolve_job_def("leaderboard_job").tags == {"research/leaderboard": "true"}


def run_ended(instance, run: dg.DagsterRun) -> dg.RunStatusSensorContext:
    """What a run status sensor is given when ``run`` ends."""
    [record] = instance.all_logs(
        run.run_id, of_type={dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_CANCELED}
    )
    return dg.build_run_status_sensor_context(
        sensor_name=leaderboard_after_failed_run.name,
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=record.dagster_event,
    )


def test_leaderboard_agrees_with_research_status(home, instance, small_spec):
    run_research(instance, "r-done", small_spec)
    run_research(instance, "r-train", small_spec, open_thresholds(min_accuracy=0.99))
    run_research(instance, "r-back", small_spec, open_thresholds(min_sharpe=100.0))
    # Stopped after its design: ends `failed` (incomplete).
    run_research(
        instance, "r-part", small_spec, selection=dg.AssetSelection.assets("strategy_spec")
    )
    record_request(instance, "r-cancel", seed=1, spec=small_spec)
    record_cancel(instance, "r-cancel")
    record_request(instance, "r-queued", seed=2, spec=small_spec)

    metadata = build_leaderboard(instance)
    rows = {r.data["research"]: r.data for r in metadata["ranking"].value.records}
    status = research_status_json(home)  # what `research status --json` prints
    assert (
        set(rows)
        == set(status)
        == {"r-done", "r-train", "r-back", "r-part", "r-cancel", "r-queued"}
    )
    assert {rows[i]["status"] for i in rows} == {
        "completed",
        "rejected",
        "failed",
        "cancelled",
        "queued",
    }
    pooled = {s.id: s.backtest_summary for s in load_statuses(instance)}
    for research_id, row in rows.items():
        s = status[research_id]
        assert row["status"] == s["status"], research_id
        assert row["strategy"] == s["strategy"], research_id
        assert row["reason"] == (s["reason_detail"] or s["reason"]), research_id
        assert row["cost_usd"] == pytest.approx(s["cost_usd"], abs=1e-4)
        sharpe = pooled[research_id].get("Sharpe Ratio")
        assert row["sharpe"] == (None if sharpe is None else pytest.approx(sharpe, abs=1e-4))
        lockbox = [d["Sharpe Ratio"] for d in (s["lockbox"] or {}).values()]
        assert row["lockbox_sharpe"] == (
            pytest.approx(sum(lockbox) / len(lockbox), abs=1e-4) if lockbox else None
        )
    # Rejections say why in numbers, as `research status` does.
    assert "< 0.99" in rows["r-train"]["reason"]
    assert rows["r-back"]["reason"].endswith("(sharpe_too_low)")
    # The completed research ranks first and is the only one with lockbox figures.
    assert rows["r-done"]["rank"] == 1 and rows["r-done"]["lockbox_sharpe"] is not None
    assert metadata["researches"].value == 6
    assert metadata["status/rejected"].value == 2

    picture = metadata["comparison"].value
    assert picture.startswith("![out-of-sample against lockbox Sharpe](data:image/png;base64,")
    png = base64.b64decode(picture.split("base64,", 1)[1].rstrip(")"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 120_000
