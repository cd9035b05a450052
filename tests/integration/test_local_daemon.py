"""The daemon that `research run` starts for itself (``research_assets.local_daemon``), on a real
dagster-daemon process."""

import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._daemon.controller import DEFAULT_HEARTBEAT_INTERVAL_SECONDS
from dagster._daemon.types import DaemonHeartbeat

from research_assets.local_daemon import HEARTBEAT_ALLOWANCE_S, LocalDaemon, daemon_running
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _wait_for_first_heartbeats(daemon: LocalDaemon, instance: dg.DagsterInstance) -> None:
    wait_for(
        lambda: daemon_running(instance),
        90,
        "the daemon's first heartbeats",
        on_timeout=lambda: daemon.log_path.read_text(errors="replace")[-2000:],
    )


def test_a_stopped_daemon_is_not_taken_for_a_live_one(tmp_path, monkeypatch):
    """Right after our daemon stops, the next `research run` must start its own: the stopped
    daemon's heartbeats must not read as a live daemon (they stay fresh for 30 s)."""
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        with LocalDaemon(instance, tmp_path) as daemon:
            assert daemon.started_here
            _wait_for_first_heartbeats(daemon, instance)
        assert not daemon_running(instance)
        with LocalDaemon(instance, tmp_path) as again:
            assert again.started_here


def test_a_live_daemon_is_never_started_twice(tmp_path, monkeypatch):
    """While our daemon runs, a second `research run` uses it instead of starting another, however
    old its newest heartbeat is within the heartbeat interval."""
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        with LocalDaemon(instance, tmp_path) as daemon:
            assert daemon.started_here
            _wait_for_first_heartbeats(daemon, instance)
            with LocalDaemon(instance, tmp_path) as second:
                assert not second.started_here
            # Judged later, when its newest heartbeats are a whole interval old (as they are
            # just before it writes the next ones), it is still alive.
            newest = max(hb.timestamp for hb in instance.get_daemon_heartbeats().values())
            assert daemon_running(instance, now=newest + DEFAULT_HEARTBEAT_INTERVAL_SECONDS + 5)
            daemon.check_alive()


def test_heartbeats_are_judged_as_dagster_judges_them(instance):
    """Every daemon type the instance needs must have beaten within the heartbeat interval plus
    the allowance (Dagster's `all_daemons_live`); one type missing or too old is no daemon."""
    now = time.time()
    required = instance.get_required_daemon_types()
    assert not daemon_running(instance, now=now)

    def beat(age: float, types=required) -> None:
        for daemon_type in types:
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - age, daemon_type, None, None))

    beat(45.0)  # older than the interval (30 s), as a busy daemon's can be
    assert daemon_running(instance, now=now)
    beat(DEFAULT_HEARTBEAT_INTERVAL_SECONDS + HEARTBEAT_ALLOWANCE_S + 1, required[:1])
    assert not daemon_running(instance, now=now)
    beat(1.0)
    assert daemon_running(instance, now=now)
    assert not daemon_running(
        instance, now=now + DEFAULT_HEARTBEAT_INTERVAL_SECONDS + HEARTBEAT_ALLOWANCE_S + 2
    )
