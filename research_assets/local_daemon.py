"""A ``dagster-daemon`` for as long as ``research run`` needs one.

The daemon runs the sensors (which turn research requests into queued runs), the run queue
(which starts them within the instance's limits), run monitoring and run retries. If a daemon
already serves this instance (``dagster dev``, a service), it is used and none is started.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._daemon.controller import DEFAULT_HEARTBEAT_INTERVAL_SECONDS, all_daemons_live

# The code location's one fixed name: sensor run keys are de-duplicated per location name.
WORKSPACE = """load_from:
  - python_module:
      module_name: research_assets.definitions
      location_name: research_assets
"""
# A daemon writes a heartbeat every DEFAULT_HEARTBEAT_INTERVAL_SECONDS (30 s) per daemon type:
# a live one's newest heartbeat can be that old, and older on a busy machine. It is taken for
# alive while every required daemon type's newest heartbeat is within that interval plus this
# allowance, as Dagster's own `all_daemons_live` judges it (with 1800 s by default, too long for a
# command that must start a daemon when none serves the instance: a killed daemon would be taken
# for a live one for half an hour).
HEARTBEAT_ALLOWANCE_S = 60


def daemon_running(instance: dg.DagsterInstance, now: float | None = None) -> bool:
    """Whether a daemon serves this instance: every daemon type it needs has a heartbeat no
    older than the heartbeat interval plus ``HEARTBEAT_ALLOWANCE_S``."""
    if not instance.get_daemon_heartbeats():
        return False
    return all_daemons_live(
        instance,
        curr_time_seconds=time.time() if now is None else now,
        heartbeat_interval_seconds=DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
        heartbeat_tolerance_seconds=HEARTBEAT_ALLOWANCE_S,
    )


def _daemon_command(workspace: Path) -> list[str]:
    script = Path(sys.executable).parent / "dagster-daemon"
    if script.exists():
        return [str(script), "run", "-w", str(workspace)]
    return [
        sys.executable,
        "-c",
        "from dagster._daemon.cli import main; main()",
        "run",
        "-w",
        str(workspace),
    ]


class LocalDaemon:
    """Context manager: starts a daemon on the instance unless one is already running."""

    def __init__(self, instance: dg.DagsterInstance, home: Path):
        self.instance = instance
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "daemon.log"

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def __enter__(self) -> "LocalDaemon":
        if daemon_running(self.instance):
            return self
        workspace = self.home / "workspace.yaml"
        workspace.write_text(WORKSPACE)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                _daemon_command(workspace),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "DAGSTER_HOME": str(self.home)},
                cwd=str(self.home),
                start_new_session=True,  # Ctrl-C in the terminal reaches us, not the daemon
            )
        return self

    def check_alive(self) -> None:
        """Raise with the log's tail if the daemon we started has died."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(
                f"dagster-daemon exited with code {self.process.returncode}; see {self.log_path}:"
                "\n  " + "\n  ".join(tail)
            )

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The daemon's process group includes the code server it spawned.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        # Its last heartbeats would read as a live daemon for the heartbeat interval plus
        # HEARTBEAT_ALLOWANCE_S: the next `research run` on this instance would start none, and
        # wait. (A daemon that does serve the instance writes its next heartbeats within 30 s.)
        self.instance.wipe_daemon_heartbeats()
