"""The packaged example specs validate, round-trip and fit the bundled data."""

from pathlib import Path

import pytest

import research_assets
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec

EXAMPLES = sorted((Path(research_assets.__file__).parent / "examples").glob("*.yaml"))
DATA = Path(research_assets.__file__).parent / "data"


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_validates_and_round_trips(path: Path):
    spec = StrategySpec.from_file(path)
    assert spec.name == path.stem
    assert spec.description and spec.hypothesis
    assert StrategySpec.from_yaml(spec.to_yaml()) == spec
    assert StrategySpec.from_dict(spec.to_dict()).fingerprint() == spec.fingerprint()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_uses_bundled_data(path: Path):
    spec = StrategySpec.from_file(path)
    for symbol in spec.training_data.symbols:
        for tf in spec.training_data.timeframes:
            assert (DATA / f"{symbol}_{tf}.parquet").exists(), f"{symbol}_{tf}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_memberships_are_meaningful_on_the_data(path: Path):
    """Every membership is active on a fair share of bars: no set is dead on its market."""
    from research_assets.core.data import load_bars
    from research_assets.core.features import fuzzy_features
    from research_assets.core.indicators import compute_indicators

    spec = StrategySpec.from_file(path)
    for symbol in spec.training_data.symbols:
        bars = load_bars(symbol, spec.training_data.timeframes[0])
        features = fuzzy_features(spec, compute_indicators(bars, spec.indicators)).dropna()
        active = (features > 0.5).mean()
        assert (active > 0.03).all(), f"{symbol}: {active[active <= 0.03].to_dict()}"


def test_rsi_example_is_the_docstring_example():
    path = next(p for p in EXAMPLES if p.stem == "rsi_trend_eurusd")
    assert StrategySpec.from_file(path) == StrategySpec.from_yaml(EXAMPLE_YAML)
