"""Processes that die: a run worker killed with SIGKILL, and the whole daemon (with its code
server and run workers) killed while researches wait in the queue."""

import os
import re
import signal
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.event_api import AssetRecordsFilter

from research_assets.state.records import record_request
from tests.integration.conftest import (
    FINAL,
    IN_PROGRESS,
    check_no_stale_pool_slots,
    describe,
    make_spec,
    processes_of,
    runs_of,
    statuses_by_id,
    step_events,
    step_started,
    wait_for,
)

pytestmark = pytest.mark.integration

# How long a run whose worker was killed may stay STARTED: monitoring polls every 5 s.
ORPHAN_GRACE_S = 60
IN_FLIGHT = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, *IN_PROGRESS}
_PID = re.compile(r"Executing steps in process \(pid: (\d+)\)")


def run_worker_pid(instance: dg.DagsterInstance, run_id: str, home: Path) -> int:
    """The pid of the process executing the run's steps, from its engine event; checked to be
    a live process of this test's instance before anyone signals it."""
    pids = [
        int(m.group(1))
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if (m := _PID.search(e.message or ""))
    ]
    assert len(pids) == 1, pids
    assert pids[0] in processes_of(home), (pids[0], processes_of(home))
    return pids[0]


def test_killed_run_worker_is_retried_from_the_failure(
    instance, daemon, dagster_home, dagster_config
):
    research_id = "r-kill9"
    # Training long enough to be killed in the middle (the retry trains it again in full).
    record_request(
        instance,
        research_id,
        seed=1,
        spec=make_spec(epochs=80, symbol="BTCUSD", early_stopping=False),
    )
    most_in_flight = 0

    def sample(predicate):
        def check():
            nonlocal most_in_flight
            runs = runs_of(instance, research_id)
            most_in_flight = max(most_in_flight, sum(r.status in IN_FLIGHT for r in runs))
            return predicate(runs)

        return check

    first = wait_for(
        sample(
            lambda runs: (
                runs and step_started(instance, runs[0].run_id, "trained_model") and runs[0]
            )
        ),
        300,
        "the run to start training",
        on_timeout=lambda: describe(instance, [research_id]),
    )
    os.kill(run_worker_pid(instance, first.run_id, dagster_home), signal.SIGKILL)

    retried = wait_for(
        sample(lambda runs: len(runs) >= 2 and runs),
        240,
        "a retry run",
        on_timeout=lambda: describe(instance, [research_id]) + "\n" + daemon.log_tail(30),
    )

    def final(runs):
        daemon.check_alive()
        check_no_stale_pool_slots(instance, dagster_config)
        [status] = statuses_by_id(instance, [research_id]).values()
        return status.status in FINAL and status

    status = wait_for(
        sample(final),
        400,
        "the research to end",
        on_timeout=lambda: describe(instance, [research_id]),
    )
    runs = runs_of(instance, research_id)
    assert status.status in ("completed", "rejected"), describe(instance, [research_id])
    assert most_in_flight == 1, f"{most_in_flight} runs of one research in flight at once"
    assert instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.FAILURE
    # It was killed while training: that step never finished in the first run.
    assert not [
        e
        for e in step_events(instance, first.run_id)
        if e.step_key == "trained_model" and e.dagster_event_type != dg.DagsterEventType.STEP_START
    ]
    retry = retried[1]
    assert retry.tags.get("dagster/parent_run_id") == first.run_id
    assert len(runs) == 2, describe(instance, [research_id])
    # Retried from the failure: the paid design is not repeated.
    designed = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=dg.AssetKey("strategy_spec"), asset_partitions=[research_id]),
        limit=10,
    )
    assert len(designed.records) == 1
    assert not [e for e in step_events(instance, retry.run_id) if e.step_key == "strategy_spec"]
    assert step_started(instance, retry.run_id, "trained_model")


def test_daemon_killed_while_researches_queue(instance, daemon, dagster_home, dagster_config):
    """SIGKILL to the daemon's process group (the daemon, its code server and the run workers it
    started) while one research executes and others wait in the queue; a new daemon finishes
    them all: queued runs are started once, the killed run is failed and retried."""
    ids = [f"r-restart-{i}" for i in range(4)]
    for i, research_id in enumerate(ids):
        record_request(instance, research_id, spec=make_spec(), seed=i)

    def executing_and_queued():
        # Killed while executing (a worker killed while still STARTING is only failed after
        # run_monitoring.start_timeout_seconds, which says nothing more and takes minutes).
        runs = [r for i in ids for r in runs_of(instance, i)]
        if any(
            r.status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED)
            for r in runs
        ):
            return None
        executing = [
            r
            for r in runs
            if r.status == dg.DagsterRunStatus.STARTED
            and step_started(instance, r.run_id, "strategy_spec")
        ]
        queued = [r for r in runs if r.status == dg.DagsterRunStatus.QUEUED]
        return executing and queued and (executing, queued)

    wait_for(
        executing_and_queued,
        300,
        "runs executing and runs queued",
        on_timeout=lambda: describe(instance, ids),
    )
    daemon.kill()
    wait_for(
        lambda: not processes_of(dagster_home),
        15,
        "the killed processes to go",
        on_timeout=lambda: str(processes_of(dagster_home)),
    )
    # What the kill hit, read after it: the daemon may have dequeued a run in between.
    at_kill = [r for i in ids for r in runs_of(instance, i)]
    killed = {
        r.run_id
        for r in at_kill
        if r.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING)
    }
    queued_ids = {r.run_id for r in at_kill if r.status == dg.DagsterRunStatus.QUEUED}
    assert killed and queued_ids, describe(instance, ids)

    daemon.start()
    orphaned_since: dict[str, float] = {}

    def all_ended():
        daemon.check_alive()
        check_no_stale_pool_slots(instance, dagster_config)
        for research_id in ids:
            for run in runs_of(instance, research_id):
                if run.run_id in killed and run.status == dg.DagsterRunStatus.STARTED:
                    since = orphaned_since.setdefault(run.run_id, time.monotonic())
                    assert time.monotonic() - since < ORPHAN_GRACE_S, (
                        f"run {run.run_id} of {research_id} lost its worker with the daemon's "
                        f"process group and is still STARTED after {ORPHAN_GRACE_S} s: nothing "
                        "fails a run whose worker died (the run launcher needs a worker health "
                        "check for run monitoring)\n"
                        + describe(instance, ids)
                        + "\n"
                        + daemon.log_tail(20)
                    )
        found = statuses_by_id(instance, ids)
        return all(s.status in FINAL for s in found.values()) and found

    statuses = wait_for(
        all_ended,
        480,
        "every research to end",
        interval=0.5,
        on_timeout=lambda: describe(instance, ids) + "\n" + daemon.log_tail(20),
    )
    assert all(s.status in ("completed", "rejected") for s in statuses.values()), describe(
        instance, ids
    )
    for research_id in ids:
        runs = runs_of(instance, research_id)
        if runs[0].run_id in queued_ids:
            # Waiting in the queue survived the crash; the new daemon started it once.
            assert len(runs) == 1, describe(instance, ids)
        elif runs[0].run_id in killed:
            # Killed while executing: failed, then retried from the failure.
            assert runs[0].status == dg.DagsterRunStatus.FAILURE
            assert len(runs) == 2 and runs[1].tags.get("dagster/parent_run_id") == runs[0].run_id
