"""`research cancel` on a real daemon: a queued research and a running one end cancelled, the
others are not touched, and nothing brings a cancelled research back (no retry run)."""

import json
import subprocess
import sys
import time

import dagster as dg
import pytest

from research_assets.state.cancel import cancel_research
from research_assets.state.records import load_statuses, record_request
from tests.integration.conftest import (
    REPO,
    clean_env,
    describe,
    make_spec,
    runs_of,
    step_started,
    wait_final,
    wait_for,
)

pytestmark = pytest.mark.integration

# How long after a cancel a retry would have shown up (the retry daemon polls every few seconds).
NO_RETRY_WINDOW_S = 10


def cancel_cli(home, research_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "research_assets.cli", "cancel", research_id, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(home),
        cwd=REPO,
    )


def finish(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_cancel_queued_and_running_researches(instance, daemon, dagster_home):
    # 1000 epochs (about 70 s on a quiet machine) outlast a cancel even on a loaded one.
    running = "r-cancel-a-running"  # slow training: cancelled while it trains
    other = "r-cancel-b-other"
    queued = "r-cancel-c-queued"  # waits behind the two above: cancelled in the queue
    last = "r-cancel-d-other"
    ids = [running, other, queued, last]
    record_request(
        instance,
        running,
        seed=1,
        spec=make_spec(epochs=1000, symbol="BTCUSD", early_stopping=False),
    )
    for i, research_id in enumerate(ids[1:], 2):
        record_request(instance, research_id, spec=make_spec(), seed=i)

    def queued_run():
        runs = runs_of(instance, queued)
        return runs and runs[0].status == dg.DagsterRunStatus.QUEUED and runs[0]

    wait_for(
        queued_run, 180, f"a queued run of {queued}", on_timeout=lambda: describe(instance, ids)
    )
    cancelling_queued = cancel_cli(dagster_home, queued)

    def training_run():
        runs = runs_of(instance, running)
        return runs and step_started(instance, runs[0].run_id, "trained_model") and runs[0]

    run_a = wait_for(
        training_run,
        300,
        f"{running} to start training",
        interval=0.5,
        on_timeout=lambda: describe(instance, ids),
    )
    result_a = finish(cancel_cli(dagster_home, running))
    cancelled_at = time.monotonic()
    result_c = finish(cancelling_queued)

    assert result_a["cancelled"] is True and result_a["runs"] == [run_a.run_id], result_a
    assert result_c["cancelled"] is True, result_c
    statuses = wait_final(instance, ids, 300, daemon)
    assert statuses[running].status == "cancelled", describe(instance, ids)
    assert statuses[queued].status == "cancelled", describe(instance, ids)
    # The other researches were not touched.
    for research_id in (other, last):
        assert statuses[research_id].status in ("completed", "rejected"), describe(instance, ids)

    # No retry for a cancelled research, even a while later.
    remaining = NO_RETRY_WINDOW_S - (time.monotonic() - cancelled_at)
    if remaining > 0:
        time.sleep(remaining)
    for research_id in (running, queued):
        runs = runs_of(instance, research_id)
        assert len(runs) == 1, describe(instance, ids)
        assert "dagster/parent_run_id" not in runs[0].tags
        assert runs[0].status == dg.DagsterRunStatus.CANCELED, describe(instance, ids)
    retries = instance.get_runs(dg.RunsFilter(tags={"dagster/partition": [running, queued]}))
    assert not [r for r in retries if "dagster/parent_run_id" in r.tags]
    # The queued one was cancelled in the queue: its run never started.
    [run_c] = runs_of(instance, queued)
    assert instance.get_run_record_by_id(run_c.run_id).start_time is None
    assert result_c["runs"] == [run_c.run_id]
    # The running one was stopped while training: that step never finished.
    events = [
        e
        for e in instance.all_logs(run_a.run_id)
        if e.step_key == "trained_model" and e.is_dagster_event
    ]
    assert not any(e.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS for e in events)
    assert [r.status for r in runs_of(instance, running)] == [dg.DagsterRunStatus.CANCELED]


@pytest.mark.parametrize("will_retry", [True, False])
def test_cancel_between_a_crash_and_its_retry(instance, will_retry):
    """A run that failed because its process died waits a moment for its automatic retry: a
    cancel then must stop the retry, not report the research as already ended."""
    research_id = "r-cancel-retrying"
    record_request(instance, research_id, spec=make_spec(), seed=1)
    run = instance.add_run(
        dg.DagsterRun(
            job_name="research_job",
            status=dg.DagsterRunStatus.FAILURE,
            tags={
                "dagster/partition": research_id,
                "research/worker": "cpu",
                "dagster/will_retry": str(will_retry).lower(),
            },
        )
    )
    result = cancel_research(instance, research_id)
    [status] = load_statuses(instance, [research_id])
    if will_retry:
        assert result.cancelled, result.message
        assert instance.get_run_by_id(run.run_id).tags["dagster/will_retry"] == "false"
        assert status.status == "cancelled"
    else:
        assert not result.cancelled and "already ended (failed)" in result.message
        assert status.status == "failed"
