"""``research metrics``: how the research fleet is doing, derived from the instance's records."""

import contextlib
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import dagster as dg

from research_assets.core.budget import spent_today
from research_assets.core.names import FINAL_STATUSES, Status
from research_assets.core.overfitting import overfitting_report
from research_assets.defs.tags import PARTITION_TAG, TOKEN_KEYS, WORKER_TAG
from research_assets.state.capacity import (
    POOLS,
    WORKER_CLASSES,
    current_load,
    load_capacity,
)
from research_assets.state.instance_reads import unix_time
from research_assets.state.status_view import instance_mark, read_statuses


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values.

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def compute_metrics(instance: dg.DagsterInstance, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    capacity = load_capacity(instance)
    load = current_load(instance, now)
    # Research runs in flight count against their worker class, whether or not their research
    # is still a partition.
    running = Counter(
        r.dagster_run.tags.get(WORKER_TAG)
        for r in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        if r.dagster_run.tags.get(PARTITION_TAG)
    )
    utilization: dict[str, float | None] = {}
    for worker in WORKER_CLASSES:
        limit = capacity.worker_limits.get(worker)
        utilization[worker] = round(running[worker] / limit, 4) if limit else None
    for pool in POOLS:
        info = instance.event_log_storage.get_concurrency_info(pool)
        limit = capacity.pool_limits.get(pool)
        utilization[f"pool:{pool}"] = round(len(info.claimed_slots) / limit, 4) if limit else None
    return {
        **_history(instance, now),
        "queue_depth": load.queue_depth,
        "utilization": utilization,
        "capacity": capacity.to_json(),
    }


# What the last derivation of the history left, with the instance mark and UTC day it holds for.
HISTORY_KEY = "research_assets/metrics/history/v1"


def _history(instance: dg.DagsterInstance, now: float) -> dict[str, Any]:
    """What metrics derives from every research and run. It changes only when the instance
    does (status_view.instance_mark, taken before reading) or a UTC day begins (today's
    figures), so it is kept beside that mark: at 100,000 researches, deriving it reads 30 MB
    of summaries and 100,000 runs (3 s), the kept one a single row."""
    mark = instance_mark(instance)
    key = f"{mark}|{int(now // 86_400)}"
    if mark is not None:
        try:
            kept = json.loads(instance.run_storage.get_cursor_values({HISTORY_KEY})[HISTORY_KEY])
            if kept["key"] == key:
                return kept["history"]
        except Exception:  # absent, not ours, or a storage without a key-value store
            pass
    history = _derive_history(instance, now)
    if mark is not None:
        with contextlib.suppress(Exception):  # derived data: the next call derives it again
            instance.run_storage.set_cursor_values(
                {HISTORY_KEY: json.dumps({"key": key, "history": history})}
            )
    return history


def _derive_history(instance: dg.DagsterInstance, now: float) -> dict[str, Any]:
    # Every research as `research status` reads it (status_view.py), and every run of every
    # research as the runs table has it (no run body read).
    statuses = read_statuses(instance)
    ids = {s.id for s in statuses}
    runs = [r for r in research_runs(instance) if r["partition"] in ids]
    by_status = Counter(dg.DagsterRunStatus(r["status"]) for r in runs)
    end_of_run = {r["run_id"]: r["end_time"] for r in runs}
    newest: dict[str, str] = {}  # the run a status shows: its research's newest
    for r in runs:
        newest.setdefault(r["partition"], r["run_id"])
    run_of = {s.id: newest.get(s.id) for s in statuses if s.status in FINAL_STATUSES}

    cycles = [
        end_of_run[run_of[s.id]] - s.created_at
        for s in statuses
        if run_of.get(s.id) and end_of_run.get(run_of[s.id]) and s.created_at
    ]
    latencies = [r["start_time"] - r["created"] for r in runs if r["start_time"]]
    today_start = now - (now % 86_400)
    tokens = {k: 0 for k in TOKEN_KEYS}
    for s in statuses:
        if s.created_at >= today_start:
            for k, n in zip(TOKEN_KEYS, s.tokens, strict=False):
                tokens[k] += n
    return {
        "researches": {
            "total": len(statuses),
            "by_outcome": dict(Counter(s.status for s in statuses)),
        },
        "cycle_duration_s": {
            "p50": _r(percentile(cycles, 50)),
            "p95": _r(percentile(cycles, 95)),
            "count": len(cycles),
        },
        "runs": {
            "pending": by_status[dg.DagsterRunStatus.QUEUED]
            + by_status[dg.DagsterRunStatus.NOT_STARTED],
            "running": by_status[dg.DagsterRunStatus.STARTED]
            + by_status[dg.DagsterRunStatus.STARTING],
            "completed": by_status[dg.DagsterRunStatus.SUCCESS],
            "failed": by_status[dg.DagsterRunStatus.FAILURE],
            "cancelled": by_status[dg.DagsterRunStatus.CANCELED],
        },
        "queue_latency_s": {
            "avg": _r(sum(latencies) / len(latencies)) if latencies else None,
            "p95": _r(percentile(latencies, 95)),
            "count": len(latencies),
        },
        # What research_assets.state.records.spent_today_usd reads from the events, from the
        # summaries (every billed call of every research, with its time).
        "today": {
            "tokens": tokens,
            "cost_usd": round(spent_today((call for s in statuses for call in s.billed), now), 6),
        },
        "overfitting": _overfitting(statuses),
    }


def research_runs(instance: dg.DagsterInstance) -> list[dict[str, Any]]:
    """Every run, newest first: run id, status (a DagsterRunStatus value), partition, and
    created / start / end as unix times. Dagster's run APIs return whole run records (each body
    deserialized: seconds at 100,000 runs); this selects those columns of its runs table, as its
    own get_run_partition_data does, as plain rows (its mappings cost three times as much)."""
    from dagster._core.storage.runs.sql_run_storage import SqlRunStorage

    storage = instance.run_storage
    if not isinstance(storage, SqlRunStorage):
        return [
            {
                "run_id": r.dagster_run.run_id,
                "status": r.dagster_run.status.value,
                "partition": r.dagster_run.tags.get(PARTITION_TAG),
                "created": r.create_timestamp.timestamp(),
                "start_time": r.start_time,
                "end_time": r.end_time,
            }
            for r in instance.get_run_records()
        ]
    query = storage._runs_query(
        columns=["run_id", "status", "partition", "create_timestamp", "start_time", "end_time"]
    )  # newest first
    with storage.connect() as conn:
        rows = conn.execute(query).fetchall()
    return [
        {
            "run_id": run_id,
            "status": status,
            "partition": partition,
            "created": unix_time(created),
            "start_time": start,
            "end_time": end,
        }
        for run_id, status, partition, created, start, end in rows
    ]


def _overfitting(statuses: Sequence[Any]) -> dict[str, Any]:
    """Out-of-sample against lockbox over completed researches (core/overfitting.py); a trial
    is a research that got as far as a strategy."""
    outcomes = []
    for s in statuses:
        oos = s.sharpe
        completed = s.status == Status.COMPLETED
        if completed and isinstance(oos, float) and s.lockbox_outcome is not None:
            outcomes.append((oos, *s.lockbox_outcome))
    return overfitting_report(outcomes, trials=sum(1 for s in statuses if s.has_strategy))


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def format_metrics(m: dict[str, Any]) -> str:
    def s(v: Any) -> str:
        return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))

    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(m["researches"]["by_outcome"].items()))
    util = ", ".join(f"{k} {s(v)}" for k, v in m["utilization"].items())
    runs = ", ".join(f"{k} {v}" for k, v in m["runs"].items())
    return (
        "\n".join(
            [
                f"researches      {m['researches']['total']} ({outcomes or 'none'})",
                f"cycle duration  p50 {s(m['cycle_duration_s']['p50'])} s, "
                f"p95 {s(m['cycle_duration_s']['p95'])} s",
                f"queue           depth {m['queue_depth']}, latency avg "
                f"{s(m['queue_latency_s']['avg'])} s, p95 {s(m['queue_latency_s']['p95'])} s",
                f"runs            {runs}",
                f"utilization     {util}",
                f"capacity        {m['capacity']['limit']} researches in flight "
                f"(pools {m['capacity']['pool_limits']}, buffer {m['capacity']['buffer']})",
                f"today           ${m['today']['cost_usd']:.4f}, "
                f"{sum(m['today']['tokens'].values())} tokens",
                _format_overfitting(m["overfitting"], s),
            ]
        )
        + "\n"
    )


def _format_overfitting(o: dict[str, Any], s: Any) -> str:
    beats = o["lockbox_beats_buy_and_hold"]
    line = (
        f"overfitting     {o['trials']} trials; over {o['completed_with_lockbox']} completed: "
        f"rank corr. out-of-sample/lockbox Sharpe {s(o['rank_corr_oos_lockbox'])}, "
        f"mean Sharpe decay {s(o['mean_sharpe_decay'])}, beat buy & hold on the lockbox "
        f"{'-' if beats is None else f'{beats:.0%}'}"
    )
    return line + (f"\nwarning         {o['warning']}" if o["warning"] else "")
