"""The pools' limits are made ready as a run starts: runs starting together on a fresh instance
do not fail, and a changed default is applied; a step that Dagster's hand-over race left waiting
beside a free slot gets it. On SQLite and on Postgres (pool_setup.py)."""

import contextlib
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from research_assets.defs.pool_setup import (
    STUCK_AFTER_S,
    ensure_pools,
    pool_watchdog,
    release_stuck_steps,
)
from research_assets.state.capacity import POOLS, pool_limits
from tests.postgres_support import fresh_database, postgres_storage


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def open_instance(request, tmp_path):
    """Opens the same storage with a given pool default, as dagster.yaml would set it."""
    with contextlib.ExitStack() as stack:
        storage = None
        if request.param == "postgres":
            storage = postgres_storage(stack.enter_context(fresh_database()))

        @contextlib.contextmanager
        def open_with(default_limit: int) -> Iterator[dg.DagsterInstance]:
            overrides = {"concurrency": {"pools": {"default_limit": default_limit}}}
            if storage:
                overrides["storage"] = storage
            with dg.instance_for_test(temp_dir=str(tmp_path), overrides=overrides) as instance:
                yield instance

        yield open_with, request.param


def limits(instance: dg.DagsterInstance) -> dict[str, tuple[int, bool]]:
    return {p.name: (p.limit, p.from_default) for p in instance.event_log_storage.get_pool_limits()}


def test_runs_starting_together_on_a_fresh_instance_all_get_the_pools(open_instance):
    open_with, _ = open_instance
    with open_with(1) as instance:
        starting = threading.Barrier(4)
        errors = []

        def start_run():
            starting.wait()
            try:
                assert ensure_pools(instance) == []
            except BaseException as e:  # reported below, with the others
                errors.append(repr(e))

        threads = [threading.Thread(target=start_run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert limits(instance) == {pool: (1, True) for pool in POOLS}
        assert pool_limits(instance) == {pool: 1 for pool in POOLS}


def test_a_changed_default_is_applied(open_instance):
    open_with, backend = open_instance
    with open_with(1) as instance:
        ensure_pools(instance)
    with open_with(3) as instance:
        warnings = ensure_pools(instance)
        # Dagster writes the new default itself on SQLite; on Postgres it cannot, and the
        # default becomes the pools' limit, with a warning that says so.
        assert len(warnings) == (len(POOLS) if backend == "postgres" else 0), warnings
        assert all("dagster instance concurrency set" in w for w in warnings)
        assert {pool: limit for pool, (limit, _) in limits(instance).items()} == {
            pool: 3 for pool in POOLS
        }
        assert pool_limits(instance) == {pool: 3 for pool in POOLS}
        storage = instance.event_log_storage
        assert all(storage.get_concurrency_info(pool).slot_count == 3 for pool in POOLS)
        assert ensure_pools(instance) == []  # nothing left to do


def test_a_limit_set_by_hand_is_kept(open_instance):
    open_with, _ = open_instance
    with open_with(1) as instance:
        instance.event_log_storage.set_concurrency_slots("training", 2)
        assert ensure_pools(instance) == []
        assert limits(instance) == {"training": (2, False), "backtest": (1, True)}


def test_a_step_left_waiting_beside_a_free_slot_gets_it(open_instance):
    # Dagster's race, replayed step by step: B finds no free slot (A holds it); A frees it and
    # hands it to whoever waits (nobody yet); then B joins the waiting list.
    open_with, _ = open_instance
    with open_with(1) as instance:
        ensure_pools(instance)
        storage = instance.event_log_storage
        assert storage.claim_concurrency_slot("training", "run-a", "trained_model").is_claimed
        assert not storage.has_unassigned_slots("training")
        storage.free_concurrency_slot_for_step("run-a", "trained_model")
        storage.add_pending_step("training", "run-b", "trained_model", should_assign=False)
        assert not storage.claim_concurrency_slot("training", "run-b", "trained_model").is_claimed
        assert storage.has_unassigned_slots("training")  # a free slot, and B waits beside it

        later = time.time() + STUCK_AFTER_S + 5
        assert release_stuck_steps(instance) == []  # an instant's wait is Dagster's own
        [released] = release_stuck_steps(instance, now=later)
        assert "'training'" in released and "trained_model of run run-b" in released
        assert storage.claim_concurrency_slot("training", "run-b", "trained_model").is_claimed

        # A step that waits while the slot is taken keeps waiting: nothing is handed out twice.
        assert not storage.claim_concurrency_slot("training", "run-c", "trained_model").is_claimed
        assert release_stuck_steps(instance, now=later + 60) == []
        assert not storage.claim_concurrency_slot("training", "run-c", "trained_model").is_claimed
        reason = pool_watchdog(dg.build_sensor_context(instance=instance))
        assert reason.skip_message == "no step waits while its pool has a free slot"
