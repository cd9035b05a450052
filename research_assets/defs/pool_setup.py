"""The pools' limits, made ready when a research run starts, before a step claims a slot.

Dagster writes a pool's limit (``concurrency.pools.default_limit``) the first time a step claims
a slot of it, and again when the default has changed. On Postgres both go wrong
(dagster-io/dagster#33552): its insert-then-update aborts the transaction it goes on using. Two
runs that reach their first training at once then make one of them fail (seen in the limits
test on a fresh instance), and after a change of the default every claim fails.

So every research run, as it starts, makes each pool's limit current (``PoolsResource``): a
missing one is written through Dagster; a run that loses that race to another reads the winner's
row; a changed default that Dagster cannot write is set as the pool's limit, which is Dagster's
own workaround (the UI's, or ``dagster instance concurrency set``), with a warning in the log.
Any other storage error is logged and left to Dagster: it never fails the run by itself.

A second race, on any storage: a step that asks for a slot reads "no free slot", and before it
joins the pool's waiting list the step holding the slot frees it and hands it to whoever waits,
i.e. nobody. The step then waits for a slot that is free, until another step frees one; if every
other research's run is queued behind that waiting step (the run queue counts it), that is
never (seen in the daemon-restart test: 8 minutes, one free slot, one waiting step). The
``pool_watchdog`` sensor hands a free slot to a step that has waited this way for a while.

What it works around (Dagster 1.13.27, ``dagster/_core/storage/event_log/sql_event_log.py``):

- ``initialize_concurrency_limit_to_default``: the INSERT, then on ``IntegrityError`` an UPDATE on
  the same connection, which Postgres refuses once the INSERT has aborted the transaction
  (dagster-io/dagster#33552, open; fixes proposed in PRs #33558, #33601 and #33890, none merged).
  Dagster calls it from ``instance_concurrency_context.py`` as a step claims a pool.
- ``claim_concurrency_slot``: ``has_unassigned_slots`` and ``add_pending_step`` run in two
  transactions, while ``free_concurrency_slot_for_step`` hands the freed slot over through
  ``assign_pending_steps`` in a third; a step added between the first two is never assigned.
  No dagster-io/dagster issue reports this race (searched December 2026; PR #17690, merged, fixed
  a neighbouring one: reassigning freed pending steps instead of freed slots).

When it can go: ``ensure_pools`` and ``PoolsResource`` once the pinned Dagster writes a pool's
default limit with one upsert on Postgres (#33552 closed); ``release_stuck_steps`` and the
``pool_watchdog`` sensor once a claim adds its pending step and reads the free slots in one
transaction (read the pinned ``claim_concurrency_slot``). ``tests/defs/test_pool_setup.py``
covers both on SQLite and Postgres: its first test, run without ``ensure_pools``, shows whether
Dagster still fails runs starting together on a fresh Postgres instance.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy.exc import SQLAlchemyError

from research_assets.state.capacity import POOLS


def ensure_pools(instance: dg.DagsterInstance) -> list[str]:
    """Makes each pool's limit current before any step claims it; returns warnings to log."""
    storage = instance.event_log_storage
    default = instance.get_concurrency_config().pool_config.default_pool_limit
    if default is None or not storage.supports_global_concurrency_limits:
        return []
    warnings = []
    limits = _limits(storage)
    for pool in POOLS:
        if _current(limits.get(pool), default):
            continue
        try:
            storage.initialize_concurrency_limit_to_default(pool)
        except SQLAlchemyError as e:
            stale = _limits(storage).get(pool)
            if _current(stale, default):  # another run wrote it first
                continue
            if stale is None or not stale.from_default:
                # Not the bug above: leave the pool to Dagster, which claims it as it can.
                warnings.append(
                    f"pool {pool!r}: could not write its limit ({e}); Dagster "
                    "will try again when a step claims a slot"
                )
                continue
            storage.set_concurrency_slots(pool, default)
            warnings.append(
                f"pool {pool!r}: the default limit in dagster.yaml changed from {stale.limit} "
                f"to {default}, which Dagster cannot apply on Postgres (dagster-io/dagster"
                "#33552); it is now set as the pool's limit. To change it later: dagster "
                f"instance concurrency set {pool} N"
            )
    return warnings


def _limits(storage) -> dict[str, Any]:
    """Every pool's stored limit (Dagster's PoolLimit), by pool name: one query."""
    return {p.name: p for p in storage.get_pool_limits()}


def _current(limit: Any, default: int) -> bool:
    """The pool has a limit, and it is either set by hand or the configured default."""
    return limit is not None and (not limit.from_default or limit.limit == default)


class PoolsResource(dg.ConfigurableResource):
    """Makes the ``training`` and ``backtest`` pools' limits current when a run starts."""

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["PoolsResource"]:
        if context.instance is not None:
            try:
                warnings = ensure_pools(context.instance)
            except SQLAlchemyError as e:  # the storage failing here fails the run's steps too
                warnings = [f"could not make the pools' limits current ({e})"]
            for warning in warnings:
                context.log.warning(warning)
        yield self


# A waiting step with a free slot in its pool is normal for an instant, while Dagster hands it
# over; this long, the hand-over was lost.
STUCK_AFTER_S = 10.0


def release_stuck_steps(instance: dg.DagsterInstance, now: float | None = None) -> list[str]:
    """Hands each pool's free slots to the steps that have waited for one past STUCK_AFTER_S,
    highest priority and oldest first (Dagster's order); says what it did."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    now = time.time() if now is None else now
    released = []
    for pool in POOLS:
        stuck = [
            p
            for p in storage.get_concurrency_info(pool).pending_steps
            if p.assigned_timestamp is None
            and now - _utc(p.enqueued_timestamp).timestamp() > STUCK_AFTER_S
        ]
        for _ in stuck:
            if not storage.has_unassigned_slots(pool):
                break
            storage.assign_pending_steps([pool])
        if stuck:
            waiting = {
                (p.run_id, p.step_key)
                for p in storage.get_concurrency_info(pool).pending_steps
                if p.assigned_timestamp is None
            }
            released += [
                f"pool {pool!r}: handed a free slot to {p.step_key} of run "
                f"{p.run_id[:8]}, which had waited for one since "
                f"{_utc(p.enqueued_timestamp):%H:%M:%S} UTC"
                for p in stuck
                if (p.run_id, p.step_key) not in waiting
            ]
    return released


def _utc(moment: datetime) -> datetime:
    # Dagster stores these times in UTC; a storage may hand them back without the zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dg.sensor(
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Hands a free training or backtest slot to a step that a race in "
    "Dagster left waiting for one.",
)
def pool_watchdog(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    released = release_stuck_steps(context.instance)
    for line in released:
        context.log.warning(line)
    return dg.SkipReason("; ".join(released) or "no step waits while its pool has a free slot")
