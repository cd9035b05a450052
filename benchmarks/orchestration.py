"""Orchestration overhead of the queued path, and `research status` / `research metrics` at scale.

Part 1 (``--count`` researches, default 20) runs small researches the way ``research run`` does:
a temporary DAGSTER_HOME with the repo's ``dagster_home/dagster.yaml``, a ``LocalDaemon`` (intake
sensor -> QueuedRunCoordinator -> one run worker process per research), ``record_request`` with
a small fast spec (tests/conftest.py's ``small_spec``, copied here; the offline designer) and a
high ``RESEARCH_MAX_CONCURRENT`` so that all of them are triggered at once, once the daemon is up
(its start-up is not counted). The gates are opened (``GATE_*``) so that every research goes
through all five steps and both pools (``--default-gates``: the instance's thresholds, which
reject the small spec at the backtest gate). A sampler thread reads, every 0.2 s, the runs in
progress per worker class (STARTING, STARTED, CANCELING: what the run queue counts against
``tag_concurrency_limits``) and the claimed slots of each pool
(``event_log_storage.get_concurrency_info(pool).claimed_slots``); the maxima are compared with
the instance's limits (``research_assets.state.capacity.load_capacity``). A sampler can miss a
spike shorter than 0.2 s, so "within limits" is a sampled check, not a proof. A research has
ended when its status is final and no retry of its run is coming (``dagster/will_retry``: a run
that does not start within run_monitoring's start timeout is failed and retried).

Orchestration overhead of one research (median reported), over all its runs (a retry too)::

    overhead = (end - trigger)            # trigger: just before record_request; end: the last
                                          # run record's end_time (RUN_SUCCESS/FAILURE)
             - sum(step time)             # STEP_START -> STEP_SUCCESS/STEP_FAILURE per step
             - queued time                # run record: start_time - create_timestamp (a run
                                          # that never started: until RUN_STARTING)
             - pool waits                 # per pooled step: first "Step blocked by limit for
                                          # pool ..." ENGINE_EVENT -> that step's STEP_START

With the in-process executor a step waiting for a pool slot has no STEP_START yet; Dagster logs
an ENGINE_EVENT ("Step blocked by limit for pool X", with the step key) when it first fails to
claim, and STEP_START right after the claim succeeds, so that interval is the pool wait (it
includes up to one claim-poll interval). The queued time (create -> start) includes the launch
of the run worker process (RUN_STARTING, when the run queue takes the run off the queue and
launches it, -> RUN_START), so a stricter figure that counts the launch as overhead (queued =
create -> RUN_STARTING) is printed too, with the parts: trigger -> run created (intake sensor
and run creation), RUN_STARTING -> RUN_START (process launch), and in-run time outside steps
and pool waits. ``queue_latency_s_p50``: start_time - create_timestamp over the run records.

Part 2 builds (once; cached under the temp dir, ``--cache-dir``) an instance holding
``--scale`` research partitions (default 10,000) with their requests, runs and materializations,
with the research summaries the ``research_summaries`` sensor keeps (state/research_index.py's
digests and status_view.py's rendered statuses, written as that sensor writes them after each
run), then times ``research status --json`` and ``research metrics --json`` as subprocesses
(process start included; median of ``--repeats``, after the first `status` on the built
instance, timed apart with its peak memory; CPU time and `status` on an empty instance, i.e.
process start, alongside). A sample of the printed statuses is checked against statuses derived
afresh from the events and runs, with no summary read.
The instance is written in bulk transactions through the event log storage's own row layout
(``_event_to_row``, ``_store_asset_event``, the asset event tags), from real metadata: one real
research is materialized once (kept as templates-v*.json in the cache dir) and its events'
metadata (spec json and yaml, training history table, backtest stats/summary/statistics table
and equity-curve PNG, assessment, lockbox report) is the template of all of them, serialized
once with slots for what varies per research (gate outcomes and reasons, figures, strategy,
designer, LLM usage, verdict, ids, times). Runs are cloned from a run created the way the intake
sensor creates one (remote origin, snapshots, sensor and run-key tags). Outcomes are mixed:
completed, rejected by each gate (each reason), failed (step failures with and without a user
``reason``, LLM failures with billed usage, incomplete partial runs), cancelled (marked, or in
the queue), retried after a crash, running, queued, and partitions added in the UI without a
request; requests over 30 days. Left out: run shards (per-run event DBs) are written only for
failed runs (the only ones `status` reads), and no asset-check rows (nothing here reads them).
``expected.json`` beside the instance holds each research's expected status: the benchmark
checks `research status` against it.

Usage::

    .venv/bin/python benchmarks/orchestration.py [--json] [--count 20] [--scale 10000]
        [--repeats 3] [--skip-run] [--skip-scale] [--default-gates] [--cache-dir DIR]
        [--rebuild] [--build-only]

The last line of stdout is one JSON object; ``--json`` prints only that line. Timings on a
shared machine vary with its load: the load average is printed with them.
"""

import argparse
import json
import logging
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The checkout's root: research_assets when it is not pip-installed, and tests.gate_support.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402
import sqlalchemy  # noqa: E402

from research_assets.core.spec import EXAMPLE_YAML, StrategySpec  # noqa: E402
from tests.gate_support import OPEN_GATES, OPEN_GATES_ENV  # noqa: E402

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

REPO = Path(__file__).resolve().parents[1]
DAGSTER_YAML = REPO / "dagster_home" / "dagster.yaml"
WORKERS = ("cpu", "gpu")
POOLS = ("training", "backtest")
SAMPLE_EVERY_S = 0.2
TARGET_OVERHEAD_S = 8.0
TARGET_STATUS_S = 2.0
TARGET_METRICS_S = 3.0
TARGET_FIRST_S, TARGET_FIRST_MB = 60.0, 1024
# Bump when the shape of the built instance changes, so that a stale cache is rebuilt.
BUILD_VERSION = 7  # 7: view entries carry token totals; 6: with the research summaries
TEMPLATE_VERSION = 1  # of the cached metadata templates (one real research)

# A research's environment: offline designer and rule-based assessor, no key, no limits at
# trigger (RESEARCH_MAX_CONCURRENT) so that all researches are triggered at once.
BENCH_ENV = {
    "RESEARCH_DESIGNER": "offline",
    "RESEARCH_MAX_CONCURRENT": "100000",
    "RESEARCH_MAX_QUEUE_DEPTH": "100000",
}
DROP_ENV = ("ANTHROPIC_API_KEY", "RESEARCH_DAILY_BUDGET_USD")


def small_spec() -> StrategySpec:
    """tests/conftest.py's small_spec: the example spec trimmed so that a research runs in a
    few seconds (two-class labels, which trade, and FX-sized costs)."""
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training"]["epochs"] = 8
    data["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    data["backtest"] = {"commission": 0.0001, "slippage": 0.00005}
    return StrategySpec.from_dict(data)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _log(message: str) -> None:
    sys.stderr.write(f"[orchestration] {message}\n")
    sys.stderr.flush()


def _new_home(prefix: str) -> Path:
    home = Path(tempfile.mkdtemp(prefix=prefix)) / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    return home


def _set_env(home: Path) -> None:
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.update(BENCH_ENV)
    for key in DROP_ENV:
        os.environ.pop(key, None)


# -- part 1: researches through the queued path --------------------------------------------


class Sampler(threading.Thread):
    """Every SAMPLE_EVERY_S: runs in progress per worker class and claimed slots per pool."""

    def __init__(self, home: Path):
        super().__init__(daemon=True)
        self.home = home
        self.stop = threading.Event()
        self.max: dict[str, int] = {
            **{w: 0 for w in WORKERS},
            **{f"pool:{p}": 0 for p in POOLS},
            "total": 0,
        }
        self.samples = 0
        self.errors = 0

    def run(self) -> None:
        from research_assets.defs.tags import WORKER_TAG

        in_progress = [
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
            dg.DagsterRunStatus.CANCELING,
        ]
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    runs = instance.get_run_records(dg.RunsFilter(statuses=in_progress))
                    by_worker = Counter(r.dagster_run.tags.get(WORKER_TAG) for r in runs)
                    now = {w: by_worker[w] for w in WORKERS}
                    now["total"] = len(runs)
                    for pool in POOLS:
                        info = instance.event_log_storage.get_concurrency_info(pool)
                        now[f"pool:{pool}"] = len(info.claimed_slots)
                    for key, value in now.items():
                        self.max[key] = max(self.max[key], value)
                    self.samples += 1
                except Exception:  # a locked SQLite file now and then: skip the sample
                    self.errors += 1
                self.stop.wait(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - started)))


def _wait_for_daemon(instance: dg.DagsterInstance, daemon: Any, timeout: float = 180) -> float:
    """Until the intake sensor has ticked once (the daemon is up and the code is loaded), so
    that the daemon's start-up is not counted as any research's overhead."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        daemon.check_alive()
        for state in instance.all_instigator_state():
            if state.name == "research_intake":
                ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
                if ticks:
                    return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the intake sensor did not tick within {timeout} s")


def _run_analysis(instance: dg.DagsterInstance, record: Any) -> dict[str, float]:
    """Steps' own time, pool waits and run lifecycle times from one run's event log. A run that
    never started (a start timeout) waited in the queue until it was dequeued."""
    run_id = record.dagster_run.run_id
    step_start: dict[str, float] = {}
    step_time = 0.0
    blocked: dict[str, float] = {}
    pool_wait = 0.0
    lifecycle: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            step_start[event.step_key] = entry.timestamp
            if event.step_key in blocked:
                pool_wait += entry.timestamp - blocked.pop(event.step_key)
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in step_start:
            step_time += entry.timestamp - step_start.pop(event.step_key)
        elif (
            kind == "ENGINE_EVENT"
            and event.step_key
            and (entry.user_message or "").startswith("Step blocked by limit for pool")
        ):
            blocked.setdefault(event.step_key, entry.timestamp)
        elif kind in (
            "PIPELINE_ENQUEUED",
            "PIPELINE_DEQUEUED",
            "PIPELINE_STARTING",
            "PIPELINE_START",
            "PIPELINE_SUCCESS",
            "PIPELINE_FAILURE",
            "PIPELINE_CANCELED",
        ):
            lifecycle.setdefault(kind, entry.timestamp)
    created = record.create_timestamp.timestamp()
    # The run queue takes a run off the queue and launches it: RUN_STARTING (or RUN_DEQUEUED,
    # where a coordinator logs one).
    dequeued = lifecycle.get("PIPELINE_DEQUEUED") or lifecycle.get("PIPELINE_STARTING") or created
    ended = record.end_time or max(lifecycle.values(), default=created)
    return {
        "step_time": step_time,
        "pool_wait": pool_wait,
        "created": created,
        "dequeued": dequeued,
        "started": record.start_time,
        "ended": ended,
        "queued": (record.start_time or dequeued) - created,
    }


def _finished(instance: dg.DagsterInstance, status: Any) -> bool:
    """A research has ended: final status, and no retry of its run is on the way (a run that
    did not start in time, or whose process died, is retried: ``dagster/will_retry``)."""
    if status.status not in ("completed", "rejected", "failed", "cancelled"):
        return False
    if status.status != "failed" or not status.run_id:
        return True
    run = instance.get_run_by_id(status.run_id)
    return run is None or run.tags.get("dagster/will_retry") != "true"


def run_queued(count: int, timeout: float, open_gates: bool = True) -> dict[str, Any]:
    from research_assets.defs.tags import PARTITION_TAG
    from research_assets.local_daemon import LocalDaemon
    from research_assets.state.capacity import admit, load_capacity
    from research_assets.state.records import load_statuses, new_research_id, record_request

    home = _new_home("research-bench-run-")
    _set_env(home)
    if open_gates:
        os.environ.update(OPEN_GATES_ENV)
    spec = small_spec()
    instance = dg.DagsterInstance.get()
    capacity = load_capacity(instance)
    limits = {
        **{w: capacity.worker_limits.get(w) for w in WORKERS},
        **{f"pool:{p}": capacity.pool_limits.get(p) for p in POOLS},
    }
    _log(f"part 1: {count} researches in {home}; limits {limits}")
    triggered: dict[str, float] = {}
    sampler = Sampler(home)
    with LocalDaemon(instance, home) as daemon:
        took = _wait_for_daemon(instance, daemon)
        _log(f"daemon up and intake sensor ticking after {took:.1f} s")
        sampler.start()
        for i in range(count):
            admission = admit(instance)
            if not admission.allowed:
                raise RuntimeError(f"trigger refused: {admission.reason}: {admission.message}")
            research_id = new_research_id()
            while research_id in triggered:
                research_id = new_research_id()
            triggered[research_id] = time.time()
            record_request(
                instance, research_id, seed=i, spec=spec, worker="gpu" if i % 3 == 2 else "cpu"
            )
        first_trigger = min(triggered.values())
        ids = list(triggered)
        final: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while len(final) < len(ids):
            if time.monotonic() > deadline:
                _log(f"timed out after {timeout} s with {len(ids) - len(final)} unfinished")
                break
            daemon.check_alive()
            time.sleep(1.0)
            for status in load_statuses(instance, [i for i in ids if i not in final]):
                if _finished(instance, status):
                    final[status.id] = status
                    _log(
                        f"{len(final)}/{len(ids)} {status.id}: {status.status}"
                        + (f" ({status.reason})" if status.reason else "")
                    )
        sampler.stop.set()
        sampler.join()

    records = instance.get_run_records(dg.RunsFilter(tags={PARTITION_TAG: ids}))
    runs_of: dict[str, list[Any]] = defaultdict(list)
    for rec in records:
        runs_of[rec.dagster_run.tags.get(PARTITION_TAG)].append(rec)
    overhead, strict, sensor, launch, in_run, steps, pool_waits = ([] for _ in range(7))
    queue_latency = [r.start_time - r.create_timestamp.timestamp() for r in records if r.start_time]
    ends = []
    for research_id in ids:
        if research_id not in final or not runs_of.get(research_id):
            continue
        # Every run of the research (a retry included): its steps, queue and pool waits.
        parts = sorted(
            (_run_analysis(instance, rec) for rec in runs_of[research_id]),
            key=lambda a: a["created"],
        )
        first, last = parts[0], parts[-1]
        total = last["ended"] - triggered[research_id]
        step_time = sum(a["step_time"] for a in parts)
        pool_wait = sum(a["pool_wait"] for a in parts)
        queue_wait = sum(a["queued"] for a in parts)
        behind_limits = sum(a["dequeued"] - a["created"] for a in parts)
        overhead.append(total - step_time - queue_wait - pool_wait)
        strict.append(total - step_time - behind_limits - pool_wait)
        sensor.append(first["created"] - triggered[research_id])
        launch.extend(a["started"] - a["dequeued"] for a in parts if a["started"])
        in_run.extend(
            a["ended"] - a["started"] - a["step_time"] - a["pool_wait"]
            for a in parts
            if a["started"]
        )
        steps.append(step_time)
        pool_waits.append(pool_wait)
        ends.append(last["ended"])
    outcomes = Counter(s.status for s in final.values())
    verdicts = outcomes["completed"] + outcomes["rejected"]
    span = (max(ends) - first_trigger) if ends else None
    max_running = {k: sampler.max[k] for k in (*WORKERS, *(f"pool:{p}" for p in POOLS))}
    return {
        "home": str(home),
        "researches": count,
        "completed": verdicts,
        "outcomes": dict(outcomes),
        "runs": len(records),
        "retried": sum(1 for runs in runs_of.values() if len(runs) > 1),
        "start_timeouts": sum(
            1
            for r in records
            if r.dagster_run.tags.get("dagster/failure_reason") == "START_TIMEOUT"
        ),
        "overhead_s_per_research_p50": _r(percentile(overhead, 50)),
        "overhead_s_per_research_p95": _r(percentile(overhead, 95)),
        "overhead_incl_launch_s_p50": _r(percentile(strict, 50)),
        "overhead_parts_s_p50": {
            "trigger_to_run_created": _r(percentile(sensor, 50)),
            "dequeued_to_started": _r(percentile(launch, 50)),
            "in_run_outside_steps": _r(percentile(in_run, 50)),
        },
        "step_time_s_p50": _r(percentile(steps, 50)),
        "pool_wait_s_p50": _r(percentile(pool_waits, 50)),
        "queue_latency_s_p50": _r(percentile(queue_latency, 50)),
        "wall_s": _r(span),
        "throughput_per_hour": _r(verdicts / span * 3600 if span else None, 1),
        "max_running_by_worker": max_running,
        "max_running_total": sampler.max["total"],
        "limits_by_worker": limits,
        "within_limits": all(limits[k] is None or max_running[k] <= limits[k] for k in max_running),
        "samples": sampler.samples,
    }


# -- part 2: an instance with many researches -----------------------------------------------

TRAINING_REASONS = (
    "accuracy_below_threshold",
    "loss_above_threshold",
    "insufficient_loss_decrease",
)
BACKTEST_REASONS = ("win_rate_too_low", "drawdown_too_high", "sharpe_too_low")
STRATEGIES = (
    "mlp_trend_eurusd",
    "momentum_btc_1h",
    "mean_reversion_fx",
    "breakout_gold",
    "claude_fast_eurusd",
    "vol_filter_trend",
    "rsi_macd_combo",
    "carry_proxy_fx",
)
VERDICTS = ("promising", "neutral", "poor")
# Share of each kind among the finished researches (the rest: running, queued, UI partitions).
KINDS = {
    "completed": 0.55,
    "rejected_training": 0.18,
    "rejected_backtest": 0.12,
    "failed_step": 0.05,
    "failed_llm": 0.02,
    "failed_incomplete": 0.005,
    "cancelled": 0.02,
    "retried": 0.02,
    "cancelled_queued": 0.005,
    "awaiting_retry": 0.002,
}
DAY = 86_400.0


def _template_events() -> tuple[dict[str, Any], dict[str, Any]]:
    """One real research materialized in process: its materialization metadata per asset and
    its materialization tags, the templates of the synthetic ones."""
    from research_assets.definitions import defs
    from research_assets.defs.jobs import RESEARCH_ASSETS
    from research_assets.defs.resources import QualityGatesResource
    from research_assets.state.records import record_request

    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as inst:
        record_request(inst, "r-template", seed=3, spec=small_spec())
        result = dg.materialize(
            RESEARCH_ASSETS,
            instance=inst,
            partition_key="r-template",
            resources={**defs.resources, "gates": QualityGatesResource(**OPEN_GATES)},
            raise_on_error=False,
            tags={"research/id": "r-template"},
        )
        if not result.success:
            raise RuntimeError("the template research did not complete")
        metadata, tags = {}, {}
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            key = mat.asset_key.to_user_string()
            metadata[key] = dict(mat.metadata)
            tags[key] = dict(mat.tags or {})
    return metadata, tags


def _template_run(instance: dg.DagsterInstance) -> Any:
    """A run of research_job created the way the intake sensor creates one (remote origin,
    snapshots, tags), in ``instance``; the template of every synthetic run."""
    from dagster._core.definitions.run_request import RunRequest
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = LoadableTargetOrigin(
        executable_path=sys.executable,
        module_name="research_assets.definitions",
        working_directory=str(REPO),
    )
    with in_process_test_workspace(instance, origin) as workspace:
        location = next(iter(workspace.code_locations))
        repo = next(iter(location.get_repositories().values()))
        remote_job = repo.get_full_job("research_job")
        sensor = repo.get_sensor("research_intake")
        plan = location.get_execution_plan(
            remote_job, {}, step_keys_to_execute=None, known_state=None, instance=instance
        )
        request = RunRequest(
            run_key="r-template",
            partition_key="r-template",
            tags={"research/id": "r-template", "research/worker": "cpu"},
        )
        tags = {
            **(remote_job.run_tags or {}),
            **request.tags,
            **dg.DagsterRun.tags_for_sensor(sensor),
            "dagster/run_key": "r-template",
            "dagster/partition": "r-template",
        }
        run = instance.create_run(
            job_name="research_job",
            run_id=str(uuid.uuid4()),
            run_config={},
            resolved_op_selection=None,
            step_keys_to_execute=None,
            status=dg.DagsterRunStatus.QUEUED,
            op_selection=None,
            root_run_id=None,
            parent_run_id=None,
            tags=tags,
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=None,
            asset_check_selection=None,
            asset_graph=repo.asset_graph,
        )
    instance.delete_run(run.run_id)
    return run


# Slots in a serialized template: "@@name@@" (any JSON value) or a numeric sentinel.
_SLOT = re.compile(r'"@@(\w+)@@"|(?<![\d.])98765(\d{5})\.0|(?<![\d.])12345(\d{5})(?![\d.])')
_FLOAT_SLOTS = (
    "ts",
    "test_accuracy",
    "test_loss",
    "loss_decrease",
    "precision",
    "recall",
    "f1",
    "Sharpe Ratio",
    "Return [%]",
    "Max. Drawdown [%]",
    "Win Rate [%]",
    "usage/cost_usd",
)
_INT_SLOTS = (
    "usage/input_tokens",
    "usage/output_tokens",
    "usage/cache_creation_input_tokens",
    "usage/cache_read_input_tokens",
)


def _fslot(name: str) -> float:
    return 9876500000.0 + _FLOAT_SLOTS.index(name)


def _islot(name: str) -> int:
    return 1234500000 + _INT_SLOTS.index(name)


class _Template:
    """A serialized event (or run) with slots, filled per research by joining its parts:
    serializing each of ~120,000 events with Dagster's serializer would take minutes."""

    def __init__(self, text: str):
        self.parts: list[str] = []
        self.slots: list[str] = []
        pos = 0
        for m in _SLOT.finditer(text):
            self.parts.append(text[pos : m.start()])
            if m.group(1):
                self.slots.append(m.group(1))
            elif m.group(2):
                self.slots.append(_FLOAT_SLOTS[int(m.group(2))])
            else:
                self.slots.append(_INT_SLOTS[int(m.group(3))])
            pos = m.end()
        self.tail = text[pos:]

    def fill(self, values: dict[str, Any]) -> str:
        out = []
        for part, slot in zip(self.parts, self.slots, strict=True):
            out.append(part)
            out.append(json.dumps(values[slot], sort_keys=True))
        out.append(self.tail)
        return "".join(out)


def _entry(
    event_type: str,
    run_id: str,
    ts: float,
    data: Any = None,
    step_key: str | None = None,
    job_name: str = "research_job",
    message: str = "",
) -> Any:
    from dagster._core.events import DagsterEvent
    from dagster._core.events.log import EventLogEntry

    return EventLogEntry(
        error_info=None,
        level=logging.DEBUG,
        user_message=message,
        run_id=run_id,
        timestamp=ts,
        step_key=step_key,
        job_name=job_name,
        dagster_event=DagsterEvent(
            event_type_value=event_type,
            job_name=job_name,
            event_specific_data=data,
            step_key=step_key,
        ),
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


class _Builder:
    """Rows of the event log index, the run storage and failed runs' shards, from templates
    made of one real research's metadata."""

    def __init__(
        self, instance: dg.DagsterInstance, md: dict[str, Any], tags: dict[str, Any], run: Any
    ):
        from dagster._core.events import (
            AssetMaterializationPlannedData,
            StepMaterializationData,
        )
        from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
        from dagster._serdes import serialize_value

        self.instance = instance
        self.storage = instance.event_log_storage
        assert isinstance(self.storage, SqlEventLogStorage)
        self.rows: list[dict[str, Any]] = []
        self.tag_rows: list[tuple[int, str, str, datetime]] = []  # (row index, asset, ...)
        self.runs: list[dict[str, Any]] = []
        self.run_tags: list[dict[str, Any]] = []
        self.shards: dict[str, list[Any]] = defaultdict(list)
        self.data_version = {a: t.get("dagster/data_version") for a, t in tags.items()}

        def mat_template(asset: str, metadata: dict[str, Any]) -> _Template:
            mat = dg.AssetMaterialization(
                asset_key=asset,
                partition="@@pk@@",
                metadata=metadata,
                tags={**tags[asset], "dagster/code_version": "@@run@@"},
            )
            entry = _entry(
                "ASSET_MATERIALIZATION",
                "@@run@@",
                _fslot("ts"),
                StepMaterializationData(mat),
                step_key=asset,
            )
            return _Template(serialize_value(entry))

        usage = {
            **{k: _islot(k) for k in _INT_SLOTS},
            "usage/cost_usd": _fslot("usage/cost_usd"),
            "usage/model": "claude-sonnet-4-5",
        }
        report = {
            "stats": dg.MetadataValue.json("@@stats@@"),  # type: ignore[arg-type]
            "summary": dg.MetadataValue.json("@@summary@@"),  # type: ignore[arg-type]
            **{
                k: _fslot(k)
                for k in ("Sharpe Ratio", "Return [%]", "Max. Drawdown [%]", "Win Rate [%]")
            },
        }
        spec = {**md["strategy_spec"], "strategy": "@@strategy@@", "designer": "@@designer@@"}
        training = {
            **md["trained_model"],
            "gate_reason": "@@reason@@",
            **{
                k: _fslot(k)
                for k in (
                    "test_accuracy",
                    "test_loss",
                    "loss_decrease",
                    "precision",
                    "recall",
                    "f1",
                )
            },
        }
        backtest = {**md["backtest_report"], **report, "gate_reason": "@@reason@@"}
        assessment = {**md["assessment"], "verdict": "@@verdict@@"}
        self.templates = {
            ("strategy_spec", "claude"): mat_template("strategy_spec", {**spec, **usage}),
            ("strategy_spec", "offline"): mat_template("strategy_spec", spec),
            ("trained_model", True): mat_template(
                "trained_model", {**training, "gate_passed": True}
            ),
            ("trained_model", False): mat_template(
                "trained_model", {**training, "gate_passed": False}
            ),
            ("backtest_report", True): mat_template(
                "backtest_report", {**backtest, "gate_passed": True}
            ),
            ("backtest_report", False): mat_template(
                "backtest_report", {**backtest, "gate_passed": False}
            ),
            ("assessment", "claude"): mat_template(
                "assessment", {**assessment, **usage, "assessor": "claude"}
            ),
            ("assessment", "offline"): mat_template("assessment", assessment),
            ("lockbox_report", None): mat_template(
                "lockbox_report", {**md["lockbox_report"], **report}
            ),
        }
        for asset in ASSET_ORDER:
            entry = _entry(
                "ASSET_MATERIALIZATION_PLANNED",
                "@@run@@",
                _fslot("ts"),
                AssetMaterializationPlannedData(dg.AssetKey(asset), partition="@@pk@@"),
            )
            self.templates[("planned", asset)] = _Template(serialize_value(entry))
        for kind in ("PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED"):
            self.templates[("run", kind)] = _Template(
                serialize_value(_entry(kind, "@@run@@", _fslot("ts")))
            )
        tags_slots = {
            **run.tags,
            "dagster/partition": "@@pk@@",
            "dagster/run_key": "@@pk@@",
            "research/id": "@@pk@@",
            "research/worker": "@@worker@@",
        }
        self.run_templates = {}
        for status in dg.DagsterRunStatus:
            body = run.with_status(status)._replace(run_id="@@run@@", tags=tags_slots)
            retry = body._replace(
                tags={**tags_slots, **RETRY_TAGS},
                parent_run_id="@@parent@@",
                root_run_id="@@parent@@",
            )
            dying = body._replace(tags={**tags_slots, **WILL_RETRY_TAGS})
            self.run_templates[(status, "plain")] = _Template(serialize_value(body))
            self.run_templates[(status, "retry")] = _Template(serialize_value(retry))
            self.run_templates[(status, "will_retry")] = _Template(serialize_value(dying))
        self.run_template = run
        self.snapshot_id = run.job_snapshot_id
        # (row index, "m" | "o", asset, partition, timestamp, plain metadata) of every asset
        # event: what the research summaries are made of (write_summaries).
        self.plain: list[tuple[int, str, str, str, float, dict[str, Any]]] = []
        from research_assets.state.instance_reads import plain

        self.plain_md = {a: plain(m) for a, m in md.items()}

    def _plain_md(self, asset: str, variant: Any, values: dict[str, Any]) -> dict[str, Any]:
        """The plain metadata (instance_reads.plain) of a filled template: what a reader of
        the event would find."""
        md = {**self.plain_md[asset], **{k: v for k, v in values.items() if k != "reason"}}
        if asset in ("trained_model", "backtest_report"):
            md.update(gate_passed=variant, gate_reason=values["reason"])
        elif asset == "assessment" and variant == "claude":
            md["assessor"] = "claude"
        return md

    def _row(
        self,
        text: str,
        kind: str,
        run_id: str,
        ts: float,
        asset: str | None,
        pk: str | None,
        step_key: str | None = None,
    ) -> int:
        self.rows.append(
            {
                "run_id": run_id,
                "event": text,
                "dagster_event_type": kind,
                "timestamp": _dt(ts),
                "step_key": step_key,
                "asset_key": dg.AssetKey(asset).to_string() if asset else None,
                "partition": pk,
            }
        )
        return len(self.rows) - 1

    def observation(
        self, pk: str, ts: float, metadata: dict[str, Any], asset: str = "strategy_spec"
    ) -> None:
        from dagster._core.events import AssetObservationData
        from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

        obs = dg.AssetObservation(asset_key=asset, partition=pk, metadata=metadata)
        entry = _entry(
            "ASSET_OBSERVATION",
            RUNLESS_RUN_ID,
            ts,
            AssetObservationData(obs),
            job_name=RUNLESS_JOB_NAME,
        )
        row = self.storage._event_to_row(entry)
        self.rows.append(row)
        self.plain.append((len(self.rows) - 1, "o", asset, pk, ts, dict(metadata)))

    def planned(self, run_id: str, pk: str, ts: float) -> None:
        for asset in ASSET_ORDER:
            text = self.templates[("planned", asset)].fill({"run": run_id, "pk": pk, "ts": ts})
            self._row(text, "ASSET_MATERIALIZATION_PLANNED", run_id, ts, asset, pk)

    def materialization(
        self, variant: Any, run_id: str, pk: str, ts: float, asset: str, values: dict[str, Any]
    ) -> None:
        text = self.templates[(asset, variant)].fill({**values, "run": run_id, "pk": pk, "ts": ts})
        index = self._row(text, "ASSET_MATERIALIZATION", run_id, ts, asset, pk, asset)
        self.plain.append((index, "m", asset, pk, ts, self._plain_md(asset, variant, values)))
        if self.data_version.get(asset):
            self.tag_rows.append((index, asset, self.data_version[asset], _dt(ts)))

    def run_status(self, run_id: str, ts: float, kind: str) -> None:
        text = self.templates[("run", kind)].fill({"run": run_id, "ts": ts})
        self._row(text, kind, run_id, ts, None, None)

    def step_failure(
        self, run_id: str, ts: float, step: str, message: str, reason: str | None
    ) -> None:
        from dagster._core.execution.plan.objects import (
            ErrorSource,
            StepFailureData,
            UserFailureData,
        )
        from dagster._utils.error import SerializableErrorInfo

        error = SerializableErrorInfo(
            message=f"dagster._core.definitions.events.Failure: {message}\n",
            stack=['  File "research_assets/defs/assets.py", line 120, in strategy_spec\n'],
            cls_name="Failure",
        )
        user = (
            UserFailureData(
                label="intentional-failure", description=message, metadata={"reason": reason}
            )
            if reason
            else None
        )
        shard = self.shards[run_id]
        shard.append(_entry("PIPELINE_START", run_id, ts - 30))
        shard.append(_entry("STEP_START", run_id, ts - 5, step_key=step))
        shard.append(
            _entry(
                "STEP_FAILURE",
                run_id,
                ts,
                StepFailureData(
                    error=error, user_failure_data=user, error_source=ErrorSource.USER_CODE_ERROR
                ),
                step_key=step,
                message=f'Execution of step "{step}" failed.',
            )
        )
        shard.append(_entry("PIPELINE_FAILURE", run_id, ts + 1))

    def add_run(
        self,
        pk: str,
        worker: str,
        status: Any,
        created: float,
        started: float | None,
        ended: float | None,
        parent: str | None = None,
        will_retry: bool = False,
    ) -> str:
        """A run; ``parent``: it retries that run; ``will_retry``: its process died and run
        retries will start it again (what Dagster tags such a failed run with)."""
        run_id = str(uuid.uuid4())
        variant = "retry" if parent else "will_retry" if will_retry else "plain"
        body = self.run_templates[(status, variant)].fill(
            {"run": run_id, "pk": pk, "worker": worker, "parent": parent}
        )
        self.runs.append(
            {
                "run_id": run_id,
                "pipeline_name": "research_job",
                "status": status.value,
                "run_body": body,
                "snapshot_id": self.snapshot_id,
                "partition": pk,
                "partition_set": self.run_template.tags.get("dagster/partition_set"),
                "backfill_id": None,
                "create_timestamp": _dt(created),
                "update_timestamp": _dt(ended or started or created),
                "start_time": started,
                "end_time": ended,
            }
        )
        tags = {
            **self.run_template.tags_for_storage(),
            "dagster/partition": pk,
            "dagster/run_key": pk,
            "research/id": pk,
            "research/worker": worker,
        }
        if parent:
            tags.update({k: parent if v == "@@parent@@" else v for k, v in RETRY_TAGS.items()})
        elif will_retry:
            tags.update(WILL_RETRY_TAGS)
        self.run_tags.extend({"run_id": run_id, "key": k, "value": v} for k, v in tags.items())
        return run_id

    # -- writing --

    def write(self) -> None:
        from dagster._core.storage.runs.schema import RunsTable, RunTagsTable

        with self.instance.run_storage.connect() as conn:  # type: ignore[attr-defined]
            for start in range(0, len(self.runs), 2000):
                conn.execute(RunsTable.insert(), self.runs[start : start + 2000])
            for start in range(0, len(self.run_tags), 5000):
                conn.execute(RunTagsTable.insert(), self.run_tags[start : start + 5000])
        self._write_index()
        self._write_shards()

    def _write_index(self) -> None:
        from dagster._core.storage.event_log.schema import (
            AssetEventTagsTable,
            SqlEventLogStorageTable,
        )
        from dagster._serdes import deserialize_value

        storage = self.storage
        with storage.index_connection() as conn:
            last_id = (
                conn.execute(
                    sqlalchemy.select(sqlalchemy.func.max(SqlEventLogStorageTable.c.id))
                ).scalar()
                or 0
            )
        latest: dict[tuple[str, str], int] = {}
        for offset, row in enumerate(self.rows):
            row["id"] = last_id + 1 + offset
            if row["asset_key"]:
                latest[(row["asset_key"], row["dagster_event_type"])] = offset
        tag_rows = [
            {
                "event_id": self.rows[i]["id"],
                "asset_key": dg.AssetKey(a).to_string(),
                "key": "dagster/data_version",
                "value": v,
                "event_timestamp": ts,
            }
            for i, a, v, ts in self.tag_rows
        ]
        with storage.index_connection() as conn:
            for start in range(0, len(self.rows), 1000):
                conn.execute(SqlEventLogStorageTable.insert(), self.rows[start : start + 1000])
            for start in range(0, len(tag_rows), 5000):
                conn.execute(AssetEventTagsTable.insert(), tag_rows[start : start + 5000])
            for offset in sorted(latest.values()):
                row = self.rows[offset]
                storage._store_asset_event(conn, deserialize_value(row["event"]), row["id"])

    def write_summaries(self) -> int:
        """What the research_summaries sensor leaves after each run (defs/sensors.py): every
        research's summary, as state/research_index.py and status_view.py keep them. The event
        digests are made here from the same plain metadata the events were filled with (through
        research_index's own functions; reading 1.2 M events back is what the summaries spare),
        then ``read_statuses`` reads the runs (and failed runs' reasons) and renders the view,
        as the sensor does. Returns how many index rows were written."""
        from types import SimpleNamespace

        from research_assets.state import research_index as ri
        from research_assets.state.status_view import read_statuses

        events: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for index, kind, asset, pk, ts, md in self.plain:
            event = SimpleNamespace(metadata=md)
            rec = SimpleNamespace(
                storage_id=self.rows[index]["id"],
                timestamp=ts,
                partition_key=pk,
                asset_materialization=None,
                asset_observation=None,
            )
            setattr(rec, "asset_materialization" if kind == "m" else "asset_observation", event)
            events[(pk, f"{kind}/{asset}")].append(rec)
        digests: dict[str, dict[str, Any]] = {}
        for (pk, stream), recs in events.items():
            recs.sort(key=lambda r: -r.storage_id)  # newest first
            digest = digests.setdefault(pk, {"sid": {}, "md": {}, "paid": {}})
            digest["sid"][stream] = recs[0].storage_id
            kind, asset = stream.split("/")
            (ri._apply_materializations if kind == "m" else ri._apply_observations)(
                digest, asset, stream, recs
            )
        rows: dict[int, dict[str, Any]] = defaultdict(lambda: {"r": {}, "runs": {}})
        for pk, digest in digests.items():
            rows[ri.bucket_of(pk)]["r"][pk] = digest
        ri.write_rows(self.instance, {ri.row_key(b): row for b, row in rows.items()})
        self.rows = []
        self.plain = []
        ids = list(self.instance.get_dynamic_partitions("research"))
        for start in range(0, len(ids), 20_000):
            read_statuses(self.instance, ids[start : start + 20_000])
        return len(rows)

    def _write_shards(self) -> None:
        if not self.shards:
            return
        storage = self.storage
        with storage.run_connection("bench-template-shard"):
            pass
        template = Path(storage.path_for_shard("bench-template-shard"))
        columns = (
            "run_id",
            "event",
            "dagster_event_type",
            "timestamp",
            "step_key",
            "asset_key",
            "partition",
        )
        for run_id, entries in self.shards.items():
            path = storage.path_for_shard(run_id)
            shutil.copyfile(template, path)
            with sqlite3.connect(path) as conn:
                conn.executemany(
                    f"INSERT INTO event_logs ({', '.join(columns)}) VALUES "
                    f"({', '.join('?' * len(columns))})",
                    [
                        tuple(_sql_value(storage._event_to_row(e)[c]) for c in columns)
                        for e in entries
                    ],
                )
        template.unlink()
        for suffix in ("-wal", "-shm"):
            Path(str(template) + suffix).unlink(missing_ok=True)


ASSET_ORDER = ("strategy_spec", "trained_model", "backtest_report", "assessment", "lockbox_report")
RETRY_TAGS = {
    "dagster/parent_run_id": "@@parent@@",
    "dagster/root_run_id": "@@parent@@",
    "dagster/retry_number": "1",
    "dagster/is_resume_retry": "true",
}
WILL_RETRY_TAGS = {"dagster/will_retry": "true", "dagster/failure_reason": "RUN_WORKER_DIED"}


def _sql_value(value: Any) -> Any:
    # SQLAlchemy stores DateTime in SQLite as "YYYY-MM-DD HH:MM:SS.ffffff".
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


def _usage(rng: random.Random, scale: float = 1.0) -> dict[str, Any]:
    inp, out = int(rng.uniform(4000, 30000) * scale), int(rng.uniform(800, 6000) * scale)
    cache_w, cache_r = int(rng.uniform(0, 8000)), int(rng.uniform(0, 40000))
    cost = (inp * 3 + out * 15 + cache_w * 3.75 + cache_r * 0.3) / 1e6
    return {
        "usage/input_tokens": inp,
        "usage/output_tokens": out,
        "usage/cache_creation_input_tokens": cache_w,
        "usage/cache_read_input_tokens": cache_r,
        "usage/cost_usd": round(cost, 6),
        "usage/model": "claude-sonnet-4-5",
    }


def _report_values(stats: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A backtest/lockbox report's figures, moved a little from the template's."""
    figures = {
        "Sharpe Ratio": rng.uniform(-2.5, 2.5),
        "Return [%]": rng.uniform(-8, 12),
        "Win Rate [%]": rng.uniform(35, 60),
        "Max. Drawdown [%]": rng.uniform(1, 15),
    }
    moved = {k: {**v, **{f: x for f, x in figures.items() if f in v}} for k, v in stats.items()}
    summary = {**next(iter(moved.values()), {}), **figures}
    return {"stats": moved, "summary": summary, **figures}


def _templates(cache_base: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The metadata and tags of one real research (materialized once, then kept on disk)."""
    from dagster._serdes import deserialize_value, serialize_value

    path = cache_base / f"templates-v{TEMPLATE_VERSION}.json"
    if path.exists():
        data = deserialize_value(path.read_text())
        return data["metadata"], data["tags"]  # type: ignore[index]
    metadata, tags = _template_events()
    cache_base.mkdir(parents=True, exist_ok=True)
    path.write_text(serialize_value({"metadata": metadata, "tags": tags}))
    return metadata, tags


def build_scale_home(home: Path, n: int, cache_base: Path, seed: int = 7) -> dict[str, Any]:
    """Write ``n`` researches into the instance at ``home`` (see the module docstring)."""
    from research_assets.defs.partitions import research_partitions

    started = time.monotonic()
    rng = random.Random(seed)
    _log("building: metadata templates (one real research, materialized once and cached)")
    md_tmpl, tag_tmpl = _templates(cache_base)
    instance = dg.DagsterInstance.from_config(str(home))
    b = _Builder(instance, md_tmpl, tag_tmpl, _template_run(instance))
    _log(f"building: templates ready after {time.monotonic() - started:.1f} s")
    now = time.time()
    span = 30 * DAY
    n_queued = max(1, min(40, n // 250))
    n_running = min(3, max(0, n - n_queued))
    n_ui = min(5, max(0, n - n_queued - n_running))
    n_done = n - n_queued - n_running - n_ui
    kinds = rng.choices(list(KINDS), weights=list(KINDS.values()), k=n_done)
    kinds += ["ui"] * n_ui + ["running"] * n_running + ["queued"] * n_queued
    ids, expected = [], {}
    stats = md_tmpl["backtest_report"]["stats"].value
    for i, kind in enumerate(kinds):
        if kind in ("running", "queued"):
            t_req = now - 60 * (len(kinds) - i)
        else:
            t_req = now - 600 - span * (1 - i / n)
        stamp = datetime.fromtimestamp(t_req, UTC).strftime("%Y%m%d-%H%M%S")
        pk = f"r-{stamp}-{i:04x}"
        ids.append(pk)
        expected[pk] = _add_research(b, pk, kind, t_req, md_tmpl, stats, rng)
    _log(
        f"building: {len(b.rows)} events, {len(b.runs)} runs, {len(b.shards)} run shards "
        f"after {time.monotonic() - started:.1f} s; writing"
    )
    instance.add_dynamic_partitions(research_partitions.name, ids)
    b.write()
    n_events = len(b.rows)
    _log(f"building: written after {time.monotonic() - started:.1f} s; research summaries")
    b.write_summaries()
    instance.dispose()
    took = time.monotonic() - started
    summary = {
        "version": BUILD_VERSION,
        "researches": n,
        "events": n_events,
        "runs": len(b.runs),
        "run_shards": len(b.shards),
        "expected": dict(Counter(expected.values())),
        "build_s": round(took, 1),
    }
    (home / "expected.json").write_text(json.dumps(expected))
    return summary


def _add_research(
    b: _Builder,
    pk: str,
    kind: str,
    t_req: float,
    md_tmpl: dict[str, Any],
    stats: dict[str, Any],
    rng: random.Random,
) -> str:
    """One research's events and runs; returns the status `research status` should show."""
    worker = "gpu" if rng.random() < 0.2 else "cpu"
    if kind == "ui":  # a partition added in the UI: no request, no run yet
        return "queued"
    request: dict[str, Any] = {
        "seed": rng.randrange(2**31),
        "requested_at": t_req,
        "worker": worker,
    }
    if rng.random() < 0.3:
        request["brief"] = rng.choice(["BTC trend", "FX mean reversion", "low drawdown gold"])
    if rng.random() < 0.1:
        request["spec"] = md_tmpl["strategy_spec"]["spec"]
    if rng.random() < 0.05:
        request["launched_by"] = "autopilot"
    b.observation(pk, t_req, request)
    S, F = dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE
    created = t_req + rng.uniform(1, 8)
    if kind == "cancelled_queued":  # cancelled before its run started
        b.add_run(
            pk, worker, dg.DagsterRunStatus.CANCELED, created, None, created + rng.uniform(5, 60)
        )
        b.observation(pk, created + 2, {"cancelled_at": created + 2})
        return "cancelled"
    claude = rng.random() < 0.6
    status = {
        "queued": dg.DagsterRunStatus.QUEUED,
        "running": dg.DagsterRunStatus.STARTED,
        "cancelled": dg.DagsterRunStatus.CANCELED,
        "failed_incomplete": S,
        "completed": S,
        "retried": S,
    }.get(kind, F)
    parent = None
    if kind in ("retried", "awaiting_retry"):
        # The first run's process died; run retries started (or will start) a second one.
        parent = b.add_run(pk, worker, F, created, created + 5, created + 40, will_retry=True)
        b.planned(parent, pk, created)
        b.run_status(parent, created + 5, "PIPELINE_START")
        b.run_status(parent, created + 40, "PIPELINE_FAILURE")
        if kind == "awaiting_retry":
            return "queued"
        created += 60
    if kind == "queued":
        b.add_run(pk, worker, status, created, None, None)
        return "queued"
    started = created + rng.uniform(0.5, 90)
    ended_guess = None if kind == "running" else started + 400
    run_id = b.add_run(pk, worker, status, created, started, ended_guess, parent)
    b.planned(run_id, pk, created)
    b.run_status(run_id, started, "PIPELINE_START")
    t = started + rng.uniform(2, 6)
    steps = {
        "completed": 5,
        "retried": 5,
        "rejected_training": 2,
        "rejected_backtest": 3,
        "failed_step": rng.choice([1, 2, 3]),
        "failed_llm": rng.choice([0, 3]),
        "failed_incomplete": rng.choice([1, 2, 3]),
        "cancelled": rng.choice([0, 1, 2]),
        "running": rng.choice([0, 1, 2]),
    }[kind]
    gate_fail = kind in ("rejected_training", "rejected_backtest")
    for index, asset in enumerate(ASSET_ORDER[:steps]):
        t += rng.uniform(5, 60) if asset == "strategy_spec" and claude else rng.uniform(1, 40)
        values: dict[str, Any] = {}
        variant: Any = None
        if asset == "strategy_spec":
            variant = "claude" if claude else "offline"
            values = {
                "strategy": rng.choice(STRATEGIES),
                "designer": variant,
                **(_usage(rng) if claude else {}),
            }
        elif asset == "trained_model":
            values = {
                k: rng.uniform(0.4, 0.62) for k in ("test_accuracy", "precision", "recall", "f1")
            }
            values.update(test_loss=rng.uniform(0.6, 0.8), loss_decrease=rng.uniform(-0.05, 0.4))
        elif asset in ("backtest_report", "lockbox_report"):
            values = _report_values(stats, rng)
        elif asset == "assessment":
            variant = "claude" if claude else "offline"
            values = {"verdict": rng.choice(VERDICTS), **(_usage(rng, 0.5) if claude else {})}
        if asset in ("trained_model", "backtest_report"):
            failing = gate_fail and index == steps - 1
            reasons = TRAINING_REASONS if asset == "trained_model" else BACKTEST_REASONS
            variant = not failing
            values["reason"] = rng.choice(reasons) if failing else ""
        b.materialization(variant, run_id, pk, t, asset, values)
    ended = t + rng.uniform(0.5, 3)
    if kind == "running":
        return "running"
    b.runs[-1]["end_time"] = ended
    b.runs[-1]["update_timestamp"] = _dt(ended)
    b.run_status(
        run_id,
        ended,
        {
            S: "PIPELINE_SUCCESS",
            F: "PIPELINE_FAILURE",
            dg.DagsterRunStatus.CANCELED: "PIPELINE_CANCELED",
        }[status],
    )
    if kind == "failed_step":
        step = ASSET_ORDER[steps]
        if rng.random() < 0.5:
            b.step_failure(
                run_id,
                ended - 1,
                step,
                "no market data for XAUUSD/4h: add XAUUSD_4h.csv to the market data directory",
                None,
            )
        else:
            b.step_failure(
                run_id,
                ended - 1,
                step,
                "llm_invalid_output: the model did not return a valid spec",
                "llm_invalid_output",
            )
    elif kind == "failed_llm":
        step = "strategy_spec" if steps == 0 else "assessment"
        # The turns billed by the failed design or assessment (see assets._llm_failure).
        b.observation(pk, ended - 2, {**_usage(rng), "failed": True}, asset=step)
        b.step_failure(run_id, ended - 1, step, "llm_unavailable: overloaded", "llm_unavailable")
    elif kind == "cancelled":
        b.observation(pk, ended - 1, {"cancelled_at": ended - 1})
    return {
        "completed": "completed",
        "retried": "completed",
        "rejected_training": "rejected",
        "rejected_backtest": "rejected",
        "failed_step": "failed",
        "failed_llm": "failed",
        "failed_incomplete": "failed",
        "cancelled": "cancelled",
    }[kind]


def ensure_scale_home(n: int, cache_dir: Path | None, rebuild: bool) -> tuple[Path, dict]:
    base = cache_dir or Path(tempfile.gettempdir()) / "research-bench-scale"
    home = base / f"v{BUILD_VERSION}-n{n}" / "dagster_home"
    marker = home / "built.json"
    if marker.exists() and not rebuild:
        return home, json.loads(marker.read_text())
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    summary = build_scale_home(home, n, base)
    marker.write_text(json.dumps(summary))
    return home, summary


def time_cli(home: Path, args: list[str], repeats: int) -> tuple[list[float], dict]:
    """Wall time of ``research ARGS`` as a subprocess, ``repeats`` times; the last JSON payload,
    with each run's CPU time (``_cpu_s``) and peak resident memory (``_max_rss_mb``)."""
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env.update({"DAGSTER_HOME": str(home), **BENCH_ENV})
    times, payload = [], {}
    cpu: list[float] = []
    rss: list[float] = []
    for _ in range(repeats):
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            # GNU time reports the command's own peak (a child forked from this process, which
            # holds the built instance's templates, would count this process's pages too).
            proc = subprocess.Popen(
                [
                    "/usr/bin/time",
                    "-f",
                    "max_rss_kb=%M",
                    sys.executable,
                    "-m",
                    "research_assets.cli",
                    *args,
                ],
                stdout=out,
                stderr=err,
                env=env,
                cwd=str(REPO),
            )
            _pid, status, usage = os.wait4(proc.pid, 0)
            times.append(time.perf_counter() - started)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu.append(usage.ru_utime + usage.ru_stime)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
            peak = re.findall(r"max_rss_kb=(\d+)", stderr)
            rss.append(int(peak[-1]) / 1024 if peak else float("nan"))
        if proc.returncode != 0:
            raise RuntimeError(
                f"research {' '.join(args)} exited {proc.returncode}: {stderr[-2000:]}"
            )
        payload = json.loads(stdout.strip().splitlines()[-1])
    payload["_cpu_s"] = cpu
    payload["_max_rss_mb"] = rss
    return times, payload


def check_summaries(home: Path, status: dict[str, Any], sample: int = 300) -> int:
    """How many of ``sample`` researches (spread over the instance) `research status` printed
    otherwise than statuses derived afresh from their events and runs (the research index not
    read nor written): the summaries the build wrote as the research_summaries sensor would
    are checked against what the events say."""
    from research_assets.state import research_index
    from research_assets.state.records import load_statuses
    from research_assets.state.status_view import encode

    printed = {r["id"]: r for r in status["researches"]}
    ids = sorted(printed)[:: max(1, len(printed) // sample)]
    instance = dg.DagsterInstance.from_config(str(home))
    load_rows, write_rows = research_index.load_rows, research_index.write_rows
    research_index.load_rows = lambda *a, **k: {}  # type: ignore[assignment]
    research_index.write_rows = lambda *a, **k: None  # type: ignore[assignment]
    try:
        fresh = {s.id: json.loads(encode(s)) for s in load_statuses(instance, ids)}
    finally:
        research_index.load_rows, research_index.write_rows = load_rows, write_rows
        instance.dispose()
    return sum(1 for pk in ids if fresh.get(pk) != printed[pk])


def forget_reads(home: Path) -> None:
    """Clear what a read of every research keeps (the view's mark, the output it printed, the
    metrics' history): the summaries stay, as the research_summaries sensor left them."""
    from research_assets.state import research_index as ri
    from research_assets.state.metrics import HISTORY_KEY

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        keys = [ri.row_key(b, ri.MARK_ROW) for b in (0, 2)] + [HISTORY_KEY]
        for key in keys:
            instance.run_storage.set_cursor_values({key: ""})
    finally:
        instance.dispose()


def measure_scale(n: int, cache_dir: Path | None, rebuild: bool, repeats: int) -> dict:
    started = time.monotonic()
    home, built = ensure_scale_home(n, cache_dir, rebuild)
    _log(
        f"part 2: instance with {n} researches at {home} "
        f"(built in {built['build_s']} s; ready after {time.monotonic() - started:.1f} s)"
    )
    # The first `status` on the built instance: the summaries are there (the build wrote them
    # as the research_summaries sensor does), the view's instance mark is not: every research's
    # fingerprint is checked. Timed apart, with its peak memory.
    forget_reads(home)  # as the build left it, however often this ran on it
    first_times, first = time_cli(home, ["status", "--json"], 1)
    status_times, status = time_cli(home, ["status", "--json"], repeats)
    metrics_times, metrics = time_cli(home, ["metrics", "--json"], repeats)
    empty = _new_home("research-bench-empty-")
    empty_times, empty_status = time_cli(empty, ["status", "--json"], repeats)
    expected = json.loads((home / "expected.json").read_text())
    got = {r["id"]: r["status"] for r in status["researches"]}
    mismatches = sum(1 for k, v in expected.items() if got.get(k) != v)
    return {
        "home": str(home),
        "built": built,
        "status_latency_s": _r(statistics.median(status_times)),
        "status_times_s": [_r(t) for t in status_times],
        "status_cpu_s": [_r(t) for t in status["_cpu_s"]],
        "status_first_s": _r(first_times[0]),
        "status_first_max_rss_mb": _r(first["_max_rss_mb"][0], 0),
        "status_first_cpu_s": _r(first["_cpu_s"][0]),
        "status_max_rss_mb": _r(max(status["_max_rss_mb"]), 0),
        "status_empty_instance_s": _r(statistics.median(empty_times)),
        "status_empty_instance_cpu_s": [_r(t) for t in empty_status["_cpu_s"]],
        "metrics_latency_s": _r(statistics.median(metrics_times)),
        "metrics_times_s": [_r(t) for t in metrics_times],
        "metrics_cpu_s": [_r(t) for t in metrics["_cpu_s"]],
        "metrics_max_rss_mb": _r(max(metrics["_max_rss_mb"]), 0),
        "status_researches": len(status["researches"]),
        "status_by_outcome": dict(Counter(got.values())),
        "status_mismatches": mismatches,
        "first_agrees_with_warm": first["researches"] == status["researches"],
        "summaries_vs_fresh_mismatches": check_summaries(home, status),
        "metrics_total": metrics["researches"]["total"],
    }


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--count", type=int, default=20, help="researches in part 1")
    parser.add_argument("--timeout", type=float, default=1500, help="part 1 limit, seconds")
    parser.add_argument("--scale", type=int, default=10_000, help="researches in part 2")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each command")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached instance")
    parser.add_argument("--skip-run", action="store_true", help="skip part 1")
    parser.add_argument("--skip-scale", action="store_true", help="skip part 2")
    parser.add_argument(
        "--default-gates",
        action="store_true",
        help="part 1 with the instance's gate thresholds (not opened)",
    )
    parser.add_argument(
        "--build-only",
        action="store_true",
        help="build (or find) the part 2 instance, print its DAGSTER_HOME, exit",
    )
    args = parser.parse_args()
    logging.getLogger("dagster").setLevel(logging.WARNING)
    if args.build_only:
        home, built = ensure_scale_home(args.scale, args.cache_dir, args.rebuild)
        print(json.dumps({"home": str(home), **built}))
        return 0

    load_start = tuple(round(x, 1) for x in os.getloadavg())
    run = (
        None
        if args.skip_run
        else run_queued(args.count, args.timeout, open_gates=not args.default_gates)
    )
    scale = (
        None
        if args.skip_scale
        else measure_scale(args.scale, args.cache_dir, args.rebuild, args.repeats)
    )
    out: dict[str, Any] = {
        "researches": run and run["researches"],
        "completed": run and run["completed"],
        "overhead_s_per_research_p50": run and run["overhead_s_per_research_p50"],
        "throughput_per_hour": run and run["throughput_per_hour"],
        "max_running_by_worker": run and run["max_running_by_worker"],
        "limits_by_worker": run and run["limits_by_worker"],
        "queue_latency_s_p50": run and run["queue_latency_s_p50"],
        "status_latency_s": scale and scale["status_latency_s"],
        "metrics_latency_s": scale and scale["metrics_latency_s"],
        "status_first_s": scale and scale["status_first_s"],
        "status_first_max_rss_mb": scale and scale["status_first_max_rss_mb"],
    }
    if not args.json:
        if run:
            print(
                f"queued path: {run['researches']} researches, {run['completed']} reached a "
                f"verdict ({run['outcomes']}), {run['runs']} runs ({run['retried']} "
                f"researches retried, {run['start_timeouts']} start timeouts), wall "
                f"{run['wall_s']} s, throughput {run['throughput_per_hour']}/h"
            )
            print(
                f"  overhead per research p50 {run['overhead_s_per_research_p50']} s "
                f"(p95 {run['overhead_s_per_research_p95']} s; target < {TARGET_OVERHEAD_S} s)"
                f"; counting the run worker's launch: p50 {run['overhead_incl_launch_s_p50']} s"
            )
            print(
                f"  parts p50: {run['overhead_parts_s_p50']}; steps p50 "
                f"{run['step_time_s_p50']} s, pool wait p50 {run['pool_wait_s_p50']} s, "
                f"queue latency p50 {run['queue_latency_s_p50']} s"
            )
            print(
                f"  max in progress {run['max_running_by_worker']} (total "
                f"{run['max_running_total']}) vs limits {run['limits_by_worker']}: "
                f"{'within limits' if run['within_limits'] else 'ABOVE A LIMIT'} "
                f"({run['samples']} samples)"
            )
        if scale:
            built = scale["built"]
            print(
                f"scale: {scale['status_researches']} researches ({built['events']} events, "
                f"{built['runs']} runs, built in {built['build_s']} s) at {scale['home']}"
            )
            print(
                f"  research status --json  {scale['status_latency_s']} s median "
                f"{scale['status_times_s']} (target < {TARGET_STATUS_S} s; CPU "
                f"{scale['status_cpu_s']} s, peak {scale['status_max_rss_mb']} MB); on an "
                f"empty instance {scale['status_empty_instance_s']} s (process start; CPU "
                f"{scale['status_empty_instance_cpu_s']} s)"
            )
            print(
                f"  first research status on the built instance {scale['status_first_s']} s, "
                f"CPU {scale['status_first_cpu_s']} s, peak "
                f"{scale['status_first_max_rss_mb']} MB (target < {TARGET_FIRST_S} s, "
                f"< {TARGET_FIRST_MB} MB); same output as warm: "
                f"{scale['first_agrees_with_warm']}"
            )
            print(
                f"    outcomes {scale['status_by_outcome']}; mismatches vs expected "
                f"{scale['status_mismatches']}; summaries vs statuses derived afresh "
                f"(sample): {scale['summaries_vs_fresh_mismatches']} mismatches"
            )
            print(
                f"  research metrics --json {scale['metrics_latency_s']} s median "
                f"{scale['metrics_times_s']} (target < {TARGET_METRICS_S} s; CPU "
                f"{scale['metrics_cpu_s']} s, peak {scale['metrics_max_rss_mb']} MB)"
            )
        print(
            f"host: {os.cpu_count()} CPUs, load average {load_start} at start, "
            f"{tuple(round(x, 1) for x in os.getloadavg())} at end"
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
