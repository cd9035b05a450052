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
