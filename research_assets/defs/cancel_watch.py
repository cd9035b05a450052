"""Makes sure a cancelled run stops, even when Dagster's one interrupt is lost.

Dagster stops a running run by marking it CANCELING and sending its process one SIGINT, which
raises an interrupt in whatever Python code runs at that moment. When that code is a finalizer
or a weakref callback run by the garbage collector, Python reports the exception as "ignored"
and drops it: the run goes on to its end. Seen here under load: a research cancelled while it
trained finished training two minutes later, backtested and ended `rejected` instead of
`cancelled`.

This resource lives as long as the run. A thread polls the run's status; once the run has been
CANCELING (or CANCELED) for ``resend_after_s``, it interrupts the process again, and again every
``resend_after_s``, until the run's steps stop. An interrupt that reaches Dagster's own code
between steps is held there and raised at the next step, so a second one does no harm.
"""

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

_STOPPING = {dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED}


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
        if instance is None or run_id is None or (
                threading.current_thread() is not threading.main_thread()):
            yield self
            return
        stop = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(instance, run_id, stop, self.poll_interval_s,
                                 self.resend_after_s),
            name=f"cancel-watch-{run_id[:8]}", daemon=True,
        )
        watcher.start()
        try:
            yield self
        finally:
            # Joined before the run's teardown goes on: no interrupt comes after this.
            stop.set()
            watcher.join()


def _watch(instance: dg.DagsterInstance, run_id: str, stop: threading.Event,
           poll_interval_s: float, resend_after_s: float) -> None:
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
        elif now - since >= resend_after_s:
            os.kill(os.getpid(), signal.SIGINT)
            since = now
