"""Shared fixtures: a temporary Dagster instance and small, fast specs."""

import warnings

import dagster as dg
import pytest

from research_assets.core.spec import EXAMPLE_YAML, StrategySpec

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


@pytest.fixture
def instance(tmp_path):
    """A real local instance (SQLite) in a temporary DAGSTER_HOME."""
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


@pytest.fixture
def small_spec() -> StrategySpec:
    """The example spec, trimmed so that a whole research runs in a few seconds: two-class
    labels (which trade) and FX-sized costs."""
    data = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    data["training"]["epochs"] = 8
    data["training"]["labels"] = {"source": "forward_return", "horizon": 12, "threshold": 0.0}
    data["backtest"] = {"commission": 0.0001, "slippage": 0.00005}
    return StrategySpec.from_dict(data)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: the Docker stack, then the topologies (a real webserver, daemon and code
    server each), then the other integration tests, then the rest, each group in its collected
    order. With ``--maxschedchunk 1`` (make test) pytest-xdist starts each worker on two tests
    in this order and then hands out one at a time, so the few that take minutes start at once,
    on different workers, and the short ones fill in around them. The Docker stack, the longest,
    shares its first pair with a short test rather than a topology."""

    def weight(item: pytest.Item) -> int:
        if item.get_closest_marker("docker"):
            return 0
        if "tests/topology/" in item.nodeid:
            return 2
        return 3 if item.get_closest_marker("integration") else 4

    items.sort(key=weight)  # stable: the collected order within each group
    if items and weight(items[0]) == 0 and weight(items[-1]) == 4:
        items.insert(1, items.pop())
