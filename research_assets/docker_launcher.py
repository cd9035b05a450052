"""Dagster's ``DockerRunLauncher`` plus the two things a research run's container needs that its
configuration cannot say.

- **The settings, from one list.** ``env_vars`` in the instance config forwards names that must
  all exist in the daemon's environment (an absent one fails every launch), and a list kept
  there drifts from what the code reads. This launcher forwards every name of
  ``research_assets.settings.RUN_SETTINGS`` that the daemon's environment has, and leaves the
  rest out (the run then uses the setting's default, as the code server does).
- **A GPU for ``research/worker=gpu`` runs.** ``DockerRunLauncher`` 0.29 takes container kwargs
  from the instance and the code location only, never from a run; this launcher merges its
  ``gpu_container_kwargs`` (in deploy/dagster.yaml: a Docker device request for the GPUs) into
  the container configuration of a run tagged ``research/worker=gpu``.

Both go through ``get_container_context``, which the launcher reads when it creates, stops and
health-checks a run's container.
"""

import os
from collections.abc import Mapping
from typing import Any

from dagster import Field, Permissive
from dagster._core.storage.dagster_run import DagsterRun
from dagster_docker import DockerRunLauncher
from dagster_docker.container_context import DockerContainerContext
from dagster_docker.utils import DOCKER_CONFIG_SCHEMA, validate_docker_config

from research_assets.defs.tags import WORKER_TAG
from research_assets.settings import RUN_SETTINGS

GPU_WORKER = "gpu"


class ResearchDockerRunLauncher(DockerRunLauncher):
    """Each run in a container of its own, with the research settings and, for gpu runs, a
    GPU."""

    def __init__(
        self, inst_data=None, gpu_container_kwargs: Mapping[str, Any] | None = None, **config: Any
    ):
        validate_docker_config(None, None, gpu_container_kwargs)
        self.gpu_container_kwargs = dict(gpu_container_kwargs or {})
        super().__init__(inst_data=inst_data, **config)

    @classmethod
    def config_type(cls):
        return {
            **DOCKER_CONFIG_SCHEMA,
            "gpu_container_kwargs": Field(
                Permissive(),
                is_required=False,
                description="Container kwargs (docker-py's containers.create) added to the "
                f"container of a run tagged {WORKER_TAG}={GPU_WORKER}, such as "
                "device_requests.",
            ),
        }

    def get_container_context(self, dagster_run: DagsterRun) -> DockerContainerContext:
        context = super().get_container_context(dagster_run)
        gpu = dagster_run.tags.get(WORKER_TAG) == GPU_WORKER
        return context.merge(
            DockerContainerContext(
                env_vars=forwarded_settings(os.environ),
                container_kwargs=self.gpu_container_kwargs if gpu else {},
            )
        )


def forwarded_settings(env: Mapping[str, str]) -> list[str]:
    """``NAME=value`` for each research setting that ``env`` has, in ``RUN_SETTINGS`` order."""
    return [f"{name}={env[name]}" for name in RUN_SETTINGS if name in env]
