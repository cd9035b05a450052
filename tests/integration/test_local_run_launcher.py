"""The health check that lets run monitoring fail a run whose worker process is gone
(``research_assets.launcher.LocalRunLauncher``), on real processes."""

import json
import subprocess
import sys
import time

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from research_assets.launcher import LocalRunLauncher, _process_alive_since

pytestmark = pytest.mark.integration


@pytest.fixture
def launcher_instance(tmp_path):
    with dg.instance_for_test(
        temp_dir=str(tmp_path),
        overrides={
            "run_launcher": {
                "module": "research_assets.launcher",
                "class": "LocalRunLauncher",
            }
        },
    ) as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        yield instance


def started_run(instance, grpc_info: dict | None = None) -> dg.DagsterRun:
    tags = {GRPC_INFO_TAG: json.dumps(grpc_info or {"host": "localhost", "socket": "/tmp/s"})}
    return instance.add_run(
        dg.DagsterRun(job_name="research_job", status=dg.DagsterRunStatus.STARTED, tags=tags)
    )


def health(instance, run) -> WorkerStatus:
    return instance.run_launcher.check_run_worker_health(run).status


SOCKET = {"host": "localhost", "socket": "/tmp/s"}  # a server the daemon or `dagster dev` started
PORT = {"host": "localhost", "port": 4266}  # `dagster code-server` on a fixed port


@pytest.mark.parametrize(
    ("grpc_info", "code_server_answers", "expected"),
    [
        (SOCKET, True, WorkerStatus.FAILED),
        # A new server gets a new socket: the run's server does not come back.
        (SOCKET, False, WorkerStatus.FAILED),
        (PORT, True, WorkerStatus.FAILED),
        # It may come back on its port; retries need it: judged once it answers.
        (PORT, False, WorkerStatus.RUNNING),
    ],
)
def test_a_live_worker_is_running_and_a_killed_one_failed(
    launcher_instance, monkeypatch, grpc_info, code_server_answers, expected
):
    monkeypatch.setattr(
        LocalRunLauncher, "_code_server_answers", lambda self, run: code_server_answers
    )
    run = started_run(launcher_instance, grpc_info)
    assert health(launcher_instance, run) == WorkerStatus.RUNNING  # no pid reported yet
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.1)
        launcher_instance.report_engine_event(
            f"Executing steps in process (pid: {worker.pid})", run
        )
        assert health(launcher_instance, run) == WorkerStatus.RUNNING
    finally:
        worker.kill()
        worker.wait()
    assert health(launcher_instance, run) == expected


def test_a_reused_pid_is_not_the_worker():
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # Reported before this process started: the pid now belongs to another process.
        assert not _process_alive_since(other.pid, time.time() - 3600)
        assert _process_alive_since(other.pid, time.time())
    finally:
        other.kill()
        other.wait()
    assert not _process_alive_since(other.pid, time.time())


def test_a_worker_on_another_host_is_not_judged(launcher_instance):
    run = started_run(launcher_instance, {"host": "code-server.internal", "port": 4000})
    launcher_instance.report_engine_event("Executing steps in process (pid: 1)", run)
    assert health(launcher_instance, run) == WorkerStatus.RUNNING
