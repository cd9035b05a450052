"""Run retries as behaviour on a real daemon, with the repository's dagster.yaml: a run whose
process dies (SIGKILL) is failed and retried from the failure at most 3 times, and a run that a
gate stopped is never retried.

The number 3 is the README's promise, written here rather than read from dagster.yaml, so that a
changed `run_retries.max_retries` fails these tests instead of moving them along with it.
"""

import json
import os
import signal
import time
from dataclasses import dataclass

import dagster as dg
import pytest

from research_assets.state.records import record_request
from tests.gate_support import OPEN_GATES_ENV
from tests.integration.conftest import (
    Daemon,
    describe,
    make_spec,
    research_cli,
    runs_of,
    statuses_by_id,
    step_events,
    step_started,
    stop_and_check_no_strays,
    wait_final,
    wait_for,
)
from tests.integration.test_recovery import run_worker_pid

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_RETRIES = 3  # README: "retried from the failure, at most 3 times"
# The daemon's retry loop (the event log consumer) looks for failed runs every 5 s: a retry that
# was going to come has come within a few of its ticks.
RETRY_TICK_S = 5
IN_FLIGHT = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


@pytest.fixture
def backend() -> str:
    """SQLite only: what is under test is the daemon's retry and monitoring loops, which read
    the same run records on either storage (Postgres would double minutes of killing runs)."""
    return "sqlite"


def cli_status(home, research_id: str) -> dict:
    """`research status ID --json`, as a user reads it."""
    result = research_cli(home, "status", research_id, "--json")
    assert result.returncode == 0, result.stderr
    [found] = json.loads(result.stdout.strip().splitlines()[-1])["researches"]
    assert found["id"] == research_id, found
    return found


def worker_death_noticed(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether the run's log says its worker was killed: the code server's word (the process it
    started "was terminated by signal 9") or run monitoring's (the launcher's "is gone")."""
    return any(
        "terminated by signal 9" in (e.message or "") or "is gone" in (e.message or "")
        for e in instance.all_logs(
            run_id, of_type={dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.RUN_FAILURE}
        )
    )


def sleep_watching(seconds: float, check) -> None:
    """Sleep, calling ``check`` (which asserts) every half second meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(0.5)
    check()


# -- a run whose process dies: retried at most 3 times -------------------------------------


def test_a_run_killed_every_time_is_retried_three_times_then_fails(instance, daemon, dagster_home):
    """SIGKILL to the run worker of the original run and of each retry as it starts training:
    each one is failed, run retries start the next from the failure, and after the third retry
    dies the research ends `failed` with no fifth run."""
    research_id = "r-killed-every-time"
    # Training that would last over a minute (about 0.07 s per epoch): each run is killed in it.
    record_request(
        instance,
        research_id,
        seed=1,
        spec=make_spec(epochs=1000, symbol="BTCUSD", early_stopping=False),
    )
    ids = [research_id]
    most_in_flight = 0

    def runs():
        nonlocal most_in_flight
        daemon.check_alive()
        found = runs_of(instance, research_id)
        most_in_flight = max(most_in_flight, sum(r.status in IN_FLIGHT for r in found))
        return found

    killed: list[dg.DagsterRun] = []
    retry_latency: list[float] = []  # from a killed run's end to its retry's creation
    for attempt in range(MAX_RETRIES + 1):

        def training(attempt=attempt):
            found = runs()
            assert len(found) <= attempt + 1, (
                f"a run of {research_id} was started before run {attempt + 1} was killed\n"
                + describe(instance, ids)
            )
            if killed and len(found) == attempt:
                verdict = instance.get_run_by_id(killed[-1].run_id).tags.get("dagster/will_retry")
                assert verdict != "false", (
                    f"run retries gave up after {attempt - 1} retries, not {MAX_RETRIES}\n"
                    + describe(instance, ids)
                )
            return (
                len(found) == attempt + 1
                and found[attempt].status == dg.DagsterRunStatus.STARTED
                and step_started(instance, found[attempt].run_id, "trained_model")
                and found[attempt]
            )

        run = wait_for(
            training,
            300,
            f"run {attempt + 1} of {research_id} to start training",
            interval=0.5,
            on_timeout=lambda: describe(instance, ids) + "\n" + daemon.log_tail(30),
        )
        if attempt:
            parent = killed[-1]
            assert run.tags.get("dagster/parent_run_id") == parent.run_id, run.tags
            assert run.tags.get("dagster/root_run_id") == killed[0].run_id, run.tags
            assert run.tags.get("dagster/retry_number") == str(attempt), run.tags
            parent_end = instance.get_run_record_by_id(parent.run_id).end_time
            created = instance.get_run_record_by_id(run.run_id).create_timestamp.timestamp()
            retry_latency.append(created - parent_end)
            # Retried from the failure: the design that finished in the first run is not redone.
            assert not [
                e for e in step_events(instance, run.run_id) if e.step_key == "strategy_spec"
            ], describe(instance, ids)
        os.kill(run_worker_pid(instance, run.run_id, dagster_home), signal.SIGKILL)
        killed.append(run)

        def failed(run_id=run.run_id):
            runs()
            record = instance.get_run_record_by_id(run_id)
            return record.dagster_run.status == dg.DagsterRunStatus.FAILURE and record

        wait_for(
            failed,
            120,
            f"killed run {attempt + 1} to be failed",
            interval=0.5,
            on_timeout=lambda: describe(instance, ids) + "\n" + daemon.log_tail(30),
        )

    last = killed[-1]

    # Run retries' verdict on the last run, tagged as it is failed (or by the retry loop).
    def decided():
        runs()
        return instance.get_run_by_id(last.run_id).tags.get("dagster/will_retry")

    will_retry = wait_for(decided, 60, "the retry decision on the last run")
    assert will_retry == "false", (
        f"run retries would retry the run after {MAX_RETRIES} retries\n" + describe(instance, ids)
    )

    # No fifth run, however long one waits: several of the retry loop's ticks, and at least
    # twice the longest time a retry took to appear in this test.
    window = max(4 * RETRY_TICK_S, 2 * max(retry_latency))

    def no_fifth_run():
        found = runs()
        assert len(found) == MAX_RETRIES + 1, (
            f"{len(found)} runs of {research_id}: run retries went past {MAX_RETRIES}\n"
            + describe(instance, ids)
        )

    sleep_watching(window, no_fifth_run)

    found = runs_of(instance, research_id)
    assert [r.run_id for r in found] == [r.run_id for r in killed], describe(instance, ids)
    assert most_in_flight == 1, f"{most_in_flight} runs of one research in flight at once"
    for run in found:
        assert run.status == dg.DagsterRunStatus.FAILURE, describe(instance, ids)
        # Failed from outside because its worker died, not by a step: the one kind of failure
        # that run retries act on. The code server that started the worker sees it die within a
        # second; run monitoring (the launcher's health check) is there for when it cannot.
        assert run.tags.get("dagster/failure_reason") != "STEP_FAILURE", run.tags
        assert worker_death_noticed(instance, run.run_id), [
            e.message
            for e in instance.all_logs(
                run.run_id,
                of_type={dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.RUN_FAILURE},
            )
        ]
        # Killed while training: that step never finished in any run.
        assert not [
            e
            for e in step_events(instance, run.run_id)
            if e.step_key == "trained_model"
            and e.dagster_event_type != dg.DagsterEventType.STEP_START
        ]
    assert [r.tags.get("dagster/will_retry") for r in found] == ["true"] * MAX_RETRIES + ["false"]

    [status] = statuses_by_id(instance, ids).values()
    assert status.status == "failed", describe(instance, ids)
    shown = cli_status(dagster_home, research_id)
    assert shown["status"] == "failed", shown
    assert shown["gates"] == {"training_gate": None, "backtest_gate": None}, shown


# -- a run stopped by a gate: never retried ------------------------------------------------


@dataclass(frozen=True)
class GateCase:
    gate: str
    env: dict[str, str]  # GATE_* for the daemon, inherited by its code server and run workers
    reason: str
    phase: str
    gates: dict[str, str]


GATE_CASES = [
    # No model is right on every bar: accuracy, the first check, fails.
    GateCase(
        "training_gate",
        {"GATE_TRAINING_MIN_ACCURACY": "1"},
        "accuracy_below_threshold",
        "training",
        {"training_gate": "failed", "backtest_gate": None},
    ),
    # Training wide open; no backtest reaches a Sharpe ratio of a million.
    GateCase(
        "backtest_gate",
        {**OPEN_GATES_ENV, "GATE_BACKTEST_MIN_SHARPE": "1000000"},
        "sharpe_too_low",
        "backtesting",
        {"training_gate": "passed", "backtest_gate": "failed"},
    ),
]


@pytest.fixture(params=GATE_CASES, ids=[c.gate for c in GATE_CASES])
def gate_case(request) -> GateCase:
    return request.param


@pytest.fixture
def gated_daemon(dagster_home, instance, gate_case):
    d = Daemon(dagster_home, instance, env=gate_case.env)
    try:
        yield d.start()
    finally:
        stop_and_check_no_strays(d, dagster_home)


def test_a_run_stopped_by_a_gate_is_not_retried(instance, gated_daemon, dagster_home, gate_case):
    research_id = f"r-gate-{gate_case.gate.split('_')[0]}"
    ids = [research_id]
    record_request(instance, research_id, seed=1, spec=make_spec())

    statuses = wait_final(instance, ids, 300, gated_daemon)
    assert statuses[research_id].status == "rejected", describe(instance, ids)
    [run] = runs_of(instance, research_id)
    wait_for(
        lambda: instance.get_run_by_id(run.run_id).is_finished,
        60,
        "the rejected research's run to end",
    )
    run = instance.get_run_by_id(run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE, describe(instance, ids)
    # The gate's refusal is a step failure, which dagster.yaml does not retry (the verdict is
    # tagged just after the run's status changes).
    assert run.tags.get("dagster/failure_reason") == "STEP_FAILURE", run.tags
    will_retry = wait_for(
        lambda: instance.get_run_by_id(run.run_id).tags.get("dagster/will_retry"),
        30,
        "the retry decision on the run",
    )
    assert will_retry == "false", f"a run stopped by a gate will be retried\n{run.tags}"

    # The retry loop has seen the failed run and turned it down (Dagster logs that it does not
    # retry a step failure) ...
    def declined():
        gated_daemon.check_alive()
        return [
            e
            for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if (e.message or "").startswith("Not retrying run")
        ]

    wait_for(
        declined,
        60,
        "the retry loop to decline the failed run",
        interval=0.5,
        on_timeout=gated_daemon.log_tail,
    )

    # ... and a few more of its ticks bring no second run.
    def one_run():
        gated_daemon.check_alive()
        found = runs_of(instance, research_id)
        assert len(found) == 1, f"a run stopped by a gate was retried\n{describe(instance, ids)}"

    sleep_watching(2 * RETRY_TICK_S, one_run)
    assert "dagster/auto_retry_run_id" not in instance.get_run_by_id(run.run_id).tags

    [status] = statuses_by_id(instance, ids).values()
    assert (status.status, status.phase, status.reason) == (
        "rejected",
        gate_case.phase,
        gate_case.reason,
    ), describe(instance, ids)
    shown = cli_status(dagster_home, research_id)
    assert (shown["status"], shown["reason"]) == ("rejected", gate_case.reason), shown
    assert shown["gates"] == gate_case.gates, shown
