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


def test_compose_file_validates(tmp_path):
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "deploy", tmp_path / "deploy")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    result = subprocess.run([docker_compose(), "config"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"postgres", "code-server", "webserver", "daemon"}


def test_compose_without_a_password_says_what_to_set(tmp_path):
    shutil.copy(REPO / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_POSTGRES")}
    result = subprocess.run([docker_compose(), "config"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env=env)
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
    names = {line.split("=", 1)[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    compose_text = (REPO / "docker-compose.yml").read_text()
    # ${VAR} is read from .env; $${VAR} is escaped for the container's shell.
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", compose_text))
    assert used <= names, used - names
    launcher_vars = set(DEPLOY["run_launcher"]["config"]["env_vars"])
    assert launcher_vars <= names | {"DAGSTER_POSTGRES_HOST"}
    assert "ANTHROPIC_API_KEY=\n" in text  # present, empty


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
        for var, value in {"DAGSTER_POSTGRES_USER": "postgres", "DAGSTER_POSTGRES_PASSWORD": "",
                           "DAGSTER_POSTGRES_HOST": "127.0.0.1",
                           "DAGSTER_POSTGRES_DB": db}.items():
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
