"""`research trigger --json` refuses with its own exit code and a JSON reason when researches in
flight are at capacity or the queue is full (no daemon needed: the request waits unlaunched)."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from research_assets.state.records import research_ids
from tests.integration.conftest import research_cli

pytestmark = pytest.mark.integration


def trigger(home, **env: str):
    result = research_cli(home, "trigger", "--json", "--seed", "1", env=env)
    payload = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return result, payload


def trigger_all(home, *envs: dict[str, str]):
    """Several triggers at once (each one's own process): for refusals, which change nothing."""
    with ThreadPoolExecutor(len(envs)) as pool:
        return list(pool.map(lambda env: trigger(home, **env), envs))


def test_trigger_refuses_at_capacity_and_when_the_queue_is_full(instance, dagster_home):
    first, payload = trigger(dagster_home, RESEARCH_MAX_CONCURRENT="1")
    assert first.returncode == 0, first.stderr
    assert payload["triggered"] is True
    assert research_ids(instance) == [payload["id"]]

    (result, refusal), (full, full_refusal) = trigger_all(
        dagster_home,
        # One research pending (no daemon launches it), and only one may be in flight.
        {"RESEARCH_MAX_CONCURRENT": "1"},
        # Room for 50 in flight, but only one may wait.
        {"RESEARCH_MAX_CONCURRENT": "50", "RESEARCH_MAX_QUEUE_DEPTH": "1"},
    )
    assert result.returncode == 4, result.stderr
    assert refusal["triggered"] is False and refusal["reason"] == "at_capacity", refusal
    assert (refusal["active"], refusal["limit"]) == (1, 1)
    assert "at_capacity" in result.stderr and "Traceback" not in result.stderr

    assert full.returncode == 5, full.stderr
    assert full_refusal["triggered"] is False and full_refusal["reason"] == "queue_full", (
        full_refusal
    )
    assert (full_refusal["queue_depth"], full_refusal["max_queue_depth"]) == (1, 1)
    assert "queue_full" in full.stderr and "Traceback" not in full.stderr

    # Refusals add nothing: still the one research.
    assert research_ids(instance) == [payload["id"]]
