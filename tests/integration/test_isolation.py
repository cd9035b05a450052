"""One research that fails for real (its training raises) fails alone, with its reason; the
researches beside it complete, and the failure is not retried (it would fail the same way)."""

import pytest

from research_assets.state.records import record_request
from tests.integration.conftest import describe, make_spec, runs_of, wait_final

pytestmark = pytest.mark.integration


def test_a_failing_research_fails_alone(instance, daemon):
    broken = "r-iso-broken"
    others = ["r-iso-ok-1", "r-iso-ok-2"]
    ids = [broken, *others]
    # Nine days of hourly bars: too few to split, so training raises a TrainingError.
    record_request(
        instance,
        broken,
        seed=1,
        spec=make_spec(date_range={"start": "2017-03-01", "end": "2017-03-10"}),
    )
    for i, research_id in enumerate(others, 2):
        record_request(instance, research_id, spec=make_spec(), seed=i)

    statuses = wait_final(instance, ids, 480, daemon)
    failed = statuses[broken]
    assert failed.status == "failed", describe(instance, ids)
    assert failed.phase == "training"
    assert failed.reason and "EURUSD/1h: 190 bars" in failed.reason, failed.reason
    assert "bars for the validation period" in failed.reason
    for research_id in others:
        assert statuses[research_id].status in ("completed", "rejected"), describe(instance, ids)
    # A user error is not retried: one run, no child.
    [run] = runs_of(instance, broken)
    assert "dagster/parent_run_id" not in run.tags
    assert all(len(runs_of(instance, i)) == 1 for i in others), describe(instance, ids)
