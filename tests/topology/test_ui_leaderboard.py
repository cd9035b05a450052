"""The leaderboard in the production topology: Dagster rebuilds it on its own when researches end
(declarative automation and the run status sensors, in the real daemon), it agrees with
`research status`, and the UI shows its table and its picture in a real browser. Screenshots go
to test-artifacts/ui/."""

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import AssetRecordsFilter

from research_assets.defs.tags import WORKER_TAG
from tests.integration.conftest import make_spec
from tests.topology.conftest import Topology, chromium_page, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

LEADERBOARD = dg.AssetKey("leaderboard")
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def latest_leaderboard(topology: Topology) -> dg.EventLogRecord | None:
    found = topology.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=LEADERBOARD), limit=1
    )
    return found.records[0] if found.records else None


def ranking(record: dg.EventLogRecord) -> dict[str, dict]:
    table = record.asset_materialization.metadata["ranking"].value
    return {r.data["research"]: r.data for r in table.records}


def test_the_ui_shows_the_leaderboard_rebuilt_when_researches_end(
    topology: Topology, ui_artifacts: Path, tmp_path: Path
):
    spec = topology.home / "leaderboard_spec.yaml"
    spec.write_text(make_spec(name="leaderboard_ui").to_yaml())
    # Dates the data does not cover: its run fails at training, with nothing that a gate or the
    # lockbox materializes, so only the run status sensor can tell the leaderboard.
    no_data = topology.home / "leaderboard_no_data.yaml"
    no_data.write_text(
        make_spec(
            name="leaderboard_no_data", date_range={"start": "1990-01-01", "end": "1990-03-01"}
        ).to_yaml()
    )

    def rebuilt_with(ids: list[str]) -> tuple[dg.EventLogRecord, dict[str, dict]]:
        topology.wait_final(ids, timeout=300)
        status = topology.status_json()  # what `research status --json` prints

        def current() -> dg.EventLogRecord | None:
            topology.daemon.check_alive()
            record = latest_leaderboard(topology)
            if record is None:
                return None
            rows = ranking(record)
            agree = set(rows) == set(status) and all(
                rows[i]["status"] == status[i]["status"] for i in status
            )
            return record if agree else None

        # Nobody asks for it: the daemon rebuilds it after the last research ends.
        record = wait_for(
            current,
            240,
            f"the leaderboard to be rebuilt with the end of {ids}",
            interval=2.0,
            on_timeout=lambda: topology.describe(ids) + topology.logs(),
        )
        run = topology.instance.get_run_by_id(record.run_id)
        # It materialized the leaderboard alone: automation launches no research work.
        materialized = {
            r.asset_key
            for r in topology.instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
        }
        assert materialized == {LEADERBOARD}, materialized
        assert WORKER_TAG not in run.tags, run.tags  # takes no research worker slot
        assert run.tags.get("research/leaderboard") == "true", run.tags  # one at a time
        rows = ranking(record)
        for research_id, s in status.items():
            assert rows[research_id]["strategy"] == s["strategy"]
            assert rows[research_id]["reason"] == (s["reason_detail"] or s["reason"])
        return run, status

    completed = topology.trigger("--spec", str(spec), "--seed", "3")
    run, status = rebuilt_with([completed])
    assert status[completed]["status"] in ("completed", "rejected"), status[completed]
    assert run.tags.get("dagster/sensor_name") in (
        "leaderboard_automation",
        "leaderboard_after_failed_run",
    ), run.tags

    # A failed research: only the run status sensor sees its end. The automation is stopped
    # first (a rebuild it still owes the first research could otherwise read this one too), and
    # whatever leaderboard run it launched ends.
    topology.stop_sensor("leaderboard_automation")
    wait_for(
        lambda: (
            not topology.instance.get_runs_count(
                dg.RunsFilter(tags={"research/leaderboard": "true"}, statuses=IN_FLIGHT)
            )
        ),
        240,
        "the leaderboard runs in flight to end",
        interval=2.0,
    )
    try:
        failed = topology.trigger("--spec", str(no_data))
        run, status = rebuilt_with([failed])
    finally:
        topology.start_sensor("leaderboard_automation")
    assert status[failed]["status"] == "failed", status[failed]
    assert run.tags.get("dagster/sensor_name") == "leaderboard_after_failed_run", run.tags
    ids = [completed, failed]

    topology.graphql("mutation { setNuxSeen }")
    shots: list[str] = []

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ui_artifacts / name), full_page=True)
        shots.append(name)

    with chromium_page(tmp_path) as page:
        # The leaderboard group: the lockbox report and the leaderboard it feeds.
        page.goto(f"{topology.url}/locations/research_assets/asset-groups/leaderboard")
        page.get_by_text("lockbox_report", exact=True).first.wait_for()
        page.get_by_text("leaderboard", exact=True).first.wait_for()
        shot(page, "leaderboard-01-asset-group.png")

        # Its latest materialization: the ranked table, every research in it.
        page.goto(f"{topology.url}/assets/leaderboard?view=events")
        skip = page.get_by_role("button", name="Skip")
        if skip.count():
            skip.first.click()
        page.locator("th", has_text="lockbox_sharpe").first.wait_for()
        for research_id in ids:
            page.locator("td", has_text=research_id).first.wait_for()
        page.locator("th", has_text="lockbox_sharpe").first.scroll_into_view_if_needed()
        shot(page, "leaderboard-02-table.png")

        # And the picture: out-of-sample against lockbox Sharpe.
        row = page.locator("tr", has_text="comparison").first
        row.scroll_into_view_if_needed()
        row.get_by_text("[Show Markdown]").click()
        picture = (
            page.get_by_role("dialog")
            .filter(has_text="comparison")
            .locator("img[src^='data:image/png']")
            .first
        )
        picture.wait_for()
        width, height = picture.evaluate(
            "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
        )
        assert width > 300 and height > 200, (width, height)
        shot(page, "leaderboard-03-comparison.png")

    assert all((ui_artifacts / name).stat().st_size > 0 for name in shots), shots
