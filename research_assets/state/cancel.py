"""Cancelling one research: its queued or running run stops; no other research is touched."""

from dataclasses import dataclass, field

import dagster as dg

from research_assets.core.errors import ResearchError
from research_assets.core.names import FINAL_STATUSES
from research_assets.defs.tags import MAX_RETRIES_TAG, PARTITION_TAG, WILL_RETRY_TAG
from research_assets.state.capacity import ACTIVE_RUN_STATUSES
from research_assets.state.records import load_statuses, record_cancel, research_ids


@dataclass
class CancelResult:
    id: str
    cancelled: bool
    message: str
    run_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "cancelled": self.cancelled,
            "message": self.message,
            "runs": self.run_ids,
        }


def cancel_research(instance: dg.DagsterInstance, research_id: str) -> CancelResult:
    if research_id not in set(research_ids(instance)):
        raise ResearchError(f"no research with id {research_id!r}; `research status` lists them")
    [status] = load_statuses(instance, [research_id])
    # A run that failed because its process died is retried from the failure: until the retry
    # run exists, the research has not ended, though no run of it is in flight.
    retrying = [
        run
        for run in instance.get_runs(
            dg.RunsFilter(tags={PARTITION_TAG: research_id}, statuses=[dg.DagsterRunStatus.FAILURE])
        )
        if run.is_complete_and_waiting_to_retry
    ]
    if status.status in FINAL_STATUSES and not retrying:
        return CancelResult(
            research_id,
            False,
            f"{research_id} has already ended ({status.status}); nothing to cancel",
        )
    # First the mark, so the intake sensor never launches it; then the runs in flight.
    record_cancel(instance, research_id)
    for run in retrying:
        # The retry daemon reads this tag before it launches a retry.
        instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "false"})
    runs = instance.get_runs(
        dg.RunsFilter(tags={PARTITION_TAG: research_id}, statuses=ACTIVE_RUN_STATUSES)
    )
    stopped = []
    for run in runs:
        # A run stopped while starting can end as a failure, and failures are retried: a
        # cancelled research must never come back.
        instance.add_run_tags(run.run_id, {MAX_RETRIES_TAG: "0"})
        # Queued: removed from the queue. Started: the run launcher terminates its process.
        if instance.run_coordinator.cancel_run(run.run_id):
            stopped.append(run.run_id)
        else:
            raise ResearchError(
                f"could not stop run {run.run_id} of {research_id}: its process did not answer; "
                "terminate it from the Dagster UI (Runs → Terminate)"
            )
    what = f"stopped run {', '.join(r[:8] for r in stopped)}" if stopped else "no run had started"
    return CancelResult(research_id, True, f"{research_id} cancelled ({what})", stopped)
