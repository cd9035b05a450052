"""Reads of the Dagster instance's event log and runs, through its public record APIs."""

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import dagster as dg
from dagster._core.event_api import AssetRecordsFilter

from research_assets.defs.partitions import research_partitions
from research_assets.defs.tags import PARTITION_TAG


def unix_time(naive_utc: datetime) -> float:
    """A time as Dagster's SQL tables keep it (naive, UTC) in unix seconds; cheaper than
    dagster._time.utc_datetime_from_naive(...).timestamp() over 100,000 rows."""
    return (naive_utc - _EPOCH).total_seconds()


_EPOCH = datetime(1970, 1, 1)


def research_ids(instance: dg.DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(research_partitions.name))


def fetch_all(
    instance: dg.DagsterInstance,
    asset: str,
    ids: Sequence[str] | None,
    observations: bool = False,
    after: float | None = None,
) -> Iterator[Any]:
    """Every materialization (or observation) of ``asset``, newest first."""
    fetch = instance.fetch_observations if observations else instance.fetch_materializations
    records_filter = AssetRecordsFilter(
        asset_key=dg.AssetKey(asset),
        asset_partitions=list(ids) if ids is not None else None,
        after_timestamp=after,
    )
    cursor = None
    while True:
        result = fetch(records_filter, limit=1000, cursor=cursor)
        yield from result.records
        if not result.has_more:
            return
        cursor = result.cursor


def fetch_latest(
    instance: dg.DagsterInstance,
    asset: str,
    ids: Sequence[str] | None,
    observations: bool = False,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The newest materialization (or observation) per partition of ``asset``."""
    out: dict[str, Any] = {}
    for rec in fetch_all(instance, asset, ids, observations):
        if rec.partition_key and rec.partition_key not in out:
            if where is None or where(metadata_of(rec)):
                out[rec.partition_key] = rec
    return out


def metadata_of(rec: Any) -> dict[str, Any]:
    event = rec.asset_materialization or rec.asset_observation
    return plain(event.metadata if event else None)


def plain(metadata: Any) -> dict[str, Any]:
    """Metadata values as plain Python (JSON metadata as dicts, numbers as numbers)."""
    out = {}
    for key, value in (metadata or {}).items():
        raw = getattr(value, "value", value)
        if isinstance(raw, str) and isinstance(value, dg.JsonMetadataValue):
            raw = json.loads(raw)
        out[key] = raw
    return out


def latest_runs(instance: dg.DagsterInstance, ids: Sequence[str]) -> dict[str, Any]:
    """The newest run record per partition."""
    out: dict[str, Any] = {}
    for rec in instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: list(ids)})):
        pk = rec.dagster_run.tags.get(PARTITION_TAG)
        if pk and pk not in out:
            out[pk] = rec
    return out


def failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """Why a run failed: the ``reason`` a step failed with (our Failures carry one), else the
    first step failure's message on one line, else ``run_failed``."""
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        data = event.dagster_event.event_specific_data  # type: ignore[union-attr]
        user = getattr(data, "user_failure_data", None)
        reason = (user.metadata or {}).get("reason") if user is not None else None
        if reason is not None:
            return str(getattr(reason, "value", reason))
        message = step_failure_message(data)
        if message:
            return message[:300]
    return "run_failed"


def step_failure_message(data: Any) -> str | None:
    """What a step failed with, on one line, as its user reads it: a ``dg.Failure``'s
    description, else the error's own message, without the exception class name Dagster puts
    in front (``dagster._core.definitions.events.Failure: ...``)."""
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return _one_line(user.description)
    error = getattr(data, "error", None)
    # An exception raised in an asset body comes wrapped ("Error occurred while executing op"):
    # its cause is the exception the asset raised.
    while error is not None and error.cause is not None and error.cls_name in _WRAPPERS:
        error = error.cause
    if error is None:
        return None
    return _without_class_name(_one_line(error.message), error.cls_name) or None


def _one_line(message: str) -> str:
    """A message's first line; with the lines it introduces where it ends with a colon (a
    spec's errors, one a line)."""
    head, *rest = [line.strip() for line in message.strip().splitlines() if line.strip()] or [""]
    return f"{head} {'; '.join(rest)}" if rest and head.endswith(":") else head


_WRAPPERS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}


def _without_class_name(line: str, cls_name: str | None) -> str:
    head, sep, rest = line.partition(": ")
    if sep and cls_name and (head == cls_name or head.endswith("." + cls_name)):
        return rest
    return line
