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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import dagster as dg

from research_assets.defs.partitions import research_partitions
from research_assets.defs.tags import PARTITION_TAG, TOKEN_KEYS, WILL_RETRY_TAG
from research_assets.state.instance_reads import research_ids, unix_time
from research_assets.state.research_index import (
    MARK_ROW,
    OUTPUT_ROW,
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
    # (Only a read that found the instance moved gets here.)
    return out, _write_output(instance, out, mark)


def status_json(instance: dg.DagsterInstance) -> str:
    """`research status --json` of every research."""
    return "".join(status_json_pieces(instance))


def status_json_pieces(instance: dg.DagsterInstance) -> list[str]:
    """`research status --json` of every research, in pieces (150 MB at 100,000 researches: the
    CLI writes them one after the other), as a read of every research last printed it while the
    instance's mark has not moved since (no research's entry read), else read."""
    mark = instance_mark(instance)
    if mark is not None:
        pieces = _stored_output(instance, mark)
        if pieces is not None:
            return pieces
    out, chunks = _read(instance, None)
    return list(_output_chunks(out)) if chunks is None else chunks


_OUTPUT_CHUNK = 8 << 20  # characters per row of the kept output


def _output_chunks(statuses: Sequence[RenderedStatus]) -> Iterator[str]:
    """`research status --json`'s output in pieces of about ``_OUTPUT_CHUNK``. Each status is
    kept encoded: the object is assembled, not re-encoded."""
    parts, size = ['{"researches": ['], 0
    for i, status in enumerate(statuses):
        parts.append(", " + status.document if i else status.document)
        size += len(parts[-1])
        if size >= _OUTPUT_CHUNK:
            yield "".join(parts)
            parts, size = [], 0
    parts.append("]}")
    yield "".join(parts)


def _write_output(
    instance: dg.DagsterInstance, statuses: Sequence[RenderedStatus], mark: str
) -> list[str]:
    """Keep the output beside the mark it was read at: in rows of ``_OUTPUT_CHUNK`` (writing one
    value of 150 MB took three encoded copies of it at once), each under the token of this
    write, then the mark with that token, so that rows of two writers never mix."""
    chunks = list(_output_chunks(statuses))
    token = uuid.uuid4().hex[:12]
    for i, chunk in enumerate(chunks):
        _write(instance, row_key(i, OUTPUT_ROW), f"{token}\n{chunk}")
    _write(instance, OUTPUT_MARK_KEY, json.dumps([mark, token, len(chunks)]))
    return chunks


def _stored_output(instance: dg.DagsterInstance, mark: str) -> list[str] | None:
    """The kept output's pieces if it was read at ``mark``."""
    try:
        stored = instance.run_storage.get_cursor_values({OUTPUT_MARK_KEY}).get(OUTPUT_MARK_KEY)
        kept_mark, token, count = json.loads(stored or "null")
        if kept_mark != mark:
            return None
        keys = [row_key(i, OUTPUT_ROW) for i in range(count)]
        values = instance.run_storage.get_cursor_values(set(keys))
    except Exception:  # absent, not ours, or a storage without a key-value store
        return None
    pieces = []
    for key in keys:  # each row let go once read
        row_token, _, piece = (values.pop(key, None) or "").partition("\n")
        if row_token != token:  # written since by another read
            return None
        pieces.append(piece)
    return pieces


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
# What the last read of every research that found the instance moved printed (rows of OUTPUT_ROW),
# and its mark.
OUTPUT_MARK_KEY = row_key(2, MARK_ROW)
_QUIET_S = 30.0  # a run updated this recently may have a concurrent update not yet committed
_LATE_IDS = 10_000  # an event id allocated this far below the newest is committed by now


def instance_mark(instance: dg.DagsterInstance, now: float | None = None) -> str | None:
    """What changes whenever anything a status is derived from changes: the event log (newest id,
    and how many events lie in the last ``_LATE_IDS`` ids, which moves when an event with a lower
    id commits late or events are deleted), the research assets' wipes, the research partitions
    (count and newest row: any add or delete moves one), and the runs (count, newest id, newest
    update: status changes and tags such as the retry decision move it). None while a run was
    updated in the last ``_QUIET_S`` seconds, or where it cannot be read: then every research's
    fingerprint is checked (``_fingerprints``)."""
    from dagster._core.storage.event_log.schema import (
        DynamicPartitionsTable,
        SqlEventLogStorageTable,
    )
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
    from dagster._core.storage.runs.schema import RunsTable
    from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
    from sqlalchemy import func, select

    events, runs = instance.event_log_storage, instance.run_storage
    if not isinstance(events, SqlEventLogStorage) or not isinstance(runs, SqlRunStorage):
        return None
    # Dagster has no API for these aggregates: each is one query on its table (its run APIs
    # would sort or count 100,000 runs through their tag joins).
    with runs.connect() as conn:
        count, newest, updated = conn.execute(
            select(func.count(), func.max(RunsTable.c.id), func.max(RunsTable.c.update_timestamp))
        ).one()
    if updated is not None:
        updated = unix_time(updated)
        if (now or time.time()) - updated < _QUIET_S:
            return None
    top = events.get_maximum_record_id() or 0
    partitions = DynamicPartitionsTable.c
    with events.index_connection() as conn:
        recent = conn.execute(
            select(func.count())
            .select_from(SqlEventLogStorageTable)
            .where(SqlEventLogStorageTable.c.id > top - _LATE_IDS)
        ).scalar()
        added = conn.execute(
            select(func.count(), func.max(partitions.id)).where(
                partitions.partitions_def_name == research_partitions.name
            )
        ).one()
    # The wipe times the event log's own queries filter by (get_asset_records would read each
    # asset's newest event body too).
    wipes = [
        d.last_wipe_timestamp if d else None
        for d in events._get_assets_details([dg.AssetKey(a) for a in _ASSETS])
    ]
    return f"v2|{top}|{recent}|{wipes}|{tuple(added)}|{(count, newest, updated)}"


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
