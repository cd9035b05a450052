"""Capacity comes from the instance's own limits (dagster_home/dagster.yaml): one source."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

from research_assets.core.errors import ConfigError
from research_assets.state.capacity import admit, current_load, load_capacity
from research_assets.state.records import record_cancel, record_request

REPO_CONFIG = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "dagster_home" / "dagster.yaml").read_text()
)


@pytest.fixture
def configured(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=REPO_CONFIG) as inst:
        yield inst


def test_limits_are_read_from_dagster_yaml(configured, monkeypatch):
    for var in ("RESEARCH_MAX_CONCURRENT", "RESEARCH_CONCURRENCY_BUFFER"):
        monkeypatch.delenv(var, raising=False)
    capacity = load_capacity(configured)
    runs = {
        r["value"]: r["limit"]
        for r in REPO_CONFIG["concurrency"]["runs"]["tag_concurrency_limits"]
        if r["key"] == "research/worker"
    }
    pool = REPO_CONFIG["concurrency"]["pools"]["default_limit"]
    assert capacity.worker_limits == {"cpu": runs["cpu"], "gpu": runs["gpu"]}
    assert capacity.pool_limits == {"training": pool, "backtest": pool}
    # The seeds' formula: training workers + backtest workers + buffer (default 1).
    assert capacity.limit == 2 * pool + 1


def test_pool_limit_set_in_the_ui_counts(configured, monkeypatch):
    monkeypatch.delenv("RESEARCH_MAX_CONCURRENT", raising=False)
    configured.event_log_storage.set_concurrency_slots("training", 3)
    assert load_capacity(configured).pool_limits["training"] == 3


def test_overrides_and_bad_values(configured, monkeypatch):
    monkeypatch.setenv("RESEARCH_MAX_CONCURRENT", "7")
    assert load_capacity(configured).limit == 7
    monkeypatch.setenv("RESEARCH_MAX_CONCURRENT", "0")
    monkeypatch.setenv("RESEARCH_CONCURRENCY_BUFFER", "4")
    assert (
        load_capacity(configured).limit == 2 * load_capacity(configured).pool_limits["training"] + 4
    )
    monkeypatch.setenv("RESEARCH_CONCURRENCY_BUFFER", "-1")
    with pytest.raises(ConfigError, match="RESEARCH_CONCURRENCY_BUFFER"):
        load_capacity(configured)
    monkeypatch.setenv("RESEARCH_CONCURRENCY_BUFFER", "lots")
    with pytest.raises(ConfigError, match="RESEARCH_CONCURRENCY_BUFFER='lots'"):
        load_capacity(configured)


def test_pending_researches_count_until_cancelled(configured, monkeypatch):
    monkeypatch.setenv("RESEARCH_MAX_CONCURRENT", "2")
    assert admit(configured).allowed
    record_request(configured, "r-a", seed=1)
    record_request(configured, "r-b", seed=2)
    assert current_load(configured).pending == 2
    refused = admit(configured)
    assert (refused.allowed, refused.reason) == (False, "at_capacity")
    assert refused.details == {"active": 2, "limit": 2}
    record_cancel(configured, "r-a")
    assert admit(configured).allowed


def test_queue_full(configured, monkeypatch):
    monkeypatch.setenv("RESEARCH_MAX_CONCURRENT", "50")
    monkeypatch.setenv("RESEARCH_MAX_QUEUE_DEPTH", "1")
    record_request(configured, "r-a", seed=1)
    refused = admit(configured)
    assert (refused.allowed, refused.reason) == (False, "queue_full")
