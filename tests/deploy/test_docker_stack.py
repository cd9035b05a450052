"""The compose deployment on a real Docker engine: Postgres, the code server, the webserver and
the daemon from docker-compose.yml (docker-compose.local.yml swaps in locally built images), each
research run in a container of its own started by the Docker run launcher.

One test, one stack, in steps that build on each other (pytest-xdist cannot split them over
workers; the stack's network and volumes have fixed names). The figures it measures (image
build, stack start, time per research) go to test-artifacts/docker/timings.json.
"""

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.deploy.docker_stack import FINAL, Stack, build_images, docker_compose, engine
from tests.gate_support import OPEN_GATES_ENV
from tests.integration.conftest import make_spec, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VERDICT = ("completed", "rejected")
TERMINATE = """
mutation Terminate($runIds: [String!]!) {
  terminateRuns(runIds: $runIds, terminatePolicy: SAFE_TERMINATE) {
    __typename
    ... on TerminateRunsResult { terminateRunResults { __typename
      ... on TerminateRunSuccess { run { runId } }
      ... on TerminateRunFailure { message } } }
  }
}
"""
DESIGNS = """
query Designs($partition: String!) {
  assetOrError(assetKey: {path: ["strategy_spec"]}) {
    ... on Asset { assetMaterializations(partitions: [$partition]) { runId } }
  }
}
"""

# The test's .env: a trimmed one (most optional settings left out, which must not stop a launch),
# every gate open so that a research that trades completes, the offline designer, and a
# lockbox fraction that differs from the default so a run shows it received the setting.
ENV = {
    **OPEN_GATES_ENV,
    "RESEARCH_DESIGNER": "offline",
    "RESEARCH_MAX_CONCURRENT": "10",
    "RESEARCH_LOCKBOX_FRACTION": "0.2",
}


def slow_spec(name: str, epochs: int) -> str:
    # About 0.07 s an epoch on an idle core (several times that on a busy one): the kill, 2 s
    # into training, and the terminate land inside training.
    return make_spec(name=name, epochs=epochs, symbol="BTCUSD", early_stopping=False).to_yaml()


def training_run(stack: Stack, research_id: str) -> dict | None:
    """The research's run once its trained_model step has started."""
    for run in stack.runs_of(research_id):
        if run["status"] == "STARTED" and any(
            s["stepKey"] == "trained_model" for s in run["stepStats"]
        ):
            return run
    return None


def test_the_compose_stack_on_a_docker_engine():
    client = engine()
    docker_compose()
    timings: dict[str, float] = {}
    # Not pytest's tmp_path: compose needs its folder until `down`, and pytest prunes old
    # temporary folders when other pytest processes start.
    workdir = Path(tempfile.mkdtemp(prefix="research-assets-stack-"))
    stack = Stack(client, workdir, ENV)
    stack.refuse_to_take_over_a_deployment()
    timings["image_build_s"] = build_images()
    try:
        timings["stack_start_s"] = stack.up()
        events = stack.record_run_container_events()

        # 1. Three researches from the CLI inside the code-server container: each runs in a
        # container of its own, started by the run launcher, and reaches a verdict.
        started = time.monotonic()
        ids = [stack.trigger("--seed", str(seed)) for seed in (21, 22, 23)]
        final = stack.wait_final(ids, timeout=600)
        timings["three_researches_s"] = time.monotonic() - started
        containers: dict[str, str] = {}
        for research_id in ids:
            assert final[research_id]["status"] in VERDICT, stack.describe([research_id])
            [run] = stack.runs_of(research_id)
            containers[run["runId"]] = run["tags"]["docker/container_id"]
        assert len(set(containers.values())) == 3, containers
        for run_id, container_id in containers.items():
            mine = [e for e in events if e.get("id") == container_id]
            actions = {e.get("Action", e.get("status")) for e in mine}
            # Created and started by the launcher, for this run, then removed when it ended.
            assert {"create", "start", "die", "destroy"} <= actions, (run_id, actions)
            seen = {e.get("Action", e.get("status")): e.get("timeNano", 0) / 1e9 for e in mine}
            timings[f"run_container_{len(timings) - 2}_s"] = seen["destroy"] - seen["create"]
            labels = mine[0]["Actor"]["Attributes"]
            assert labels["dagster/run_id"] == run_id
            assert labels["image"].startswith("research_assets:")

        # 2. A run container killed mid-training: run monitoring sees it gone, run retries
        # re-execute from the failure, and the design is not repeated.
        started = time.monotonic()
        stack.put("/tmp/slow_kill.yaml", slow_spec("docker_kill", 150))
        killed_id = stack.trigger("--spec", "/tmp/slow_kill.yaml")
        run = wait_for(
            lambda: training_run(stack, killed_id),
            300,
            "the research's run to start training",
            interval=2.0,
            on_timeout=lambda: stack.describe([killed_id]),
        )
        container = client.containers.get(run["tags"]["docker/container_id"])
        # The run's container has the .env's research settings and nothing the .env left out.
        env = dict(v.split("=", 1) for v in container.attrs["Config"]["Env"])
        assert env["RESEARCH_LOCKBOX_FRACTION"] == "0.2"
        assert {k: env[k] for k in OPEN_GATES_ENV} == OPEN_GATES_ENV
        assert "RESEARCH_LLM_MAX_TURNS" not in env and "ANTHROPIC_API_KEY" not in env
        time.sleep(2)
        container.kill()

        def retried() -> dict | None:
            runs = stack.runs_of(killed_id)
            return next(
                (r for r in runs if r["tags"].get("dagster/parent_run_id") == run["runId"]), None
            )

        retry = wait_for(
            retried,
            180,
            f"run retries to re-execute the killed run {run['runId']}",
            interval=2.0,
            on_timeout=lambda: stack.describe([killed_id]),
        )
        assert retry["tags"].get("dagster/retry_number") == "1", retry["tags"]
        original = next(r for r in stack.runs_of(killed_id) if r["runId"] == run["runId"])
        assert original["status"] == "FAILURE", original
        ended = stack.wait_final([killed_id], timeout=600)[killed_id]
        assert ended["status"] in VERDICT, stack.describe([killed_id])
        assert ended["run_id"] != run["runId"]
        designs = stack.graphql(DESIGNS, {"partition": killed_id})
        assert len(designs["assetOrError"]["assetMaterializations"]) == 1, designs
        timings["killed_and_retried_research_s"] = time.monotonic() - started

        # 3. "Terminate" through the webserver's GraphQL (the UI's button) stops the container
        # of a running research, and the research ends cancelled.
        started = time.monotonic()
        stack.put("/tmp/slow_stop.yaml", slow_spec("docker_terminate", 1000))
        stopped_id = stack.trigger("--spec", "/tmp/slow_stop.yaml")
        run = wait_for(
            lambda: training_run(stack, stopped_id),
            300,
            "the research's run to start training",
            interval=2.0,
            on_timeout=lambda: stack.describe([stopped_id]),
        )
        container_id = run["tags"]["docker/container_id"]
        answer = stack.graphql(TERMINATE, {"runIds": [run["runId"]]})["terminateRuns"]
        [result] = answer["terminateRunResults"]
        assert result["__typename"] == "TerminateRunSuccess", answer
        ended = stack.wait_final([stopped_id], timeout=180)[stopped_id]
        assert ended["status"] == "cancelled", stack.describe([stopped_id])
        wait_for(
            lambda: not [c for c in stack.run_containers() if c.id == container_id],
            60,
            f"the terminated run's container {container_id[:12]} to be gone",
        )
        [run] = stack.runs_of(stopped_id)  # cancelled, so not retried
        assert run["status"] == "CANCELED", run
        timings["terminated_research_s"] = time.monotonic() - started

        # 4. Every finished run's container is gone.
        # (a retried or cancelled run's container is removed by the engine a moment after it
        # stops, which under load can take a while)
        wait_for(
            lambda: stack.run_containers() == [],
            120,
            "every finished run's container to be removed",
            interval=2,
        )

        # 5. down, then up again: every research and its artefacts are still there.
        everything = ids + [killed_id, stopped_id]
        before = stack.status()
        files = {i: stack.storage_files(i) for i in ids}
        for research_id in ids:
            if before[research_id]["status"] == "completed":
                assert files[research_id], f"no artefacts of {research_id} in the volume"
        stack.down()
        timings["restart_s"] = stack.up()
        after = stack.status()
        for research_id in everything:
            assert after[research_id]["status"] == before[research_id]["status"], research_id
            assert after[research_id]["status"] in FINAL
        assert {i: stack.storage_files(i) for i in ids} == files
    finally:
        out = REPO / "test-artifacts" / "docker"
        out.mkdir(parents=True, exist_ok=True)
        (out / "stack.log").write_text(stack.logs())
        (out / "timings.json").write_text(  # before the teardown, which may fail
            json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=2) + "\n"
        )
        try:
            stack.down("--volumes", force=True)
        finally:
            stack.close()
            shutil.rmtree(workdir, ignore_errors=True)
