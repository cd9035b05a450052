"""The production topology (docker-compose.yml) as separate local processes.

Postgres at 127.0.0.1:5432 (a fresh database), a gRPC code server (`dagster code-server start`),
`dagster-daemon run` and `dagster-webserver`, the last two reading a workspace that points at the
code server, all on one DAGSTER_HOME whose dagster.yaml is the repository's (run queue, limits,
run retries, run monitoring) plus Postgres storage. There is no Docker engine here, so runs use
the default run launcher: the code server starts each run worker as its own child process.

Each process runs in a session of its own with its log in the DAGSTER_HOME; teardown stops every
process group started here, fails if any process of that DAGSTER_HOME is still alive, and drops
the database.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from tests.ci_support import skip_or_fail_in_ci
from tests.gate_support import OPEN_GATES_ENV
from tests.graphql_support import graphql
from tests.integration.conftest import clean_env, processes_of, wait_for
from tests.postgres_support import fresh_database, postgres_storage

REPO = Path(__file__).resolve().parents[2]
REPO_DAGSTER_YAML = REPO / "dagster_home" / "dagster.yaml"
ARTIFACTS = REPO / "test-artifacts"
BIN = Path(sys.executable).parent
LOCATION = "research_assets"
FINAL = ("completed", "rejected", "failed", "cancelled")
VERDICT = ("completed", "rejected")

# Every gate wide open. The gates read GATE_* in the run worker, and with the default run
# launcher the run worker is a child of the code server, so these go into the code server's
# environment: every research in this topology that trades passes both gates and completes, so
# that the UI has a backtest_report (statistics, equity curve) to show. A research whose model
# never trades is still rejected (an undefined win rate fails the gate whatever the threshold).
OPEN_GATES = OPEN_GATES_ENV


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


# -- the topology ----------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    history: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, cwd: Path) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=str(cwd),
                start_new_session=True,
            )
        self.history.append(self.process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited ({self.process.returncode}):\n" + self.log_tail()
            )

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.log_path.name} ---\n" + "\n".join(text)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=15)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the group of each live leader started here, SIGKILL after ``timeout``.
        (A dead leader's group id may have been reused: what is left of it is found by its
        DAGSTER_HOME in `Topology.stop`.)"""
        live = [proc for proc in self.history if proc.poll() is None]
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in live:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


class Topology:
    def __init__(self, home: Path, db_name: str):
        self.home, self.db_name = home, db_name
        self.code_port, self.web_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.workspace = home / "workspace.yaml"
        self.workspace.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "host": "127.0.0.1",
                                "port": self.code_port,
                                "location_name": LOCATION,
                            }
                        }
                    ]
                }
            )
        )
        config = yaml.safe_load(REPO_DAGSTER_YAML.read_text())
        config["storage"] = postgres_storage(db_name)
        (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.instance = dg.DagsterInstance.from_config(str(home))
        self.code_server = Service(
            "code server",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.code_port),
                "-m",
                "research_assets.definitions",
                "--location-name",
                LOCATION,
            ],
            self.env(**OPEN_GATES),
            home / "code-server.log",
        )
        self.daemon = Service(
            "daemon",
            [str(BIN / "dagster-daemon"), "run", "-w", str(self.workspace)],
            self.env(),
            home / "daemon.log",
        )
        self.webserver = Service(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.web_port),
                "-w",
                str(self.workspace),
            ],
            self.env(),
            home / "webserver.log",
        )
        self.services = [self.code_server, self.daemon, self.webserver]

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(self.home, **extra)

    def logs(self) -> str:
        return "\n".join(s.log_tail() for s in self.services)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        since = time.time()
        self.start_code_server()
        self.daemon.start(self.home)
        self.webserver.start(self.home)
        # Every daemon this instance needs (run queue, sensors, run monitoring, and run retries,
        # which Dagster 1.13 runs in its EVENT_LOG_CONSUMER daemon) has reported in.
        wanted = set(self.instance.get_required_daemon_types())

        def daemon_ready() -> bool:
            self.daemon.check_alive()
            beats = self.instance.get_daemon_heartbeats()
            return wanted <= {k for k, hb in beats.items() if hb.timestamp >= since}

        wait_for(daemon_ready, 120, "daemon heartbeats", on_timeout=self.logs)
        wait_for(
            self.webserver_ready,
            120,
            "the webserver to load the code location",
            on_timeout=self.logs,
        )

    def start_code_server(self, timeout: float = 120) -> None:
        self.code_server.start(self.home)
        wait_for(self.code_server_ready, timeout, "the code server", on_timeout=self.logs)

    def code_server_ready(self) -> bool:
        from dagster._grpc.client import DagsterGrpcClient

        self.code_server.check_alive()
        if not port_open(self.code_port):
            return False
        try:
            DagsterGrpcClient(port=self.code_port, host="127.0.0.1").list_repositories()
            return True
        except Exception:  # still loading the definitions
            return False

    def webserver_ready(self) -> bool:
        self.webserver.check_alive()
        if not port_open(self.web_port):
            return False
        try:
            data = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries {"
                " name loadStatus locationOrLoadError { __typename } } } } }"
            )
        except (OSError, urllib.error.URLError, AssertionError):
            return False
        entries = data["workspaceOrError"]["locationEntries"]
        return any(
            e["name"] == LOCATION
            and e["loadStatus"] == "LOADED"
            and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in entries
        )

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.instance.dispose()
        try:
            wait_for(lambda: not processes_of(self.home), 20, "the processes of this instance")
        except AssertionError:
            strays = processes_of(self.home)
            for pid in strays:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes survived the topology's shutdown: {strays}") from None

    # -- clients ---------------------------------------------------------------------------

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        return graphql(self.url, query, variables, timeout)

    def sensor_status(self, name: str) -> str:
        """RUNNING or STOPPED, as the UI's sensor page shows it."""
        data = self.graphql(_SENSOR_STATE, {"selector": _sensor_selector(name)})
        return data["sensorOrError"]["sensorState"]["status"]

    def stop_sensor(self, name: str) -> None:
        """Stop a sensor as the UI's toggle does, and wait for a tick the daemon had already
        begun to end (stopping does not interrupt it: it may still request runs)."""
        data = self.graphql(_SENSOR_STATE, {"selector": _sensor_selector(name)})
        state = data["sensorOrError"]["sensorState"]
        done = self.graphql(_STOP_SENSOR, {"id": state["id"]})["stopSensor"]
        assert done["instigationState"]["status"] == "STOPPED", done

        def no_tick_in_flight() -> bool:
            data = self.graphql(_SENSOR_STATE, {"selector": _sensor_selector(name)})
            ticks = data["sensorOrError"]["sensorState"]["ticks"]
            return not ticks or ticks[0]["status"] != "STARTED"

        wait_for(no_tick_in_flight, 120, f"the {name} tick in flight to end", interval=0.5)

    def start_sensor(self, name: str) -> None:
        done = self.graphql(_START_SENSOR, {"selector": _sensor_selector(name)})["startSensor"]
        assert done["sensorState"]["status"] == "RUNNING", done

    def research(
        self, *args: str, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """The `research` command as a user runs it, on this DAGSTER_HOME."""
        return subprocess.run(
            [sys.executable, "-m", "research_assets.cli", *args],
            capture_output=True,
            text=True,
            env=self.env(**env),
            cwd=REPO,
            timeout=timeout,
        )

    def trigger(self, *args: str) -> str:
        done = self.research("trigger", "--json", *args, RESEARCH_MAX_CONCURRENT="10")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["triggered"], answer
        return answer["id"]

    def status_json(self, *ids: str) -> dict[str, dict[str, Any]]:
        done = self.research("status", "--json")
        assert done.returncode == 0, done.stderr
        found = {r["id"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])["researches"]}
        return {i: found[i] for i in ids} if ids else found

    def statuses(self, ids: list[str]) -> dict[str, Any]:
        from research_assets.state.records import load_statuses

        return {s.id: s for s in load_statuses(self.instance, ids)}

    def wait_final(self, ids: list[str], timeout: float) -> dict[str, Any]:
        """Poll the instance (the records `research status` reads) until every research has
        ended; returns the statuses."""

        def done() -> dict[str, Any] | None:
            for service in self.services:
                service.check_alive()
            found = self.statuses(ids)
            return found if all(found[i].status in FINAL for i in ids) else None

        return wait_for(
            done,
            timeout,
            f"researches {ids} to end",
            interval=1.0,
            on_timeout=lambda: f"{self.describe(ids)}\n{self.logs()}",
        )

    def runs_of(self, research_id: str) -> list[dg.DagsterRun]:
        """Every run of one research, newest first."""
        return [
            rec.dagster_run
            for rec in self.instance.get_run_records(
                dg.RunsFilter(tags={"dagster/partition": research_id})
            )
        ]

    def describe(self, ids: list[str]) -> str:
        lines = [f"{s.id}: {s.status} {s.phase} {s.reason}" for s in self.statuses(ids).values()]
        for rec in self.instance.get_run_records():
            run = rec.dagster_run
            lines.append(
                f"run {run.run_id[:8]} {run.tags.get('dagster/partition')} "
                f"{run.status.value} {run.tags.get('dagster/retry_number', '')}"
            )
        return "\n".join(lines)


def _sensor_selector(name: str) -> dict[str, str]:
    return {
        "repositoryName": "__repository__",
        "repositoryLocationName": LOCATION,
        "sensorName": name,
    }


_SENSOR_STATE = """
query SensorState($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { id status ticks(limit: 1) { status } } }
  }
}
"""
_STOP_SENSOR = """
mutation Stop($id: String!) {
  stopSensor(id: $id) { __typename ... on StopSensorMutationResult { instigationState { status } } }
}
"""
_START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) { __typename ... on Sensor { sensorState { status } } }
}
"""


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with fresh_database("research_topology") as db_name:
        home = tmp_path_factory.mktemp("topology_home")
        topo = Topology(home, db_name)
        try:
            topo.start()
            yield topo
        finally:
            topo.stop()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium_page(tmp_path: Path) -> Iterator[Any]:
    """A page of Debian's Chromium driven by Playwright (no browser download), with a fresh
    profile. Without Chromium the test skips locally and fails in CI."""
    if not CHROMIUM.exists():
        skip_or_fail_in_ci(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            # The SPA renders slowly on a shared 2-core machine.
            context.set_default_timeout(60_000)
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture(scope="session")
def ui_artifacts() -> Path:
    path = ARTIFACTS / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path
