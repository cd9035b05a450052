"""The pools' limits are made ready as a run starts: runs starting together on a fresh instance
do not fail, and a changed default is applied, on SQLite and on Postgres (pool_setup.py)."""

import contextlib
import threading
from collections.abc import Iterator

import dagster as dg
import pytest

from research_assets.defs.capacity import POOLS, pool_limits
from research_assets.defs.pool_setup import ensure_pools
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
            pool: 3 for pool in POOLS}
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
