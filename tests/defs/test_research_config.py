"""A research's inputs as run config of strategy_spec (the Launchpad, `dg launch --config-json`,
the sensors), and the worker tag the run queue puts on every research run."""

import dagster as dg
import pytest
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.run_coordinator import SubmitRunContext

from research_assets.definitions import defs
from research_assets.defs.assets import strategy_spec
from research_assets.defs.research_config import WorkerClass, run_config
from research_assets.run_coordinator import ResearchRunCoordinator, research_run_tags
from research_assets.state.capacity import WORKER_CLASSES
from research_assets.state.records import (
    latest_metadata,
    load_statuses,
    read_requests,
    record_request,
)

RESEARCH_RESOURCES = dict(defs.resources)


def design(instance, research_id, config=None, tags=None):
    """strategy_spec alone, for one research, as `dagster asset materialize --config-json` runs
    it (in process)."""
    if not instance.has_dynamic_partition("research", research_id):
        instance.add_dynamic_partitions("research", [research_id])
    return dg.materialize(
        [strategy_spec],
        instance=instance,
        partition_key=research_id,
        resources=RESEARCH_RESOURCES,
        run_config=config or {},
        raise_on_error=False,
        tags=tags or {},
    )


def failure(result) -> str:
    [event] = [e for e in result.all_events if e.is_step_failure]
    return event.step_failure_data.user_failure_data.description


def test_config_wins_over_the_recorded_request_field_by_field(instance):
    recorded = record_request(instance, "r-1", seed=3, brief="BTC trend", worker="gpu")
    result = design(instance, "r-1", run_config(seed=7))
    assert result.success
    md = latest_metadata(instance, "strategy_spec", "r-1")
    assert md["seed"] == 7 and md["brief"] == "BTC trend"
    # The request now says what was researched; when it was asked for stays.
    request = read_requests(instance, ["r-1"])["r-1"]
    assert (request.seed, request.brief, request.worker) == (7, "BTC trend", "gpu")
    assert request.requested_at == recorded.requested_at


def test_without_config_the_recorded_request_is_researched_and_left_as_is(instance):
    record_request(instance, "r-1", seed=3, brief="EUR mean reversion")
    assert design(instance, "r-1").success
    assert latest_metadata(instance, "strategy_spec", "r-1")["seed"] == 3
    observations = instance.fetch_observations(dg.AssetKey("strategy_spec"), limit=10).records
    assert len(observations) == 1


def test_a_research_launched_with_config_only_gets_its_request_recorded(instance, small_spec):
    """The Launchpad: a partition with no recorded request, every input in the config (the
    spec as YAML text). `research status` then knows its brief, worker and request time."""
    config = {
        "ops": {
            "strategy_spec": {
                "config": {
                    "seed": 5,
                    "brief": "from the Launchpad",
                    "spec": small_spec.to_yaml(),
                    "worker": "gpu",
                }
            }
        }
    }
    result = design(instance, "r-pad", config)
    assert result.success
    md = latest_metadata(instance, "strategy_spec", "r-pad")
    assert (md["seed"], md["strategy"], md["designer"]) == (5, small_spec.name, "user")
    request = read_requests(instance, ["r-pad"])["r-pad"]
    assert (request.seed, request.brief, request.worker) == (5, "from the Launchpad", "gpu")
    assert request.spec == small_spec
    run = instance.get_run_record_by_id(result.run_id)
    assert request.requested_at == pytest.approx(run.create_timestamp.timestamp())
    [status] = load_statuses(instance, ["r-pad"])
    assert status.brief == "from the Launchpad" and status.created_at == request.requested_at


def test_a_spec_in_config_may_be_json_text_or_a_mapping(instance, small_spec):
    import json

    for key, spec in (
        ("r-json", json.dumps(small_spec.to_dict())),
        ("r-dict", small_spec.to_dict()),
    ):
        config = {"ops": {"strategy_spec": {"config": {"spec": spec}}}}
        assert design(instance, key, config).success, key
        assert latest_metadata(instance, "strategy_spec", key)["strategy"] == small_spec.name


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"seed": -1}, "config seed must not be negative, got -1"),
        ({"spec": "name: [unclosed"}, "config spec: the strategy spec is not valid YAML"),
        ({"spec": {"name": "x"}}, "training_data"),
    ],
)
def test_a_bad_config_fails_the_research_with_its_message_alone(instance, config, message):
    result = design(instance, "r-bad", {"ops": {"strategy_spec": {"config": config}}})
    assert not result.success
    assert message in failure(result)
    # What `research status` and `research run` print: the message, no exception class name.
    [status] = load_statuses(instance, ["r-bad"])
    assert status.status == "failed"
    assert message in status.reason and "Failure" not in status.reason, status.reason
    assert not status.reason.startswith("dagster")


def test_the_config_knows_the_worker_classes_the_limits_know():
    assert {w.value for w in WorkerClass} == set(WORKER_CLASSES)


def test_an_unknown_worker_class_is_refused_before_the_run_starts(instance):
    with pytest.raises(dg.DagsterInvalidConfigError, match="worker not in enum type"):
        design(instance, "r-w", {"ops": {"strategy_spec": {"config": {"worker": "tpu"}}}})


# -- the worker tag on a research run, however it was launched --------------------------------


def asset_run(instance, assets, research_id, config=None, tags=None):
    """A run as "Materialize" in the asset graph creates it: Dagster's implicit asset job, an
    asset selection, the partition tag and nothing else."""
    job = defs.resolve_implicit_global_asset_job_def()
    selection = frozenset(dg.AssetKey(a) for a in assets)
    location = GrpcServerCodeLocationOrigin(
        host="localhost", port=4000, location_name="research_assets"
    )
    return instance.create_run_for_job(
        job.get_subset(asset_selection=selection),
        run_config=config or {},
        asset_selection=selection,
        tags={"dagster/partition": research_id, **(tags or {})},
        remote_job_origin=RemoteJobOrigin(
            RemoteRepositoryOrigin(location, "__repository__"), job.name
        ),
    )


def test_a_research_run_from_the_asset_graph_gets_its_worker_tag(instance):
    instance.add_dynamic_partitions("research", ["r-1", "r-2", "r-3"])
    plain = asset_run(instance, ["strategy_spec", "trained_model"], "r-1")
    assert research_run_tags(instance, plain) == {"research/worker": "cpu", "research/id": "r-1"}
    configured = asset_run(
        instance,
        ["strategy_spec"],
        "r-2",
        run_config(seed=1, worker="gpu"),
        tags={"research/worker": "cpu"},
    )
    assert research_run_tags(instance, configured)["research/worker"] == "gpu"
    record_request(instance, "r-3", seed=1, worker="gpu", add_partition=False)
    later = asset_run(instance, ["backtest_report"], "r-3")
    assert research_run_tags(instance, later)["research/worker"] == "gpu"
    # A run that has them right is left as it is; a run of other assets too.
    tagged = asset_run(
        instance, ["strategy_spec"], "r-1", tags={"research/worker": "cpu", "research/id": "r-1"}
    )
    assert research_run_tags(instance, tagged) == {}
    data = instance.create_run_for_job(defs.resolve_job_def("market_data_job"))
    assert research_run_tags(instance, data) == {}


def test_the_queue_tags_a_research_run_when_it_is_submitted(tmp_path):
    overrides = {
        "run_coordinator": {
            "module": "research_assets.run_coordinator",
            "class": "ResearchRunCoordinator",
        }
    }
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
        assert isinstance(instance.run_coordinator, ResearchRunCoordinator)
        instance.add_dynamic_partitions("research", ["r-1"])
        run = asset_run(instance, ["strategy_spec"], "r-1", run_config(worker="gpu"))
        submitted = instance.run_coordinator.submit_run(SubmitRunContext(run, workspace=None))
        assert submitted.status == dg.DagsterRunStatus.QUEUED
        assert instance.get_run_by_id(run.run_id).tags["research/worker"] == "gpu"
