"""Benchmark and significance statistics: worked examples, the random-timing nulls laid out bar
by bar, and p-values that are calibrated where no skill exists and small where it does."""

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from research_assets.core import metrics, significance
from research_assets.core.metrics import compute_stats, summarize
from research_assets.core.significance import (
    SIGNIFICANCE_KEYS,
    benchmark_stats,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    random_timing_p_value,
    random_timing_sharpes,
    sharpe_probability,
)


def test_docstring_examples():
    # The module's examples include Bailey and López de Prado's (2014) numerical example.
    result = doctest.testmod(significance)
    assert result.attempted >= 3 and result.failed == 0
    # summarize's examples include how Excess Sharpe is aggregated over datasets
    result = doctest.testmod(metrics)
    assert result.attempted >= 10 and result.failed == 0


def test_deflated_sharpe_matches_the_papers_worked_example():
    # 100 trials, variance of annualised Sharpe 0.5, best annualised 2.5 over 1,250 days,
    # skewness -3, kurtosis 10: SR0 = 0.1132 a day and DSR = 0.9004 (Bailey, López de Prado 2014)
    threshold = expected_max_sharpe(trials=100, sharpe_variance=0.5 / 250)
    assert threshold == pytest.approx(0.1132, abs=5e-5)
    dsr = sharpe_probability(2.5 / math.sqrt(250), 1250, -3.0, 10.0, threshold)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_of_a_series_uses_its_own_moments():
    rng = np.random.default_rng(3)
    returns = rng.standard_t(df=5, size=2000) * 0.01 + 0.0008
    sr = returns.mean() / returns.std(ddof=1)
    by_hand = sps.norm.cdf(
        sr
        * math.sqrt(len(returns) - 1)
        / math.sqrt(
            1 - sps.skew(returns) * sr + (sps.kurtosis(returns, fisher=False) - 1) / 4 * sr**2
        )
    )
    assert probabilistic_sharpe_ratio(returns) == pytest.approx(by_hand, rel=1e-12)
    # more of the same evidence, more confidence
    assert probabilistic_sharpe_ratio(np.tile(returns, 4)) > probabilistic_sharpe_ratio(returns)


def test_deflation_grows_with_the_number_of_trials():
    rng = np.random.default_rng(4)
    returns = rng.normal(0.0005, 0.01, 1500)
    one = deflated_sharpe_ratio(returns, trials=1, sharpe_variance=0.0)
    assert one == pytest.approx(probabilistic_sharpe_ratio(returns))
    values = [deflated_sharpe_ratio(returns, n, 1e-4) for n in (2, 10, 100, 1000)]
    assert all(a > b for a, b in zip([one, *values], values, strict=False))
    assert expected_max_sharpe(1, 1.0) == 0.0 and expected_max_sharpe(50, 0.0) == 0.0


def _trades(positions):
    """Trades as the backtest counts them: runs of one sign."""
    sign = np.sign(positions)
    starts = np.r_[0, np.flatnonzero(np.diff(sign) != 0) + 1]
    return int(np.count_nonzero(sign[starts]))


@pytest.mark.parametrize("reversals", [False, True])
def test_each_random_timing_is_the_strategy_shifted_in_time(reversals):
    rng = np.random.default_rng(5)
    bars = 3000
    if reversals:  # always in the market, long and short in turn
        positions = np.repeat(np.tile([1.0, -1.0], 60), rng.integers(5, 45, 120))[:bars]
        positions = np.r_[positions, np.ones(bars - len(positions))]
    else:
        positions = np.repeat(rng.choice([0.0, 1.0, -1.0], size=100), 30)
    returns = rng.normal(0, 0.01, bars)
    sharpes = random_timing_sharpes(positions, returns, nulls=40, seed=1)
    shifts = np.random.default_rng(1).choice(np.arange(1, bars), size=40, replace=False)
    assert len(set(shifts)) == 40  # no timing drawn twice
    for k, sharpe in zip(shifts, sharpes, strict=True):
        null = np.roll(positions, k)
        assert np.count_nonzero(null > 0) == np.count_nonzero(positions > 0)  # exposure, long
        assert np.count_nonzero(null < 0) == np.count_nonzero(positions < 0)  # and short
        assert abs(_trades(null) - _trades(positions)) <= 1  # the wrap may cut or join one
        earned = null * returns
        assert sharpe == pytest.approx(earned.mean() / earned.std(ddof=1), rel=1e-9)


def test_perfect_timing_is_significant_and_holding_everything_is_not():
    rng = np.random.default_rng(6)
    returns = rng.normal(0, 0.01, 5000)
    foresight = np.where(rng.random(5000) < 0.1, np.sign(returns), 0.0)  # right when it trades
    assert random_timing_p_value(foresight, returns) == pytest.approx(1 / 1001)
    always_right = np.sign(returns)  # always in the market, long and short in turn
    assert random_timing_p_value(always_right, returns) == pytest.approx(1 / 1001)
    always = np.ones(5000)  # one trade over every bar: every timing is the same
    assert random_timing_p_value(always, returns) == 1.0
    assert math.isnan(random_timing_p_value(np.zeros(5000), returns))
    assert math.isnan(random_timing_p_value(np.ones(1), returns[:1]))  # one bar: nothing to say


def test_p_values_are_uniform_where_no_timing_skill_exists():
    # Random positions on random walks: about 5% of p-values fall below 0.05, 20% below 0.2.
    p_values = []
    for seed in range(300):
        rng = np.random.default_rng(1000 + seed)
        returns = rng.normal(0.0002, 0.01, 1000)
        positions = np.repeat(rng.choice([0.0, 1.0], size=50), 20)
        p_values.append(random_timing_p_value(positions, returns, nulls=200, seed=seed))
    p_values = np.array(p_values)
    assert 0.01 <= np.mean(p_values <= 0.05) <= 0.10
    assert 0.13 <= np.mean(p_values <= 0.20) <= 0.28


def test_same_seed_same_p_value():
    rng = np.random.default_rng(7)
    returns = rng.normal(0, 0.01, 2000)
    positions = np.repeat(rng.choice([0.0, 1.0, -1.0], size=100), 20)
    first = random_timing_p_value(positions, returns, seed=11)
    assert random_timing_p_value(positions, returns, seed=11) == first


def test_benchmark_stats_of_buy_and_hold_and_of_cash():
    rng = np.random.default_rng(8)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, 2000)))
    held = benchmark_stats(close * 50, close, np.ones(2000), 252.0)
    assert list(held) == list(SIGNIFICANCE_KEYS)
    assert held["Beta"] == pytest.approx(1.0) and held["Alpha [%]"] == pytest.approx(0, abs=1e-9)
    assert held["Excess Return [%]"] == pytest.approx(0.0, abs=1e-9)
    assert held["p-value"] == 1.0  # holding all along is no timing at all
    market = np.diff(close) / close[:-1]
    assert held["Buy & Hold Sharpe Ratio"] == pytest.approx(
        market.mean() / market.std(ddof=1) * math.sqrt(252)
    )
    cash = benchmark_stats(np.full(2000, 1e4), close, np.zeros(2000), 252.0)
    assert cash["Beta"] == 0.0 and cash["Alpha [%]"] == 0.0
    assert cash["Excess Return [%]"] == pytest.approx(-(close[-1] / close[0] - 1) * 100)
    assert math.isnan(cash["Probabilistic Sharpe Ratio"]) and math.isnan(cash["p-value"])
    # holding is the benchmark: no excess; never trading has no Sharpe ratio, so no excess either
    assert held["Excess Sharpe"] == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(cash["Excess Sharpe"])


def test_a_leveraged_copy_of_the_market_has_its_beta_and_no_alpha():
    rng = np.random.default_rng(9)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, 2000)))
    market = np.diff(close) / close[:-1]
    equity = 1e4 * np.r_[1.0, np.cumprod(1 + 2 * market + 0.0001)]  # 2x, plus 1 bp a bar
    s = benchmark_stats(equity, close, np.full(2000, 2.0), 252.0)
    assert s["Beta"] == pytest.approx(2.0, rel=1e-9)
    assert s["Alpha [%]"] == pytest.approx(0.0001 * 252 * 100, rel=1e-6)


def test_excess_sharpe_is_the_reported_sharpe_minus_buy_and_holds():
    # The same bars and equity as a backtest report: compute_stats' Sharpe Ratio minus the
    # benchmark's, whatever the strategy (here long half the time, short a quarter).
    rng = np.random.default_rng(12)
    idx = pd.bdate_range("2020-01-01", periods=1500, tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0.0004, 0.01, 1500)))
    positions = np.repeat(rng.choice([0.0, 1.0, 1.0, -1.0], size=75), 20)
    market = np.r_[0.0, np.diff(close) / close[:-1]]
    equity = 1e4 * np.cumprod(1 + np.r_[0.0, positions[:-1]] * market)
    stats = compute_stats(
        pd.Series(equity, index=idx),
        pd.DataFrame({"pnl": [1.0]}),
        pd.DataFrame({"close": close}, index=idx),
        pd.Series(positions, index=idx),
    )
    ppy = metrics.periods_per_year(idx)
    s = benchmark_stats(equity, close, positions, ppy, nulls=50)
    assert s["Excess Sharpe"] == pytest.approx(
        stats["Sharpe Ratio"] - s["Buy & Hold Sharpe Ratio"], rel=1e-9
    )
    # a leveraged copy of the market has the market's Sharpe ratio: no excess at all
    levered = 1e4 * np.cumprod(1 + 3 * market)
    assert benchmark_stats(levered, close, np.full(1500, 3.0), ppy, nulls=50)[
        "Excess Sharpe"
    ] == pytest.approx(0.0, abs=1e-9)


def test_summary_excess_sharpe_is_averaged_as_the_sharpe_ratio_is():
    per_dataset = {
        "A/1d": {"Sharpe Ratio": 1.2, "Buy & Hold Sharpe Ratio": 0.2, "Excess Sharpe": 1.0},
        "B/1d": {"Sharpe Ratio": -0.5, "Buy & Hold Sharpe Ratio": 0.5, "Excess Sharpe": -1.0},
        "C/1h": {"Sharpe Ratio": 0.9, "Buy & Hold Sharpe Ratio": 0.3, "Excess Sharpe": 0.6},
        "D/1h": {
            "Sharpe Ratio": math.nan,
            "Buy & Hold Sharpe Ratio": 2.0,
            "Excess Sharpe": math.nan,
        },  # no trade: neither figure
    }
    s = summarize(per_dataset)
    assert s["Sharpe Ratio"] == pytest.approx((1.2 - 0.5 + 0.9) / 3)
    assert s["Excess Sharpe"] == pytest.approx((1.0 - 1.0 + 0.6) / 3)
    assert s["Excess Sharpe"] == pytest.approx(s["Sharpe Ratio"] - (0.2 + 0.5 + 0.3) / 3)
    assert math.isnan(summarize({"A": {"Excess Sharpe": math.nan}})["Excess Sharpe"])


# -- several datasets pooled into one portfolio ------------------------------------------------


def _series(
    seed: int, n: int = 1500, edge: float = 0.0, freq: str = "B", start: str = "2015-01-01"
) -> significance.PooledSeries:
    """A random walk and a strategy whose positions foresee the next move with ``edge``."""
    rng = np.random.default_rng(seed)
    moves = rng.normal(0.0, 0.01, n)
    close = 100.0 * np.cumprod(1.0 + moves)
    right = rng.random(n) < 0.5 + edge  # the position held during bar t, right or wrong
    positions = np.where(right, np.sign(moves), -np.sign(moves))
    positions[0] = 0.0
    equity = 1000.0 * np.cumprod(1.0 + np.r_[0.0, positions[1:] * moves[1:]])
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return significance.PooledSeries(index, equity, close, positions)


def test_one_dataset_pooled_is_that_dataset():
    part = _series(1, edge=0.03)
    alone = benchmark_stats(
        part.equity,
        part.close,
        part.positions,
        metrics.periods_per_year(part.index[1:]),
        trials=5,
        sharpe_variance=0.4,
        seed=3,
    )
    pooled = significance.pooled_significance([part], trials=5, sharpe_variance=0.4, seed=3)
    for key in significance.POOLED_KEYS:
        assert pooled[key] == pytest.approx(alone[key], rel=1e-9), key


def test_a_weak_edge_on_every_dataset_is_more_significant_pooled():
    """Four datasets with the same small edge: no single one is convincing, together they are;
    four without an edge stay insignificant."""
    edge = [_series(seed, edge=0.03) for seed in range(4)]
    each = [significance.pooled_significance([p], seed=1) for p in edge]
    pooled = significance.pooled_significance(edge, seed=1)
    assert pooled["p-value"] < min(e["p-value"] for e in each)
    assert pooled["Probabilistic Sharpe Ratio"] > max(e["Probabilistic Sharpe Ratio"] for e in each)
    assert pooled["p-value"] <= 0.01 and pooled["Probabilistic Sharpe Ratio"] >= 0.99
    noise = significance.pooled_significance([_series(10 + s) for s in range(4)], seed=1)
    assert noise["p-value"] > 0.05 and noise["Probabilistic Sharpe Ratio"] < 0.95


def test_pooling_aligns_datasets_of_other_calendars_and_is_seeded():
    daily = _series(5, n=800, edge=0.05)
    hourly = _series(6, n=3000, edge=0.05, freq="h", start="2016-06-01")
    first = significance.pooled_significance(
        [daily, hourly], trials=10, sharpe_variance=0.5, seed=4
    )
    assert all(math.isfinite(v) for v in first.values())
    assert (
        significance.pooled_significance([daily, hourly], trials=10, sharpe_variance=0.5, seed=4)
        == first
    )
    # deflation by many trials lowers the DSR below the PSR
    assert first["Deflated Sharpe Ratio"] < first["Probabilistic Sharpe Ratio"]
    flat = significance.PooledSeries(daily.index, np.full(800, 1000.0), daily.close, np.zeros(800))
    assert math.isnan(significance.pooled_significance([flat, flat])["p-value"])
    assert all(math.isnan(v) for v in significance.pooled_significance([]).values())
