"""What `research status` prints, kept rendered, with what it was rendered from.

The research index (research_index.py) spares a status read every event body; deriving, building
and encoding 10,000 statuses from it still costs more than a second. This view keeps, per
research, its status already encoded as JSON, beside a fingerprint of the records it came from:
the newest event id of each asset stream of its partition, and its newest run (id, status, end,
and for a failed run the retry decision).

A read computes every fingerprint from index queries alone (the newest event id per partition of
each stream, the newest run per partition) and derives again, through the index, only the
researches whose fingerprint changed. A status is derived after its fingerprint is taken, so
what is kept is never older than its fingerprint says; nothing is trusted without that check,
so the view needs no lock, like the index.
"""

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import dagster as dg

from research_assets.defs.tags import PARTITION_TAG, WILL_RETRY_TAG
from research_assets.state.records import ResearchStatus, load_statuses, research_ids
from research_assets.state.research_index import (
    STREAMS,
    VIEW_ROW,
    bucket_of,
    load_rows,
    newest_event_ids,
    row_key,
    run_settled,
    write_rows,
)

_FEW = 500  # up to this many ids, queries name them; beyond, they read every partition
_FAILURE = dg.DagsterRunStatus.FAILURE.value
# The summary figures kept beside each document, in RenderedStatus's order.
TABLE_FIGURES = ("Sharpe Ratio", "Excess Return [%]", "Deflated Sharpe Ratio")


@dataclass(frozen=True)
class RenderedStatus:
    id: str
    created_at: float
    document: str  # ResearchStatus.to_json(), encoded
    # Backtest-period (out-of-sample) figures of the summary that the table shows, pooled over
    # the datasets (the document has them per dataset).
    sharpe: float | None
    excess_return: float | None = None  # "Excess Return [%]" over buy & hold
    deflated_sharpe: float | None = None

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.document)


def encode(status: ResearchStatus) -> str:
    return json.dumps(status.to_json(), allow_nan=False, default=str)


def read_statuses(
    instance: dg.DagsterInstance, ids: Sequence[str] | None = None
) -> list[RenderedStatus]:
    """The status of the given researches (default: all), oldest first, as `research status`
    prints them."""
    every = ids is None
    ids = research_ids(instance) if ids is None else list(dict.fromkeys(ids))
    if not ids:
        return []
    buckets = sorted({bucket_of(pk) for pk in ids})
    rows = load_rows(instance, buckets, VIEW_ROW)
    kept = {pk: entry for row in rows.values() for pk, entry in row.items()}
    current = _fingerprints(instance, ids, kept)
    stale = [pk for pk in ids if not _valid(kept.get(pk)) or kept[pk][0] != current[pk]]
    for status in load_statuses(instance, stale) if stale else ():
        kept[status.id] = [current[status.id], status.created_at, encode(status),
                           *(status.backtest_summary.get(k) for k in TABLE_FIGURES)]
    touched = {bucket_of(pk) for pk in stale}
    if every:  # partitions deleted since: forgotten
        wanted = set(ids)
        touched |= {b for b, row in rows.items() if any(pk not in wanted for pk in row)}
    if touched:
        by_bucket: dict[int, dict[str, Any]] = {b: {} for b in touched}
        for pk, entry in kept.items():
            if bucket_of(pk) in touched and (pk in current or not every):
                by_bucket[bucket_of(pk)][pk] = entry
        write_rows(instance, {row_key(b, VIEW_ROW): by_bucket[b] for b in sorted(touched)})
    out = [RenderedStatus(pk, *kept[pk][1:]) for pk in ids]
    return sorted(out, key=lambda s: (s.created_at, s.id))


def _valid(entry: Any) -> bool:
    return (isinstance(entry, list) and len(entry) == 3 + len(TABLE_FIGURES)
            and isinstance(entry[0], str)
            and isinstance(entry[1], int | float) and isinstance(entry[2], str))


def _fingerprints(instance: dg.DagsterInstance, ids: list[str],
                  kept: dict[str, Any]) -> dict[str, str]:
    """Per research: ``"<newest event id per stream>|<run id>|<status>|<end>|<retry>"``."""
    few = set(ids) if len(ids) <= _FEW else None
    sids = {pk: ["0"] * len(STREAMS) for pk in ids}
    for i, (kind, asset) in enumerate(STREAMS):
        for pk, sid in newest_event_ids(instance, kind, asset, few).items():
            if pk in sids:
                sids[pk][i] = str(sid)
    runs_filter = dg.RunsFilter(tags={PARTITION_TAG: sorted(few)}) if few else dg.RunsFilter()
    newest_runs = {d.partition: d for d in instance.get_run_partition_data(runs_filter)
                   if d.partition in sids}
    out = {}
    undecided = {}  # failed runs whose retry decision must be read from their tags
    now = time.time()
    for pk in ids:
        run = newest_runs.get(pk)
        head = ",".join(sids[pk])
        if run is None:
            out[pk] = f"{head}||||"
            continue
        base = f"{head}|{run.run_id}|{run.status.value}|{run.end_time!r}"
        retry = ""
        if run.status.value == _FAILURE:
            before = kept.get(pk)
            known = before[0] if _valid(before) else ""
            if known.rpartition("|")[0] == base:
                retry = known.rpartition("|")[2]
            if not retry or not run_settled(
                    {"status": _FAILURE, "retry": None if retry == "-" else retry,
                     "end": run.end_time}, now):
                undecided[run.run_id] = (pk, base)
                continue
        out[pk] = f"{base}|{retry}"
    run_ids = sorted(undecided)
    for i in range(0, len(run_ids), _FEW):
        for run in instance.get_runs(dg.RunsFilter(run_ids=run_ids[i:i + _FEW])):
            pk, base = undecided.pop(run.run_id)
            out[pk] = f"{base}|{run.tags.get(WILL_RETRY_TAG) or '-'}"
    for pk, base in undecided.values():  # deleted meanwhile: derived again next time
        out[pk] = f"{base}|?"
    return out
