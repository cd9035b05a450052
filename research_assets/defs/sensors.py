"""Sensors turn research requests into runs; they never run research work themselves.

``research_intake`` (running by default) launches one run per new research partition, whether
it came from ``research trigger`` or from "Add partition" in the UI, with the research's
recorded request as ``strategy_spec``'s run config (research_config.py). ``research_autopilot``
(stopped by default) keeps researches flowing while capacity and budget remain.

To launch a new research from the Launchpad with config of your own, stop ``research_intake``
while you add its partition and launch it: the intake launches a run for every new partition
within seconds. (A tick already under way when it is stopped still ends; its sensor page shows
it.) Once started again it leaves a partition that has a run alone.
"""

import os
from datetime import UTC, datetime

import dagster as dg

from research_assets.defs.jobs import research_job
from research_assets.defs.partitions import research_partitions
from research_assets.defs.research_config import run_config
from research_assets.defs.tags import DEFAULT_WORKER, PARTITION_TAG, RESEARCH_ID_TAG, WORKER_TAG
from research_assets.state.capacity import admit
from research_assets.state.records import (
    ResearchRequest,
    cancelled_ids,
    default_seed,
    new_research_id,
    partitions_with_runs,
    read_requests,
)
from research_assets.state.status_view import read_statuses

# How many partitions one intake tick reads; the cursor carries on from there.
INTAKE_PAGE = 500


def research_tags(research_id: str, worker: str = DEFAULT_WORKER) -> dict[str, str]:
    return {RESEARCH_ID_TAG: research_id, WORKER_TAG: worker}


def research_run(research_id: str, request: ResearchRequest | None) -> dg.RunRequest:
    """The run of one research: its inputs as run config (what the run page shows and a
    re-execution repeats), its worker class as a tag (what the run queue limits)."""
    if request is None:  # added with "Add partition" in the UI: the defaults
        return dg.RunRequest(
            run_key=research_id, partition_key=research_id, tags=research_tags(research_id)
        )
    return dg.RunRequest(
        run_key=research_id,
        partition_key=research_id,
        tags=research_tags(research_id, request.worker),
        run_config=run_config(
            seed=request.seed, brief=request.brief, spec=request.spec, worker=request.worker
        ),
    )


# A tick that finds nothing new is one query; ticking often keeps trigger-to-run latency low.
@dg.sensor(
    job=research_job,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one queued run per new research partition (run key = research id).",
)
def research_intake(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    page = context.instance.get_paginated_dynamic_partitions(
        research_partitions.name,
        limit=INTAKE_PAGE,
        ascending=True,
        cursor=context.cursor,
    )
    new = list(page.results)
    if not new:
        return dg.SkipReason("no new research partitions since the last tick")
    requests = read_requests(context.instance, new)
    # Run keys are de-duplicated per code location; the partition tag also catches runs
    # launched another way (the UI, `dagster asset materialize`, the autopilot).
    skip = partitions_with_runs(context.instance, new) | cancelled_ids(context.instance, new)
    skip |= {k for k, r in requests.items() if r.launched_by == "autopilot"}
    run_requests = [research_run(key, requests.get(key)) for key in new if key not in skip]
    if not run_requests:
        # Move past them all the same: a page of skipped partitions must not stall the intake.
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{len(new)} new research partitions, all already launched or cancelled"
            ),
            cursor=page.cursor,
        )
    return dg.SensorResult(run_requests=run_requests, cursor=page.cursor)


@dg.sensor(
    job=research_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts a new research whenever capacity and today's budget allow. "
    "RESEARCH_AUTOPILOT_BRIEF sets the brief.",
)
def research_autopilot(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    admission = admit(context.instance)
    if not admission.allowed:
        return dg.SkipReason(f"{admission.reason}: {admission.message}")
    research_id = new_research_id()
    brief = os.environ.get("RESEARCH_AUTOPILOT_BRIEF") or None
    # No side effect here: Dagster adds the partition and launches the run only once the tick
    # has succeeded, and the research's request is recorded by its strategy_spec from this run
    # config. The intake sensor, ticking after this tick (sensors are evaluated one at a time),
    # finds the partition with its run and leaves it alone.
    return dg.SensorResult(
        dynamic_partitions_requests=[research_partitions.build_add_request([research_id])],
        run_requests=[
            dg.RunRequest(
                run_key=research_id,
                partition_key=research_id,
                tags=research_tags(research_id),
                run_config=run_config(
                    seed=default_seed(research_id), brief=brief, worker=DEFAULT_WORKER
                ),
            )
        ],
    )


# Runs read per tick; the cursor carries on from the last one read.
SUMMARY_PAGE = 500
_OVERLAP_S = 1.0


@dg.sensor(
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Keeps each research's status summary (research_assets/state) current as its "
    "runs change, so that `research status` does not read a research's events again.",
)
def research_summaries(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    # Every change to a research passes through a run's record: its materializations are written
    # by a run that ends after them, and a run killed or cancelled without our code running is
    # marked by Dagster. Readers check every summary against the instance; this only saves them
    # reading the events again (a change missed here is read by the next `research status`).
    since = float(context.cursor) if context.cursor else 0.0
    # The filter is strict (update_timestamp > after) and SQLite keeps whole seconds: a run
    # updated in the cursor's own second, after the last tick, is read again from one second
    # back (re-reading a summary that is current costs only its fingerprint).
    records = context.instance.get_run_records(
        dg.RunsFilter(updated_after=datetime.fromtimestamp(max(since - _OVERLAP_S, 0.0), UTC)),
        limit=SUMMARY_PAGE,
        order_by="update_timestamp",
        ascending=True,
    )
    ids = sorted({r.dagster_run.tags.get(PARTITION_TAG) for r in records} - {None})
    if ids:
        read_statuses(context.instance, ids)
    if records:
        last = records[-1].update_timestamp.timestamp()
        # A full page inside the overlap would be read again forever: step past it (what it
        # leaves out, `research status` derives when it reads).
        if len(records) == SUMMARY_PAGE and last <= since:
            last = since + _OVERLAP_S
        context.update_cursor(str(max(last, since)))
    return dg.SkipReason(f"{len(ids)} research summaries brought up to date")
