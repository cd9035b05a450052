"""Dagster's run queue, plus the worker tag on every research run however it was launched.

The worker limits (``concurrency.runs.tag_concurrency_limits`` on ``research/worker`` in
dagster.yaml) apply to run tags. ``research_job`` carries the tag, and the sensors set it, but
"Materialize" in the asset graph launches Dagster's implicit asset job (``__ASSET_JOB``: the UI
takes the first of an asset's jobs in name order, see ``getCommonJob`` in Dagster's
LaunchAssetExecutionButton.tsx), whose runs get only the tags the dialog sets; Dagster offers no
definitions-level or asset-level run tags for that job. So the tag is set here, when a run is
submitted to the queue and before the daemon dequeues it: a run that materializes a research
asset counts against the worker class its config names (``strategy_spec``'s ``worker``), else
its own tag, else its research's recorded request, else cpu. Runs of other assets are left alone.

Can go when Dagster applies a job's or an asset's run tags to runs of the implicit asset job.
"""

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun

from research_assets.core.names import RESEARCH_ASSETS
from research_assets.defs.tags import DEFAULT_WORKER, PARTITION_TAG, RESEARCH_ID_TAG, WORKER_TAG


class ResearchRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        tags = research_run_tags(self._instance, run)
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run
            context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)


def research_run_tags(instance, run: DagsterRun) -> dict[str, str]:
    """The tags to add to ``run`` so that it counts against its worker class (none for a run
    that is not a research's, or that has them right already)."""
    from research_assets.defs.research_config import worker_of_run_config

    research_id = run.tags.get(PARTITION_TAG)
    if not research_id or not _materializes_research(run):
        return {}
    worker = worker_of_run_config(run.run_config) or run.tags.get(WORKER_TAG)
    if worker is None:
        from research_assets.state.records import read_requests

        request = read_requests(instance, [research_id]).get(research_id)
        worker = request.worker if request is not None else DEFAULT_WORKER
    wanted = {WORKER_TAG: worker, RESEARCH_ID_TAG: research_id}
    return {k: v for k, v in wanted.items() if run.tags.get(k) != v}


def _materializes_research(run: DagsterRun) -> bool:
    if run.job_name == "research_job":
        return True
    return any(key.to_user_string() in RESEARCH_ASSETS for key in run.asset_selection or ())
