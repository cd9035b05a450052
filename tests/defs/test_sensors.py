"""The intake and autopilot sensors, evaluated directly on a real instance."""

import dagster as dg

from research_assets.definitions import defs
from research_assets.defs import sensors
from research_assets.defs.sensors import research_autopilot, research_intake
from research_assets.state.records import record_cancel, record_request


def evaluate(sensor, instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return sensor(context)


def test_intake_launches_one_run_per_new_research_with_tags_and_cursor(instance):
    record_request(instance, "r-1", seed=1)
    record_request(instance, "r-2", seed=2, worker="gpu")
    result = evaluate(research_intake, instance)
    assert isinstance(result, dg.SensorResult)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        ("r-1", "r-1"),
        ("r-2", "r-2"),
    ]
    assert result.run_requests[0].tags == {"research/id": "r-1", "research/worker": "cpu"}
    assert result.run_requests[1].tags["research/worker"] == "gpu"
    # The next tick starts after these two: nothing new, and it says why.
    again = evaluate(research_intake, instance, cursor=result.cursor)
    assert isinstance(again, dg.SkipReason)
    assert "no new research partitions" in again.skip_message
    record_request(instance, "r-3", seed=3)
    third = evaluate(research_intake, instance, cursor=result.cursor)
    assert [r.partition_key for r in third.run_requests] == ["r-3"]


def test_intake_picks_up_partitions_added_in_the_ui(instance):
    # "Add partition" in the UI adds the key only: no request, default worker and seed.
    instance.add_dynamic_partitions("research", ["from-ui"])
    result = evaluate(research_intake, instance)
    [request] = result.run_requests
    assert request.partition_key == "from-ui"
    assert request.tags == {"research/id": "from-ui", "research/worker": "cpu"}


def test_intake_skips_cancelled_and_already_launched_researches(instance, small_spec):
    record_request(instance, "r-cancel", seed=1)
    record_cancel(instance, "r-cancel")
    record_request(instance, "r-ran", seed=2)
    # A run for r-ran exists already (launched some other way).
    job = defs.resolve_job_def("research_job")
    instance.create_run_for_job(job, tags={"dagster/partition": "r-ran"})
    result = evaluate(research_intake, instance)
    assert not result.run_requests
    assert (
        "2 new research partitions, all already launched or cancelled"
        in result.skip_reason.skip_message
    )


def test_intake_moves_past_a_page_of_skipped_partitions(instance, monkeypatch):
    """More than a page of skipped partitions, then a new one: the new one is launched (the
    cursor moves past what a tick read, even when it launched nothing)."""
    monkeypatch.setattr(sensors, "INTAKE_PAGE", 3)
    for i in range(4):
        record_request(instance, f"r-{i}", seed=i)
        record_cancel(instance, f"r-{i}")
    record_request(instance, "r-new", seed=9)
    first = evaluate(research_intake, instance)
    assert not first.run_requests and first.cursor
    second = evaluate(research_intake, instance, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["r-new"]


def apply(instance, result):
    """What the sensor daemon does with a tick's result once the tick has succeeded: add the
    partitions it asks for, then create (and queue) its runs."""
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    job = defs.resolve_job_def("research_job")
    return [
        instance.create_run_for_job(
            job,
            run_config=r.run_config,
            tags={
                **r.tags,
                "dagster/partition": r.partition_key,
                "dagster/sensor_name": "research_autopilot",
            },
        )
        for r in result.run_requests
    ]


def test_autopilot_is_stopped_by_default_and_starts_one_research_when_allowed(
    instance, monkeypatch
):
    assert research_autopilot.default_status == dg.DefaultSensorStatus.STOPPED
    assert research_intake.default_status == dg.DefaultSensorStatus.RUNNING
    monkeypatch.setenv("RESEARCH_AUTOPILOT_BRIEF", "BTC trend")
    result = evaluate(research_autopilot, instance)
    [request] = result.run_requests
    assert request.run_key == request.partition_key
    # Its partition comes with the tick's result, and its inputs are the run's config.
    [add] = result.dynamic_partitions_requests
    assert add.partitions_def_name == "research" and add.partition_keys == [request.partition_key]
    config = request.run_config["ops"]["strategy_spec"]["config"]
    assert config["brief"] == "BTC trend" and config["worker"] == "cpu"
    assert isinstance(config["seed"], int)
    assert request.tags["research/worker"] == "cpu"
    [run] = apply(instance, result)
    assert request.partition_key in instance.get_dynamic_partitions("research")
    assert run.run_config == request.run_config
    # The intake sensor leaves the autopilot's research alone: one run per research.
    assert not evaluate(research_intake, instance).run_requests


def test_a_failed_autopilot_tick_leaves_no_research_behind(instance):
    """The sensor only decides: until Dagster applies its result (the tick succeeded), nothing
    of the research exists. A tick that fails after the sensor returned leaves no partition, no
    request and no run."""
    result = evaluate(research_autopilot, instance)
    assert result.run_requests and result.dynamic_partitions_requests
    assert instance.get_dynamic_partitions("research") == []
    assert not instance.fetch_observations(dg.AssetKey("strategy_spec"), limit=1).records
    assert not instance.get_runs()
    # Nothing for the intake sensor either: it reads partitions.
    assert isinstance(evaluate(research_intake, instance), dg.SkipReason)


def test_intake_launches_each_research_with_its_request_as_run_config(instance, small_spec):
    record_request(instance, "r-spec", seed=4, brief="EUR", spec=small_spec, worker="gpu")
    instance.add_dynamic_partitions("research", ["r-ui"])
    result = evaluate(research_intake, instance)
    by_key = {r.partition_key: r for r in result.run_requests}
    assert by_key["r-spec"].run_config == {
        "ops": {
            "strategy_spec": {
                "config": {"seed": 4, "brief": "EUR", "spec": small_spec.to_dict(), "worker": "gpu"}
            }
        }
    }
    # A partition added in the UI has no request: its research takes the defaults.
    assert by_key["r-ui"].run_config == {}
    # The config is valid for the job (what the daemon checks before it creates the run).
    job = defs.resolve_job_def("research_job")
    for r in result.run_requests:
        assert dg.validate_run_config(job, r.run_config) is not None


def test_autopilot_skips_with_the_reason_when_at_capacity(instance, monkeypatch):
    monkeypatch.setenv("RESEARCH_MAX_CONCURRENT", "1")
    record_request(instance, "r-waiting", seed=1)
    result = evaluate(research_autopilot, instance)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("at_capacity:")


def test_autopilot_skips_when_the_budget_is_spent(instance, monkeypatch):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="strategy_spec", partition=None, metadata={"usage/cost_usd": 5.0}
        )
    )
    monkeypatch.setenv("RESEARCH_DAILY_BUDGET_USD", "1")
    result = evaluate(research_autopilot, instance)
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message.startswith("budget_exhausted:")
