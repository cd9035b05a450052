"""A failed step's message as the CLI prints it: the message alone, on one line, never the
exception's class name that Dagster's error info puts in front."""

import dagster as dg
import pytest

from research_assets.state.instance_reads import failure_reason, step_failure_message


def failed_step(instance, error: Exception):
    @dg.asset
    def broken():
        raise error

    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    [event] = [e for e in result.all_events if e.is_step_failure]
    return result.run_id, event.step_failure_data


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (dg.Failure(description="too few bars for the split"), "too few bars for the split"),
        (
            dg.Failure(
                description="invalid strategy spec:\n  name: required\n  indicators: required"
            ),
            "invalid strategy spec: name: required; indicators: required",
        ),
        (ValueError("a plain error: with a colon"), "a plain error: with a colon"),
    ],
)
def test_a_step_failure_reads_as_its_message_alone(instance, error, message):
    run_id, data = failed_step(instance, error)
    assert "dagster._core" in data.error.to_string()  # what Dagster itself records
    assert step_failure_message(data) == message
    assert failure_reason(instance, run_id) == message
