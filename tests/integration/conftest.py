"""Real processes on a real instance: a `dagster-daemon` (with the code server and the run
workers it starts) on SQLite and on PostgreSQL, driven the way a user drives it.

Every test gets a fresh DAGSTER_HOME whose dagster.yaml is the repository's (so the limits under
test are the ones that ship), plus a fresh database for the Postgres backend. Nothing started
here outlives its test: teardown stops the daemon's process group and fails the test if any
process of that DAGSTER_HOME is still alive.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.local_daemon import WORKSPACE, _daemon_command
from tests.ci_support import skip_or_fail_in_ci

REPO = Path(__file__).resolve().parents[2]
REPO_DAGSTER_YAML = REPO / "dagster_home" / "dagster.yaml"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": ""}
PG_UNREACHABLE = (
    "PostgreSQL is not reachable at 127.0.0.1:5432 (start it with scripts/ensure_postgres.sh)"
)
FINAL = ("completed", "rejected", "failed", "cancelled")
# Variables that would change what a run does (a real LLM, other data, other gates, limits).
_SCRUBBED_PREFIXES = ("ANTHROPIC_", "RESEARCH_", "GATE_", "DAGSTER_")
_SCRUBBED = {"MARKET_DATA_DIR"}


# -- specs -----------------------------------------------------------------------------------


def make_spec(
    *,
    epochs: int = 8,
    symbol: str = "EURUSD",
    early_stopping: bool = True,
    date_range: dict[str, str] | None = None,
    name: str | None = None,
) -> StrategySpec:
    """The example spec made small (two-class labels, FX-sized costs, few epochs); more epochs
    without early stopping make training last (about 0.07 s per epoch on BTCUSD/1h)."""
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training"]["epochs"] = epochs
    data["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    data["training"]["early_stopping"] = {"enabled": early_stopping, "patience": 8}
    data["backtest"] = {"commission": 0.0001, "slippage": 0.00005}
    data["training_data"]["symbols"] = [symbol]
    if date_range is not None:
        data["training_data"]["date_range"] = date_range
    if name:
        data["name"] = name
    return StrategySpec.from_dict(data)


# -- environment -----------------------------------------------------------------------------


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without anything that changes a research (no API key: the
    offline designer and the rule-based assessor), with DAGSTER_HOME set to ``home``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED
    }
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "RESEARCH_DESIGNER": "offline",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def research_cli(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The `research` command as a user runs it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "research_assets.cli", *args],
        capture_output=True,
        text=True,
        env=clean_env(home, **(env or {})),
        cwd=REPO,
        timeout=timeout,
    )


# -- backends --------------------------------------------------------------------------------


def _pg_connect(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, connect_timeout=3, **PG)
    conn.autocommit = True
    return conn


def _postgres_or_skip():
    try:
        return _pg_connect()
    except Exception as e:  # psycopg2.OperationalError, or psycopg2 missing
        skip_or_fail_in_ci(f"{PG_UNREACHABLE} ({e})")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    return request.param


@pytest.fixture
def dagster_home(tmp_path: Path, backend: str) -> Iterator[Path]:
    """A fresh DAGSTER_HOME: the repository's dagster.yaml, on SQLite files here or on a fresh
    PostgreSQL database that is dropped afterwards."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load(REPO_DAGSTER_YAML.read_text())
    db_name = None
    if backend == "postgres":
        conn = _postgres_or_skip()
        db_name = f"research_test_{uuid.uuid4().hex[:12]}"
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{db_name}"')
        conn.close()
        config["storage"] = {
            "postgres": {
                "postgres_db": {
                    "username": PG["user"],
                    "password": PG["password"],
                    "hostname": PG["host"],
                    "db_name": db_name,
                    "port": PG["port"],
                    "scheme": "postgresql+psycopg2",
                }
            }
        }
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (home / "workspace.yaml").write_text(WORKSPACE)
    try:
        yield home
    finally:
        if db_name is not None:
            conn = _pg_connect()
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            conn.close()


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    """This test's view of the instance (the same storage the daemon and the CLI use)."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as inst:
        yield inst


@pytest.fixture
def dagster_config(dagster_home: Path) -> dict[str, Any]:
    return yaml.safe_load((dagster_home / "dagster.yaml").read_text())


# -- processes -------------------------------------------------------------------------------


def processes_of(home: Path) -> dict[int, str]:
    """Live processes started for this DAGSTER_HOME (the daemon, its code server, run workers,
    CLI calls), found by their environment: pid -> command line."""
    marker = f"DAGSTER_HOME={home}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is already dead
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found[int(entry.name)] = cmd.strip()
    return found


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    on_timeout: Callable[[], str] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")
        time.sleep(interval)


class Daemon:
    """`dagster-daemon run` on this test's DAGSTER_HOME, in its own process group (with the code
    server it spawns and the run workers that server spawns). ``env``: variables added to its
    clean environment, which its code server and run workers inherit (GATE_* thresholds)."""

    def __init__(self, home: Path, instance: dg.DagsterInstance, env: dict[str, str] | None = None):
        self.home, self.instance, self.env = home, instance, dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "daemon.log"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, timeout: float = 90) -> "Daemon":
        assert self.process is None or self.process.poll() is not None, "already running"
        since = time.time()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                _daemon_command(self.home / "workspace.yaml"),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(self.home, **self.env),
                cwd=str(self.home),
                start_new_session=True,
            )
        self.started.append(self.process)
        # Ready once its run queue, sensor and monitoring loops have reported in.
        wanted = {"QUEUED_RUN_COORDINATOR", "SENSOR", "MONITORING", "EVENT_LOG_CONSUMER"}

        def ready() -> bool:
            self.check_alive()
            beats = self.instance.get_daemon_heartbeats()
            return wanted <= {k for k, hb in beats.items() if hb.timestamp >= since}

        wait_for(ready, timeout, "daemon heartbeats", interval=0.5, on_timeout=self.log_tail)
        return self

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"dagster-daemon exited ({self.process.returncode}):\n" + self.log_tail()
            )

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL to the whole process group: the daemon, its code server and run workers."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM to each process group started here, SIGKILL after ``timeout`` (the researches
        have ended by then; a graceful stop is not what is under test)."""
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def stop_and_check_no_strays(daemon: Daemon, home: Path) -> None:
    daemon.stop()
    # A run worker that was still exiting gets a moment; then anything left is a leak. The
    # daemon's code server (`dagster api grpc --heartbeat --heartbeat-timeout 20`) exits only once
    # it has missed its parent's heartbeats for 20 s, so the moment is longer than that.
    try:
        wait_for(lambda: not processes_of(home), 45, "the processes of this instance to exit")
    except AssertionError:
        strays = processes_of(home)
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"processes survived the daemon's shutdown: {strays}") from None


@pytest.fixture
def daemon(dagster_home: Path, instance: dg.DagsterInstance) -> Iterator[Daemon]:
    """A running daemon (ready: heartbeats seen); stopped after the test, leaving no process."""
    d = Daemon(dagster_home, instance)
    try:
        yield d.start()
    finally:
        stop_and_check_no_strays(d, dagster_home)


# -- reading the instance --------------------------------------------------------------------

IN_PROGRESS = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}


def statuses_by_id(instance: dg.DagsterInstance, ids: list[str]) -> dict[str, Any]:
    from research_assets.state.records import load_statuses

    return {s.id: s for s in load_statuses(instance, ids)}


def runs_of(instance: dg.DagsterInstance, research_id: str) -> list[dg.DagsterRun]:
    """Every run of one research, oldest first."""
    records = instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": research_id}),
        order_by="create_timestamp",
        ascending=True,
    )
    return [r.dagster_run for r in records]


def describe(instance: dg.DagsterInstance, ids: list[str]) -> str:
    """Where each research and each of its runs stands: for assertion messages."""
    lines = []
    for research_id, s in statuses_by_id(instance, ids).items():
        runs = ", ".join(f"{r.run_id[:8]}:{r.status.value}" for r in runs_of(instance, research_id))
        lines.append(f"  {research_id}: {s.status}/{s.phase} reason={s.reason!r} runs=[{runs}]")
    return "\n".join(lines)


def wait_final(
    instance: dg.DagsterInstance, ids: list[str], timeout: float, daemon: "Daemon | None" = None
) -> dict[str, Any]:
    """Wait until every research has ended; their statuses."""

    def done():
        if daemon is not None:
            daemon.check_alive()
        found = statuses_by_id(instance, ids)
        return found if all(found[i].status in FINAL for i in ids) else None

    return wait_for(
        done,
        timeout,
        f"researches {ids} to end",
        interval=0.5,
        on_timeout=lambda: describe(instance, ids) + ("\n" + daemon.log_tail(20) if daemon else ""),
    )


def step_events(instance: dg.DagsterInstance, run_id: str) -> list[Any]:
    return list(instance.all_logs(run_id, of_type=STEP_EVENTS))


def step_started(instance: dg.DagsterInstance, run_id: str, step_key: str) -> bool:
    return any(
        e.step_key == step_key and e.dagster_event_type == dg.DagsterEventType.STEP_START
        for e in step_events(instance, run_id)
    )


def step_intervals(
    instance: dg.DagsterInstance, run_ids: list[str], step_key: str
) -> list[tuple[float, float]]:
    """[start, end) of every execution of ``step_key`` in these runs, from their event logs; a
    step that never ended lasts until its run ended (or forever)."""
    out = []
    for run_id in run_ids:
        start = None
        for event in step_events(instance, run_id):
            if event.step_key != step_key:
                continue
            if event.dagster_event_type == dg.DagsterEventType.STEP_START:
                start = event.timestamp
            elif start is not None:
                out.append((start, event.timestamp))
                start = None
        if start is not None:
            record = instance.get_run_record_by_id(run_id)
            out.append((start, record.end_time if record and record.end_time else float("inf")))
    return out


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an interval ending when another starts does not
    overlap it)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = current = 0
    for _, delta in edges:  # at equal times the end (-1) sorts before the start (+1)
        current += delta
        most = max(most, current)
    return most


def check_no_stale_pool_slots(
    instance: dg.DagsterInstance,
    config: dict[str, Any],
    pools: tuple[str, ...] = ("training", "backtest"),
) -> None:
    """Fail at once (rather than at a timeout) when a pool slot, or a place in a pool's line, is
    still held by a run that ended a while ago: its steps died with their process, and nothing
    gives the slot back, so every later heavy step waits forever."""
    monitoring = config.get("run_monitoring") or {}
    grace = (
        float(monitoring.get("free_slots_after_run_end_seconds") or 0)
        + 2 * float(monitoring.get("poll_interval_seconds") or 120)
        + 15
    )
    now = time.time()
    for pool in pools:
        info = instance.event_log_storage.get_concurrency_info(pool)
        holders = {s.run_id for s in info.claimed_slots} | {p.run_id for p in info.pending_steps}
        for run_id in holders:
            record = instance.get_run_record_by_id(run_id)
            if record and record.end_time and now - record.end_time > grace:
                raise AssertionError(
                    f"pool {pool!r} is still held by run {run_id}, which ended "
                    f"{now - record.end_time:.0f} s ago ({record.dagster_run.status.value}); "
                    "slots of a run whose process died are only given back by run monitoring "
                    "with run_monitoring.free_slots_after_run_end_seconds set in dagster.yaml"
                )
