"""A research's state, read back from the Dagster instance: no separate database.

A research is a partition key of ``research``. What it asked for (seed, brief) is an observation
of ``strategy_spec`` recorded at trigger time; what it produced is the latest materialization of
each asset for that partition; where it is now is the latest run tagged with its partition.
Statuses read those through ``ResearchIndex`` (research_index.py), which reads each event once.
"""

import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import dagster as dg

from research_assets.core.budget import spent_today
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.names import (
    ASSESSMENT,
    BACKTEST_REPORT,
    GATED_ASSETS,
    LOCKBOX_REPORT,
    RESEARCH_ASSETS,
    STRATEGY_SPEC,
    TRAINED_MODEL,
    TRAINING_GATE,
    Status,
)
from research_assets.core.spec import StrategySpec
from research_assets.defs.partitions import research_partitions
from research_assets.defs.tags import (
    DEFAULT_WORKER,
    GATE_DESCRIPTION,
    GATE_PASSED,
    GATE_REASON,
    TOKEN_KEYS,
    USAGE_PREFIX,
)
from research_assets.state.instance_reads import (
    fetch_all,
    fetch_latest,
    latest_runs,
    metadata_of,
    research_ids,
)
from research_assets.state.research_index import ResearchIndex

# The phase a research is in once the asset on the left has been materialized.
_PHASE_AFTER = {
    None: "designing",
    STRATEGY_SPEC: "training",
    TRAINED_MODEL: "backtesting",
    BACKTEST_REPORT: "assessing",
    ASSESSMENT: "evaluating_lockbox",
    LOCKBOX_REPORT: "done",
}
_GATES = {asset: gate for gate, asset in GATED_ASSETS.items()}
_GATE_KEYS = (GATE_PASSED, GATE_REASON, GATE_DESCRIPTION)
_RUN_STATUS = {
    dg.DagsterRunStatus.QUEUED: Status.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED: Status.QUEUED,
    dg.DagsterRunStatus.STARTING: Status.RUNNING,
    dg.DagsterRunStatus.STARTED: Status.RUNNING,
    dg.DagsterRunStatus.CANCELING: Status.CANCELLED,
    dg.DagsterRunStatus.CANCELED: Status.CANCELLED,
    dg.DagsterRunStatus.FAILURE: Status.FAILED,
    dg.DagsterRunStatus.SUCCESS: Status.COMPLETED,
}


def new_research_id(now: float | None = None) -> str:
    """``r-20261121-081500-3fa2``: sortable by time, safe as a partition key and a tag value."""
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%Y%m%d-%H%M%S")
    return f"r-{stamp}-{secrets.token_hex(2)}"


def default_seed(research_id: str) -> int:
    """A stable seed for a research that was given none."""
    return int(hashlib.sha256(research_id.encode()).hexdigest()[:8], 16)


# Assets whose metadata carries LLM usage (design and assessment).
_USAGE_ASSETS = (STRATEGY_SPEC, ASSESSMENT)


def usage_metadata(usage: dict[str, Any] | None) -> dict[str, Any]:
    """A usage dict as flat ``usage/<key>`` metadata (numbers and the model name)."""
    return {
        f"{USAGE_PREFIX}{k}": v
        for k, v in (usage or {}).items()
        if isinstance(v, int | float | str) and not isinstance(v, bool)
    }


def _usage_of(md: dict[str, Any] | None) -> dict[str, float]:
    out = {k: 0.0 for k in (*TOKEN_KEYS, "cost_usd")}
    for key in out:
        value = (md or {}).get(USAGE_PREFIX + key)
        if isinstance(value, int | float):
            out[key] += float(value)
    return out


def spent_today_usd(instance: dg.DagsterInstance, now: float | None = None) -> float:
    """Dollars spent on LLM calls since 00:00 UTC, from usage metadata in the event log
    (successful designs and assessments, and the billed turns of failed ones)."""
    now = time.time() if now is None else now
    since = now - 86_400  # a superset of today; spent_today keeps the UTC day
    costs = (
        (rec.timestamp, _usage_of(metadata_of(rec))["cost_usd"])
        for asset in _USAGE_ASSETS
        for observations in (False, True)
        for rec in fetch_all(instance, asset, None, observations, after=since)
    )
    return spent_today(costs, now)


@dataclass(frozen=True)
class ResearchRequest:
    research_id: str
    seed: int
    brief: str | None
    requested_at: float
    # A spec given by the user (``--spec FILE``) is researched as is, instead of being designed.
    spec: StrategySpec | None = None
    worker: str = DEFAULT_WORKER
    launched_by: str | None = None  # "autopilot" when that sensor launches the run itself


def record_request(
    instance: dg.DagsterInstance,
    research_id: str,
    *,
    seed: int | None = None,
    brief: str | None = None,
    spec: StrategySpec | None = None,
    worker: str = DEFAULT_WORKER,
    launched_by: str | None = None,
    add_partition: bool = True,
    requested_at: float | None = None,
) -> ResearchRequest:
    """Record what a research asks for, in the instance's event log, then add its partition
    (in that order, so the intake sensor never sees a partition without its request).
    ``add_partition=False`` records the request only: for a research whose partition exists
    already (launched from the Launchpad with config)."""
    request = ResearchRequest(
        research_id,
        default_seed(research_id) if seed is None else seed,
        brief,
        time.time() if requested_at is None else requested_at,
        spec,
        worker,
        launched_by,
    )
    metadata: dict[str, Any] = {
        "seed": request.seed,
        "requested_at": request.requested_at,
        "worker": worker,
    }
    if launched_by:
        metadata["launched_by"] = launched_by
    if brief:
        metadata["brief"] = brief
    if spec is not None:
        metadata["spec"] = dg.MetadataValue.json(spec.to_dict())
    instance.report_runless_asset_event(
        dg.AssetObservation(asset_key=STRATEGY_SPEC, partition=research_id, metadata=metadata)
    )
    if add_partition:
        instance.add_dynamic_partitions(research_partitions.name, [research_id])
    return request


def record_cancel(instance: dg.DagsterInstance, research_id: str) -> None:
    """Mark a research cancelled, so that no run is started for it later."""
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=STRATEGY_SPEC,
            partition=research_id,
            metadata={"cancelled_at": time.time()},
        )
    )


def cancelled_ids(instance: dg.DagsterInstance, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return set(
        fetch_latest(
            instance, STRATEGY_SPEC, ids, observations=True, where=lambda md: "cancelled_at" in md
        )
    )


def recent_request_ids(instance: dg.DagsterInstance, since: float) -> list[str]:
    """Researches requested since ``since`` (a unix time)."""
    return sorted(
        {
            rec.partition_key
            for rec in fetch_all(instance, STRATEGY_SPEC, None, True, after=since)
            if rec.partition_key and "requested_at" in metadata_of(rec)
        }
    )


def partitions_with_runs(instance: dg.DagsterInstance, ids: Sequence[str]) -> set[str]:
    return set(latest_runs(instance, ids)) if ids else set()


def read_requests(
    instance: dg.DagsterInstance, research_ids: Sequence[str] | None = None
) -> dict[str, ResearchRequest]:
    """The recorded request of each research; a partition added in the UI has none, and gets a
    default seed."""
    out: dict[str, ResearchRequest] = {}
    latest = fetch_latest(
        instance,
        STRATEGY_SPEC,
        research_ids,
        observations=True,
        where=lambda md: "requested_at" in md,
    )
    for rec in latest.values():
        md = metadata_of(rec)
        pk = rec.partition_key or ""
        out[pk] = ResearchRequest(
            pk,
            int(md.get("seed", default_seed(pk))),
            md.get("brief"),
            float(md.get("requested_at", rec.timestamp)),
            StrategySpec.from_dict(md["spec"]) if md.get("spec") else None,
            str(md.get("worker") or DEFAULT_WORKER),
            md.get("launched_by"),
        )
    return out


def read_request(instance: dg.DagsterInstance, research_id: str) -> ResearchRequest:
    found = read_requests(instance, [research_id]).get(research_id)
    return found or ResearchRequest(research_id, default_seed(research_id), None, time.time())


@dataclass
class ResearchStatus:
    """Everything known about one research, derived from the instance's records."""

    id: str
    status: Status
    phase: str
    reason: str | None = None  # a code: win_rate_too_low, llm_unavailable, ...
    # The rejecting gate's outcome in numbers ("win rate 0.42 < 0.45 (win_rate_too_low)"); None
    # where no gate rejected it, or the gate recorded none (materializations before #11).
    gate_description: str | None = None
    strategy: str | None = None
    gates: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(GATED_ASSETS))
    backtest: dict[str, dict[str, Any]] | None = None
    lockbox: dict[str, dict[str, Any]] | None = None
    created_at: float = 0.0
    run_id: str | None = None
    worker: str | None = None
    designer: str | None = None
    verdict: str | None = None
    tokens: dict[str, int] = field(default_factory=lambda: {k: 0 for k in TOKEN_KEYS})
    cost_usd: float = 0.0
    # Only for building memory; never printed. Read with load_statuses(with_specs=True).
    spec_data: dict[str, Any] | None = None
    brief: str | None = None
    training: dict[str, float] = field(default_factory=dict)
    backtest_summary: dict[str, float] = field(default_factory=dict)
    suggestions: tuple[str, ...] = ()
    # (unix time, USD) of every billed LLM call (designs and assessments, failed ones included).
    billed: tuple[tuple[float, float], ...] = ()

    @cached_property
    def spec(self) -> StrategySpec | None:
        """The researched spec, validated when first read (only memory reads it)."""
        return StrategySpec.from_dict(self.spec_data) if self.spec_data else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "phase": self.phase,
            "reason": self.reason,
            "reason_detail": self.reason_detail,
            "strategy": self.strategy,
            "gates": dict(self.gates),
            "backtest": self.backtest,
            "lockbox": self.lockbox,
            "created_at": self.created_at,
            "run_id": self.run_id,
            "worker": self.worker,
            "designer": self.designer,
            "verdict": self.verdict,
            "tokens": dict(self.tokens),
            "cost_usd": round(self.cost_usd, 6),
        }

    @property
    def reason_detail(self) -> str | None:
        """Why, in numbers where a gate rejected it; the reason itself otherwise."""
        return self.gate_description or self.reason

    def to_memory_record(self) -> ResearchRecord:
        """What a designer may see: everything but the lockbox."""
        return ResearchRecord(
            research_id=self.id,
            status=self.status,
            created_at=self.created_at,
            spec=self.spec,
            brief=self.brief,
            rejected_by=self._failed_gate(),
            rejection_reason=self.reason if self._failed_gate() else None,
            gate_description=self.gate_description,
            training=self.training,
            backtest=self.backtest_summary,
            verdict=self.verdict,
            suggestions=self.suggestions,
        )

    def _failed_gate(self) -> str | None:
        return next((g for g, v in self.gates.items() if v == "failed"), None)


def load_statuses(
    instance: dg.DagsterInstance, ids: Sequence[str] | None = None, with_specs: bool = False
) -> list[ResearchStatus]:
    """The status of the given researches (default: all), oldest first; ``with_specs``: with
    the spec each one researched (``ResearchStatus.spec``, for memory)."""
    return _read(instance, ids, with_specs)[0]


def _read(
    instance: dg.DagsterInstance, ids: Sequence[str] | None, with_specs: bool
) -> tuple[list[ResearchStatus], ResearchIndex | None]:
    every = ids is None
    ids = research_ids(instance) if ids is None else list(dict.fromkeys(ids))
    if not ids:
        return [], None
    index = ResearchIndex.read(instance, ids, complete=every, specs=with_specs)
    runs = index.latest_runs()
    out = [_derive(pk, index.researches.get(pk) or {}, runs.get(pk)) for pk in ids]
    for status in out:
        status.spec_data = index.specs.get(status.id)
        if status.status == Status.FAILED and status.reason is None and status.run_id:
            status.reason = index.failure_reason(status.run_id)
    index.save()
    return sorted(out, key=lambda s: (s.created_at, s.id)), index


def load_memory(instance: dg.DagsterInstance, exclude: Iterable[str] = ()) -> ResearchMemory:
    """The designer's view of past researches (no lockbox figures)."""
    skip = set(exclude)
    return ResearchMemory(
        s.to_memory_record() for s in load_statuses(instance, with_specs=True) if s.id not in skip
    )


def materialized(instance: dg.DagsterInstance, asset: str, research_id: str) -> bool:
    """Whether an asset has been materialized for one research."""
    return research_id in fetch_latest(instance, asset, [research_id])


def latest_metadata(instance: dg.DagsterInstance, asset: str, research_id: str) -> dict[str, Any]:
    """The plain metadata of an asset's latest materialization for one research ({} if none)."""
    rec = fetch_latest(instance, asset, [research_id]).get(research_id)
    return metadata_of(rec) if rec else {}


# -- derivation ------------------------------------------------------------------------------


def _add_usage(status: ResearchStatus, md: dict[str, Any] | None) -> None:
    usage = _usage_of(md)
    for key in TOKEN_KEYS:
        status.tokens[key] += int(usage[key])
    status.cost_usd += usage["cost_usd"]


def _derive(pk: str, digest: dict[str, Any], run: dict[str, Any] | None) -> ResearchStatus:
    """A status from a research's entry in the index (see research_index.py) and its newest run."""
    md = {a: digest.get("md", {}).get(a) for a in RESEARCH_ASSETS}
    request = digest.get("request")
    reached = None
    for asset in RESEARCH_ASSETS:
        if md[asset] is not None:
            reached = asset
    status = ResearchStatus(id=pk, status=Status.QUEUED, phase=_PHASE_AFTER[reached])
    status.created_at = (
        float(request["requested_at"]) if request else (run["created"] if run else 0.0)
    )
    status.brief = request.get("brief") if request else None

    spec_md = md[STRATEGY_SPEC]
    if spec_md:
        status.strategy = spec_md.get("strategy")
        status.designer = spec_md.get("designer")
    if md[TRAINED_MODEL]:
        status.training = {k: float(v) for k, v in md[TRAINED_MODEL].items() if k not in _GATE_KEYS}
    if md[BACKTEST_REPORT]:
        status.backtest = md[BACKTEST_REPORT].get("stats")
        status.backtest_summary = {
            k: float(v)
            for k, v in (md[BACKTEST_REPORT].get("summary") or {}).items()
            if isinstance(v, int | float)
        }
    if md[ASSESSMENT]:
        status.verdict = md[ASSESSMENT].get("verdict")
        status.suggestions = tuple(md[ASSESSMENT].get("suggestions") or ())
    if md[LOCKBOX_REPORT]:
        status.lockbox = md[LOCKBOX_REPORT].get("stats")
    # Every billed design and assessment, the failed ones included.
    for usage in digest.get("paid", {}).values():
        _add_usage(status, usage)
    status.billed = tuple(
        sorted((t, c) for calls in digest.get("billed", {}).values() for t, c in calls)
    )

    rejected = False
    for asset, gate in _GATES.items():
        if md[asset] is not None and GATE_PASSED in md[asset]:
            passed = bool(md[asset][GATE_PASSED])
            status.gates[gate] = "passed" if passed else "failed"
            if not passed and not rejected:
                rejected = True
                status.reason = md[asset].get(GATE_REASON)
                status.gate_description = md[asset].get(GATE_DESCRIPTION) or None

    run_state = None
    if run is not None:
        status.run_id = run["id"]
        status.worker = run["worker"]
        run_state = _RUN_STATUS.get(dg.DagsterRunStatus(run["status"]), Status.RUNNING)
    if status.worker is None and request:
        status.worker = str(request.get("worker") or DEFAULT_WORKER)

    if rejected:
        status.status = Status.REJECTED
        # It ended in the phase of the gate that stopped it.
        status.phase = "training" if status.gates[TRAINING_GATE] == "failed" else "backtesting"
    elif md[ASSESSMENT] is not None and md[LOCKBOX_REPORT] is not None:
        status.status = Status.COMPLETED
        status.phase = "done"
    elif digest.get("cancelled"):
        # Cancelled by `research cancel`: its run may have ended failed while stopping.
        status.status = Status.CANCELLED
    elif run_state in (Status.QUEUED, Status.RUNNING, Status.CANCELLED):
        status.status = run_state
    elif run_state == Status.FAILED and run and run.get("retry") == "true":
        # Its process died; run retries start it again from the failure.
        status.status = Status.QUEUED
    elif run_state == Status.FAILED:
        status.status = Status.FAILED  # why: the run's failure reason (load_statuses)
    elif run_state == Status.COMPLETED:
        # The run succeeded but did not reach the end (a partial selection).
        status.status = Status.FAILED
        status.reason = f"incomplete: stopped after {reached or 'nothing'}"
    return status
