"""A research's inputs as run config of ``strategy_spec``: seed, brief, spec and worker class.

The Launchpad, ``dg launch --config-json`` and ``dagster asset materialize --config-json`` set
it by hand; the sensors set it from the request ``research trigger`` / ``research run`` recorded
(records.py). What is set in the config wins over the recorded request, field by field, so the
run page shows what the research was given and a re-execution repeats it.
"""

from enum import Enum
from typing import Any

import dagster as dg
from pydantic import Field

from research_assets.core.errors import ConfigError, SpecError
from research_assets.core.spec import StrategySpec

# The asset whose config carries a research's inputs.
CONFIG_ASSET = "strategy_spec"


class WorkerClass(Enum):
    """The worker class a research's run counts against (``research/worker`` run tag)."""

    cpu = "cpu"
    gpu = "gpu"


class ResearchConfig(dg.Config):
    """Leave a field out to take the research's recorded request (``research trigger``), or the
    default: a seed derived from the research id, the designer's own brief, a designed spec, cpu.
    """

    seed: int | None = Field(
        default=None,
        description="The designer's seed (0 or more). Default: the recorded "
        "request's, else one derived from the research id.",
    )
    brief: str | None = Field(default=None, description="A research brief passed to the designer.")
    spec: Any = Field(
        default=None,
        description="A strategy spec (YAML or JSON text, or a mapping) to "
        "research as is instead of designing one.",
    )
    worker: WorkerClass | None = Field(
        default=None,
        description="The worker class whose run limit this research counts "
        "against (research/worker run tag). Default: the recorded request's, else cpu.",
    )

    def given(self) -> bool:
        return any(v is not None for v in (self.seed, self.brief, self.spec, self.worker))

    def checked_seed(self) -> int | None:
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"config seed must not be negative, got {self.seed}")
        return self.seed

    def checked_spec(self) -> StrategySpec | None:
        if self.spec is None:
            return None
        try:
            if isinstance(self.spec, str):  # YAML, or JSON (which is YAML)
                return StrategySpec.from_yaml(self.spec)
            return StrategySpec.from_dict(self.spec)
        except SpecError as e:
            raise SpecError(f"config spec: {e}") from None


def run_config(
    *,
    seed: int | None = None,
    brief: str | None = None,
    spec: StrategySpec | None = None,
    worker: str | None = None,
) -> dict[str, Any]:
    """The run config that gives a research these inputs (only those that are set)."""
    config: dict[str, Any] = {}
    if seed is not None:
        config["seed"] = seed
    if brief:
        config["brief"] = brief
    if spec is not None:
        config["spec"] = spec.to_dict()
    if worker:
        config["worker"] = worker
    return {"ops": {CONFIG_ASSET: {"config": config}}} if config else {}


def worker_of_run_config(run_config: Any) -> str | None:
    """The worker class set in a run's config, if any (the value as launched, unvalidated)."""
    try:
        value = run_config["ops"][CONFIG_ASSET]["config"]["worker"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) and value else None


def resolve_request(context: dg.AssetExecutionContext, config: ResearchConfig):
    """The request this run researches: the recorded one with what the config sets on top.

    A research launched with config whose request was never recorded (the Launchpad, ``dg
    launch``, the autopilot) or differs from it gets it recorded now, so that ``research
    status`` knows its brief, worker and request time (the run's creation time, then).
    """
    from research_assets.defs.tags import DEFAULT_WORKER
    from research_assets.state.records import (
        ResearchRequest,
        default_seed,
        read_requests,
        record_request,
    )

    research_id = context.partition_key
    recorded = read_requests(context.instance, [research_id]).get(research_id)
    base = recorded or ResearchRequest(research_id, default_seed(research_id), None, 0.0)
    seed, spec = config.checked_seed(), config.checked_spec()
    wanted = ResearchRequest(
        research_id,
        base.seed if seed is None else seed,
        base.brief if config.brief is None else config.brief,
        base.requested_at,
        base.spec if spec is None else spec,
        base.worker if config.worker is None else config.worker.value,
        base.launched_by or _launched_by(context),
    )
    if recorded is not None and not config.given():
        return recorded
    if recorded is not None and _same(recorded, wanted):
        return recorded
    run = context.instance.get_run_record_by_id(context.run.run_id)
    created = run.create_timestamp.timestamp() if run is not None else None
    return record_request(
        context.instance,
        research_id,
        seed=wanted.seed,
        brief=wanted.brief,
        spec=wanted.spec,
        worker=wanted.worker or DEFAULT_WORKER,
        launched_by=wanted.launched_by,
        add_partition=False,
        requested_at=recorded.requested_at if recorded else created,
    )


def _launched_by(context: dg.AssetExecutionContext) -> str | None:
    sensor = context.run.tags.get("dagster/sensor_name")
    return "autopilot" if sensor == "research_autopilot" else None


def _same(a: Any, b: Any) -> bool:
    def key(r: Any) -> tuple:
        return (r.seed, r.brief, r.spec.to_dict() if r.spec else None, r.worker)

    return key(a) == key(b)
