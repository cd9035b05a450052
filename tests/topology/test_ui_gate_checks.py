"""Each research's gate outcome as Dagster's own check status, in a real browser.

A topology of its own (conftest.py's `Topology`) whose backtest gate asks for at least one trade
and is otherwise wide open: a spec that trades passes both gates, one that never takes a
position (a confidence threshold of 0.99) is rejected as too_few_trades with 0 trades. The UI's
check pages then show, for each research's partition, its own status, observed value, threshold
and reason, whichever research ran last. Screenshots go to test-artifacts/ui/.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_spec
from tests.postgres_support import fresh_database
from tests.topology.conftest import Topology, chromium_page

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

MIN_TRADES = "GATE_BACKTEST_MIN_TRADES"

CHECK_STATUSES = """
query CheckStatuses($assetKey: AssetKeyInput!, $checkName: String!, $partition: String!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      assetCheckOrError(checkName: $checkName) {
        ... on AssetCheck {
          partitionDefinition { name }
          partitionStatuses {
            ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions }
          }
        }
      }
    }
  }
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, partition: $partition,
                       limit: 10) {
    status
    evaluation { partition description }
  }
}
"""


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with fresh_database("research_gate_checks") as db_name:
        topo = Topology(tmp_path_factory.mktemp("gate_checks_home"), db_name)
        topo.code_server.env[MIN_TRADES] = "1"  # the run workers are its children
        try:
            topo.start()
            yield topo
        finally:
            topo.stop()


def research(topology: Topology, name: str, **decisions: Any) -> str:
    spec = make_spec(name=name)
    if decisions:
        spec = type(spec).from_dict({**spec.to_dict(), "decisions": decisions})
    path = topology.home / f"{name}.yaml"
    path.write_text(spec.to_yaml())
    return topology.trigger("--spec", str(path))


def check_statuses(topology: Topology, check: str, research_id: str) -> dict[str, Any]:
    data = topology.graphql(
        CHECK_STATUSES,
        {"assetKey": {"path": ["backtest_report"]}, "checkName": check, "partition": research_id},
    )
    node = data["assetNodeOrError"]["assetCheckOrError"]
    return {
        "partitions": node["partitionDefinition"]["name"],
        "statuses": node["partitionStatuses"],
        "executions": data["assetCheckExecutions"],
    }


def test_each_researchs_gate_checks_show_its_own_outcome(
    topology: Topology, ui_artifacts: Path, tmp_path: Path
):
    # The rejected one is triggered last, so an unscoped check would show it for both.
    passed = research(topology, "ui_gate_trades")
    topology.wait_final([passed], timeout=300)
    rejected = research(topology, "ui_gate_idle", confidence_threshold=0.99)
    topology.wait_final([rejected], timeout=300)
    status = topology.status_json(passed, rejected)
    assert status[passed]["status"] == "completed", (status, topology.describe([passed]))
    assert (status[rejected]["status"], status[rejected]["reason"]) == (
        "rejected",
        "too_few_trades",
    ), (status, topology.describe([rejected]))
    assert status[rejected]["gates"] == {"training_gate": "passed", "backtest_gate": "failed"}

    # What the UI asks the webserver: the check's status per research, and one research's
    # evaluations only.
    trades = check_statuses(topology, "trades", rejected)
    assert trades["partitions"] == "research"
    assert trades["statuses"] == {"succeededPartitions": [passed], "failedPartitions": [rejected]}
    assert [(e["status"], e["evaluation"]["partition"]) for e in trades["executions"]] == [
        ("FAILED", rejected)
    ]
    assert [e["status"] for e in check_statuses(topology, "trades", passed)["executions"]] == [
        "SUCCEEDED"
    ]

    topology.graphql("mutation { setNuxSeen }")
    shots: list[str] = []
    with chromium_page(tmp_path) as page:

        def shot(name: str) -> None:
            page.screenshot(path=str(ui_artifacts / name), full_page=True)
            shots.append(name)

        def partition_of_check(check: str, research_id: str) -> dict[str, str]:
            """The check's Partitions tab, one research selected: its status tag and the
            evaluation's description and metadata, as the page shows them."""
            page.goto(f"{topology.url}/assets/backtest_report?view=checks&checkDetail={check}")
            with contextlib.suppress(Exception):  # the community dialog, if it shows anyway
                page.get_by_role("button", name="Skip").click(timeout=3_000)
            tabs = page.get_by_role("tablist").filter(
                has=page.get_by_role("tab", name="Execution history")
            )
            tabs.get_by_role("tab", name="Partitions").click()
            # the research in the partition list (the first match is its tag in the range
            # selector above it)
            page.locator(f"[data-tooltip='{research_id}']").last.click()
            # (Dagster's headings are spans, not heading elements.)
            detail = (
                page.locator("div", has=page.get_by_text("Metadata", exact=True))
                .filter(has_text="Latest execution")
                .last
            )
            try:
                detail.get_by_text("gate_passed").first.wait_for()
            except Exception:
                shot(f"failed-{check}-{research_id}.png")
                raise
            rows = detail.locator("tr").evaluate_all(
                "rows => rows.map(r => Array.from(r.children).map(c => c.innerText.trim()))"
            )
            shown = {cells[0]: cells[1] for cells in rows if len(cells) == 2}
            tag = (
                detail.get_by_text("Failed", exact=True)
                .or_(detail.get_by_text("Passed", exact=True))
                .first
            )
            shown["status"] = tag.inner_text().strip()
            return shown

        # The rejected research: trades failed, with 0 observed against a threshold of 1.
        shown = partition_of_check("trades", rejected)
        page.get_by_text("trades 0 < 1: rejected as too_few_trades").first.wait_for()
        # its history is its own: one evaluation, the other research's is not in it
        page.get_by_text("View all historical executions (1)").first.wait_for()
        shot("10-gate-check-trades-rejected-research.png")
        assert shown["status"] == "Failed", shown
        assert float(shown["observed"]) == 0 and float(shown["threshold"]) == 1, shown
        assert (shown["comparison"], shown["reason"]) == (">=", "too_few_trades"), shown
        assert (shown["gate"], shown["gate_passed"], shown["gate_reason"]) == (
            "backtest_gate",
            "false",
            "too_few_trades",
        ), shown

        # Its win rate is undefined without trades: missing, which fails too.
        shown = partition_of_check("win_rate", rejected)
        page.get_by_text(
            "win rate missing (needs >= 0) (win_rate_too_low); rejected as "
            "too_few_trades, backtest_gate's first failing check"
        ).first.wait_for()
        shot("11-gate-check-win-rate-rejected-research.png")
        assert (shown["status"], shown["observed"]) == ("Failed", "missing"), shown

        # The research that passed, although the rejected one ran after it.
        shown = partition_of_check("trades", passed)
        shot("12-gate-check-trades-passed-research.png")
        assert shown["status"] == "Passed", shown
        assert float(shown["observed"]) >= 1 and shown["gate_passed"] == "true", shown
        assert "gate_reason" not in shown, shown

        # The check list: each criterion's status over the researches, on the asset's page.
        page.goto(f"{topology.url}/assets/backtest_report?view=checks")
        page.get_by_text("deflated_sharpe", exact=True).first.wait_for()
        shot("13-gate-checks-of-backtest-report.png")

    assert all((ui_artifacts / name).stat().st_size > 0 for name in shots), shots
