"""The production topology as separate local processes, driven the way users drive it: the
`research` CLI, the webserver's GraphQL API and the UI in a real browser. One topology serves
the tests of this module that a pytest process runs (see conftest.py; pytest-xdist may spread
them over several); they run in file order and the one that kills the code server comes last,
because every run in flight dies with it.
"""

import contextlib
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import AssetRecordsFilter

from tests.integration.conftest import make_spec
from tests.topology.conftest import (
    LOCATION,
    VERDICT,
    Topology,
    chromium_page,
    group_members,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

ADD_PARTITION = """
mutation AddResearch($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name,
                      partitionKey: $key) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionsDefName partitionKey }
    ... on Error { message }
  }
}
"""
REPOSITORY = {"repositoryName": "__repository__", "repositoryLocationName": LOCATION}


def add_partition_through_graphql(topology: Topology, key: str) -> None:
    data = topology.graphql(ADD_PARTITION, {"selector": REPOSITORY, "name": "research", "key": key})
    result = data["addDynamicPartition"]
    assert result["__typename"] == "AddDynamicPartitionSuccess", result
    assert result["partitionKey"] == key


def original_runs(topology: Topology, research_id: str) -> list[dg.DagsterRun]:
    """The runs of a research that are not run retries (re-executions of a failed run)."""
    return [r for r in topology.runs_of(research_id) if "dagster/retry_number" not in r.tags]


def test_researches_from_the_cli_and_graphql_all_reach_a_verdict(topology: Topology):
    # One after the other: two `research trigger` at once on a fresh instance can both try to
    # store the training pool's default limit and one dies on the unique key.
    cli_ids = [topology.trigger("--seed", "11"), topology.trigger("--seed", "12")]
    graphql_ids = [f"r-gql-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for key in graphql_ids:
        add_partition_through_graphql(topology, key)
    ids = cli_ids + graphql_ids

    topology.wait_final(ids, timeout=300)
    status = topology.status_json(*ids)  # what `research status --json` says
    for research_id in ids:
        assert status[research_id]["status"] in VERDICT, status[research_id]
        assert status[research_id]["strategy"], status[research_id]
        runs = original_runs(topology, research_id)
        # The intake sensor launched exactly one run per research, however it was added.
        assert len(runs) == 1, [(r.run_id, r.status, r.tags) for r in runs]
        assert runs[0].tags.get("dagster/sensor_name") == "research_intake", runs[0].tags
        assert runs[0].tags.get("research/id") == research_id


def _dismiss_community_dialog(page) -> None:
    """The UI greets a 127.0.0.1 origin with a "Join the Dagster community" dialog (also turned
    off through the `setNuxSeen` mutation); close it if it shows anyway."""
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def _completed_research(topology: Topology) -> str:
    """A completed research of this topology (it has a backtest_report); one is researched
    with a spec that trades if none has completed yet."""
    for research_id, s in topology.status_json().items():
        if s["status"] == "completed" and s["backtest"]:
            return research_id
    spec = topology.home / "ui_spec.yaml"
    spec.write_text(make_spec(name="ui_equity_curve").to_yaml())
    research_id = topology.trigger("--spec", str(spec))
    found = topology.wait_final([research_id], timeout=240)[research_id]
    assert found.status == "completed", topology.describe([research_id])
    return research_id


def test_ui_shows_the_graph_gates_and_a_backtest_and_launches_a_research(
    topology: Topology, ui_artifacts: Path, tmp_path: Path
):
    topology.graphql("mutation { setNuxSeen }")
    url = topology.url
    ui_key = f"r-ui-{uuid.uuid4().hex[:8]}"
    shots: list[str] = []

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ui_artifacts / name))
        shots.append(name)

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with chromium_page(tmp_path) as page:
        # 1. A research launched from the UI: research_job's "Materialize all…" dialog, "Add a
        # partition". The research_intake sensor launches the run of a new partition (the
        # README's "Add partition" path); pressing "Launch 1 run" as well would race it and
        # can start a second run of the same research, so the dialog is closed instead.
        page.goto(f"{url}/locations/{LOCATION}/jobs/research_job")
        _dismiss_community_dialog(page)
        page.get_by_role("button", name="Materialize all").click()
        # market_data is not materialized in this topology: the UI asks first.
        confirm = page.get_by_role("button", name="Confirm")
        launch = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        confirm.or_(launch).first.wait_for()
        if confirm.is_visible():
            confirm.click()
        launch.get_by_role("button", name="Add a partition").click()
        add = page.get_by_role("dialog").filter(has_text="Add a partition for research")
        add.get_by_placeholder("name").fill(ui_key)
        shot(page, "01-add-partition-dialog.png")
        add.get_by_role("button", name="Save").click()
        add.wait_for(state="detached")
        # What the UI did: the partition exists in the instance (the intake sensor launches it).
        wait_for(
            lambda: topology.instance.has_dynamic_partition("research", ui_key),
            60,
            f"the partition {ui_key} added in the UI",
        )
        # The dialog's picker then shows it selected (past 4 keys only a count); under load the
        # picker may still list what it loaded with the page, which is the UI's, not ours.
        with contextlib.suppress(PlaywrightTimeout):
            selected = launch.get_by_text(ui_key).or_(launch.get_by_text("partitions selected"))
            selected.first.wait_for(timeout=15_000)
        shot(page, "02-partition-added.png")
        launch.get_by_role("button", name="Cancel").click()
        launch.wait_for(state="detached")

        # 2. The asset graph of the research group shows the four research assets.
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/research")
        _dismiss_community_dialog(page)
        for asset in ("strategy_spec", "trained_model", "backtest_report", "assessment"):
            page.get_by_text(asset, exact=True).first.wait_for()
        shot(page, "03-asset-graph-research.png")

        # 3. Both gates are blocking checks of their asset (one per criterion; each research's
        # outcome is in test_ui_gate_checks.py).
        for asset, check in (("trained_model", "accuracy_lift"), ("backtest_report", "p_value")):
            page.goto(f"{url}/assets/{asset}?view=checks&checkDetail={check}")
            page.get_by_text(check, exact=True).first.wait_for()
            page.get_by_text("This is a blocking asset check.").first.wait_for()
            shot(page, f"04-checks-{asset}-{check}.png")

        # 4. A completed research's backtest_report: its statistics and the equity curve.
        research_id = _completed_research(topology)
        page.goto(f"{url}/assets/backtest_report?view=partitions&partition={research_id}")
        page.get_by_text("Sharpe Ratio").first.wait_for()
        page.get_by_text("Win Rate [%]").first.wait_for()
        page.get_by_text(research_id).first.wait_for()
        row = page.locator("tr", has_text="equity_curve").first
        row.scroll_into_view_if_needed()
        shot(page, "05-backtest-report-statistics.png")
        row.get_by_text("[Show Markdown]").click()
        picture = (
            page.get_by_role("dialog")
            .filter(has_text="equity_curve")
            .locator("img[src^='data:image/png']")
            .first
        )
        picture.wait_for()
        width, height = picture.evaluate(
            "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
        )
        assert width > 100 and height > 100, (width, height)
        shot(page, "06-backtest-report-equity-curve.png")

        # 5. The research launched from the UI runs to the end.
        ended = topology.wait_final([ui_key], timeout=300)[ui_key]
        status = topology.status_json(ui_key)[ui_key]
        assert status["status"] in VERDICT, (status, topology.describe([ui_key]))
        assert ended.run_id is not None
        runs = original_runs(topology, ui_key)
        assert len(runs) == 1, [(r.run_id, r.status, r.tags) for r in runs]
        page.goto(f"{url}/runs/{ended.run_id}")
        page.get_by_text(ended.run_id[:8]).first.wait_for()
        page.get_by_text("research_job").first.wait_for()
        page.get_by_text("Loading run logs").first.wait_for(state="hidden")
        shot(page, "07-ui-research-run.png")

    assert all((ui_artifacts / name).stat().st_size > 0 for name in shots), shots


def test_a_research_survives_its_code_server_being_killed_mid_run(topology: Topology):
    # About 0.07 s an epoch on an idle core (10 s), several times that on a busy one: the kill,
    # 2 s after training starts, lands inside training.
    spec_file = topology.home / "slow_spec.yaml"
    spec_file.write_text(
        make_spec(name="slow_kill", epochs=150, symbol="BTCUSD", early_stopping=False).to_yaml()
    )
    research_id = topology.trigger("--spec", str(spec_file))

    def training_run() -> dg.DagsterRun | None:
        topology.code_server.check_alive()
        for run in topology.runs_of(research_id):
            if run.status == dg.DagsterRunStatus.STARTED and any(
                e.dagster_event and e.dagster_event.step_key == "trained_model"
                for e in topology.instance.all_logs(
                    run.run_id, of_type=dg.DagsterEventType.STEP_START
                )
            ):
                return run
        return None

    run = wait_for(
        training_run,
        240,
        "the research's run to start training",
        interval=1.0,
        on_timeout=lambda: topology.describe([research_id]) + topology.logs(),
    )
    time.sleep(2)
    group = topology.code_server.process.pid  # type: ignore[union-attr]
    topology.code_server.kill_group()
    # The run worker was in the code server's process group: it died with it.
    wait_for(
        lambda: not group_members(group),
        15,
        f"process group {group} to die",
        on_timeout=lambda: str(group_members(group)),
    )
    assert topology.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED

    topology.start_code_server()
    assert topology.code_server.process.pid != group  # type: ignore[union-attr]
    wait_for(
        topology.webserver_ready,
        90,
        "the webserver to reload the restarted code server",
        interval=1.0,
        on_timeout=topology.logs,
    )

    # Run monitoring (every 5 s) marks the run failed, and run retries re-execute it from the
    # failure.
    def original_run_ended() -> bool:
        return topology.instance.get_run_by_id(run.run_id).status != dg.DagsterRunStatus.STARTED

    wait_for(
        original_run_ended,
        60,
        f"run {run.run_id} to leave STARTED after its worker was "
        "killed with the code server (run monitoring polls every 5 s). With the default "
        "run launcher, run monitoring cannot see a dead run worker: DefaultRunLauncher "
        "does not support run worker health checks, so the run stays STARTED and is never "
        "retried",
        interval=1.0,
        on_timeout=lambda: topology.describe([research_id]) + "\n" + topology.logs(),
    )
    assert topology.instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE

    def retry_of_the_run() -> dg.DagsterRun | None:
        return next(
            (
                r
                for r in topology.runs_of(research_id)
                if r.tags.get("dagster/parent_run_id") == run.run_id
            ),
            None,
        )

    retry = wait_for(
        retry_of_the_run,
        60,
        f"run retries to re-execute run {run.run_id}",
        interval=1.0,
        on_timeout=lambda: topology.describe([research_id]),
    )
    assert retry.tags.get("dagster/retry_number") == "1", retry.tags
    assert retry.tags.get("dagster/retry_strategy", "FROM_FAILURE") == "FROM_FAILURE", retry.tags

    topology.wait_final([research_id], timeout=300)
    status = topology.status_json(research_id)[research_id]
    assert status["status"] in VERDICT, (status, topology.describe([research_id]))
    assert status["run_id"] != run.run_id
    # The design was not repeated: strategy_spec was materialized once for this research.
    designs = topology.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=dg.AssetKey("strategy_spec"), asset_partitions=[research_id]),
        limit=10,
    )
    assert len(designs.records) == 1, [r.run_id for r in designs.records]
