"""What a run's container gets from the Docker run launcher of deploy/dagster.yaml: every
research setting the code reads (from one list), whichever of them the daemon has, and a GPU
device request for research/worker=gpu runs. No Docker engine needed: this is the configuration
the launcher hands to docker-py's ``containers.create``."""

import ast
import re
from pathlib import Path

import dagster as dg
import docker.types
import pytest
import yaml
from dagster._core.utils import parse_env_var

from research_assets.docker_launcher import ResearchDockerRunLauncher
from research_assets.settings import RUN_SETTINGS

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())["run_launcher"]
SETTING = re.compile(r"(RESEARCH|GATE|ANTHROPIC)_[A-Z0-9_]+|MARKET_DATA_DIR")


def settings_named_in_code() -> dict[str, str]:
    """Every string constant of research_assets/ that is a setting's name, with where."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "research_assets").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SETTING.fullmatch(node.value)
            ):
                found.setdefault(node.value, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_setting_the_code_reads_is_forwarded_to_run_containers():
    named = settings_named_in_code()
    missing = {name: where for name, where in named.items() if name not in RUN_SETTINGS}
    assert not missing, (
        f"the code reads {missing} but research_assets/settings.py does not list them: run "
        "containers would not get them"
    )
    # ...and the list holds nothing the code does not read.
    assert set(RUN_SETTINGS) <= set(named), set(RUN_SETTINGS) - set(named)
    assert len(RUN_SETTINGS) == len(set(RUN_SETTINGS))


def test_env_example_documents_every_setting():
    text = (REPO / ".env.example").read_text()
    for name in RUN_SETTINGS:
        assert re.search(rf"^(# )?{name}=", text, re.M), f"{name} is not in .env.example"


def launcher() -> ResearchDockerRunLauncher:
    assert LAUNCHER["module"] == "research_assets.docker_launcher"
    assert LAUNCHER["class"] == "ResearchDockerRunLauncher"
    # The instance config's values, through the launcher's own config schema.
    result = dg._config.process_config(  # type: ignore[attr-defined]
        dg._config.resolve_to_config_type(  # type: ignore[attr-defined]
            ResearchDockerRunLauncher.config_type()
        ),
        LAUNCHER["config"],
    )
    assert result.success, result.errors
    return ResearchDockerRunLauncher(**result.value)


def run(worker: str) -> dg.DagsterRun:
    return dg.DagsterRun(
        job_name="research_job",
        run_id=f"run-{worker}",
        tags={"research/worker": worker, "research/id": "r-1"},
    )


def environment(context) -> dict[str, str]:
    """The container's environment, as DockerRunLauncher builds it."""
    return dict(parse_env_var(var) for var in context.env_vars)


def test_a_run_gets_the_settings_the_daemon_has_and_no_others(monkeypatch):
    for name in RUN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "DAGSTER_POSTGRES_USER": "dagster",
        "DAGSTER_POSTGRES_PASSWORD": "pw",
        "DAGSTER_POSTGRES_HOST": "postgres",
        "DAGSTER_POSTGRES_DB": "dagster",
        "RESEARCH_LOCKBOX_FRACTION": "0.2",
        "RESEARCH_LLM_MAX_TURNS": "3",
        "GATE_BACKTEST_MIN_TRADES": "5",
        "ANTHROPIC_API_KEY": "",
    }.items():
        monkeypatch.setenv(name, value)
    # A trimmed .env (most settings absent) still launches: nothing absent is required.
    env = environment(launcher().get_container_context(run("cpu")))
    assert {k: v for k, v in env.items() if k in RUN_SETTINGS} == {
        "RESEARCH_LOCKBOX_FRACTION": "0.2",
        "RESEARCH_LLM_MAX_TURNS": "3",
        "GATE_BACKTEST_MIN_TRADES": "5",
        "ANTHROPIC_API_KEY": "",
    }
    assert env["DAGSTER_POSTGRES_HOST"] == "postgres"


def test_run_containers_are_removed_and_keep_the_artifacts_volume():
    kwargs = launcher().get_container_context(run("cpu")).container_kwargs
    assert kwargs["auto_remove"] is True
    assert kwargs["init"] is True
    assert "research_assets_artifacts:/opt/dagster/home/storage" in kwargs["volumes"]


@pytest.mark.parametrize("worker", ["cpu", "gpu"])
def test_only_a_gpu_run_asks_docker_for_a_gpu(worker, monkeypatch):
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", "pw")
    kwargs = launcher().get_container_context(run(worker)).container_kwargs
    if worker == "cpu":
        assert "device_requests" not in kwargs
        return
    # What docker-py sends the engine for these kwargs: `docker run --gpus all`.
    host = docker.types.HostConfig(version="1.41", device_requests=kwargs["device_requests"])
    [request] = host["DeviceRequests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]], request
    assert kwargs["auto_remove"] is True  # the instance's kwargs still apply
