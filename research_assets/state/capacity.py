"""How many researches may be in flight, derived from the instance's own limits.

The numbers live in ``dagster.yaml`` (``concurrency.runs.tag_concurrency_limits`` per worker
class, ``concurrency.pools.default_limit`` for the ``training`` and ``backtest`` pools, or a
pool limit set in the UI). The seeds' formula turns them into the limit checked at trigger:
training slots + backtest slots + ``RESEARCH_CONCURRENCY_BUFFER``; ``RESEARCH_MAX_CONCURRENT``
overrides it when non-zero.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from research_assets.core.budget import check_budget, daily_budget_usd
from research_assets.core.config import env_int
from research_assets.core.errors import ConfigError
from research_assets.defs.partitions import research_partitions
from research_assets.defs.tags import WORKER_TAG
from research_assets.state.records import spent_today_usd

POOLS = ("training", "backtest")
WORKER_CLASSES = ("cpu", "gpu")
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A research whose partition was added this recently but has no run yet is on its way in.
PENDING_WINDOW_S = 600
_QUEUED = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)

# Refusal reasons, as `research trigger` reports them.
AT_CAPACITY, QUEUE_FULL, BUDGET_EXHAUSTED = "at_capacity", "queue_full", "budget_exhausted"


@dataclass(frozen=True)
class Capacity:
    worker_limits: dict[str, int | None]  # research/worker value -> running-run limit
    pool_limits: dict[str, int | None]  # pool -> slots
    buffer: int
    override: int  # RESEARCH_MAX_CONCURRENT; 0 = derive
    max_queue_depth: int

    @property
    def limit(self) -> int:
        if self.override > 0:
            return self.override
        slots = sum(v or 0 for k, v in self.pool_limits.items() if k in POOLS)
        return max(1, slots + self.buffer)

    def to_json(self) -> dict[str, object]:
        return {
            "limit": self.limit,
            "buffer": self.buffer,
            "override": self.override,
            "max_queue_depth": self.max_queue_depth,
            "worker_limits": dict(self.worker_limits),
            "pool_limits": dict(self.pool_limits),
        }


def worker_limits(instance: dg.DagsterInstance) -> dict[str, int | None]:
    """Running-run limit per worker class from ``concurrency.runs.tag_concurrency_limits``."""
    limits: dict[str, int | None] = {w: None for w in WORKER_CLASSES}
    queue = instance.get_concurrency_config().run_queue_config
    for rule in (queue.tag_concurrency_limits if queue else None) or []:
        if rule.get("key") == WORKER_TAG and isinstance(rule.get("value"), str):
            limits[rule["value"]] = int(rule["limit"])
    return limits


def pool_limits(instance: dg.DagsterInstance) -> dict[str, int | None]:
    """Slots of each pool: a limit set in the UI, else the configured default (what a run
    starting now would write; see pool_setup.py). Reading only, this never writes."""
    storage = instance.event_log_storage
    default = instance.get_concurrency_config().pool_config.default_pool_limit
    out: dict[str, int | None] = {}
    for pool in POOLS:
        info = storage.get_concurrency_info(pool)
        out[pool] = default if info.using_default_limit else info.slot_count
    return out


def load_capacity(instance: dg.DagsterInstance, env: Mapping[str, str] | None = None) -> Capacity:
    override = env_int("RESEARCH_MAX_CONCURRENT", 0, env)
    buffer = env_int("RESEARCH_CONCURRENCY_BUFFER", 1, env)
    depth = env_int("RESEARCH_MAX_QUEUE_DEPTH", 100, env)
    for name, value in (
        ("RESEARCH_MAX_CONCURRENT", override),
        ("RESEARCH_CONCURRENCY_BUFFER", buffer),
        ("RESEARCH_MAX_QUEUE_DEPTH", depth),
    ):
        if value < 0:
            raise ConfigError(f"{name}={value} must not be negative")
    return Capacity(worker_limits(instance), pool_limits(instance), buffer, override, depth)


@dataclass(frozen=True)
class Load:
    """Researches in flight now: runs queued or running, plus partitions waiting for a run."""

    queued_runs: int
    running_runs: int
    pending: int  # partitions added recently that have no run yet

    @property
    def active(self) -> int:
        return self.queued_runs + self.running_runs + self.pending

    @property
    def queue_depth(self) -> int:
        return self.queued_runs + self.pending


def current_load(instance: dg.DagsterInstance, now: float | None = None) -> Load:
    from research_assets.state.records import (
        cancelled_ids,
        partitions_with_runs,
        recent_request_ids,
    )

    # The researches waiting for their run first, then the runs: a run created between the two
    # reads is counted twice (refused once more), never missed (admitted past the limit).
    recent = recent_request_ids(instance, (now or time.time()) - PENDING_WINDOW_S)
    waiting = set(recent) - partitions_with_runs(instance, recent) - cancelled_ids(instance, recent)
    # (a partition deleted since its request is not waiting)
    name = research_partitions.name
    pending = sum(1 for pk in waiting if instance.has_dynamic_partition(name, pk))
    # The runs in flight, by status alone (a scan of the runs table), then their tags here:
    # Dagster's tag filter joins every research run's tags (a third of a second per count at
    # 100,000 researches, on every trigger and autopilot tick).
    in_flight = instance.get_run_records(dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES))
    research = [
        r.dagster_run for r in in_flight if r.dagster_run.tags.get(WORKER_TAG) in WORKER_CLASSES
    ]
    queued = sum(1 for run in research if run.status in _QUEUED)
    return Load(queued, len(research) - queued, pending)


@dataclass(frozen=True)
class Admission:
    allowed: bool
    reason: str | None = None
    message: str = ""
    details: dict[str, object] | None = None


def admit(instance: dg.DagsterInstance, env: Mapping[str, str] | None = None) -> Admission:
    """Whether a new research may be triggered now: budget first, then capacity, then queue."""
    budget = check_budget(spent_today_usd(instance), daily_budget_usd(env))
    if not budget.allowed:
        return Admission(
            False,
            BUDGET_EXHAUSTED,
            budget.message(),
            {"spent_usd": round(budget.spent, 6), "budget_usd": budget.budget},
        )
    capacity = load_capacity(instance, env)
    load = current_load(instance)
    if load.active >= capacity.limit:
        return Admission(
            False,
            AT_CAPACITY,
            f"{load.active} researches are in flight and the limit is {capacity.limit} "
            "(training slots + backtest slots + RESEARCH_CONCURRENCY_BUFFER, or "
            "RESEARCH_MAX_CONCURRENT); try again when one finishes",
            {"active": load.active, "limit": capacity.limit},
        )
    if load.queue_depth >= capacity.max_queue_depth:
        return Admission(
            False,
            QUEUE_FULL,
            f"{load.queue_depth} researches are queued and RESEARCH_MAX_QUEUE_DEPTH is "
            f"{capacity.max_queue_depth}; try again when the queue drains",
            {"queue_depth": load.queue_depth, "max_queue_depth": capacity.max_queue_depth},
        )
    return Admission(True, details={"active": load.active, "limit": capacity.limit})
