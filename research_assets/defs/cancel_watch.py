"""Makes sure a cancelled run stops, even when Dagster's one interrupt is lost.

Dagster stops a running run by marking it CANCELING and sending its process one SIGINT, which
raises an interrupt in whatever Python code runs at that moment. When that code is a finalizer
or a weakref callback run by the garbage collector, Python reports the exception as "ignored"
and drops it: the run goes on to its end. Seen here under load: a research cancelled while it
trained finished training two minutes later, backtested and ended `rejected` instead of
`cancelled`.

This resource lives as long as the run. A thread polls the run's status; once the run has been
CANCELING (or CANCELED) for ``resend_after_s`` while one of its steps is still running, it
interrupts the process again, and again every ``resend_after_s``, until the step stops. It
interrupts only inside a step, where Dagster turns the signal into the step's failure: outside
one, Dagster holds an interrupt and raises it at its next checkpoint, which may be a resource's
teardown, and an interrupted teardown skips the teardowns after it.

What this cannot speed up: with the in-process executor, a run waiting for a pool slot checks
for an interrupt only when it gets the slot, so a research cancelled there stops then.

What it works around (Dagster 1.13.27): cancelling a run sets its termination event in the code
server (``CancelExecution`` in ``dagster/_grpc/server.py``); the run's process then interrupts
itself exactly once (``_termination_handler`` in ``dagster/_utils/__init__.py`` calls
``send_interrupt`` from ``dagster_shared/ipc.py``: one ``os.kill(pid, SIGINT)``). An interrupt
that lands in a finalizer is lost, as dagster-io/dagster#2919 reported ("Run termination fails if
the interrupt signal that it throws happens to be raised inside a destructor"; closed, yet
1.13.27 still sends the one interrupt). Run monitoring does not finish a run stuck in
CANCELING either: that is the open dagster-io/dagster#13155.

When it can go: once Dagster interrupts a cancelled run's process again while the run goes on
(or run monitoring ends runs stuck in CANCELING, #13155). Then delete this module and the
``cancel_watch`` resource; ``tests/defs/test_cancel_watch.py`` shows whether a lost interrupt
still stops its run.
"""

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

_STOPPING = {dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED}
_STEP_START = dg.DagsterEventType.STEP_START
_STEP_EVENTS = {
    _STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
    dg.DagsterEventType.STEP_UP_FOR_RETRY,
}


class CancelWatchResource(dg.ConfigurableResource):
    """Interrupts the run's process again while its run is cancelled and still running."""

    poll_interval_s: float = 1.0
    resend_after_s: float = 3.0

    @contextmanager
    def yield_for_execution(
        self, context: dg.InitResourceContext
    ) -> Iterator["CancelWatchResource"]:
        instance, run = context.instance, context.run
        run_id = run.run_id if run is not None else None
        # Python runs signal handlers in the main thread only: elsewhere Dagster does not turn
        # SIGINT into an interrupt either, so there is nothing to watch.
        if (
            instance is None
            or run_id is None
            or (threading.current_thread() is not threading.main_thread())
        ):
            yield self
            return
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch,
            args=(instance, run_id, stop, self.poll_interval_s, self.resend_after_s),
            name=f"cancel-watch-{run_id[:8]}",
            daemon=True,
        )
        watcher.start()
        try:
            yield self
        finally:
            # Joined before the run's teardown goes on (the thread checks ``stop`` just before
            # it interrupts): no interrupt of its own comes after this.
            stop.set()
            watcher.join()


def _watch(
    instance: dg.DagsterInstance,
    run_id: str,
    stop: threading.Event,
    poll_interval_s: float,
    resend_after_s: float,
) -> None:
    since = None  # when the run was first seen cancelled, then when it was last interrupted
    while not stop.wait(poll_interval_s):
        try:
            run = instance.get_run_by_id(run_id)
        except Exception:  # a storage hiccup: the next poll asks again
            continue
        if run is None or run.status not in _STOPPING:
            continue
        now = time.monotonic()
        if since is None:
            since = now  # Dagster's own interrupt is on its way: give it time to land
        elif now - since >= resend_after_s and _in_step(instance, run_id) and not stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            since = now


def _in_step(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether a step of the run is running: its newest step event is a start. (The research
    job's executor runs one step at a time.)"""
    try:
        newest = instance.get_records_for_run(
            run_id, of_type=_STEP_EVENTS, limit=1, ascending=False
        ).records
    except Exception:  # a storage hiccup: the next poll asks again
        return False
    return bool(newest) and newest[0].event_log_entry.dagster_event_type == _STEP_START
