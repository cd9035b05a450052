"""A cache of what research statuses are derived from, kept in the instance's key-value store.

Deriving the status of every research through Dagster's record APIs deserializes every event (a
backtest report carries its tables and its equity-curve PNG) and every run: about 20 s at 10,000
researches. This index keeps, per research, the few metadata entries a status reads, and per run
the few fields it needs, each with what it was read from (an event's storage id, a run id).

Nothing in it is trusted without a check, so it needs no lock and survives any interleaving of
readers that write it back. Each read asks the event log for the newest event per partition of
each asset (an index query: no event bodies) and re-reads only the partitions whose newest event
is not the cached one (new events; wipes, which hide events). It lists the research runs' ids and
re-reads the runs it has not seen, and those that can still change: the newest run of a research
while it is queued, running or failed with a retry pending. Writing it back only saves time.
"""

import json
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from research_assets.core.names import (
    ASSESSMENT,
    BACKTEST_REPORT,
    LOCKBOX_REPORT,
    RESEARCH_ASSETS,
    STRATEGY_SPEC,
    TRAINED_MODEL,
)
from research_assets.defs.tags import (
    GATE_DESCRIPTION,
    GATE_PASSED,
    GATE_REASON,
    PARTITION_TAG,
    USAGE_PREFIX,
    WILL_RETRY_TAG,
    WORKER_TAG,
)
from research_assets.state.instance_reads import (
    failure_reason,
    fetch_all,
    fetch_latest,
    metadata_of,
)

_log = logging.getLogger(__name__)

KEY_PREFIX = "research_assets/index/v4/"  # bumped whenever what is kept changes
BUCKETS = 64  # researches are spread over this many key-value rows, by a hash of their id
_CHUNK = 500  # ids per IN (...) query

MATERIALIZED = RESEARCH_ASSETS
# Observations: a research's request and cancel marks (strategy_spec), and the billed turns of
# failed LLM calls (strategy_spec, assessment).
OBSERVED = (STRATEGY_SPEC, ASSESSMENT)
STREAMS = tuple(("m", a) for a in MATERIALIZED) + tuple(("o", a) for a in OBSERVED)
_TRAINING = (
    "test_accuracy",
    "test_loss",
    "loss_decrease",
    "precision",
    "recall",
    "f1",
    # against the labels' own baseline (core/training.py; absent from older models)
    "baseline_accuracy",
    "accuracy_lift",
    "label_entropy",
    "loss_ratio",
)
# The gate outcome in numbers is kept where the gate failed (a status shows why; absent from
# materializations written before there was one).
_GATE = (GATE_PASSED, GATE_REASON, GATE_DESCRIPTION)
# The metadata entries a status reads (records._derive), per materialized asset.
KEPT = {
    STRATEGY_SPEC: ("strategy", "designer"),  # its "spec" is kept apart (memory only)
    TRAINED_MODEL: (*_GATE, *_TRAINING),
    BACKTEST_REPORT: ("stats", "summary", *_GATE),
    ASSESSMENT: ("verdict", "suggestions"),
    LOCKBOX_REPORT: ("stats",),
}
REQUEST_FIELDS = ("requested_at", "brief", "worker")  # what a status reads of a request
_SETTLED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED}
_RETRY_DECIDED_S = 600


def bucket_of(research_id: str) -> int:
    return zlib.crc32(research_id.encode()) % BUCKETS


# Row kinds: status digests and runs; specs (memory only); rendered statuses (status_view.py).
STATUS_ROW, SPEC_ROW, VIEW_ROW = "", "spec/", "view/"
MARK_ROW = "view-mark/"  # one row: what the instance looked like when the view was completed
OUTPUT_ROW = "view-output/"  # `research status --json` as that read printed it, in pieces


def row_key(bucket: int, row: str = STATUS_ROW) -> str:
    return f"{KEY_PREFIX}{row}{bucket}"


def _usage(md: dict[str, Any]) -> dict[str, float]:
    return {
        k: v
        for k, v in md.items()
        if k.startswith(USAGE_PREFIX) and isinstance(v, int | float) and not isinstance(v, bool)
    }


class ResearchIndex:
    """Per research (``researches[id]``)::

        {"sid": {"m/<asset>" | "o/<asset>": newest event's storage id},
         "md": {asset: kept metadata of its newest materialization},
         "paid": {stream: {usage/...: total over every billed event}},
         "billed": {stream: [[unix time, USD] of each billed event]},
         "request": {requested_at, brief, worker} | absent,
         "cancelled": true | absent}

    per run (``runs[run_id]``): ``{"id", "sid", "pk", "status", "worker", "retry", "created",
    "start", "end", "reason"}``; and, read only when asked for (memory), the spec of each
    research's newest design (``specs[research_id]``), kept in rows of its own.
    """

    def __init__(self, instance: dg.DagsterInstance, ids: Sequence[str], complete: bool):
        self._instance = instance
        self._wanted = set(ids)
        self._complete = complete
        self._stored = load_rows(instance, sorted({bucket_of(pk) for pk in self._wanted}))
        self.researches = {
            pk: d for b in self._stored.values() for pk, d in b["r"].items() if pk in self._wanted
        }
        self.runs = {
            rid: r
            for b in self._stored.values()
            for rid, r in b["runs"].items()
            if r["pk"] in self._wanted
        }
        self._changed: set[str] = set()
        self.specs: dict[str, dict[str, Any]] = {}

    @classmethod
    def read(
        cls,
        instance: dg.DagsterInstance,
        ids: Sequence[str],
        complete: bool = False,
        specs: bool = False,
    ) -> "ResearchIndex":
        """The index of these researches, brought up to date with the instance (and written
        back). ``complete``: these are all the researches (the index forgets the others).
        ``specs``: read the specs too."""
        ids = list(dict.fromkeys(ids))
        index = cls(instance, ids, complete)
        # Runs before events: a run that ends between the two reads is then seen still going
        # (or ended) with every event it wrote, never ended without its last materialization
        # (which would read as a run that stopped short: "failed").
        _refresh_runs(instance, ids, index.runs, index._changed)
        _refresh_events(instance, ids, index.researches, index._changed)
        index.save()
        if specs:
            index.specs = _read_specs(instance, ids, index.researches)
        return index

    def latest_runs(self) -> dict[str, dict[str, Any]]:
        """The newest run per research."""
        return _newest_runs(self.runs)

    def failure_reason(self, run_id: str) -> str:
        """Why a run failed (read once from its logs, then kept: a failed run's logs are final).
        Call ``save`` after."""
        run = self.runs[run_id]
        if "reason" not in run:
            run["reason"] = failure_reason(self._instance, run_id)
            self._changed.add(run["pk"])
        return run["reason"]

    def save(self) -> None:
        """Write back what changed since the last save."""
        if self._changed:
            _save(
                self._instance,
                self._stored,
                self._wanted,
                self._complete,
                self.researches,
                self.runs,
                self._changed,
            )
            self._changed = set()


def _newest_runs(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for run in runs.values():
        if run["pk"] not in out or run["sid"] > out[run["pk"]]["sid"]:
            out[run["pk"]] = run
    return out


def _refresh_events(
    instance: dg.DagsterInstance,
    ids: list[str],
    researches: dict[str, dict[str, Any]],
    changed: set[str],
) -> None:
    few = set(ids) if len(ids) <= _CHUNK else None
    for kind, asset in STREAMS:
        stream = f"{kind}/{asset}"
        newest = newest_event_ids(instance, kind, asset, few)
        stale = [
            pk for pk in ids if researches.get(pk, {}).get("sid", {}).get(stream) != newest.get(pk)
        ]
        if not stale:
            continue
        events: dict[str, list[Any]] = defaultdict(list)
        # Many stale partitions (a first read): one pass over the asset's events is faster than
        # a filtered query per chunk of partitions.
        wanted = set(stale)
        for chunk in _chunks(stale) if len(stale) <= _CHUNK else [None]:
            for rec in fetch_all(instance, asset, chunk, observations=kind == "o"):
                if rec.partition_key in wanted:
                    events[rec.partition_key].append(rec)  # newest first
        for pk in stale:
            digest = researches.setdefault(pk, {"sid": {}, "md": {}, "paid": {}})
            recs = events.get(pk, [])
            if recs:
                digest["sid"][stream] = recs[0].storage_id
            else:  # wiped
                digest["sid"].pop(stream, None)
            (_apply_materializations if kind == "m" else _apply_observations)(
                digest, asset, stream, recs
            )
            changed.add(pk)


def newest_event_ids(
    instance: dg.DagsterInstance, kind: str, asset: str, partitions: set[str] | None
) -> Mapping[str, int]:
    """The newest event's storage id per partition of one stream (an index query: no bodies);
    ``partitions``: only these (None: all)."""
    event_type = (
        dg.DagsterEventType.ASSET_MATERIALIZATION
        if kind == "m"
        else dg.DagsterEventType.ASSET_OBSERVATION
    )
    return instance.get_latest_storage_id_by_partition(
        dg.AssetKey(asset), event_type, partitions=partitions
    )


def _apply_materializations(
    digest: dict[str, Any], asset: str, stream: str, recs: list[Any]
) -> None:
    if recs:
        md = metadata_of(recs[0])
        digest["md"][asset] = {
            k: md[k]
            for k in KEPT[asset]
            if k in md and not (k == GATE_DESCRIPTION and md.get(GATE_PASSED))
        }
    else:
        digest["md"].pop(asset, None)
    _set_paid(digest, stream, ((rec, metadata_of(rec)) for rec in recs))


def _apply_observations(digest: dict[str, Any], asset: str, stream: str, recs: list[Any]) -> None:
    mds = [(rec, metadata_of(rec)) for rec in recs]
    if asset == STRATEGY_SPEC:
        request = next(((rec, md) for rec, md in mds if "requested_at" in md), None)
        if request is not None:
            rec, md = request
            digest["request"] = {k: md[k] for k in REQUEST_FIELDS if k in md}
            digest["request"].setdefault("requested_at", rec.timestamp)
        else:
            digest.pop("request", None)
        if any("cancelled_at" in md for _, md in mds):
            digest["cancelled"] = True
        else:
            digest.pop("cancelled", None)
    # Turns billed by designs and assessments that failed are observations with "failed".
    _set_paid(digest, stream, ((rec, md) for rec, md in mds if md.get("failed")))


def _set_paid(digest: dict[str, Any], stream: str, events: Iterable[tuple[Any, dict]]) -> None:
    total: dict[str, float] = {}
    billed = []  # [unix time, USD] of each billed event: what today's spend is summed from
    for rec, md in events:
        for label, value in _usage(md).items():
            total[label] = total.get(label, 0) + value
        if f"{USAGE_PREFIX}cost_usd" in _usage(md):
            billed.append([rec.timestamp, _usage(md)[f"{USAGE_PREFIX}cost_usd"]])
    digest.setdefault("billed", {})
    if total:
        digest["paid"][stream] = total
        digest["billed"][stream] = billed
    else:
        digest["paid"].pop(stream, None)
        digest["billed"].pop(stream, None)


def _read_specs(
    instance: dg.DagsterInstance, ids: list[str], researches: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The spec of each research's newest strategy_spec materialization, from rows of their own
    (``spec/<bucket>``: {research id: [storage id, spec]}), checked against the status digests'
    storage ids (just brought up to date) and re-read where they differ."""
    stream = "m/strategy_spec"
    buckets = sorted({bucket_of(pk) for pk in ids})
    rows = load_rows(instance, buckets, SPEC_ROW)
    out: dict[str, dict[str, Any]] = {}
    stale = []
    for pk in ids:
        sid = researches.get(pk, {}).get("sid", {}).get(stream)
        cached = rows.get(bucket_of(pk), {}).get(pk)
        if sid is None:
            continue
        if cached and cached[0] == sid:
            if cached[1]:
                out[pk] = cached[1]
        else:
            stale.append(pk)
    touched = set()
    for chunk in _chunks(stale):
        for pk, rec in fetch_latest(instance, STRATEGY_SPEC, chunk).items():
            spec = metadata_of(rec).get("spec") or None
            rows.setdefault(bucket_of(pk), {})[pk] = [rec.storage_id, spec]
            touched.add(bucket_of(pk))
            if spec:
                out[pk] = spec
    write_rows(instance, {row_key(b, SPEC_ROW): rows[b] for b in touched})
    return out


def _refresh_runs(
    instance: dg.DagsterInstance,
    ids: list[str],
    runs: dict[str, dict[str, Any]],
    changed: set[str],
) -> None:
    existing: set[str] = set()
    for chunk in _chunks(ids):
        existing.update(instance.get_run_ids(dg.RunsFilter(tags={PARTITION_TAG: chunk})))
    for run_id in [r for r in runs if r not in existing]:  # deleted
        changed.add(runs.pop(run_id)["pk"])
    now = time.time()
    stale = (existing - set(runs)) | {
        r["id"] for r in _newest_runs(runs).values() if not run_settled(r, now)
    }
    for chunk in _chunks(sorted(stale)):
        for rec in instance.get_run_records(dg.RunsFilter(run_ids=chunk)):
            run = rec.dagster_run
            pk = run.tags.get(PARTITION_TAG)
            entry = {
                "id": run.run_id,
                "sid": rec.storage_id,
                "pk": pk,
                "status": run.status.value,
                "worker": run.tags.get(WORKER_TAG),
                "retry": run.tags.get(WILL_RETRY_TAG),
                "created": rec.create_timestamp.timestamp(),
                "start": rec.start_time,
                "end": rec.end_time,
            }
            old = runs.get(run.run_id)
            if old and old.get("reason") and entry["status"] == old["status"]:
                entry["reason"] = old["reason"]
            if old != entry:
                runs[run.run_id] = entry
                changed.add(pk)


def run_settled(run: dict[str, Any], now: float) -> bool:
    """A run whose fields a status reads can no longer change. A failed run is, once run
    retries have said they will not retry it (or, without run retries, a while after it ended:
    the daemon tags a failed run within seconds)."""
    status = dg.DagsterRunStatus(run["status"])
    if status in _SETTLED:
        return True
    if status != dg.DagsterRunStatus.FAILURE:
        return False
    return run["retry"] == "false" or (
        run["retry"] is None and run["end"] is not None and now - run["end"] > _RETRY_DECIDED_S
    )


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


# -- storage: BUCKETS rows of the instance's key-value store ------------------------------


def load_rows(
    instance: dg.DagsterInstance, buckets: list[int], row: str = STATUS_ROW
) -> dict[int, dict[str, Any]]:
    try:
        values = instance.run_storage.get_cursor_values({row_key(b, row) for b in buckets})
    except Exception as exc:  # a storage without a key-value store: the index is not kept
        _log.debug("research index not readable: %s", exc)
        return {}
    out = {}
    for b in buckets:
        try:
            value = json.loads(values[row_key(b, row)])
            out[b] = (
                {"r": dict(value["r"]), "runs": dict(value["runs"])}
                if row == STATUS_ROW
                else dict(value)
            )
        except (KeyError, TypeError, ValueError):  # absent, or not ours: rebuilt
            continue
    return out


def write_rows(instance: dg.DagsterInstance, rows: dict[str, Any]) -> None:
    """One row per call: Dagster's SQL set_cursor_values updates every key it is given, or
    inserts every key, never a mix."""
    for key, value in sorted(rows.items()):
        try:
            instance.run_storage.set_cursor_values({key: json.dumps(value, separators=(",", ":"))})
        except Exception as exc:  # derived data: the next read does this work again
            _log.debug("research index not written: %s", exc)
            return


def _save(
    instance: dg.DagsterInstance,
    stored: dict[int, dict[str, Any]],
    wanted: set[str],
    complete: bool,
    researches: dict[str, dict[str, Any]],
    runs: dict[str, dict[str, Any]],
    changed: set[str],
) -> None:
    """Write back the buckets of the researches that changed."""
    touched = {bucket_of(pk) for pk in changed}
    for b in touched:
        bucket = stored.setdefault(b, {"r": {}, "runs": {}})
        # What was read of this bucket is replaced; researches not asked for are kept, unless
        # every research was asked for (then the others' partitions were deleted).
        bucket["r"] = {pk: d for pk, d in bucket["r"].items() if pk not in wanted and not complete}
        bucket["runs"] = {
            k: r for k, r in bucket["runs"].items() if r["pk"] not in wanted and not complete
        }
    for pk, digest in researches.items():
        if bucket_of(pk) in touched:
            stored[bucket_of(pk)]["r"][pk] = digest
    for run_id, run in runs.items():
        if bucket_of(run["pk"]) in touched:
            stored[bucket_of(run["pk"])]["runs"][run_id] = run
    write_rows(instance, {row_key(b): stored[b] for b in touched})


def reset(instance: dg.DagsterInstance) -> None:
    """Empty the index (it is rebuilt on the next read)."""
    for b in range(BUCKETS):
        for row in (STATUS_ROW, SPEC_ROW, VIEW_ROW):
            instance.run_storage.set_cursor_values({row_key(b, row): ""})
    for b in (0, 2):  # the view's mark, and the mark of the output it printed (its rows unread)
        instance.run_storage.set_cursor_values({row_key(b, MARK_ROW): ""})
