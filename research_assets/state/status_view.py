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
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import dagster as dg

from research_assets.defs.tags import PARTITION_TAG, TOKEN_KEYS, WILL_RETRY_TAG
from research_assets.state.instance_reads import research_ids
from research_assets.state.research_index import (
    MARK_ROW,
    STREAMS,
    VIEW_ROW,
    bucket_of,
    newest_event_ids,
    row_key,
    run_settled,
    write_rows,
)

if TYPE_CHECKING:
    from research_assets.state.records import ResearchStatus

_ASSETS = sorted({a for _kind, a in STREAMS})
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
    # What `research metrics` reads of every research, beside the document (not decoded).
    status: str = ""
    has_strategy: bool = False
    lockbox_outcome: tuple[float, float] | None = None  # core.overfitting.lockbox_outcome
    billed: tuple[tuple[float, float], ...] = ()  # ResearchStatus.billed
    tokens: tuple[int, ...] = ()  # ResearchStatus.tokens, in TOKEN_KEYS' order

    @cached_property
    def data(self) -> dict[str, Any]:
        return json.loads(self.document)


def encode(status: "ResearchStatus") -> str:
    return json.dumps(status.to_json(), allow_nan=False, default=str)


def read_statuses(
    instance: dg.DagsterInstance, ids: Sequence[str] | None = None
) -> list[RenderedStatus]:
    """The status of the given researches (default: all), oldest first, as `research status`
    prints them."""
    return _read(instance, ids)[0]


def _read(
    instance: dg.DagsterInstance, ids: Sequence[str] | None
) -> tuple[list[RenderedStatus], str | None]:
    """The statuses, and (reading every research) `research status --json`'s output."""
    every = ids is None
    mark = instance_mark(instance) if every else None  # taken before anything is read
    ids = research_ids(instance) if ids is None else list(dict.fromkeys(ids))
    if not ids:
        return [], None
    # Each row carries a token of its last write: the mark below holds the tokens of the rows a
    # complete read left, so that a row written since by anyone else is noticed.
    tokens, kept = _load_view(instance, sorted({bucket_of(pk) for pk in ids}))
    if mark is not None:
        mark = f"{mark}|{len(ids)}:{zlib.crc32(chr(10).join(ids).encode())}"
        if _stored_mark(instance) == _with_tokens(mark, tokens) and all(pk in kept for pk in ids):
            # Nothing a status is derived from, and no row of the view, changed since a read
            # of every research left it complete (and valid): no fingerprint to check.
            return sorted(
                (RenderedStatus(pk, *kept[pk][1:]) for pk in ids),
                key=lambda s: (s.created_at, s.id),
            ), None
    current = _fingerprints(instance, ids, kept)
    stale = [pk for pk in ids if not _valid(kept.get(pk)) or kept[pk][0] != current[pk]]
    if stale:  # deriving (records.py and what it imports) is loaded only then
        from research_assets.core.overfitting import lockbox_outcome
        from research_assets.state.records import load_statuses

        for status in load_statuses(instance, stale):
            kept[status.id] = [
                current[status.id],
                status.created_at,
                encode(status),
                *(status.backtest_summary.get(k) for k in TABLE_FIGURES),
                status.status,
                bool(status.strategy),
                lockbox_outcome(status.lockbox),
                status.billed,
                [status.tokens[k] for k in TOKEN_KEYS],
            ]
    out = [RenderedStatus(pk, *kept[pk][1:]) for pk in ids]
    touched = {bucket_of(pk) for pk in stale}
    if every:  # partitions deleted since: forgotten
        touched |= {bucket_of(pk) for pk in kept if pk not in current}
    if touched:
        by_bucket: dict[int, dict[str, Any]] = {b: {} for b in touched}
        for pk, entry in kept.items():
            if bucket_of(pk) in touched and (pk in current or not every):
                by_bucket[bucket_of(pk)][pk] = entry
        _write_view(instance, by_bucket, tokens)
    del kept  # (what a read of 100,000 researches holds at once counts)
    out.sort(key=lambda s: (s.created_at, s.id))
    if mark is None:
        return out, None
    write_rows(instance, {MARK_KEY: _with_tokens(mark, tokens)})
    text = _document(out)
    # (Only a read that found the instance moved gets here.) The output first, then its mark.
    _write(instance, OUTPUT_KEY, text)
    _write(instance, OUTPUT_MARK_KEY, mark)
    return out, text


def status_json(instance: dg.DagsterInstance) -> str:
    """`research status --json` of every research: as a read of every research last printed it
    while the instance's mark has not moved since (no research's entry read), else read."""
    mark = instance_mark(instance)
    if mark is not None:
        ids = research_ids(instance)
        stored, text = _stored_output(instance)
        if stored == f"{mark}|{len(ids)}:{zlib.crc32(chr(10).join(ids).encode())}":
            return text
    out, text = _read(instance, None)
    return text if text is not None else _document(out)


def _document(statuses: Sequence[RenderedStatus]) -> str:
    # Each status is kept encoded: the object is assembled, not re-encoded.
    return '{"researches": [' + ", ".join(s.document for s in statuses) + "]}"


def _stored_output(instance: dg.DagsterInstance) -> tuple[str | None, str]:
    try:  # one query: both as one write left them
        values = instance.run_storage.get_cursor_values({OUTPUT_MARK_KEY, OUTPUT_KEY})
    except Exception:  # a storage without a key-value store
        return None, ""
    return values.get(OUTPUT_MARK_KEY) or None, values.get(OUTPUT_KEY) or ""


def _write(instance: dg.DagsterInstance, key: str, text: str) -> None:
    try:
        instance.run_storage.set_cursor_values({key: text})
    except Exception:  # derived data: the next read does this work again
        return


def _load_view(
    instance: dg.DagsterInstance, buckets: list[int]
) -> tuple[dict[int, str], dict[str, list[Any]]]:
    """The view's rows: per row, its write token; per research, its entry. A row is one line of
    JSON (token, and per research its entry with the span of its document) followed by the
    documents, as they are printed: decoding them as JSON strings took most of a read."""
    keys = {row_key(b, VIEW_ROW): b for b in buckets}
    try:
        values = instance.run_storage.get_cursor_values(set(keys))
    except Exception:  # a storage without a key-value store: nothing kept
        return {}, {}
    tokens: dict[int, str] = {}
    kept: dict[str, list[Any]] = {}
    for key, b in keys.items():  # each row let go once read (100,000 documents are 150 MB)
        head, _, body = (values.pop(key, None) or "").partition("\n")
        try:
            token, entries = json.loads(head)
            row = {
                pk: [fp, at, body[start:end], *rest] for pk, fp, at, start, end, *rest in entries
            }
        except (ValueError, TypeError):  # absent, or not a row of ours: derived again
            continue
        tokens[b] = token
        kept.update(row)
    return tokens, kept


def _write_view(
    instance: dg.DagsterInstance, by_bucket: dict[int, dict[str, list[Any]]], tokens: dict[int, str]
) -> None:
    for b, entries in sorted(by_bucket.items()):
        head, docs, pos = [], [], 0
        for pk, (fp, at, document, *rest) in entries.items():
            head.append([pk, fp, at, pos, pos + len(document), *rest])
            docs.append(document)
            pos += len(document)
        tokens[b] = uuid.uuid4().hex[:12]
        text = json.dumps([tokens[b], head], separators=(",", ":")) + "\n" + "".join(docs)
        _write(instance, row_key(b, VIEW_ROW), text)


def _with_tokens(mark: str, tokens: dict[int, str | None]) -> str:
    return f"{mark}|{sorted(tokens.items())}"


MARK_KEY = row_key(0, MARK_ROW)
# What the last read of every research that found the instance moved printed, and its mark.
OUTPUT_KEY, OUTPUT_MARK_KEY = row_key(1, MARK_ROW), row_key(2, MARK_ROW)
_QUIET_S = 30.0  # a run updated this recently may have a concurrent update not yet committed
_LATE_IDS = 10_000  # an event id allocated this far below the newest is committed by now


def instance_mark(instance: dg.DagsterInstance, now: float | None = None) -> str | None:
    """What changes whenever anything a status is derived from changes: the event log (newest id,
    and how many events lie in the last ``_LATE_IDS`` ids, which moves when an event with a lower
    id commits late or events are deleted), the research assets' wipes, and the runs (count,
    newest id, newest update: status changes and tags such as the retry decision move it).
    None while a run was updated in the last ``_QUIET_S`` seconds, or where it cannot be read:
    then every research's fingerprint is checked (``_fingerprints``)."""
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from sqlalchemy import func, select

    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return None
    newest = instance.get_run_records(limit=1)
    updated = instance.get_run_records(limit=1, order_by="update_timestamp")
    if updated and (now or time.time()) - updated[0].update_timestamp.timestamp() < _QUIET_S:
        return None
    top = storage.get_maximum_record_id() or 0
    # Dagster has no API that counts events; this reads its event log table (the index).
    with storage.index_connection() as conn:
        recent = conn.execute(
            select(func.count())
            .select_from(SqlEventLogStorageTable)
            .where(SqlEventLogStorageTable.c.id > top - _LATE_IDS)
        ).scalar()
    # The wipe times the event log's own queries filter by (get_asset_records would read each
    # asset's newest event body too).
    wipes = [
        d.last_wipe_timestamp if d else None
        for d in storage._get_assets_details([dg.AssetKey(a) for a in _ASSETS])
    ]
    runs = (
        instance.get_runs_count(),
        newest[0].storage_id if newest else 0,
        updated[0].update_timestamp.timestamp() if updated else 0,
    )
    return f"v1|{top}|{recent}|{wipes}|{runs}"


def _stored_mark(instance: dg.DagsterInstance) -> str | None:
    try:
        return json.loads(instance.run_storage.get_cursor_values({MARK_KEY}).get(MARK_KEY) or "0")
    except Exception:  # a storage without a key-value store, or not a mark
        return None


def _valid(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 8 + len(TABLE_FIGURES)
        and isinstance(entry[0], str)
        and isinstance(entry[1], int | float)
        and isinstance(entry[2], str)
    )


def _fingerprints(
    instance: dg.DagsterInstance, ids: list[str], kept: dict[str, Any]
) -> dict[str, str]:
    """Per research: ``"<newest event id per stream>|<run id>|<status>|<end>|<retry>"``."""
    few = set(ids) if len(ids) <= _FEW else None
    sids = {pk: ["0"] * len(STREAMS) for pk in ids}
    for i, (kind, asset) in enumerate(STREAMS):
        for pk, sid in newest_event_ids(instance, kind, asset, few).items():
            if pk in sids:
                sids[pk][i] = str(sid)
    runs_filter = dg.RunsFilter(tags={PARTITION_TAG: sorted(few)}) if few else dg.RunsFilter()
    newest_runs = {
        d.partition: d for d in instance.get_run_partition_data(runs_filter) if d.partition in sids
    }
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
                {"status": _FAILURE, "retry": None if retry == "-" else retry, "end": run.end_time},
                now,
            ):
                undecided[run.run_id] = (pk, base)
                continue
        out[pk] = f"{base}|{retry}"
    run_ids = sorted(undecided)
    for i in range(0, len(run_ids), _FEW):
        for run in instance.get_runs(dg.RunsFilter(run_ids=run_ids[i : i + _FEW])):
            pk, base = undecided.pop(run.run_id)
            out[pk] = f"{base}|{run.tags.get(WILL_RETRY_TAG) or '-'}"
    for pk, base in undecided.values():  # deleted meanwhile: derived again next time
        out[pk] = f"{base}|?"
    return out
