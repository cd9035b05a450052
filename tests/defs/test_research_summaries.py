"""The research_summaries sensor (defs/sensors.py) keeps each research's summary (the research
index's digest and the rendered status, research_assets/state) current as its runs change, so
that `research status` finds them there and reads no event: the first status on an instance
the daemon ran is as cheap as a warm one."""

import dagster as dg

from research_assets.defs.sensors import research_summaries
from research_assets.state import research_index, status_view
from research_assets.state.records import load_statuses
from research_assets.state.status_view import read_statuses
from tests.defs.test_research_index import ST, add_run, build, materialize, metadata


def tick(instance, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    research_summaries(context)
    return context.cursor


def view_ids(instance):
    return set(status_view._load_view(instance, list(range(research_index.BUCKETS)))[1])


def test_summaries_follow_the_runs(tmp_path, small_spec, monkeypatch):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        built = build(instance, small_spec, per_kind=1)
        with_runs = {r.dagster_run.tags["dagster/partition"] for r in instance.get_run_records()}
        cursor = tick(instance)
        # Every research with a run has its summary; a tick with nothing new keeps the cursor.
        assert view_ids(instance) == with_runs and cursor
        assert tick(instance, cursor) == cursor
        expected = {s.id: s.status for s in load_statuses(instance)}

        # Statuses now come from the summaries: no event is read again.
        reads = []
        for name in ("fetch_materializations", "fetch_observations"):
            original = getattr(instance, name)
            monkeypatch.setattr(
                instance,
                name,
                lambda *a, _o=original, _n=name, **k: reads.append(_n) or _o(*a, **k),
            )
        assert {r.id: r.data["status"] for r in read_statuses(instance, sorted(with_runs))} == {
            pk: expected[pk] for pk in with_runs
        }
        assert reads == []
        monkeypatch.undo()

        # A research that goes on: its new run is seen at the next tick, its events with it.
        pk = next(pk for pk, (kind, _i) in built.items() if kind == "queued_no_run")
        run_id = add_run(instance, pk, ST)
        materialize(instance, pk, "strategy_spec", metadata("strategy_spec", 0, small_spec))
        # (even in the second of the tick before: the cursor's timestamps are whole seconds
        # on SQLite)
        assert pk not in view_ids(instance)
        tick(instance, cursor)
        assert pk in view_ids(instance)
        [entry] = [r for r in read_statuses(instance, [pk])]
        assert (entry.data["run_id"], entry.data["status"], entry.data["phase"]) == (
            run_id,
            "running",
            "training",
        )
