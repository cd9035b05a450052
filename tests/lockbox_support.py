"""Lockbox sentinels: figures that no other period, fixture or prompt has, given to lockbox reports
in the tests that check the lockbox never reaches memory, a designer's prompt, a gate or an
assessment. A test that only looked for the word "lockbox" could not see a leaked number.

Each figure is valid for its field and distinctive in every form the code writes numbers in:
``repr`` (JSON), rounded to 4 or 2 decimals (memory's prompt view, the Claude assessor), 3 or 4
significant figures (the Claude designer's compact lines, gate descriptions), ``.1f`` percentages
and ``.2f`` ratios (the rule-based assessor, the offline designer's rationale), whole trade counts,
and the fractions the backtest gate compares (drawdown and win rate / 100). ``lockbox_leaks``
finds any of those forms as a whole number (not inside a longer one); forms with fewer than three
significant digits are not searched, since they would match ordinary numbers.
"""

import re
from typing import Any

from research_assets.core import pipeline

# Percentages are >= 10 so that their .1f forms keep three significant digits; ratios lie in
# [1, 10) so that their .2f forms do.
LOCKBOX_STATS: dict[str, float] = {
    "Return [%]": 913.3719,
    "Buy & Hold Return [%]": 428.6153,
    "Sharpe Ratio": 7.77123,
    "Sortino Ratio": 9.41857,
    "Calmar Ratio": 5.36271,
    "Max. Drawdown [%]": 36.8241,
    "Win Rate [%]": 83.5791,
    "Profit Factor": 4.86203,
    "# Trades": 8641.0,
    "Exposure Time [%]": 97.2468,
    # the benchmark and significance figures (core/significance.py); probabilities in (0, 1)
    # below 0.1 and odd, so that no real figure likely shares their three significant digits
    "Buy & Hold Sharpe Ratio": 6.13579,
    "Excess Return [%]": 484.7566,
    # not the Sharpe Ratio minus the Buy & Hold Sharpe Ratio above (1.64 is too ordinary a
    # figure: the normal distribution's 95% quantile), a ratio in [1, 10) like the others
    "Excess Sharpe": 3.58291,
    "Beta": 2.71937,
    "Alpha [%]": 257.3914,
    "Probabilistic Sharpe Ratio": 0.0612843,
    "Deflated Sharpe Ratio": 0.0478391,
    "p-value": 0.0317682,
}
# The backtest gate compares these as fractions (percent / 100).
_AS_FRACTIONS = ("Max. Drawdown [%]", "Win Rate [%]")


def _significant_digits(form: str) -> int:
    mantissa = form.lower().split("e")[0]
    return len(mantissa.replace("-", "").replace(".", "").lstrip("0"))


def forms(value: float) -> set[str]:
    """The ways ``value`` can be written by the code under test, keeping the distinctive ones."""
    out = {
        repr(value),
        repr(round(value, 4)),
        repr(round(value, 2)),
        repr(float(f"{value:.3g}")),
        repr(float(f"{value:.4g}")),
        f"{value:.4f}",
        f"{value:.2f}",
        f"{value:.1f}",
        f"{value:.0f}",
        f"{value:.4g}",
        f"{value:.3g}",
    }
    return {f for f in out if _significant_digits(f) >= 3}


def lockbox_forms() -> dict[str, set[str]]:
    """Every searched form, per field (``<field> /100`` for the gate's fractions)."""
    out = {key: forms(value) for key, value in LOCKBOX_STATS.items()}
    for key in _AS_FRACTIONS:
        out[f"{key} /100"] = forms(LOCKBOX_STATS[key] / 100)
    return out


_FORMS = lockbox_forms()
_FIELD_OF = {form: key for key, fs in _FORMS.items() for form in fs}
# A whole number: not part of a longer number, a word, an id (``3fa2-8641-...``) or a decimal.
_PATTERN = re.compile(
    r"(?<![\w.])(?<!\w-)("
    + "|".join(re.escape(f) for f in sorted(_FIELD_OF, key=len, reverse=True))
    + r")(?!\w)(?!\.[0-9])"
)
# Pictures (the equity curves) are base64 text, where any digits may appear.
_IMAGE = re.compile(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=\\n]+")


def _text(thing: Any) -> str:
    if isinstance(thing, bytes | bytearray):
        text = bytes(thing).decode("utf-8", "replace")
    else:
        text = thing if isinstance(thing, str) else repr(thing)
    return _IMAGE.sub("data:image", text)


def lockbox_leaks(*things: Any) -> list[str]:
    """The lockbox figures found in ``things`` (text, bytes, or any object, read by its repr),
    as ``field=form``; empty when there are none."""
    found = set()
    for thing in things:
        for match in _PATTERN.finditer(_text(thing)):
            found.add(f"{_FIELD_OF[match.group(1)]}={match.group(1)}")
    return sorted(found)


def lockbox_fields(*things: Any) -> set[str]:
    """The fields of ``LOCKBOX_STATS`` whose figure appears in ``things``."""
    return {leak.split("=")[0].removesuffix(" /100") for leak in lockbox_leaks(*things)}


def assert_no_lockbox(*things: Any, where: str = "") -> None:
    leaks = lockbox_leaks(*things)
    assert not leaks, f"lockbox figures reached {where or 'this'}: {leaks}"


def lockbox_report_of(report: pipeline.BacktestReport) -> pipeline.BacktestReport:
    """``report`` (a real lockbox backtest) with the sentinel figures in place of its own: every
    dataset gets ``LOCKBOX_STATS``, and so does the summary. The equity curves and the period's
    bounds stay the real ones."""
    stats = {key: dict(LOCKBOX_STATS) for key in report.stats}
    return pipeline.BacktestReport(
        report.period, stats, dict(LOCKBOX_STATS), report.equity, report.bounds, report.trials
    )


def give_lockbox_sentinel_figures(monkeypatch) -> list[str]:
    """Make every lockbox backtest of real research runs report the sentinel figures: the real
    backtest runs on the lockbox period, then its figures are replaced. Backtest-period reports
    are left alone. Returns the list of periods backtested so far (to check the lockbox ran)."""
    real = pipeline.backtest
    periods: list[str] = []

    def backtest(model, data_dir=None, period="backtest", trials=None):
        periods.append(period)
        report = real(model, data_dir, period, trials)
        return lockbox_report_of(report) if period == "lockbox" else report

    monkeypatch.setattr(pipeline, "backtest", backtest)
    return periods
