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


def latest_leaderboard(topology: Topology) -> dg.EventLogRecord | None:
    found = topology.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=LEADERBOARD), limit=1)
    return found.records[0] if found.records else None


def ranking(record: dg.EventLogRecord) -> dict[str, dict]:
    table = record.asset_materialization.metadata["ranking"].value
    return {r.data["research"]: r.data for r in table.records}


def test_the_ui_shows_the_leaderboard_rebuilt_when_researches_end(
    topology: Topology, ui_artifacts: Path, tmp_path: Path
):
    spec = topology.home / "leaderboard_spec.yaml"
    spec.write_text(make_spec(name="leaderboard_ui").to_yaml())
    # One research cancelled (its queued run, or before it has one), one that runs to the end.
    cancelled = topology.trigger("--spec", str(spec))
    done = topology.research("cancel", cancelled)
    assert done.returncode == 0, done.stderr
    completed = topology.trigger("--spec", str(spec), "--seed", "3")
    ids = [cancelled, completed]
    topology.wait_final(ids, timeout=300)
    status = topology.status_json()  # what `research status --json` prints, every research

    def current() -> dg.EventLogRecord | None:
        topology.daemon.check_alive()
        record = latest_leaderboard(topology)
        if record is None:
            return None
        rows = ranking(record)
        agree = set(rows) == set(status) and all(
            rows[i]["status"] == status[i]["status"] for i in status)
        return record if agree else None

    # Nobody asks for it: the daemon's automation rebuilds it after the last research ends.
    record = wait_for(current, 180, "the leaderboard to be rebuilt with every research's end",
                      interval=2.0, on_timeout=lambda: topology.describe(ids) + topology.logs())
    run = topology.instance.get_run_by_id(record.run_id)
    assert run.asset_selection == {LEADERBOARD}, run.asset_selection
    assert WORKER_TAG not in run.tags, run.tags  # takes no research worker slot
    assert run.tags.get("research/leaderboard") == "true", run.tags  # one at a time
    assert run.tags.get("dagster/sensor_name", "").startswith("leaderboard_"), run.tags
    rows = ranking(record)
    for research_id, s in status.items():
        assert rows[research_id]["strategy"] == s["strategy"]
        assert rows[research_id]["reason"] == (s["reason_detail"] or s["reason"])
    assert rows[completed]["status"] == status[completed]["status"]
    assert status[cancelled]["status"] == "cancelled"

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
        picture = page.get_by_role("dialog").filter(has_text="comparison") \
            .locator("img[src^='data:image/png']").first
        picture.wait_for()
        width, height = picture.evaluate(
            "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
        assert width > 300 and height > 200, (width, height)
        shot(page, "leaderboard-03-comparison.png")

    assert all((ui_artifacts / name).stat().st_size > 0 for name in shots), shots
