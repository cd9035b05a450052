"""The run queue holds the worker-class limit, the pools hold the heavy steps, and researches
beyond the limits wait in the queue: measured on a real daemon, from the instance's records."""

import time

import dagster as dg
import pytest

from research_assets.defs.tags import WORKER_TAG
from research_assets.state.capacity import admit, pool_limits, worker_limits
from research_assets.state.records import record_request
from tests.integration.conftest import (
    FINAL,
    IN_PROGRESS,
    describe,
    make_spec,
    max_overlap,
    statuses_by_id,
    step_intervals,
)

pytestmark = pytest.mark.integration

RESEARCHES = 4  # > the cpu limit (2): two waves, so some wait in the queue
# The steps that take a pool slot, and their pools (see the assets' `pool=`).
POOL_OF_STEP = {"trained_model": "training", "backtest_report": "backtest"}


def cpu_limit_from(config: dict) -> int:
    [limit] = [
        rule["limit"]
        for rule in config["concurrency"]["runs"]["tag_concurrency_limits"]
        if rule["key"] == WORKER_TAG and rule.get("value") == "cpu"
    ]
    return int(limit)


def test_limits_hold_and_excess_researches_queue(instance, daemon, dagster_config):
    cpu_limit = cpu_limit_from(dagster_config)
    pool_limit = int(dagster_config["concurrency"]["pools"]["default_limit"])
    # What the instance enforces is what dagster.yaml says.
    assert worker_limits(instance)["cpu"] == cpu_limit
    assert pool_limits(instance) == {pool: pool_limit for pool in POOL_OF_STEP.values()}
    assert RESEARCHES > cpu_limit, "the test needs more researches than running slots"

    ids = [f"r-limits-{i}" for i in range(RESEARCHES)]
    env = {"RESEARCH_MAX_CONCURRENT": str(RESEARCHES + 4)}
    for i, research_id in enumerate(ids):
        assert admit(instance, env).allowed
        record_request(instance, research_id, spec=make_spec(), seed=i)

    cpu_runs = dg.RunsFilter(tags={WORKER_TAG: "cpu"})
    most_in_progress = 0
    waited_at_limit = 0  # samples with runs queued while every cpu slot was taken
    deadline = time.monotonic() + 480
    next_check = 0.0
    while True:
        records = instance.get_run_records(cpu_runs)
        in_progress = sum(r.dagster_run.status in IN_PROGRESS for r in records)
        queued = sum(r.dagster_run.status == dg.DagsterRunStatus.QUEUED for r in records)
        assert in_progress <= cpu_limit, (
            f"{in_progress} cpu runs in progress, limit {cpu_limit}:\n{describe(instance, ids)}"
        )
        most_in_progress = max(most_in_progress, in_progress)
        waited_at_limit += queued > 0 and in_progress == cpu_limit
        if time.monotonic() >= next_check:
            daemon.check_alive()
            statuses = statuses_by_id(instance, ids)
            if all(s.status in FINAL for s in statuses.values()):
                break
            next_check = time.monotonic() + 1.0
        assert time.monotonic() < deadline, f"researches did not end:\n{describe(instance, ids)}"
        time.sleep(0.2)

    assert all(s.status in ("completed", "rejected") for s in statuses.values()), describe(
        instance, ids
    )
    # The limit was reached (runs do go in parallel), and researches beyond it waited.
    assert most_in_progress == cpu_limit
    assert waited_at_limit > 0, "no research ever waited in the queue"

    records = instance.get_run_records(cpu_runs)
    assert len(records) == RESEARCHES  # one run per research, none retried
    latency = sorted(r.start_time - r.create_timestamp.timestamp() for r in records)
    assert latency[-1] > latency[0] + 2, f"queue latencies {latency}: no run waited"
    # From the event logs: never more heavy steps at once than their pool has slots.
    run_ids = [r.dagster_run.run_id for r in records]
    for step, pool in POOL_OF_STEP.items():
        intervals = step_intervals(instance, run_ids, step)
        assert max_overlap(intervals) <= pool_limit, (step, pool, intervals)
    # Every research trained, so the training pool saw all of them, one at a time.
    assert len(step_intervals(instance, run_ids, "trained_model")) == RESEARCHES
