"""A research launched from the Launchpad in a real browser, with its inputs set in the run
config: the run carries them, counts against the worker class its config names, and the research
reaches a verdict. Screenshots go to test-artifacts/ui/.

The topology (conftest.py) is this module's own. While a research is added and launched from the
Launchpad, the research_intake sensor is stopped (as a user stops it in the UI's Automation
page): it launches a run for every new partition within seconds, and would race the Launchpad's.
"""

import uuid
from pathlib import Path

import pytest
import yaml

from research_assets.state.records import latest_metadata, read_requests
from tests.topology.conftest import LOCATION, VERDICT, Topology, chromium_page
from tests.topology.test_topology import add_partition_through_graphql

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

SEED = 4242
BRIEF = "Launchpad: RSI trend on EURUSD"
CONFIG = {"ops": {"strategy_spec": {"config": {"seed": SEED, "brief": BRIEF, "worker": "gpu"}}}}


def _dismiss_community_dialog(page) -> None:
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def pick_partition(page, key: str, artifacts: Path) -> None:
    """Choose ``key`` in the Launchpad's partition picker. The picker lists the partitions it
    loaded with the page (it is replaced once they have loaded): the key is typed again, after a
    reload, until it is offered."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    for _ in range(3):
        partition = page.get_by_placeholder("Partition").first
        partition.click()
        partition.fill(key)
        try:
            page.get_by_text(key, exact=True).first.wait_for(timeout=20_000)
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            page.reload()
            continue
        partition.press("Enter")
        page.get_by_text(f"partition: {key}").first.wait_for()
        return
    page.screenshot(path=str(artifacts / "launchpad-00-no-partition.png"))
    raise AssertionError(f"the Launchpad's partition picker never offered {key}")


def test_a_research_launched_from_the_launchpad_with_a_seed_in_its_config(
    topology: Topology, ui_artifacts: Path, tmp_path: Path
):
    topology.graphql("mutation { setNuxSeen }")
    key = f"r-pad-{uuid.uuid4().hex[:8]}"
    shots: list[str] = []

    def shot(page, name: str) -> None:
        page.screenshot(path=str(ui_artifacts / name))
        shots.append(name)

    topology.stop_sensor("research_intake")
    try:
        # The research's partition, added as "Add partition" in the UI adds it.
        add_partition_through_graphql(topology, key)
        with chromium_page(tmp_path) as page:
            # research_job's Launchpad: pick the research's partition, set its config.
            page.goto(f"{topology.url}/locations/{LOCATION}/jobs/research_job/playground")
            _dismiss_community_dialog(page)
            pick_partition(page, key, ui_artifacts)
            # The Launchpad's editor (CodeMirror) holds the partition's default config: the
            # research's inputs go next to it.
            default = page.evaluate(
                "() => document.querySelector('.CodeMirror').CodeMirror.getValue()"
            )
            config = {**(yaml.safe_load(default) or {}), **CONFIG}
            page.evaluate(
                "text => document.querySelector('.CodeMirror').CodeMirror.setValue(text)",
                yaml.safe_dump(config, sort_keys=False),
            )
            page.get_by_text(str(SEED)).first.wait_for()
            page.get_by_text("No errors").first.wait_for()
            shot(page, "launchpad-01-config.png")
            page.get_by_role("button", name="Launch Run").click()
            page.wait_for_url("**/runs/**")
            run_id = page.url.rstrip("/").split("/runs/")[1].split("?")[0]
            shot(page, "launchpad-02-run.png")

            # The run carries the config and counts against the worker class it names.
            run = topology.instance.get_run_by_id(run_id)
            assert run is not None and run.tags.get("dagster/partition") == key, run
            assert run.run_config["ops"]["strategy_spec"]["config"]["seed"] == SEED, run.run_config
            assert run.tags.get("research/worker") == "gpu", run.tags
            assert run.tags.get("research/id") == key, run.tags

            topology.start_sensor("research_intake")
            ended = topology.wait_final([key], timeout=420)[key]
            status = topology.status_json(key)[key]
            assert status["status"] in VERDICT, (status, topology.describe([key]))
            assert ended.run_id == run_id and status["worker"] == "gpu", status
            # Researched with the seed and brief of its config; `research status` knows them.
            assert latest_metadata(topology.instance, "strategy_spec", key)["seed"] == SEED
            request = read_requests(topology.instance, [key])[key]
            assert (request.seed, request.brief, request.worker) == (SEED, BRIEF, "gpu")
            # The intake sensor, running again, left it alone: one run.
            originals = [r for r in topology.runs_of(key) if "dagster/retry_number" not in r.tags]
            assert [r.run_id for r in originals] == [run_id]

            # The run page shows the config it ran with.
            page.goto(f"{topology.url}/runs/{run_id}")
            page.get_by_text("Loading run logs").first.wait_for(state="hidden")
            page.get_by_role("button", name="View tags and config").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_text(f"seed: {SEED}").first.wait_for()
            dialog.get_by_text("research/worker: gpu").first.wait_for()
            page.wait_for_timeout(1000)  # the dialog's fade-in
            shot(page, "launchpad-03-run-config.png")
    finally:
        if topology.sensor_status("research_intake") != "RUNNING":
            topology.start_sensor("research_intake")

    assert all((ui_artifacts / name).stat().st_size > 0 for name in shots), shots


MATERIALIZE = """
mutation Materialize($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId jobName tags { key value } } }
    ... on PythonError { message }
  }
}
"""


def test_materialize_in_the_asset_graph_counts_against_a_worker_class(topology: Topology):
    """ "Materialize" in the asset graph launches Dagster's implicit asset job with the request
    the UI sends (executionParamsForAssetJob in LaunchAssetExecutionButton.tsx): no job tags.
    The run queue still tags the run with its worker class, so the worker limits apply."""
    key = f"r-mat-{uuid.uuid4().hex[:8]}"
    topology.stop_sensor("research_intake")
    try:
        add_partition_through_graphql(topology, key)
        params = {
            "mode": "default",
            "runConfigData": "{}",
            "executionMetadata": {
                "tags": [
                    {"key": "dagster/partition", "value": key},
                    {"key": "dagster/from_ui", "value": "true"},
                ]
            },
            "selector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": "__repository__",
                "pipelineName": "__ASSET_JOB",
                "assetSelection": [{"path": ["strategy_spec"]}],
            },
        }
        launched = topology.graphql(MATERIALIZE, {"params": params})["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        assert launched["run"]["jobName"] == "__ASSET_JOB"
        run = topology.instance.get_run_by_id(launched["run"]["runId"])
        assert run.tags.get("research/worker") == "cpu", run.tags
        assert run.tags.get("research/id") == key, run.tags
    finally:
        topology.start_sensor("research_intake")
    # It is one of the researches in flight, as `research status` and capacity count them.
    assert topology.status_json(key)[key]["worker"] == "cpu"
    done = topology.research("cancel", key)
    assert done.returncode == 0, done.stderr
    topology.wait_final([key], timeout=120)
