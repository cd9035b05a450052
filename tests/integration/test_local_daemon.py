"""The daemon that `research run` starts for itself (``research_assets.local_daemon``), on a real
dagster-daemon process."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from research_assets.local_daemon import LocalDaemon, daemon_running
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def test_a_stopped_daemon_is_not_taken_for_a_live_one(tmp_path, monkeypatch):
    """Right after our daemon stops, the next `research run` must start its own: the stopped
    daemon's heartbeats must not read as a live daemon (they stay fresh for 30 s)."""
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        with LocalDaemon(instance, tmp_path) as daemon:
            assert daemon.started_here
            wait_for(lambda: daemon_running(instance), 90, "the daemon's first heartbeat",
                     on_timeout=lambda: daemon.log_path.read_text(errors="replace")[-2000:])
        assert not daemon_running(instance)
        with LocalDaemon(instance, tmp_path) as again:
            assert again.started_here
