"""Runs for test_cancel_watch.py, each in a process of its own (the watcher signals it):

    python cancel_watch_job.py MARKS_DIR lost_interrupt   (with DAGSTER_HOME set)
    python cancel_watch_job.py MARKS_DIR teardown

``lost_interrupt``: a step that runs a finalizer as it starts; the test interrupts the process
while it runs, and Python drops an interrupt that lands in a finalizer.
``teardown``: a step that cancels its own run and ends; a resource's teardown then takes longer
than the watcher's resend interval, and must not be interrupted.
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from research_assets.defs.cancel_watch import CancelWatchResource

MARKS = Path(sys.argv[1]) if __name__ == "__main__" else Path(".")
STEP_S = 120


class Finalized:
    def __del__(self):
        (MARKS / "finalizing").write_text("")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            time.sleep(0.01)


@dg.asset
def long_step(context: dg.AssetExecutionContext, cancel_watch: CancelWatchResource) -> None:
    (MARKS / "run_id").write_text(context.run_id)
    Finalized()  # no reference kept: its finalizer runs here, and the test interrupts it
    deadline = time.monotonic() + STEP_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
    (MARKS / "finished").write_text("")


class SlowTeardown(dg.ConfigurableResource):
    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator["SlowTeardown"]:
        yield self
        time.sleep(3)  # three resend intervals
        (MARKS / "torn_down").write_text("")


@dg.asset
def cancels_itself(
    context: dg.AssetExecutionContext, cancel_watch: CancelWatchResource, slow: SlowTeardown
) -> None:
    context.instance.report_run_canceling(context.instance.get_run_by_id(context.run_id))
    time.sleep(0.5)  # the watcher sees the run cancelled while this step still runs


if __name__ == "__main__":
    watch = CancelWatchResource(poll_interval_s=0.2, resend_after_s=1.0)
    assets = {"lost_interrupt": [long_step], "teardown": [cancels_itself]}[sys.argv[2]]
    with dg.DagsterInstance.get() as instance:
        dg.materialize(
            assets,
            instance=instance,
            raise_on_error=False,
            resources={"cancel_watch": watch, "slow": SlowTeardown()},
        )
