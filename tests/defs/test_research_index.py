"""Statuses through the research index (research_assets/state/research_index.py) and the
rendered statuses `research status` prints (status_view.py), over synthetic researches of every
kind, on SQLite and on Postgres.

The records are written through Dagster's public APIs (requests via ``record_request``, runs via
``add_run``, materializations and observations as asset events, step failures in the runs' logs)
in the metadata shapes the real assets write. Each research's status is checked against what its
kind must show; then the index is checked to follow whatever changes in the instance (new events
and runs, retries, wipes, deleted runs) and to correct a stale or damaged copy of itself; the
view must print exactly what the statuses derived afresh say, at every step.
Nothing is timed here (see benchmarks/orchestration.py).
"""

import json
import math
import time
import uuid

import dagster as dg
import pytest
from dagster._core.events import DagsterEvent
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.plan.objects import ErrorSource, StepFailureData, UserFailureData
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._utils.error import SerializableErrorInfo

from research_assets.cli import leaderboard, status_table
from research_assets.defs.tags import PARTITION_TAG, WILL_RETRY_TAG, WORKER_TAG
from research_assets.state import metrics, research_index, status_view
from research_assets.state.metrics import compute_metrics, research_runs
from research_assets.state.records import (
    load_memory,
    load_statuses,
    record_cancel,
    record_request,
    spent_today_usd,
)
from research_assets.state.status_view import encode, read_statuses, status_json
from tests.lockbox_support import LOCKBOX_STATS, assert_no_lockbox, lockbox_fields
from tests.postgres_support import fresh_database, postgres_storage

PER_KIND = 3
TRAINING_REASONS = (
    "accuracy_below_threshold",
    "loss_above_threshold",
    "insufficient_loss_decrease",
)
BACKTEST_REASONS = ("win_rate_too_low", "drawdown_too_high", "sharpe_too_low")
# What each kind must show: (status, phase, reason or a callable of the index, gates).
KINDS = {
    "completed": ("completed", "done", None, ("passed", "passed")),
    "retried_completed": ("completed", "done", None, ("passed", "passed")),
    "rejected_training": (
        "rejected",
        "training",
        lambda i: TRAINING_REASONS[i % 3],
        ("failed", None),
    ),
    "rejected_backtest": (
        "rejected",
        "backtesting",
        lambda i: BACKTEST_REASONS[i % 3],
        ("passed", "failed"),
    ),
    "failed_user_reason": ("failed", "training", "llm_unavailable", (None, None)),
    "failed_error": ("failed", "backtesting", "no market data for XAUUSD/4h", ("passed", None)),
    "failed_no_events": ("failed", "designing", "run_failed", (None, None)),
    "incomplete": (
        "failed",
        "backtesting",
        "incomplete: stopped after trained_model",
        ("passed", None),
    ),
    "queued": ("queued", "designing", None, (None, None)),
    "queued_no_run": ("queued", "designing", None, (None, None)),
    "running": ("running", "training", None, (None, None)),
    # Its run's process died: run retries will start it again, so it shows queued.
    "awaiting_retry": ("queued", "training", None, (None, None)),
    "cancelled_run": ("cancelled", "designing", None, (None, None)),
    "cancelled_mark": ("cancelled", "training", None, (None, None)),
    "ui_partition": ("queued", "designing", None, (None, None)),
}
DATASET = "EURUSD/1h"
# Kinds whose research materialized a trained model (the others never got that far).
RESEARCH_ASSETS_OF = {
    kind: ("trained_model",)
    for kind in (
        "completed",
        "retried_completed",
        "rejected_training",
        "rejected_backtest",
        "failed_error",
        "incomplete",
    )
}
ASSETS = ("strategy_spec", "trained_model", "backtest_report", "assessment", "lockbox_report")
PNG = "![equity](data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUg" * 200 + ")"
USAGE = {
    "usage/input_tokens": 1200,
    "usage/output_tokens": 300,
    "usage/cache_creation_input_tokens": 0,
    "usage/cache_read_input_tokens": 50,
    "usage/cost_usd": 0.0081,
    "usage/model": "claude-test",
}
ORIGIN = RemoteJobOrigin(
    repository_origin=RemoteRepositoryOrigin(
        code_location_origin=RegisteredCodeLocationOrigin("research_assets"),
        repository_name="__repository__",
    ),
    job_name="research_job",
)
S, F, Q, ST, C = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELED,
)


@pytest.fixture(params=["sqlite", "postgres"])
def any_instance(request, tmp_path):
    if request.param == "sqlite":
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            yield instance
        return
    with (
        fresh_database() as db,
        dg.instance_for_test(
            temp_dir=str(tmp_path), overrides={"storage": postgres_storage(db)}
        ) as instance,
    ):
        yield instance


def spec_json(spec, name):
    data = spec.to_dict()
    data["name"] = name
    return dg.MetadataValue.json(data)


def backtest_stats(i):
    return {
        "Sharpe Ratio": 0.1 * i - 1.0,
        "Return [%]": 1.5,
        "# Trades": 40.0,
        "Max. Drawdown [%]": 3.2,
        "Win Rate [%]": 51.0,
        "Excess Return [%]": -2.25,
        "Deflated Sharpe Ratio": 0.4375,
    }


def gate_description(i, gate, reason):
    """What a gate writes as ``gate_description`` (GateResult.description: in numbers), or
    None for the materializations of every third research, written before there was one."""
    if i % 3 == 2:
        return None
    if gate:
        return f"passed: figure {i}.5 >= 0.25"
    return f"figure {i}.125 < 0.75 ({reason}); other 0.0625 > 0.5 (other_check)"


def report(period, figures):
    """A report's metadata; the lockbox's has figures of its own (sentinels that appear nowhere
    else, so that a lockbox figure found where it must not be is a leak)."""
    stats = {DATASET: figures}
    return {
        "period": period,
        "stats": dg.MetadataValue.json(stats),
        "summary": dg.MetadataValue.json(figures),
        "statistics": dg.MetadataValue.table(
            [dg.TableRecord({"dataset": DATASET, "label": "x", **figures})]
        ),
        "Sharpe Ratio": figures["Sharpe Ratio"],
        "# Trades": figures["# Trades"],
        "equity_curve": dg.MetadataValue.md(PNG),
    }


def metadata(asset, i, spec, gate=None, reason=""):
    """Metadata in the shapes the real assets write (see research_assets/defs/assets.py)."""
    described = gate_description(i, gate, reason)
    gate_md = {
        "gate_passed": gate,
        "gate_reason": reason,
        **({"gate_description": described} if described is not None else {}),
    }
    if asset == "strategy_spec":
        return {
            "strategy": f"strat_{i % 7}",
            "designer": "claude" if i % 2 else "offline",
            "fingerprint": f"{i:08x}",
            "seed": i,
            "spec": spec_json(spec, f"s{i}"),
            "rationale": dg.MetadataValue.md('a "quoted" \\ rationale, caf\u00e9'),
            **(USAGE if i % 2 else {}),
        }
    if asset == "trained_model":
        return {
            "test_accuracy": 0.55,
            "test_loss": 0.69,
            "loss_decrease": 0.1,
            "precision": 0.5,
            "recall": float("nan"),
            "f1": 0.5,
            "epochs_run": 8,
            "baseline_accuracy": 0.5,
            "accuracy_lift": 0.05,
            "label_entropy": 1.0,
            "loss_ratio": 0.69,
            "history": dg.MetadataValue.table([dg.TableRecord({"epoch": 1, "loss": 0.7})]),
            **gate_md,
        }
    if asset == "backtest_report":
        return {**report("backtest", backtest_stats(i)), **gate_md}
    if asset == "assessment":
        return {
            "verdict": ("promising", "neutral", "poor")[i % 3],
            "suggestions": dg.MetadataValue.json(["add RSI", "longer horizon"]),
            "assessor": "rule-based",
            **(USAGE if i % 2 else {}),
        }
    return report("lockbox", LOCKBOX_STATS)


def materialize(instance, pk, asset, md):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=asset, partition=pk, metadata=md)
    )


def add_run(instance, pk, status, worker="cpu", **tags):
    if status == F:
        tags.setdefault(WILL_RETRY_TAG, "false")  # what run retries decide, within seconds
    run = dg.DagsterRun(
        job_name="research_job",
        run_id=str(uuid.uuid4()),
        status=status,
        tags={PARTITION_TAG: pk, WORKER_TAG: worker, "research/id": pk, **tags},
        remote_job_origin=ORIGIN,
    )
    instance.add_run(run)
    return run.run_id


def step_failure(instance, run_id, step, message, reason=None):
    error = SerializableErrorInfo(message=f"{message}\nsecond line\n", stack=[], cls_name="Failure")
    user = (
        UserFailureData(
            label="intentional-failure", description=message, metadata={"reason": reason}
        )
        if reason
        else None
    )
    instance.report_dagster_event(
        DagsterEvent(
            event_type_value="STEP_FAILURE",
            job_name="research_job",
            step_key=step,
            event_specific_data=StepFailureData(
                error=error, user_failure_data=user, error_source=ErrorSource.USER_CODE_ERROR
            ),
        ),
        run_id=run_id,
    )


def build(instance, spec, per_kind=PER_KIND):
    """Every kind per_kind times; returns {research id: (kind, index)}."""
    made = {}
    n = 0
    for i in range(per_kind):
        for kind in KINDS:
            n += 1
            pk = f"r-20260101-{n:06d}-{kind[:4]}"
            made[pk] = (kind, i)
            worker = "gpu" if i % 2 == 0 else "cpu"
            if kind == "ui_partition":
                instance.add_dynamic_partitions("research", [pk])
                continue
            record_request(
                instance, pk, seed=i, worker=worker, brief="BTC trend" if i % 3 == 0 else None
            )

            def mat(asset, gate=None, reason="", pk=pk, i=i):
                materialize(instance, pk, asset, metadata(asset, i, spec, gate, reason))

            if kind in ("completed", "retried_completed"):
                if kind == "retried_completed":
                    add_run(instance, pk, F, worker, **{WILL_RETRY_TAG: "true"})
                    mat("strategy_spec")
                add_run(instance, pk, S, worker)
                mat("strategy_spec")
                mat("trained_model", True)
                mat("backtest_report", True)
                mat("assessment")
                mat("lockbox_report")
            elif kind == "rejected_training":
                add_run(instance, pk, F, worker)
                mat("strategy_spec")
                mat("trained_model", False, TRAINING_REASONS[i % 3])
            elif kind == "rejected_backtest":
                add_run(instance, pk, F, worker)
                mat("strategy_spec")
                mat("trained_model", True)
                mat("backtest_report", False, BACKTEST_REASONS[i % 3])
            elif kind == "failed_user_reason":
                run_id = add_run(instance, pk, F, worker)
                mat("strategy_spec")
                instance.report_runless_asset_event(
                    dg.AssetObservation(
                        asset_key="assessment", partition=pk, metadata={**USAGE, "failed": True}
                    )
                )
                step_failure(
                    instance,
                    run_id,
                    "trained_model",
                    "llm_unavailable: overloaded",
                    "llm_unavailable",
                )
            elif kind == "failed_error":
                run_id = add_run(instance, pk, F, worker)
                mat("strategy_spec")
                mat("trained_model", True)
                step_failure(instance, run_id, "backtest_report", "no market data for XAUUSD/4h")
            elif kind == "failed_no_events":
                add_run(instance, pk, F, worker)
                instance.report_runless_asset_event(
                    dg.AssetObservation(
                        asset_key="strategy_spec", partition=pk, metadata={**USAGE, "failed": True}
                    )
                )
            elif kind == "incomplete":
                add_run(instance, pk, S, worker)
                mat("strategy_spec")
                mat("trained_model", True)
            elif kind == "queued":
                add_run(instance, pk, Q, worker)
            elif kind == "running":
                add_run(instance, pk, ST, worker)
                mat("strategy_spec")
            elif kind == "awaiting_retry":
                add_run(instance, pk, F, worker, **{WILL_RETRY_TAG: "true"})
                mat("strategy_spec")
            elif kind == "cancelled_run":
                add_run(instance, pk, C, worker)
            elif kind == "cancelled_mark":
                add_run(instance, pk, F, worker)
                mat("strategy_spec")
                record_cancel(instance, pk)
    return made


def statuses_with_specs(instance, ids=None):
    return load_statuses(instance, ids, with_specs=True)


def view_agrees(instance, ids=None) -> bool:
    """What `research status` prints (the view) is what the statuses derived now say."""
    got = [
        (r.data, r.sharpe, r.excess_return, r.deflated_sharpe) for r in read_statuses(instance, ids)
    ]
    want = [
        (
            json.loads(encode(s)),
            *(
                s.backtest_summary.get(k)
                for k in ("Sharpe Ratio", "Excess Return [%]", "Deflated Sharpe Ratio")
            ),
        )
        for s in load_statuses(instance, ids)
    ]
    assert repr(got) == repr(want)
    return True


def snapshot(statuses):
    """Everything a status carries, the spec and the memory record included (repr: NaN
    compares equal to itself)."""
    return repr(
        [
            (
                s.to_json(),
                s.brief,
                s.training,
                s.backtest_summary,
                s.suggestions,
                s.spec.to_dict() if s.spec else None,
                s.to_memory_record().to_prompt_dict(),
            )
            for s in statuses
        ]
    )


def check_kinds(statuses, built):
    assert len(statuses) == len(built)
    assert [s.created_at for s in statuses] == sorted(s.created_at for s in statuses)
    for s in statuses:
        kind, i = built[s.id]
        status, phase, reason, gates = KINDS[kind]
        reason = reason(i) if callable(reason) else reason
        assert (s.status, s.phase, s.reason) == (status, phase, reason), (s.id, kind)
        assert (s.gates["training_gate"], s.gates["backtest_gate"]) == gates, (s.id, kind)
        # A rejection says why in numbers, or with its reason where the gate recorded no
        # description (written before there was one).
        failed = next(
            (
                g
                for g, o in zip(("training_gate", "backtest_gate"), gates, strict=True)
                if o == "failed"
            ),
            None,
        )
        why = (gate_description(i, False, reason) or reason) if failed else reason
        assert s.reason_detail == why, (s.id, kind)
        assert s.to_json()["reason_detail"] == why
        # Memory (what designers read) has the numbers too, where the gate recorded them.
        assert s.to_memory_record().gate_description == (
            gate_description(i, False, reason) if failed else None
        ), (s.id, kind)
        if "trained_model" in RESEARCH_ASSETS_OF.get(kind, ()):
            assert s.training["accuracy_lift"] == 0.05 and "gate_description" not in s.training
        if kind == "rejected_backtest":
            # Its out-of-sample figures, as a completed research's; no lockbox was evaluated.
            assert s.backtest == {DATASET: backtest_stats(i)}
            assert s.backtest_summary == backtest_stats(i)
            assert s.lockbox is None
        if kind != "ui_partition":  # neither a request nor a run says its worker yet
            assert s.worker == ("gpu" if i % 2 == 0 else "cpu"), (s.id, kind)
        if kind in ("completed", "retried_completed"):
            assert s.backtest == {DATASET: backtest_stats(i)}
            assert s.backtest_summary == backtest_stats(i)
            # The lockbox's own figures, for the leaderboard, and in nothing a designer reads.
            assert s.lockbox == {DATASET: LOCKBOX_STATS}
            assert_no_lockbox(
                s.backtest,
                s.backtest_summary,
                s.training,
                s.suggestions,
                s.to_memory_record(),
                where=f"{s.id}'s memory record",
            )
            assert s.verdict == ("promising", "neutral", "poor")[i % 3]
            assert s.suggestions == ("add RSI", "longer horizon")
            assert math.isnan(s.training["recall"])
            assert s.spec is not None and s.spec.name == f"s{i}"
            # Every billed call counts: a design paid twice (before and after a retry) too.
            designs = 2 if kind == "retried_completed" else 1
            assert s.tokens["input_tokens"] == (1200 * (designs + 1) if i % 2 else 0)
        if kind in ("failed_user_reason", "failed_no_events"):
            # The turns billed by the failed LLM call count, on top of the design's.
            design = 1200 if i % 2 and kind == "failed_user_reason" else 0
            assert s.tokens["input_tokens"] == 1200 + design
            assert s.cost_usd == pytest.approx(0.0081 * (1 + bool(design)))
        if kind == "ui_partition":
            assert s.created_at == 0.0 and s.run_id is None
        if kind == "queued_no_run":
            assert s.run_id is None and s.created_at > 0


def check_tables(instance, statuses, built):
    """What `research status` and `research run`'s leaderboard print: each rejection's why in
    numbers (its reason where the gate recorded none); a research rejected at the backtest gate
    with its out-of-sample figures, as a completed one, and an empty lockbox."""
    table = {line.split()[0]: line for line in status_table(read_statuses(instance)).splitlines()}
    header, *rows = leaderboard(statuses).splitlines()
    assert header.endswith("cost $  reason")
    board = {line.split()[1]: line.split(None, 15) for line in rows}
    for s in statuses:
        kind, i = built[s.id]
        if s.reason:
            assert table[s.id].endswith(s.reason_detail), (kind, table[s.id])
            assert " ".join(board[s.id][15:]) == s.reason_detail, (kind, board[s.id])
        if s.status == "rejected" and gate_description(i, False, s.reason) is not None:
            assert s.reason_detail.startswith(f"figure {i}.125 < 0.75 ({s.reason})")
        figures = board[s.id][4:14]  # sharpe .. lockbox excess%
        if kind in ("completed", "retried_completed", "rejected_backtest"):
            b = backtest_stats(i)
            assert figures[:7] == [
                f"{b['Sharpe Ratio']:.2f}",
                "1.50",
                "-2.25",
                "3.20",
                "51.00",
                "40",
                "0.44",
            ], (kind, figures)
            assert (figures[7:] == ["-", "-", "-"]) == (kind == "rejected_backtest"), figures
            assert table[s.id].split()[8:11] == [figures[0], "-2.25", "0.44"], table[s.id]
        else:
            assert set(figures) == {"-"}, (kind, figures)
            assert table[s.id].split()[8:11] == ["-", "-", "-"], table[s.id]


def test_every_kind_of_research_gets_its_status_cold_and_warm(
    any_instance, small_spec, monkeypatch
):
    built = build(any_instance, small_spec)
    cold = statuses_with_specs(any_instance)
    check_kinds(cold, built)
    memory = repr([r.to_prompt_dict() for r in load_memory(any_instance).records])
    # Every completed research's status shows its lockbox figures; the memory built from the
    # same instance holds none of them (nor does any record, in any field).
    assert lockbox_fields([s.to_json() for s in cold]) == set(LOCKBOX_STATS)
    assert_no_lockbox(memory, load_memory(any_instance).records, where="memory")

    # Warm: only index queries; no event read again, and no run but those still in flight.
    reads = []
    for name in ("fetch_materializations", "fetch_observations", "get_run_records", "all_logs"):
        original = getattr(any_instance, name)
        # (The view's instance mark reads the newest run record: limit=1, no body of a research's.)
        monkeypatch.setattr(
            any_instance,
            name,
            lambda *a, _o=original, _n=name, **k: (
                (k.get("limit") == 1 or reads.append(_n) or True) and _o(*a, **k)
            ),
        )
    warm = statuses_with_specs(any_instance)
    assert set(reads) <= {"get_run_records"}
    assert snapshot(warm) == snapshot(cold)
    assert repr([r.to_prompt_dict() for r in load_memory(any_instance).records]) == memory
    assert view_agrees(any_instance)
    check_tables(any_instance, cold, built)
    # A warm view reads no event and no run, but failed runs whose retry is not decided.
    reads.clear()
    retrying = [
        s.run_id
        for s in cold
        if s.run_id and any_instance.get_run_by_id(s.run_id).tags.get(WILL_RETRY_TAG) == "true"
    ]
    assert retrying
    monkeypatch.setattr(
        any_instance,
        "get_runs",
        lambda *a, _o=any_instance.get_runs, **k: (
            reads.append(("get_runs", tuple(sorted(a[0].run_ids)))) or _o(*a, **k)
        ),
    )
    assert [r.id for r in read_statuses(any_instance)] == [s.id for s in cold]
    assert reads == [("get_runs", tuple(sorted(retrying)))]
    monkeypatch.undo()

    # A few ids read the same as all of them, and an empty index is rebuilt to the same.
    few = [s.id for s in cold][::5]
    assert snapshot(statuses_with_specs(any_instance, few)) == snapshot(
        [s for s in cold if s.id in set(few)]
    )
    assert view_agrees(any_instance, few)
    research_index.reset(any_instance)
    assert view_agrees(any_instance)
    assert snapshot(statuses_with_specs(any_instance)) == snapshot(cold)
    runs = research_runs(any_instance)
    assert sorted(r["run_id"] for r in runs) == sorted(any_instance.get_run_ids())


@pytest.fixture(params=["busy", "quiet"])
def quiet(request, monkeypatch):
    """ "quiet": the view's instance mark is taken at once (status_view._QUIET_S = 0, as on an
    instance whose runs last changed a while ago), so that a read of every research whose mark
    has not moved skips the fingerprints: whatever changes must move the mark."""
    if request.param == "quiet":
        monkeypatch.setattr(status_view, "_QUIET_S", 0.0)
    return request.param == "quiet"


def test_the_index_follows_the_instance(any_instance, small_spec, quiet):
    built = build(any_instance, small_spec, per_kind=1)
    by_kind = {kind: pk for pk, (kind, _i) in built.items()}
    load_statuses(any_instance)

    def status_of(pk):
        assert view_agrees(any_instance) and view_agrees(any_instance, [pk])
        return {s.id: s for s in load_statuses(any_instance)}[pk]

    # A running research goes on to complete.
    pk = by_kind["running"]
    for asset, gate in (("trained_model", True), ("backtest_report", True), ("assessment", None)):
        materialize(any_instance, pk, asset, metadata(asset, 0, small_spec, gate))
    assert status_of(pk).phase == "evaluating_lockbox"
    materialize(any_instance, pk, "lockbox_report", metadata("lockbox_report", 0, small_spec))
    assert status_of(pk).status == "completed"
    assert status_of(pk).lockbox == {DATASET: LOCKBOX_STATS}
    assert status_of(pk).backtest == {DATASET: backtest_stats(0)}

    # A queued run starts, then fails; once run retries say so it awaits its retry, and the
    # retry run is what the research shows next.
    pk = by_kind["queued"]
    [run] = any_instance.get_runs(dg.RunsFilter(tags={PARTITION_TAG: pk}))
    any_instance.handle_new_event(_run_event(run, "PIPELINE_START"))
    assert status_of(pk).status == "running"
    any_instance.handle_new_event(_run_event(run, "PIPELINE_FAILURE"))
    assert (status_of(pk).status, status_of(pk).reason) == ("failed", "run_failed")
    any_instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: "true"})
    assert status_of(pk).status == "queued"
    retry = add_run(any_instance, pk, ST)
    assert (status_of(pk).status, status_of(pk).run_id) == ("running", retry)

    # A deleted run is forgotten; a cancel mark is seen.
    any_instance.delete_run(retry)
    assert status_of(pk).run_id == run.run_id
    record_cancel(any_instance, pk)
    assert status_of(pk).status == "cancelled"

    # A wiped asset's events are gone from every status.
    done = by_kind["completed"]
    assert status_of(done).lockbox is not None
    any_instance.wipe_assets([dg.AssetKey("lockbox_report")])
    assert status_of(done).lockbox is None and status_of(done).status != "completed"


def test_a_stale_or_damaged_index_is_corrected(any_instance, small_spec, quiet):
    built = build(any_instance, small_spec, per_kind=1)
    load_statuses(any_instance)
    read_statuses(any_instance)
    keys = {
        research_index.row_key(b, row)
        for b in range(research_index.BUCKETS)
        for row in (research_index.STATUS_ROW, research_index.SPEC_ROW, research_index.VIEW_ROW)
    }
    old = dict(any_instance.run_storage.get_cursor_values(keys))
    pk = next(pk for pk, (kind, _i) in built.items() if kind == "running")
    for asset, gate in (
        ("trained_model", True),
        ("backtest_report", True),
        ("assessment", None),
        ("lockbox_report", None),
    ):
        materialize(any_instance, pk, asset, metadata(asset, 0, small_spec, gate))
    [run] = any_instance.get_runs(dg.RunsFilter(tags={PARTITION_TAG: pk}))
    any_instance.handle_new_event(_run_event(run, "PIPELINE_SUCCESS"))
    expected = snapshot(statuses_with_specs(any_instance))

    # A reader that started before those changes writes back what it had read.
    for key, value in old.items():
        any_instance.run_storage.set_cursor_values({key: value})
    assert view_agrees(any_instance)
    assert snapshot(statuses_with_specs(any_instance)) == expected
    # Rows that are not an index at all, or entries that are not.
    for key in keys:
        any_instance.run_storage.set_cursor_values({key: "not json {"})
    assert view_agrees(any_instance)
    assert snapshot(statuses_with_specs(any_instance)) == expected
    for b in range(research_index.BUCKETS):
        any_instance.run_storage.set_cursor_values(
            {research_index.row_key(b, research_index.VIEW_ROW): json.dumps({pk: [1, "x"]})}
        )
    assert view_agrees(any_instance)


def test_a_quiet_instance_is_read_from_the_view_alone(any_instance, small_spec, monkeypatch):
    """Once a read of every research completed the view and nothing moved since, the next one
    checks no research's fingerprint; a view row written since by a read of a few researches,
    a new run and a new partition each send it back to the fingerprints."""
    monkeypatch.setattr(status_view, "_QUIET_S", 0.0)
    build(any_instance, small_spec, per_kind=1)
    first = [r.document for r in read_statuses(any_instance)]
    calls = []
    original = any_instance.get_run_partition_data
    monkeypatch.setattr(
        any_instance, "get_run_partition_data", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    assert [r.document for r in read_statuses(any_instance)] == first and calls == []
    # `research status --json` prints what that read printed, without reading the view.
    assert status_json(any_instance) == '{"researches": [' + ", ".join(first) + "]}"
    assert calls == []
    # A read of a few researches rewrites their rows: the next complete read checks again.
    some = [r.id for r in read_statuses(any_instance)][:3]
    status_view.write_rows(
        any_instance,
        {
            status_view.row_key(research_index.bucket_of(some[0]), research_index.VIEW_ROW): {
                some[0]: [1, "x"]
            }
        },
    )
    assert view_agrees(any_instance) and calls
    calls.clear()
    assert view_agrees(any_instance) and calls == []
    # A new run, then a new research: each is seen.
    waiting = next(r.id for r in read_statuses(any_instance) if r.data["run_id"] is None)
    add_run(any_instance, waiting, ST)
    assert view_agrees(any_instance) and calls
    assert {r.id: r.data["status"] for r in read_statuses(any_instance)}[waiting] == "running"
    assert {r["id"]: r["status"] for r in json.loads(status_json(any_instance))["researches"]}[
        waiting
    ] == "running"
    record_request(any_instance, "r-20990101-000000-ffff", seed=1)
    assert "r-20990101-000000-ffff" in [r.id for r in read_statuses(any_instance)]

    # Metrics keep what they derive from every research while nothing moves; a partition
    # deleted (no event, no run) moves the mark: gone from status and metrics.
    before = compute_metrics(any_instance)
    derived = []
    original_read = metrics.read_statuses
    monkeypatch.setattr(metrics, "read_statuses", lambda i: derived.append(1) or original_read(i))
    assert compute_metrics(any_instance) == before and derived == []
    any_instance.delete_dynamic_partition("research", "r-20990101-000000-ffff")
    printed = json.loads(status_json(any_instance))["researches"]
    assert "r-20990101-000000-ffff" not in [r["id"] for r in printed]
    after = compute_metrics(any_instance)
    assert derived and after["researches"]["total"] == before["researches"]["total"] - 1


def test_metrics_agree_with_the_events(any_instance, small_spec):
    """`research metrics` reads the summaries: what they say was spent today and how many runs
    there are is what the events and runs say."""
    build(any_instance, small_spec, per_kind=1)
    metrics = compute_metrics(any_instance)
    spent = spent_today_usd(any_instance)
    assert spent > 0 and metrics["today"]["cost_usd"] == round(spent, 6)
    assert sum(metrics["runs"].values()) == len(any_instance.get_run_ids())
    assert metrics["researches"]["total"] == len(load_statuses(any_instance))


def _run_event(run, event_type):
    """A run lifecycle event, as the run worker writes it (it moves the run's status)."""
    return EventLogEntry(
        error_info=None,
        level="debug",
        user_message="",
        run_id=run.run_id,
        timestamp=time.time(),
        dagster_event=DagsterEvent(event_type_value=event_type, job_name=run.job_name),
    )


def test_the_kept_output_is_read_whole_or_not_at_all(any_instance, small_spec, monkeypatch):
    """`research status --json`'s output is kept in pieces, each under the token of its write:
    a piece another read wrote since is never mixed in."""
    monkeypatch.setattr(status_view, "_QUIET_S", 0.0)
    monkeypatch.setattr(status_view, "_OUTPUT_CHUNK", 500)
    build(any_instance, small_spec, per_kind=1)
    documents = [r.document for r in read_statuses(any_instance)]  # keeps the output
    expected = '{"researches": [' + ", ".join(documents) + "]}"
    stored = any_instance.run_storage.get_cursor_values({status_view.OUTPUT_MARK_KEY})
    _mark, _token, pieces = json.loads(stored[status_view.OUTPUT_MARK_KEY])
    assert pieces > 2
    assert status_json(any_instance) == expected
    piece = research_index.row_key(1, research_index.OUTPUT_ROW)
    any_instance.run_storage.set_cursor_values({piece: "0123456789ab\n, {}"})
    assert status_json(any_instance) == expected
