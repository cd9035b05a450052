"""docker-compose.yml's stack on a real Docker engine, for tests/deploy/test_docker_stack.py.

The images come from scripts/build_images.sh (a local Debian base and a wheelhouse: no registry
needed; Docker's layer cache makes a second build take seconds), and the stack runs from a copy
of docker-compose.yml plus docker-compose.local.yml (which swaps in those images, nothing else)
with a .env of the test's own. The compose file names its network and the artifacts and
market-data volumes (the run launcher mounts them by name), so the stack refuses to start where
a deployment of this project already has them: it would take them over.
"""

import contextlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import docker
import docker.errors

from tests.ci_support import skip_or_fail_in_ci
from tests.graphql_support import graphql
from tests.integration.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
PROJECT = "research_assets_test"
LOCATION = "research_assets"
NETWORK = "research_assets"
NAMED_VOLUMES = ("research_assets_artifacts", "research_assets_market_data")
RUN_LABEL = "dagster/run_id"
FINAL = ("completed", "rejected", "failed", "cancelled")


def engine() -> docker.DockerClient:
    """The engine at DOCKER_HOST or the default socket; skips (fails in CI) where none answers."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as e:  # no socket, no daemon, no permission
        skip_or_fail_in_ci(
            f"no Docker engine answers ({e}); start one with "
            "scripts/ensure_docker.sh (root) or `make test-docker`"
        )
        raise  # unreachable


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        skip_or_fail_in_ci("docker-compose is not installed (apt-get install docker-compose)")
    return path  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_images() -> float:
    """scripts/build_images.sh; returns its seconds."""
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_images.sh")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, f"scripts/build_images.sh failed:\n{done.stdout}\n{done.stderr}"
    return time.monotonic() - start


class Stack:
    def __init__(self, client: docker.DockerClient, workdir: Path, env: dict[str, str]):
        self.client, self.workdir = client, workdir
        self._streams: list[Any] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        for name in ("docker-compose.yml", "docker-compose.local.yml", "Dockerfile"):
            shutil.copy(REPO / name, workdir / name)
        # The build contexts compose checks exist (the images are built already).
        shutil.copytree(REPO / "deploy", workdir / "deploy", dirs_exist_ok=True)
        settings = {
            "DAGSTER_POSTGRES_PASSWORD": secrets.token_hex(16),
            "DAGSTER_WEBSERVER_PORT": str(self.port),
            **env,
        }
        (workdir / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    # -- compose ---------------------------------------------------------------------------

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # Only this test's .env: nothing from the calling shell reaches the stack.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG")}
        done = subprocess.run(
            [
                docker_compose(),
                "-p",
                PROJECT,
                "-f",
                "docker-compose.yml",
                "-f",
                "docker-compose.local.yml",
                *args,
            ],
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert done.returncode == 0, f"docker-compose {' '.join(args)}:\n{done.stderr}"
        return done

    def refuse_to_take_over_a_deployment(self) -> None:
        """Fail (skip outside CI) where the engine holds a research_assets deployment. What an
        interrupted run of this test left (resources of its own compose project, nothing
        running) is removed first."""
        self._remove_own_leftovers()
        taken = [v for v in NAMED_VOLUMES if self._exists(self.client.volumes, v)]
        if self._exists(self.client.networks, NETWORK):
            taken.append(f"network {NETWORK}")
        others = [
            c.name
            for c in self.client.containers.list(all=True)
            if c.labels.get("com.docker.compose.project") in ("research_assets", PROJECT)
            or RUN_LABEL in c.labels
        ]
        if taken or others:
            skip_or_fail_in_ci(
                f"this Docker engine already has a research_assets deployment ({taken + others});"
                " the Docker tests would take over its volumes. Run them on another engine, or "
                f"remove it (docker-compose down -v) first"
            )

    def _remove_own_leftovers(self) -> None:
        own = {"label": f"com.docker.compose.project={PROJECT}"}
        containers = self.client.containers.list(all=True, filters=own)
        if self.run_containers() or any(c.status == "running" for c in containers):
            return  # a run of this test (or a deployment's run) is under way: refused below
        for container in containers:
            container.remove(force=True)
        for network in self.client.networks.list(filters=own):
            network.remove()
        for volume in self.client.volumes.list(filters=own):
            volume.remove(force=True)

    @staticmethod
    def _exists(collection: Any, name: str) -> bool:
        try:
            collection.get(name)
            return True
        except docker.errors.NotFound:
            return False

    def up(self, timeout: float = 300) -> float:
        """`up -d`, then wait until the webserver has loaded the code location and the daemon
        reports in; returns the seconds."""
        start = time.monotonic()
        self.compose("up", "-d", "--no-build", timeout=timeout)
        wait_for(
            self.ready,
            timeout,
            "the stack (webserver with the code location loaded, daemon heartbeats)",
            interval=1.0,
            on_timeout=self.logs,
        )
        return time.monotonic() - start

    def down(self, *args: str, force: bool = False) -> None:
        """`down`, once no run container is left. Run containers are the run launcher's, not
        compose's, and compose cannot remove the network while one is attached: the daemon is
        stopped first (no run starts meanwhile: a leaderboard rebuild requested as the last
        research ended, say), then the runs in flight end, or with ``force`` are removed."""
        self.compose("stop", "--timeout", "20", "daemon", timeout=180)
        if force:
            for container in self.run_containers():
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
        wait_for(
            lambda: self.run_containers() == [],
            180,
            "the runs in flight to end and their containers to be removed",
            interval=2,
        )
        self.compose("down", "--timeout", "20", *args, timeout=180)

    def ready(self) -> bool:
        try:
            data = self.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename } } } } "
                "instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }",
                timeout=10,
            )
        except (OSError, urllib.error.URLError, AssertionError, ValueError):
            return False
        loaded = any(
            e["name"] == LOCATION
            and e["loadStatus"] == "LOADED"
            and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in data["workspaceOrError"]["locationEntries"]
        )
        daemons = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        return loaded and bool(daemons) and all(d["healthy"] for d in daemons)

    def logs(self) -> str:
        done = self.compose("logs", "--no-color", "--tail", "40", check=False, timeout=60)
        return done.stdout[-12000:]

    # -- clients ---------------------------------------------------------------------------

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30
    ) -> dict[str, Any]:
        return graphql(self.url, query, variables, timeout)

    def service(self, name: str) -> Any:
        """The running container of a compose service."""
        [container] = self.client.containers.list(
            filters={
                "label": [
                    f"com.docker.compose.project={PROJECT}",
                    f"com.docker.compose.service={name}",
                ]
            }
        )
        return container

    def exec(self, service: str, *command: str) -> subprocess.CompletedProcess[str]:
        """A command inside a service's container (as `docker compose exec -T`)."""
        code, (out, err) = self.service(service).exec_run(list(command), demux=True)
        return subprocess.CompletedProcess(
            list(command), code, (out or b"").decode(), (err or b"").decode()
        )

    def research(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The `research` CLI inside the code-server container."""
        return self.exec("code-server", "research", *args)

    def put(self, path: str, text: str) -> None:
        """Write a file inside the code-server container."""
        done = self.exec("code-server", "sh", "-c", f"printf '%s' {shlex.quote(text)} > {path}")
        assert done.returncode == 0, done.stderr

    def trigger(self, *args: str) -> str:
        done = self.research("trigger", "--json", *args)
        assert done.returncode == 0, done.stderr + done.stdout
        answer = json.loads(done.stdout.strip().splitlines()[-1])
        assert answer["triggered"], answer
        return answer["id"]

    def status(self) -> dict[str, dict[str, Any]]:
        done = self.research("status", "--json")
        assert done.returncode == 0, done.stderr
        return {r["id"]: r for r in json.loads(done.stdout.strip().splitlines()[-1])["researches"]}

    def runs_of(self, research_id: str) -> list[dict[str, Any]]:
        """The runs of a research (newest first) with their tags as a dict."""
        data = self.graphql(
            "query Runs($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {"
            " ... on Runs { results { runId status tags { key value }"
            " stepStats { stepKey status } } } } }",
            {"tags": [{"key": "dagster/partition", "value": research_id}]},
        )
        runs = data["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def wait_final(self, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        last: dict[str, str] = {}

        def done() -> dict[str, dict[str, Any]] | None:
            # Final twice in a row, the same: `research status` can read a run's success a
            # moment before the run's last materialization and say "failed" once.
            found = self.status()
            now = {i: found.get(i, {}).get("status") for i in ids}
            settled = all(s in FINAL for s in now.values()) and now == last
            last.clear()
            last.update(now)
            return found if settled else None

        return wait_for(
            done,
            timeout,
            f"researches {ids} to end",
            interval=3.0,
            on_timeout=lambda: self.describe(ids),
        )

    def describe(self, ids: list[str]) -> str:
        lines = []
        with contextlib.suppress(Exception):
            status = self.status()
            for i in ids:
                s = status.get(i, {})
                lines.append(f"{i}: {s.get('status')} {s.get('phase')} {s.get('reason')}")
                for run in self.runs_of(i):
                    lines.append(
                        f"  run {run['runId'][:8]} {run['status']} "
                        f"{run['tags'].get('dagster/retry_number', '')}"
                    )
        return "\n".join(lines) + "\n" + self.logs()

    def run_containers(self) -> list[Any]:
        """Every container (running or not) that the run launcher created."""
        return self.client.containers.list(all=True, filters={"label": RUN_LABEL})

    def record_run_container_events(self) -> list[dict[str, Any]]:
        """From now on, the engine's events of run containers (create, start, die, destroy...),
        appended to the list returned as they come. Streamed, not read back later: the engine
        keeps only its last 256 events, and every `docker exec` adds three."""
        events: list[dict[str, Any]] = []
        stream = self.client.events(decode=True, filters={"type": "container", "label": RUN_LABEL})
        self._streams.append(stream)

        def pump() -> None:
            with contextlib.suppress(Exception):  # closed at teardown
                for event in stream:
                    events.append(event)

        threading.Thread(target=pump, daemon=True).start()
        return events

    def close(self) -> None:
        for stream in self._streams:
            with contextlib.suppress(Exception):
                stream.close()

    def storage_files(self, research_id: str) -> list[str]:
        """Files of a research in the artifacts volume (the IO manager's outputs)."""
        done = self.exec(
            "code-server",
            "find",
            "/opt/dagster/home/storage",
            "-path",
            f"*{research_id}*",
            "-type",
            "f",
        )
        assert done.returncode == 0, done.stderr
        return sorted(done.stdout.split())
