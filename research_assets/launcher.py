"""Dagster's default run launcher, plus the worker health check it lacks.

The default launcher (the code server starts one process per run) cannot tell run monitoring
whether a run's process is alive, so a run whose worker was killed (kill -9, its code server
crashing with it) would stay STARTED forever and never be retried. This check reads the worker's
pid from the run's own engine event and answers for a worker on this host only; whatever it
cannot judge counts as running. While a code server on a fixed port (``dagster code-server`` in
the production topology) does not answer, the run also counts as running: failing it then would
make run retries give up, as they need the code location, and that server comes back on the same
port. A code server on a socket is one the daemon or ``dagster dev`` started; a new one gets a
new socket, so once the run's socket does not answer, the run's worker is judged at once.

What it works around (Dagster 1.13.27): ``RunLauncher.supports_check_run_worker_health`` is False
unless a launcher says otherwise (``dagster/_core/launcher/base.py``), and ``DefaultRunLauncher``
(``dagster/_core/launcher/default_run_launcher.py``) does not; the run-monitoring daemon
(``monitor_started_run`` in ``dagster/_daemon/monitoring/run_monitoring.py``) checks a STARTED
run's worker only where the launcher supports it, so on the default launcher it never fails a run
whose process died. Dagster documents run-worker crash detection for its container launchers
(K8s, Docker, ECS) only; no dagster-io/dagster issue asks for it on the default launcher (searched
"DefaultRunLauncher check_run_worker_health", December 2026).

When it can go: once ``DefaultRunLauncher.supports_check_run_worker_health`` is True in the
pinned Dagster. Then delete this module and the ``run_launcher`` entry of
``dagster_home/dagster.yaml`` (and of the test instances that name it; production's
``deploy/dagster.yaml`` uses ``DockerRunLauncher``); ``tests/integration/test_recovery.py``
(a run whose worker is killed is retried from the failure) must keep passing without it.
"""

import json
import os
import re
import socket
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG  # ".dagster/grpc_info", set at launch

_WORKER_PID = re.compile(r"Executing steps in process \(pid: (\d+)\)")
_LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1", socket.gethostname()}


class LocalRunLauncher(DefaultRunLauncher):
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if not _launched_on_this_host(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker on another host")
        found = None
        for event in self._instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            match = _WORKER_PID.search(event.message or "")
            if match:
                found = (int(match.group(1)), event.timestamp)
        if found is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "worker pid not reported yet")
        pid, reported_at = found
        if _process_alive_since(pid, reported_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"worker process {pid} is alive")
        if not _on_socket(run) and not self._code_server_answers(run):
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, "code server unreachable; judging once it is back"
            )
        return CheckRunHealthResult(WorkerStatus.FAILED, f"worker process {pid} is gone")

    def _code_server_answers(self, run: dg.DagsterRun) -> bool:
        try:
            client = self._get_grpc_client_for_termination(run.run_id)
            if client is None:
                return False
            client.ping("")
            return True
        except Exception:  # any transport error means "not answering"
            return False


def _grpc_info(run: dg.DagsterRun) -> dict:
    try:
        info = json.loads(run.tags.get(GRPC_INFO_TAG) or "{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _launched_on_this_host(run: dg.DagsterRun) -> bool:
    info = _grpc_info(run)
    return bool(info.get("socket")) or (bool(info) and info.get("host") in _LOCAL_HOSTS)


def _on_socket(run: dg.DagsterRun) -> bool:
    return bool(_grpc_info(run).get("socket"))


def _process_alive_since(pid: int, since: float) -> bool:
    """Whether ``pid`` is a live process that already existed at ``since`` (not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, IndexError, ValueError):
        return True  # no /proc: the pid answering is all we know
    if stat[0] == "Z":
        return False
    started = boot + int(stat[19]) / os.sysconf("SC_CLK_TCK")
    return started <= since + 1.0
