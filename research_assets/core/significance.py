"""Is a backtest's Sharpe ratio skill, luck or market exposure?

Three questions a quant asks of any backtest, each answered by a statistic labelled with units as
the others in ``metrics.py`` are:

* **Against the market it trades** (buy & hold on the same bars): ``Buy & Hold Sharpe Ratio``,
  ``Excess Return [%]`` (strategy minus buy & hold), ``Excess Sharpe`` (the strategy's Sharpe
  ratio minus buy & hold's, both annualised the same way: above 0 means more return per unit
  of risk than simply holding the asset), and ``Beta`` / ``Alpha [%]`` from regressing the
  strategy's bar returns on buy & hold's (alpha annualised, arithmetic).
* **Against luck in its own returns**: the ``Probabilistic Sharpe Ratio`` (Bailey and López de
  Prado, 2012), the probability that the true Sharpe ratio is above 0 given the sample's length,
  skewness and kurtosis; and the ``Deflated Sharpe Ratio`` (Bailey and López de Prado, 2014), the
  same probability against the Sharpe ratio that the best of N unskilled trials would reach by
  chance, given the variance of the trials' Sharpe ratios. N is how many strategies were tried.
* **Against random timing**: the ``p-value``, the share of strategies holding the same positions
  for the same durations (so the same number of trades and the same exposure) at random times
  (the strategy shifted by a random number of bars) whose Sharpe ratio is at least the
  strategy's.

scipy provides the normal distribution, moments and the regression; empyrical(-reloaded) has
Sharpe, alpha and beta but neither the PSR nor the DSR, and its alpha/beta are a line of scipy.

The worked example of Bailey and López de Prado (2014, section "A numerical example"): 100 trials
whose annualised Sharpe ratios vary with variance 0.5, the best at an annualised 2.5 over 1,250
daily returns with skewness -3 and kurtosis 10. The expected maximum of 100 unskilled trials is
a daily Sharpe of 0.1132, and the DSR is 0.9004:

>>> round(expected_max_sharpe(trials=100, sharpe_variance=0.5 / 250), 4)
0.1132
>>> round(sharpe_probability(2.5 / 250 ** 0.5, 1250, -3.0, 10.0,
...                          expected_max_sharpe(100, 0.5 / 250)), 4)
0.9004
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from research_assets.core.metrics import periods_per_year

__all__ = [
    "POOLED_KEYS",
    "PooledSeries",
    "SIGNIFICANCE_KEYS",
    "benchmark_stats",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "pooled_significance",
    "probabilistic_sharpe_ratio",
    "random_timing_p_value",
    "random_timing_sharpes",
    "sharpe_probability",
]

SIGNIFICANCE_KEYS = (
    "Buy & Hold Sharpe Ratio",
    "Excess Return [%]",
    "Excess Sharpe",
    "Beta",
    "Alpha [%]",
    "Probabilistic Sharpe Ratio",
    "Deflated Sharpe Ratio",
    "p-value",
)
DEFAULT_NULLS = 1000
_EULER_GAMMA = 0.5772156649015329


def _per_bar_sharpe(returns: np.ndarray) -> float:
    """Mean over standard deviation (ddof 1) of per-bar returns: NaN when undefined."""
    if len(returns) < 2:
        return math.nan
    std = float(np.std(returns, ddof=1))
    return float(np.mean(returns)) / std if std > 0 else math.nan


def sharpe_probability(
    sharpe: float, observations: int, skewness: float, kurtosis: float, benchmark: float = 0.0
) -> float:
    """P(true Sharpe > ``benchmark``) for a per-bar Sharpe ratio estimated from ``observations``
    returns with that ``skewness`` and (Pearson, not excess) ``kurtosis``: Bailey and López de
    Prado's PSR, ``Φ((SR - SR*) √(n - 1) / √(1 - γ3 SR + (γ4 - 1) / 4 SR²))``.

    >>> round(sharpe_probability(0.1, 253, 0.0, 3.0), 4)   # normal returns, a daily SR of 0.1
    0.9433
    """
    if not (math.isfinite(sharpe) and observations >= 2):
        return math.nan
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not variance > 0:
        return math.nan
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(variance)
    return float(sps.norm.cdf(z))


def probabilistic_sharpe_ratio(returns: np.ndarray, benchmark: float = 0.0) -> float:
    """The PSR of a series of per-bar returns (see :func:`sharpe_probability`)."""
    returns = np.asarray(returns, dtype=np.float64)
    sharpe = _per_bar_sharpe(returns)
    if not math.isfinite(sharpe):
        return math.nan
    skewness = float(sps.skew(returns))
    kurtosis = float(sps.kurtosis(returns, fisher=False))
    return sharpe_probability(sharpe, len(returns), skewness, kurtosis, benchmark)


def expected_max_sharpe(trials: int, sharpe_variance: float) -> float:
    """The per-bar Sharpe ratio the best of ``trials`` unskilled strategies reaches by chance,
    when their Sharpe ratios vary with ``sharpe_variance`` (per-bar units):
    ``√V ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))``, γ the Euler-Mascheroni constant.
    0 for a single trial (nothing to deflate by) or no variance."""
    if trials <= 1 or not sharpe_variance > 0:
        return 0.0
    n = float(trials)
    quantiles = (1 - _EULER_GAMMA) * sps.norm.ppf(1 - 1 / n) + _EULER_GAMMA * sps.norm.ppf(
        1 - 1 / (n * math.e)
    )
    return math.sqrt(sharpe_variance) * float(quantiles)


def deflated_sharpe_ratio(returns: np.ndarray, trials: int, sharpe_variance: float) -> float:
    """The DSR: the PSR against :func:`expected_max_sharpe` of ``trials`` trials whose per-bar
    Sharpe ratios vary with ``sharpe_variance``. Equal to the PSR for one trial."""
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(trials, sharpe_variance))


def random_timing_sharpes(
    positions: np.ndarray, returns: np.ndarray, nulls: int = DEFAULT_NULLS, seed: int = 0
) -> np.ndarray:
    """Per-bar Sharpe ratios of ``nulls`` random timings of ``positions`` on bar ``returns``.

    A random timing is the strategy's own position series shifted in time by a random number
    of bars, wrapping around at the end (drawn without repetition, seeded by ``seed``): the
    same positions held for the same durations, so the same exposure, long and short, and the
    same trades (one more or one fewer where the wrap cuts or joins a trade), at other times.
    Unlike shuffling trades, this also moves a strategy that is always in the market (long
    and short in turn) against the returns. ``returns[t]`` is what a position held during bar
    ``t`` earns, before costs (which are the same for every timing).

    Vectorised: the sums of ``roll(positions, k) * returns`` and of its squares for every shift
    ``k`` at once are circular cross-correlations, computed with the FFT.
    """
    positions = np.asarray(positions, dtype=np.float64)
    returns = np.nan_to_num(np.asarray(returns, dtype=np.float64))
    n = len(positions)
    if n < 3 or not np.any(positions):
        return np.full(nulls, np.nan)
    rng = np.random.default_rng(seed)
    shifts = rng.choice(np.arange(1, n), size=nulls, replace=nulls > n - 1)
    # sum_t p[t - k] r[t] for every k: the inverse FFT of conj(P) R gives sum_t p[t] r[t + k]
    total = np.fft.irfft(np.conj(np.fft.rfft(positions)) * np.fft.rfft(returns), n)[shifts]
    squares = np.fft.irfft(np.conj(np.fft.rfft(positions**2)) * np.fft.rfft(returns**2), n)
    total_sq = squares[shifts]
    mean = total / n
    variance = (total_sq - n * mean**2) / (n - 1)
    std = np.sqrt(np.maximum(variance, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        # variance below rounding noise is none: that timing earned a constant (nothing)
        return np.where(std > 1e-12 * (np.abs(returns).max() + 1e-300), mean / std, np.nan)


def random_timing_p_value(
    positions: np.ndarray, returns: np.ndarray, nulls: int = DEFAULT_NULLS, seed: int = 0
) -> float:
    """The share of random timings (:func:`random_timing_sharpes`) whose Sharpe ratio is at least
    the strategy's, both computed on ``positions × returns``. Counted as ``(k + 1) / (N + 1)``
    (the strategy is one of the timings that could have been drawn), so it is never 0; timings
    with no Sharpe ratio (they earned nothing) are left out of N. NaN without a position."""
    positions = np.asarray(positions, dtype=np.float64)
    returns = np.nan_to_num(np.asarray(returns, dtype=np.float64))
    if len(positions) < 3:
        return math.nan
    observed = _per_bar_sharpe(positions * returns)
    sharpes = random_timing_sharpes(positions, returns, nulls, seed)
    return _share_at_least(observed, sharpes)


def _share_at_least(observed: float, sharpes: np.ndarray) -> float:
    """``(k + 1) / (N + 1)``: k of the N finite null Sharpe ratios at least ``observed``."""
    valid = sharpes[np.isfinite(sharpes)]
    if not math.isfinite(observed) or len(valid) == 0:
        return math.nan
    # a timing equal to the strategy's (rounding aside) counts as at least as good
    at_least = int(np.count_nonzero(valid >= observed - 1e-9 * max(1.0, abs(observed))))
    return (at_least + 1) / (len(valid) + 1)


def benchmark_stats(
    equity: np.ndarray,
    close: np.ndarray,
    positions: np.ndarray,
    periods_per_year: float,
    *,
    trials: int = 1,
    sharpe_variance: float = 0.0,
    nulls: int = DEFAULT_NULLS,
    seed: int = 0,
) -> dict[str, float]:
    """The :data:`SIGNIFICANCE_KEYS` of one backtest, as plain floats (NaN when undefined).

    ``equity`` is the strategy's equity at each bar's close, ``close`` the asset's closes on the
    same bars, ``positions`` the position held during each bar. ``Excess Sharpe`` is the
    strategy's annualised Sharpe ratio (as ``metrics.compute_stats`` computes it from the same
    equity) minus ``Buy & Hold Sharpe Ratio``; NaN where either is undefined (flat equity: a
    strategy that never trades has no Sharpe ratio, so it shows no edge). ``trials`` and
    ``sharpe_variance`` (of the trials' ANNUALISED Sharpe ratios) deflate the Sharpe ratio; the
    random timings are seeded by ``seed``, so the same backtest gives the same p-value.

    Holding the asset is the benchmark itself (no excess); a strategy that was long on the
    rises and out on the falls has the better Sharpe ratio:

    >>> close = np.array([100.0, 102.0, 101.0, 103.0, 102.0, 104.0, 103.0, 105.0])
    >>> held = benchmark_stats(close * 10, close, np.ones(8), 252.0, nulls=10)
    >>> round(held["Excess Sharpe"], 9), round(held["Excess Return [%]"], 9)
    (0.0, 0.0)
    >>> timed = np.array([1000.0, 1020.0, 1020.0, 1040.2, 1040.2, 1060.6, 1060.6, 1081.2])
    >>> s = benchmark_stats(timed, close, np.array([1, 1, 0, 1, 0, 1, 0, 1.0]), 252.0, nulls=10)
    >>> round(s["Buy & Hold Sharpe Ratio"], 2), round(s["Excess Sharpe"], 2)
    (7.17, 9.8)
    """
    equity = np.asarray(equity, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    positions = np.asarray(positions, dtype=np.float64)
    if len(equity) < 2:  # no return at all: nothing to compare
        return dict.fromkeys(SIGNIFICANCE_KEYS, math.nan)
    strategy = _bar_returns(equity)
    market = _bar_returns(close)
    root = math.sqrt(periods_per_year) if periods_per_year > 0 else math.nan
    beta = alpha = math.nan
    if len(market) >= 3 and np.std(market) > 0 and np.std(strategy) > 0:
        fit = sps.linregress(market, strategy)
        beta, alpha = float(fit.slope), float(fit.intercept) * periods_per_year * 100.0
    elif len(market) >= 3 and np.std(market) > 0:  # flat equity: no exposure at all
        beta, alpha = 0.0, 0.0
    per_bar_variance = sharpe_variance / periods_per_year if periods_per_year > 0 else math.nan
    market_sharpe = _per_bar_sharpe(market) * root
    return {
        "Buy & Hold Sharpe Ratio": market_sharpe,
        "Excess Return [%]": float(equity[-1] / equity[0] - close[-1] / close[0]) * 100.0,
        "Excess Sharpe": _per_bar_sharpe(strategy) * root - market_sharpe,
        "Beta": beta,
        "Alpha [%]": alpha,
        "Probabilistic Sharpe Ratio": probabilistic_sharpe_ratio(strategy),
        "Deflated Sharpe Ratio": deflated_sharpe_ratio(strategy, trials, per_bar_variance),
        "p-value": random_timing_p_value(positions[1:], market, nulls, seed),
    }


POOLED_KEYS = ("Probabilistic Sharpe Ratio", "Deflated Sharpe Ratio", "p-value")
# Values (timings x timestamps) computed at once for a pool: bounds memory on long series
# (16 MB a block), whatever their length.
_NULL_BLOCK_VALUES = 2_000_000


@dataclass(frozen=True)
class PooledSeries:
    """One dataset's part of a pooled test: its bars' timestamps, the strategy's equity and the
    asset's closes at them, and the position held during each bar."""

    index: pd.DatetimeIndex
    equity: np.ndarray
    close: np.ndarray
    positions: np.ndarray


def pooled_significance(
    parts: Sequence[PooledSeries],
    *,
    trials: int = 1,
    sharpe_variance: float = 0.0,
    nulls: int = DEFAULT_NULLS,
    seed: int = 0,
) -> dict[str, float]:
    """The :data:`POOLED_KEYS` of a strategy traded on several datasets at once, as one
    portfolio with an equal share of capital in each: its return at a timestamp is the mean of
    the datasets' bar returns there (0 for a dataset without a bar then).

    A strategy that learnt something real on every dataset is more significant pooled than on
    any one of them (more returns, the same edge), while unrelated noise averages out: judging
    it by its least significant dataset would ask each dataset alone to carry the proof. The
    p-value's random timings shift each dataset's positions by its own random number of bars
    (as :func:`random_timing_sharpes` does for one), and the pooled Sharpe ratio of those
    shifted strategies is the null. ``sharpe_variance`` is in annualised units, converted with
    the pooled timestamps' bars per year. One dataset gives its own figures.
    """
    if not parts:
        return dict.fromkeys(POOLED_KEYS, math.nan)
    union = parts[0].index[1:]
    for part in parts[1:]:
        union = union.union(part.index[1:])
    columns = [union.get_indexer(part.index[1:]) for part in parts]
    strategy = np.zeros(len(union))
    gross = np.zeros(len(union))
    market = [_bar_returns(np.asarray(p.close, dtype=np.float64)) for p in parts]
    held = [np.asarray(p.positions, dtype=np.float64)[1:] for p in parts]
    for part, cols, returns, positions in zip(parts, columns, market, held, strict=True):
        strategy[cols] += _bar_returns(np.asarray(part.equity, dtype=np.float64)) / len(parts)
        gross[cols] += positions * returns / len(parts)
    per_year = periods_per_year(union) if len(union) >= 2 else math.nan
    per_bar_variance = sharpe_variance / per_year if per_year > 0 else math.nan
    return {
        "Probabilistic Sharpe Ratio": probabilistic_sharpe_ratio(strategy),
        "Deflated Sharpe Ratio": deflated_sharpe_ratio(strategy, trials, per_bar_variance),
        "p-value": _pooled_p_value(gross, held, market, columns, len(union), nulls, seed),
    }


def _pooled_p_value(
    gross: np.ndarray,
    held: list[np.ndarray],
    market: list[np.ndarray],
    columns: list[np.ndarray],
    n: int,
    nulls: int,
    seed: int,
) -> float:
    observed = _per_bar_sharpe(gross)
    if n < 3 or not math.isfinite(observed) or not any(np.any(p) for p in held):
        return math.nan
    rng = np.random.default_rng(seed)
    shifts = [
        rng.choice(np.arange(1, len(p)), size=nulls, replace=nulls > len(p) - 1)
        if len(p) >= 2
        else np.zeros(nulls, dtype=np.int64)
        for p in held
    ]
    sharpes = []
    chunk = max(1, _NULL_BLOCK_VALUES // n)
    for start in range(0, nulls, chunk):
        block = slice(start, min(start + chunk, nulls))
        pooled = np.zeros((block.stop - block.start, n))
        for positions, returns, cols, k in zip(held, market, columns, shifts, strict=True):
            rolled = (np.arange(len(positions))[None, :] - k[block, None]) % len(positions)
            pooled[:, cols] += positions[rolled] * returns[None, :] / len(held)
        mean = pooled.mean(axis=1)
        std = pooled.std(axis=1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            sharpes.append(np.where(std > 1e-12, mean / std, np.nan))
    return _share_at_least(observed, np.concatenate(sharpes))


def _bar_returns(values: np.ndarray) -> np.ndarray:
    """Simple returns from one bar's value to the next (a ruined account earns nothing more)."""
    prev = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(prev > 0, values[1:] / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)
    return out
