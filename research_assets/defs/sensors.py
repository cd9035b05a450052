"""Sensors turn research requests into runs; they never run research work themselves.

``research_intake`` (running by default) launches one run per new research partition, whether
it came from ``research trigger`` or from "Add partition" in the UI. ``research_autopilot``
(stopped by default) keeps researches flowing while capacity and budget remain.
"""

import os

import dagster as dg

from research_assets.defs.jobs import research_job
from research_assets.defs.partitions import research_partitions
from research_assets.defs.tags import DEFAULT_WORKER, RESEARCH_ID_TAG, WORKER_TAG
from research_assets.state.capacity import admit
from research_assets.state.records import (
    cancelled_ids,
    new_research_id,
    partitions_with_runs,
    read_requests,
    record_request,
)

# How many partitions one intake tick reads; the cursor carries on from there.
INTAKE_PAGE = 500


def research_tags(research_id: str, worker: str = DEFAULT_WORKER) -> dict[str, str]:
    return {RESEARCH_ID_TAG: research_id, WORKER_TAG: worker}


# A tick that finds nothing new is one query; ticking often keeps trigger-to-run latency low.
@dg.sensor(
    job=research_job, minimum_interval_seconds=2, default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one queued run per new research partition (run key = research id).",
)
def research_intake(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    page = context.instance.get_paginated_dynamic_partitions(
        research_partitions.name, limit=INTAKE_PAGE, ascending=True, cursor=context.cursor,
    )
    new = list(page.results)
    if not new:
        return dg.SkipReason("no new research partitions since the last tick")
    requests = read_requests(context.instance, new)
    # Run keys are de-duplicated per code location; the partition tag also catches runs
    # launched another way (the UI, `dagster asset materialize`, the autopilot).
    skip = partitions_with_runs(context.instance, new) | cancelled_ids(context.instance, new)
    skip |= {k for k, r in requests.items() if r.launched_by == "autopilot"}
    run_requests = [
        dg.RunRequest(
            run_key=key, partition_key=key,
            tags=research_tags(key, requests[key].worker if key in requests else DEFAULT_WORKER),
        )
        for key in new if key not in skip
    ]
    if not run_requests:
        # Move past them all the same: a page of skipped partitions must not stall the intake.
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"{len(new)} new research partitions, all already launched or cancelled"
        ), cursor=page.cursor)
    return dg.SensorResult(run_requests=run_requests, cursor=page.cursor)


@dg.sensor(
    job=research_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts a new research whenever capacity and today's budget allow. "
    "RESEARCH_AUTOPILOT_BRIEF sets the brief.",
)
def research_autopilot(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    admission = admit(context.instance)
    if not admission.allowed:
        return dg.SkipReason(f"{admission.reason}: {admission.message}")
    research_id = new_research_id()
    record_request(
        context.instance, research_id, brief=os.environ.get("RESEARCH_AUTOPILOT_BRIEF") or None,
        launched_by="autopilot",
    )
    return dg.SensorResult(run_requests=[dg.RunRequest(
        run_key=research_id, partition_key=research_id, tags=research_tags(research_id),
    )])
