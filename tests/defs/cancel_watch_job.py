"""A run whose first interrupt is lost, as test_cancel_watch.py needs it: its step runs a
finalizer when it starts, and an interrupt that lands in a finalizer is dropped by Python.

    python cancel_watch_job.py MARKS_DIR    (with DAGSTER_HOME set)
"""

import sys
import time
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


if __name__ == "__main__":
    watch = CancelWatchResource(poll_interval_s=0.2, resend_after_s=1.0)
    with dg.DagsterInstance.get() as instance:
        dg.materialize([long_step], instance=instance, resources={"cancel_watch": watch},
                       raise_on_error=False)
