"""The leaderboard asset: every research's status and figures, ranked, and a picture comparing
researches; Dagster rebuilds it whenever a research ends.

It reads every research through the status view, the reader `research status` uses, so the two
agree; the table and the picture are core/leaderboard.py's.

**When it is rebuilt.** A research ends in one of three ways, and each is seen by Dagster:

- with a verdict: a gated asset is materialized (``trained_model`` or ``backtest_report``, passed
  or rejected at its gate: the gate outcome is in the materialization, which exists either way),
  or ``lockbox_report``, the last step of a completed research. Those three are the leaderboard's
  deps, and :data:`RESEARCH_ENDED` (declarative automation, evaluated by ``leaderboard_automation``
  in the daemon's asset daemon) requests the leaderboard after any new materialization of them.
  A condition cannot read a gate's outcome, so a passed gate rebuilds it too (the research then
  shows as running); that costs one run per automation tick at most.
- failed or cancelled: its run ends without materializing anything that marks the end, which no
  automation condition on materializations sees (``execution_failed`` would, but only through
  Dagster's partition status cache over every research partition, and ``newly_true`` keeps every
  failed partition in the sensor's cursor). Two run status sensors request the leaderboard
  instead, reading only the run events since their cursor.

**Never two at once, never a research slot.** The condition does not request while a leaderboard
run is queued or in progress (``in_progress``); a research end meanwhile keeps the condition true,
so one more run follows. The run status sensors skip while a leaderboard run is still queued (it
has not read yet), but request one while another is running (that one may have read before the
end). Every run they launch carries ``research/leaderboard``, which the run queue limits to one
at a time (``tag_concurrency_limits`` in dagster_home/dagster.yaml and deploy/dagster.yaml): the
worker limits (2 cpu + 1 gpu research runs) leave the fourth of ``max_concurrent_runs`` to it, so
a leaderboard run never takes a research's slot. It carries no ``research/worker`` tag, so
`research trigger`'s capacity does not count it either. (A "Materialize" click in the UI runs
without the tag, outside that limit.)

**Only the leaderboard.** ``leaderboard_automation`` targets the leaderboard alone, and no research
asset has an automation condition: automation never launches research work.
"""

from typing import Any

import dagster as dg
import pandas as pd

from research_assets.core.leaderboard import COLUMNS, LeaderboardEntry, comparison_png, rows
from research_assets.core.plots import png_markdown
from research_assets.defs.assets import backtest_report, lockbox_report, trained_model
from research_assets.defs.tags import PARTITION_TAG
from research_assets.state.status_view import read_statuses

# On every run the automation and the sensors launch; the run queue runs one at a time.
RUN_TAGS = {"research/leaderboard": "true"}
# The UI table holds this many ranked rows at most (every research up to there); the asset's
# value, a DataFrame, holds every research whatever their number. Each build's metadata stays in
# the event log (~0.4 KB a row, ~20 KB for the picture), so the table is capped.
TABLE_ROWS = 500

# Reset only by the leaderboard's own request (not by its materialization, as since_last_handled
# is): a research that ends while a leaderboard run is in flight, after that run has read the
# statuses, still gets a run of its own. Both sides carry timestamps (the deps' materializations,
# the previous tick's request), so a dep update after the request wins over the reset. Plain
# newly_updated rather than any_deps_updated, which ignores updates made by a run that also
# targeted the leaderboard: a `strategy_spec*` run rejected at a gate skips its leaderboard step.
RESEARCH_ENDED = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
    .since(dg.AutomationCondition.newly_requested())
    .with_label("a research ended since the leaderboard was last requested")
    & ~dg.AutomationCondition.in_progress()
).with_label("research_ended")


@dg.asset(
    group_name="leaderboard",
    kinds={"pandas", "matplotlib"},
    deps=[trained_model, backtest_report, lockbox_report],
    automation_condition=RESEARCH_ENDED,
)
def leaderboard(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
    """Every research, ranked: completed ones first by out-of-sample Sharpe, with status, reason,
    strategy, out-of-sample and lockbox figures and cost; and out-of-sample against lockbox
    Sharpe as a picture. Rebuilt whenever a research ends."""
    statuses = read_statuses(context.instance)
    entries = [
        LeaderboardEntry.from_status(s.data, s.sharpe, s.excess_return, s.deflated_sharpe)
        for s in statuses
    ]
    table = rows(entries)
    png = comparison_png(entries)
    by_status: dict[str, int] = {}
    for entry in entries:
        by_status[entry.status] = by_status.get(entry.status, 0) + 1
    metadata: dict[str, Any] = {
        "researches": len(entries),
        **{f"status/{status}": n for status, n in sorted(by_status.items())},
        "ranking": dg.MetadataValue.table(
            [dg.TableRecord(row) for row in table[:TABLE_ROWS]],
            schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in COLUMNS]),
        ),
        "comparison": dg.MetadataValue.md(
            png_markdown(png, alt="out-of-sample against lockbox Sharpe")
        ),
    }
    if len(table) > TABLE_ROWS:
        metadata["table_note"] = (
            f"the table shows the first {TABLE_ROWS} of {len(table)} "
            "researches; the asset's value holds every one"
        )
    return dg.Output(pd.DataFrame(table, columns=[name for name, _ in COLUMNS]), metadata=metadata)


leaderboard_job = dg.define_asset_job(
    "leaderboard_job",
    selection=dg.AssetSelection.assets(leaderboard),
    description="Rebuild the leaderboard (every research, ranked, and the comparison picture).",
    tags=RUN_TAGS,
)

leaderboard_automation = dg.AutomationConditionSensorDefinition(
    "leaderboard_automation",
    target=dg.AssetSelection.assets(leaderboard),
    run_tags=RUN_TAGS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Requests the leaderboard when a research ends with a verdict (its automation "
    "condition); targets the leaderboard only.",
)


def _after_research_run(context: dg.RunStatusSensorContext, ended: str):
    run = context.dagster_run
    if PARTITION_TAG not in run.tags:  # not a research's run (the leaderboard's own, say)
        return dg.SkipReason(f"run {run.run_id} is not a research's run")
    queued = context.instance.get_runs_count(
        dg.RunsFilter(
            job_name=leaderboard_job.name,
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
        )
    )
    if queued:
        return dg.SkipReason("a leaderboard run is queued; it will read this research")
    return dg.RunRequest(run_key=f"{ended}:{run.run_id}", tags=RUN_TAGS)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.FAILURE,
    request_job=leaderboard_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the leaderboard when a research's run fails.",
)
def leaderboard_after_failed_run(context: dg.RunStatusSensorContext):
    return _after_research_run(context, "failed")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    request_job=leaderboard_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the leaderboard when a research's run is cancelled.",
)
def leaderboard_after_cancelled_run(context: dg.RunStatusSensorContext):
    return _after_research_run(context, "cancelled")
