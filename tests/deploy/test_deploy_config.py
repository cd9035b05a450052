"""The production topology's files: the compose file validates, its images are pinned, and its
instance config loads into a real instance (Postgres storage, Docker run launcher)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from tests.ci_support import skip_or_fail_in_ci
from tests.postgres_support import fresh_database

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DEPLOY = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
EMBEDDED = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        skip_or_fail_in_ci("docker-compose is not installed (apt-get install docker-compose)")
    return path


def compose_config(
    tmp_path: Path, env_text: str, *files: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of a copy of the compose files with ``env_text`` as .env."""
    for name in ("docker-compose.yml", "docker-compose.local.yml", "Dockerfile"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "deploy", tmp_path / "deploy", dirs_exist_ok=True)
    (tmp_path / ".env").write_text(env_text)
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DAGSTER_POSTGRES", "DAGSTER_WEBSERVER"))
    }
    args = [a for f in files for a in ("-f", f)]
    return subprocess.run(
        [docker_compose(), *args, "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )


def with_password(text: str) -> str:
    return text.replace(
        "DAGSTER_POSTGRES_PASSWORD=\n", "DAGSTER_POSTGRES_PASSWORD=s3cret-of-mine\n"
    )


def test_compose_file_validates(tmp_path):
    env_text = with_password((REPO / ".env.example").read_text())
    result = compose_config(tmp_path, env_text)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"postgres", "code-server", "webserver", "daemon"}
    # The override for registry-less hosts swaps images and build arguments, nothing else.
    local = compose_config(tmp_path, env_text, "docker-compose.yml", "docker-compose.local.yml")
    assert local.returncode == 0, local.stderr
    swapped = yaml.safe_load(local.stdout)["services"]
    assert swapped["postgres"]["image"] == "research-assets-postgres:15"
    for name, service in config["services"].items():
        assert essence(swapped[name]) == essence(service), name


def essence(service: dict) -> dict:
    """A service as it runs, less its image and build (merging reorders volumes and networks)."""
    kept = {k: v for k, v in service.items() if k not in ("image", "build")}
    kept["volumes"] = sorted(kept.get("volumes", []))
    kept["networks"] = sorted(kept.get("networks", {}))
    return kept


def test_the_webserver_is_published_on_localhost_unless_opened(tmp_path):
    env_text = with_password((REPO / ".env.example").read_text())
    result = compose_config(tmp_path, env_text)
    assert result.returncode == 0, result.stderr
    [port] = yaml.safe_load(result.stdout)["services"]["webserver"]["ports"]
    assert str(port).startswith("127.0.0.1:3000:3000"), port
    # Without the variable at all (a .env from before it existed) it is still 127.0.0.1.
    trimmed = "\n".join(
        line for line in env_text.splitlines() if not line.startswith("DAGSTER_WEBSERVER_HOST")
    )
    result = compose_config(tmp_path, trimmed)
    [port] = yaml.safe_load(result.stdout)["services"]["webserver"]["ports"]
    assert str(port).startswith("127.0.0.1:3000:3000"), port
    opened = compose_config(tmp_path, trimmed + "\nDAGSTER_WEBSERVER_HOST=0.0.0.0\n")
    [port] = yaml.safe_load(opened.stdout)["services"]["webserver"]["ports"]
    assert str(port).startswith("0.0.0.0:3000:3000"), port


def test_the_shipped_env_example_is_refused_until_a_password_is_chosen(tmp_path):
    result = compose_config(tmp_path, (REPO / ".env.example").read_text())
    assert result.returncode != 0
    assert "set DAGSTER_POSTGRES_PASSWORD in .env to a password of your own" in result.stderr


def test_only_the_services_that_drive_containers_get_the_docker_socket():
    # The socket is root on the host: the daemon launches, health-checks and removes run
    # containers, the webserver's "Terminate" stops one; nothing else gets it.
    socket = "/var/run/docker.sock:/var/run/docker.sock"
    having = {name for name, s in COMPOSE["services"].items() if socket in s.get("volumes", [])}
    assert having == {"daemon", "webserver"}


def test_compose_without_a_password_says_what_to_set(tmp_path):
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_POSTGRES")}
    result = subprocess.run(
        [docker_compose(), "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode != 0
    assert "set DAGSTER_POSTGRES_PASSWORD in .env" in result.stderr


def test_topology_shape():
    services = COMPOSE["services"]
    postgres = services["postgres"]
    assert "healthcheck" in postgres
    assert any(v.startswith("postgres-data:") for v in postgres["volumes"])
    assert "postgres-data" in COMPOSE["volumes"]
    code = services["code-server"]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    assert code[code.index("--location-name") + 1] == "research_assets"
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1]
        assert ":" in image and tag != "latest", f"{name} image {image} is not pinned"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    [location] = workspace["load_from"]
    assert location["grpc_server"]["location_name"] == "research_assets"


def test_env_example_lists_every_variable_and_no_credential():
    text = (REPO / ".env.example").read_text()
    names = {
        line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")
    }
    compose_text = (REPO / "docker-compose.yml").read_text()
    # ${VAR} is read from .env; $${VAR} is escaped for the container's shell.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", compose_text))
    assert used <= names, used - names
    launcher_vars = set(DEPLOY["run_launcher"]["config"]["env_vars"])
    assert launcher_vars <= names | {"DAGSTER_POSTGRES_HOST"}
    assert "ANTHROPIC_API_KEY=\n" in text  # present, empty
    assert "DAGSTER_POSTGRES_PASSWORD=\n" in text  # no usable password ships


def test_limits_match_the_embedded_instance():
    # One set of limits, whichever topology runs: the capacity at trigger derives from them.
    for section in ("concurrency", "run_retries", "run_monitoring"):
        assert DEPLOY[section] == EMBEDDED[section], section
    assert DEPLOY["run_retries"]["retry_on_asset_or_op_failure"] is False


@pytest.mark.postgres
def test_deploy_instance_config_loads(tmp_path, monkeypatch):
    with fresh_database() as db:
        home = tmp_path / "home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        for var, value in {
            "DAGSTER_POSTGRES_USER": "postgres",
            "DAGSTER_POSTGRES_PASSWORD": "",
            "DAGSTER_POSTGRES_HOST": "127.0.0.1",
            "DAGSTER_POSTGRES_DB": db,
        }.items():
            monkeypatch.setenv(var, value)
        instance = dg.DagsterInstance.from_config(str(home))
        try:
            from dagster_docker import DockerRunLauncher
            from dagster_postgres import PostgresRunStorage

            assert isinstance(instance.run_launcher, DockerRunLauncher)
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert instance.run_retries_enabled and instance.run_monitoring_enabled
            assert type(instance.run_coordinator).__name__ == "ResearchRunCoordinator"
            # The storage works: a partition written is read back.
            instance.add_dynamic_partitions("research", ["r-deploy"])
            assert instance.get_dynamic_partitions("research") == ["r-deploy"]
        finally:
            instance.dispose()


def test_without_an_engine_the_docker_tests_skip_with_the_reason_and_fail_in_ci(
    monkeypatch, tmp_path
):
    from tests.deploy.docker_stack import engine

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Docker engine answers"):
        engine()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must not skip"):
        engine()
