"""The rule-based assessor: a verdict and specific notes on a research that passed both gates.

Everything here is derived from the numbers (training metrics, aggregate and per-dataset
backtest-period statistics, and how many strategies were tried) and from the spec,
deterministically. Lockbox figures never come here: the assessment feeds the research memory
that designers read.

Verdict rules (the aggregate backtest-period figures decide; the first rule that applies wins):

1. ``poor`` when any of these holds:
   - Sharpe is below 0, or undefined;
   - fewer than ``POOR_MIN_TRADES`` (10) trades: too few to show any edge;
   - the return trails buy & hold by a wide margin: by more than 25 percentage points and more
     than half of the buy & hold return's size (``max(25, 0.5 * |B&H|)`` points), so a strategy
     that makes 150% where holding made 300% is poor, and one that makes 5% where holding made
     20% is not.
2. ``promising`` when all of:
   - Sharpe above 1, max drawdown below 20% and more than 50 trades;
   - significant: Deflated Sharpe Ratio at least 0.95 (the Sharpe ratio is unlikely to be the
     luck of the best of the strategies tried) and p-value against random timing at most 0.05
     (the same positions at random times rarely do as well). The thresholds are the backtest
     gate's defaults (``GateThresholds``), whatever a deployment relaxed the gate to;
   - better than buy & hold over the same bars: Excess Sharpe above 0 and Excess Return [%]
     above 0, so neither the risk-adjusted nor the plain return comes from holding the market.
   A figure that is missing (an older report) or undefined counts as not met.
3. ``neutral`` otherwise.
"""

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from research_assets.core.gates import GateThresholds, observed
from research_assets.core.spec import StrategySpec, ZigzagLabels

PROMISING_MIN_SHARPE = 1.0  # strictly above
PROMISING_MAX_DRAWDOWN = 20.0  # percent, strictly below
PROMISING_MIN_TRADES = 50  # strictly more
# Significance and the benchmark: the backtest gate's defaults, whatever a deployment sets the
# gate to (see the module docstring).
_GATE_DEFAULTS = GateThresholds()
PROMISING_MIN_DEFLATED_SHARPE = _GATE_DEFAULTS.min_deflated_sharpe  # at least (0.95)
PROMISING_MAX_P_VALUE = _GATE_DEFAULTS.max_p_value  # at most (0.05)
PROMISING_MIN_EXCESS_SHARPE = _GATE_DEFAULTS.min_excess_sharpe  # strictly above (0)
PROMISING_MIN_EXCESS_RETURN = 0.0  # percentage points, strictly above
POOR_MIN_TRADES = 10  # strictly fewer is poor
POOR_BH_MARGIN = 25.0  # percentage points behind buy & hold, at least
FEW_TRADES_PER_DATASET = 20  # a dataset with fewer trades is too thin to judge
MAX_ITEMS = 8
MAX_ITEM_CHARS = 300
MAX_SUMMARY_CHARS = 1000

_Item = Annotated[str, StringConstraints(max_length=MAX_ITEM_CHARS)]
_Items = Annotated[list[_Item], Field(max_length=MAX_ITEMS)]


class Assessment(BaseModel):
    """A verdict with specific strengths, weaknesses, suggestions and hypotheses to test next."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    verdict: Literal["promising", "neutral", "poor"]
    summary: Annotated[str, StringConstraints(max_length=MAX_SUMMARY_CHARS)]
    strengths: _Items = Field(default_factory=list)
    weaknesses: _Items = Field(default_factory=list)
    suggestions: _Items = Field(default_factory=list)
    hypotheses: _Items = Field(default_factory=list)


# -- number helpers ----------------------------------------------------------------------------


def _num(values: Mapping[str, float], key: str) -> float | None:
    """A float, or None when missing, NaN or not a number."""
    return observed(values, key)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}%"


def _r(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _n(x: float | None) -> str:
    return "n/a" if x is None else str(int(x))


def _signed(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:+.{digits}f}"


def _p(x: float | None) -> str:
    """A p-value or probability: three decimals, so 0.001 (1 in 1,000 timings) stays visible."""
    return "n/a" if x is None else f"{x:.3f}"


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


class _Stats:
    """The figures of one backtest summary, parsed once."""

    def __init__(self, s: Mapping[str, float]):
        self.ret = _num(s, "Return [%]")
        self.bh = _num(s, "Buy & Hold Return [%]")
        self.sharpe = _num(s, "Sharpe Ratio")
        self.sortino = _num(s, "Sortino Ratio")
        self.calmar = _num(s, "Calmar Ratio")
        dd = _num(s, "Max. Drawdown [%]")
        self.dd = None if dd is None else abs(dd)
        self.win = _num(s, "Win Rate [%]")
        self.pf = _num(s, "Profit Factor")
        self.trades = _num(s, "# Trades")
        self.exposure = _num(s, "Exposure Time [%]")
        self.bh_sharpe = _num(s, "Buy & Hold Sharpe Ratio")
        # the reported excess figures; the difference of the two where a report lacks them
        self.excess_sharpe = _num(s, "Excess Sharpe")
        if self.excess_sharpe is None:
            self.excess_sharpe = _difference(self.sharpe, self.bh_sharpe)
        self.excess_ret = _num(s, "Excess Return [%]")
        if self.excess_ret is None:
            self.excess_ret = _difference(self.ret, self.bh)
        self.beta = _num(s, "Beta")
        self.alpha = _num(s, "Alpha [%]")
        self.psr = _num(s, "Probabilistic Sharpe Ratio")
        self.dsr = _num(s, "Deflated Sharpe Ratio")
        self.p_value = _num(s, "p-value")

    def significance_gaps(self, trials: int | None) -> list[str]:
        """What keeps the figures from being significant (empty when they are)."""
        gaps = []
        if self.dsr is None or self.dsr < PROMISING_MIN_DEFLATED_SHARPE:
            gaps.append(
                f"Deflated Sharpe {_p(self.dsr)} is below "
                f"{PROMISING_MIN_DEFLATED_SHARPE:g}{_over_trials(trials)}"
            )
        if self.p_value is None or self.p_value > PROMISING_MAX_P_VALUE:
            gaps.append(
                f"p-value {_p(self.p_value)} against random timing is above "
                f"{PROMISING_MAX_P_VALUE:g}"
            )
        return gaps

    def benchmark_gaps(self) -> list[str]:
        """Where it does not beat buy & hold (empty when it does on both counts)."""
        gaps = []
        if self.excess_sharpe is None or self.excess_sharpe <= PROMISING_MIN_EXCESS_SHARPE:
            gaps.append(
                f"Sharpe {_r(self.sharpe)} vs buy & hold {_r(self.bh_sharpe)} "
                f"(excess {_signed(self.excess_sharpe)}) is not above buy & hold"
            )
        if self.excess_ret is None or self.excess_ret <= PROMISING_MIN_EXCESS_RETURN:
            gaps.append(
                f"return {_pct(self.ret)} vs buy & hold {_pct(self.bh)} "
                f"(excess {_signed(self.excess_ret, 1)} points) is not above buy & hold"
            )
        return gaps

    def trails_buy_and_hold(self) -> bool:
        if self.ret is None or self.bh is None:
            return False
        return self.ret < self.bh - max(POOR_BH_MARGIN, 0.5 * abs(self.bh))


def _over_trials(trials: int | None) -> str:
    return "" if trials is None else f" after {trials} trial{'s' if trials != 1 else ''}"


def _verdict(a: _Stats, trials: int | None) -> tuple[str, str]:
    """The verdict and the reason for it, per the rules in the module docstring."""
    if a.sharpe is None:
        return "poor", "Sharpe is undefined"
    if a.sharpe < 0:
        return "poor", f"Sharpe {_r(a.sharpe)} is negative"
    if a.trades is not None and a.trades < POOR_MIN_TRADES:
        return "poor", f"only {_n(a.trades)} trades: too few to show an edge"
    if a.trails_buy_and_hold():
        return "poor", (f"return {_pct(a.ret)} trails buy & hold {_pct(a.bh)} by a wide margin")
    missing = []
    if a.sharpe <= PROMISING_MIN_SHARPE:
        missing.append(f"Sharpe {_r(a.sharpe)} is not above {PROMISING_MIN_SHARPE:g}")
    if a.dd is None or a.dd >= PROMISING_MAX_DRAWDOWN:
        missing.append(f"max drawdown {_pct(a.dd)} is not below {PROMISING_MAX_DRAWDOWN:g}%")
    if a.trades is None or a.trades <= PROMISING_MIN_TRADES:
        missing.append(f"{_n(a.trades)} trades are not more than {PROMISING_MIN_TRADES}")
    missing += a.significance_gaps(trials) + a.benchmark_gaps()
    if not missing:
        return "promising", (
            f"Sharpe {_r(a.sharpe)} > 1, max drawdown {_pct(a.dd)} < 20% "
            f"and {_n(a.trades)} trades > 50; significant (Deflated Sharpe {_p(a.dsr)}"
            f"{_over_trials(trials)}, p-value {_p(a.p_value)}) and ahead of buy & hold "
            f"(excess Sharpe {_signed(a.excess_sharpe)}, excess return "
            f"{_signed(a.excess_ret, 1)} points)"
        )
    return "neutral", "not promising yet: " + "; ".join(missing)


# -- spec helpers ------------------------------------------------------------------------------


def _indicator_types(spec: StrategySpec) -> set[str]:
    return {i.type for i in spec.indicators.values()}


def _has_volatility_input(spec: StrategySpec) -> bool:
    """An ATR or Bollinger width input lets the model see volatility and stand aside."""
    for set_id in spec.fuzzy_sets:
        col = spec.indicator_column(set_id)
        ind_id, _, output = col.partition(".")
        kind = spec.indicators[ind_id].type
        if kind == "atr" or (kind == "bbands" and output == "width"):
            return True
    return False


def _more_trades_advice(spec: StrategySpec) -> str:
    """How to get more trades out of this spec's labels."""
    labels = spec.training.labels
    if isinstance(labels, ZigzagLabels):
        return (
            f"lower the zigzag threshold from {labels.threshold:g} to {labels.threshold / 2:g} "
            "or lengthen the backtest period"
        )
    return (
        f"shorten the forward-return horizon from {labels.horizon} to "
        f"{max(1, labels.horizon // 2)} bars or lengthen the backtest period"
    )


def _selective_advice(spec: StrategySpec) -> str:
    """How to make this spec's signals fewer and larger."""
    labels = spec.training.labels
    if isinstance(labels, ZigzagLabels):
        return (
            f"raise the zigzag threshold from {labels.threshold:g} to "
            f"{labels.threshold * 1.5:g} or lengthen the lookahead from {labels.lookahead} to "
            f"{labels.lookahead * 2} bars"
        )
    # a dead zone adds a third class, which the training gate's loss limit rarely lets through
    return f"lengthen the forward-return horizon from {labels.horizon} to {labels.horizon * 2} bars"


def _balance_advice(spec: StrategySpec) -> str:
    """How to even out the label classes of this spec."""
    labels = spec.training.labels
    if isinstance(labels, ZigzagLabels):
        return (
            f"balance the classes: lower the zigzag threshold from {labels.threshold:g} to "
            f"{labels.threshold / 2:g} so flat is not the majority, or use forward_return labels "
            "with threshold 0 (up or down only)"
        )
    if labels.threshold > 0:
        return (
            f"balance the classes: lower the forward-return threshold from {labels.threshold:g} "
            "to 0 (up or down only)"
        )
    return "balance the classes: train on more symbols or a period with less one-way drift"


def _exposure_advice(spec: StrategySpec) -> str:
    """How to make this spec's model stand aside more, rather than ride the market."""
    labels = spec.training.labels
    if isinstance(labels, ZigzagLabels):
        return (
            f"raise the zigzag threshold from {labels.threshold:g} to {labels.threshold * 1.5:g} "
            "so that flat (no position) is predicted when no clear move is due"
        )
    if labels.threshold == 0:
        return (
            "add a dead zone to the forward-return labels (a threshold of about half a typical "
            f"move over {labels.horizon} bars) so that flat (no position) is a class of its own"
        )
    return (
        f"widen the forward-return dead zone from {labels.threshold:g} to "
        f"{labels.threshold * 1.5:g} so that the model stands aside more often"
    )


def _round_trip_cost_pct(spec: StrategySpec) -> float:
    return 2 * (spec.backtest.commission + spec.backtest.slippage) * 100


# -- the assessment ----------------------------------------------------------------------------


class _Notes:
    """Collects notes, dropping duplicates and keeping each within the item length."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        text = text if len(text) <= MAX_ITEM_CHARS else text[: MAX_ITEM_CHARS - 3] + "..."
        if text not in self.items:
            self.items.append(text)

    def top(self) -> list[str]:
        return self.items[:MAX_ITEMS]


def assess(
    spec: StrategySpec,
    training: Mapping[str, float],
    backtest_summary: Mapping[str, float],
    backtest_by_dataset: Mapping[str, Mapping[str, float]],
    *,
    trials: int | None = None,
) -> Assessment:
    """Assess a research that passed both gates. ``trials``: how many strategies the Deflated
    Sharpe Ratio was deflated by (the report's ``trials``), quoted when given. Deterministic:
    same inputs, same assessment."""
    a = _Stats(backtest_summary)
    verdict, why = _verdict(a, trials)
    strengths, weaknesses, suggestions, hypotheses = _Notes(), _Notes(), _Notes(), _Notes()

    # the benchmark and significance first: they decide whether the rest means anything
    _assess_benchmark(spec, a, trials, strengths, weaknesses, suggestions, hypotheses)
    _assess_aggregate(spec, a, strengths, weaknesses, suggestions, hypotheses)
    _assess_datasets(spec, backtest_by_dataset, strengths, weaknesses, suggestions, hypotheses)
    _assess_training(spec, training, strengths, weaknesses, suggestions)
    _next_hypotheses(spec, verdict, a, hypotheses)

    lift = _num(training, "accuracy_lift")
    summary = (
        f"{verdict}: {why}. Aggregate over {len(backtest_by_dataset) or 'the'} dataset(s): "
        f"return {_pct(a.ret)} vs buy & hold {_pct(a.bh)}, Sharpe {_r(a.sharpe)} vs buy & hold "
        f"{_r(a.bh_sharpe)}, beta {_r(a.beta)}, max drawdown {_pct(a.dd)}, {_n(a.trades)} "
        f"trades, win rate {_pct(a.win)}; Deflated Sharpe {_p(a.dsr)}{_over_trials(trials)}, "
        f"p-value {_p(a.p_value)}; test accuracy {_r(_num(training, 'test_accuracy'))}"
        + (f" (lift {_signed(lift)} over the majority class)" if lift is not None else "")
        + "."
    )
    return Assessment(
        verdict=verdict,  # type: ignore[arg-type]
        summary=summary[:MAX_SUMMARY_CHARS],
        strengths=strengths.top(),
        weaknesses=weaknesses.top(),
        suggestions=suggestions.top(),
        hypotheses=hypotheses.top(),
    )


def _assess_benchmark(
    spec: StrategySpec,
    a: _Stats,
    trials: int | None,
    strengths: _Notes,
    weaknesses: _Notes,
    suggestions: _Notes,
    hypotheses: _Notes,
) -> None:
    """Against buy & hold on the same bars, and against luck."""
    if a.excess_sharpe is not None:
        versus = (
            f"Sharpe {_r(a.sharpe)} vs buy & hold {_r(a.bh_sharpe)} "
            f"(excess {_signed(a.excess_sharpe)})"
        )
        if a.excess_sharpe > PROMISING_MIN_EXCESS_SHARPE:
            strengths.add(f"{versus}: more return per unit of risk than holding the asset")
        else:
            weaknesses.add(f"{versus}: no more return per unit of risk than holding the asset")
    riding = a.excess_sharpe is not None and a.excess_sharpe <= PROMISING_MIN_EXCESS_SHARPE
    if a.beta is not None:
        market = f"beta {_r(a.beta)} to buy & hold, alpha {_pct(a.alpha)} a year"
        if a.beta >= 0.7:
            weaknesses.add(f"{market}: the returns mostly come from market exposure")
            riding = True
        elif abs(a.beta) <= 0.3 and a.alpha is not None and a.alpha > 0:
            strengths.add(f"{market}: the returns do not come from market exposure")
        elif a.alpha is not None and a.alpha <= 0:
            weaknesses.add(f"{market}: nothing is left beyond market exposure")
    if riding:
        suggestions.add(f"to beat buy & hold rather than ride it, {_exposure_advice(spec)}")
    gaps = a.significance_gaps(trials)
    if not gaps:
        strengths.add(
            f"significant: Deflated Sharpe {_p(a.dsr)}{_over_trials(trials)} and p-value "
            f"{_p(a.p_value)} against random timing of the same positions"
        )
        return
    if a.dsr is not None and a.dsr < PROMISING_MIN_DEFLATED_SHARPE:
        before = f" (before deflating: {_p(a.psr)})" if a.psr is not None else ""
        weaknesses.add(
            f"Deflated Sharpe {_p(a.dsr)} < {PROMISING_MIN_DEFLATED_SHARPE:g}"
            f"{_over_trials(trials)}{before}: the Sharpe could be the luck of the best of many "
            "tries"
        )
    if a.p_value is not None and a.p_value > PROMISING_MAX_P_VALUE:
        weaknesses.add(
            f"p-value {_p(a.p_value)} > {PROMISING_MAX_P_VALUE:g}: {a.p_value:.0%} of random "
            "timings of the same positions did at least as well"
        )
    if a.dsr is not None or a.p_value is not None:
        types = ", ".join(sorted(_indicator_types(spec)))
        suggestions.add(
            f"the edge is not significant: try other kinds of inputs than {types} rather than "
            "tuning their parameters"
        )
        hypotheses.add(
            f"inputs of another kind than {types} give a p-value below "
            f"{PROMISING_MAX_P_VALUE:g} against random timing"
        )


def _assess_aggregate(
    spec: StrategySpec,
    a: _Stats,
    strengths: _Notes,
    weaknesses: _Notes,
    suggestions: _Notes,
    hypotheses: _Notes,
) -> None:
    if a.sharpe is not None:
        ahead = a.excess_sharpe is None or a.excess_sharpe > PROMISING_MIN_EXCESS_SHARPE
        if a.sharpe > PROMISING_MIN_SHARPE and ahead:  # else holding the asset did better
            strengths.add(f"Sharpe {_r(a.sharpe)} over the backtest period, above 1")
        elif a.sharpe < 0.5:
            weaknesses.add(f"Sharpe {_r(a.sharpe)}: returns barely pay for their volatility")
    if a.ret is not None and a.bh is not None:
        diff = a.ret - a.bh
        if diff > 0:
            strengths.add(
                f"return {_pct(a.ret)} beat buy & hold ({_pct(a.bh)}) by {diff:.1f} points"
            )
        elif a.trails_buy_and_hold():
            weaknesses.add(
                f"return {_pct(a.ret)} trails buy & hold ({_pct(a.bh)}) by {-diff:.1f} points"
            )
        elif diff < 0:
            weaknesses.add(f"return {_pct(a.ret)} is below buy & hold ({_pct(a.bh)})")
    if a.dd is not None:
        if a.dd < 10:
            strengths.add(f"max drawdown only {_pct(a.dd)}")
        elif a.dd >= PROMISING_MAX_DRAWDOWN:
            weaknesses.add(
                f"max drawdown {_pct(a.dd)} is at or above the 20% a promising strategy may have"
            )
            if not _has_volatility_input(spec):
                suggestions.add(
                    f"max drawdown {_pct(a.dd)} with no volatility input: add an ATR or "
                    "Bollinger width fuzzy set so the model can stand aside in turbulent markets"
                )
            else:
                suggestions.add(
                    f"max drawdown {_pct(a.dd)}: {_selective_advice(spec)} so that only larger, "
                    "clearer moves are traded"
                )
    if a.trades is not None and a.trades <= PROMISING_MIN_TRADES:
        weaknesses.add(f"only {_n(a.trades)} trades in total: too few to judge with confidence")
        suggestions.add(f"{_n(a.trades)} trades are too few: {_more_trades_advice(spec)}")
    if a.win is not None:
        if a.win >= 55:
            strengths.add(f"win rate {_pct(a.win)} over {_n(a.trades)} trades")
        elif a.win < 45:
            weaknesses.add(f"win rate {_pct(a.win)}: most trades lose")
    if a.pf is not None:
        if a.pf < 1:
            weaknesses.add(f"profit factor {_r(a.pf)} < 1: losing trades outweigh winning ones")
        elif a.pf >= 1.5:
            strengths.add(f"profit factor {_r(a.pf)}: winners outweigh losers clearly")
    if a.exposure is not None:
        if a.exposure < 10:
            weaknesses.add(
                f"in the market only {_pct(a.exposure)} of the time: the signal is rarely "
                "confident, so results rest on few bars"
            )
            if a.trades is None or a.trades <= 100:  # with many short trades, more is no cure
                suggestions.add(
                    f"exposure {_pct(a.exposure)} is very low: {_more_trades_advice(spec)}"
                )
        elif a.exposure > 95:
            weaknesses.add(
                f"in the market {_pct(a.exposure)} of the time: it behaves much like buy & hold"
            )
    cost = _round_trip_cost_pct(spec)
    if a.trades is not None and a.trades > 100 and a.ret is not None:
        per_trade = a.ret / a.trades
        if per_trade < 2 * cost:
            weaknesses.add(
                f"costs dominate: {_n(a.trades)} trades averaging {per_trade:.3f}% each against "
                f"a round-trip cost of {cost:.3f}%"
            )
            suggestions.add(f"trade less often to cut costs: {_selective_advice(spec)}")
            hypotheses.add(
                f"fewer, larger trades ({_selective_advice(spec)}) keep the edge after costs"
            )
    if a.sortino is not None and a.sharpe is not None and a.sharpe > 0:
        if a.sortino > 1.5 * a.sharpe:
            strengths.add(
                f"Sortino {_r(a.sortino)} well above Sharpe {_r(a.sharpe)}: volatility is "
                "mostly on the upside"
            )


def _assess_datasets(
    spec: StrategySpec,
    by_dataset: Mapping[str, Mapping[str, float]],
    strengths: _Notes,
    weaknesses: _Notes,
    suggestions: _Notes,
    hypotheses: _Notes,
) -> None:
    stats = {name: _Stats(s) for name, s in sorted(by_dataset.items())}
    thin = [
        n for n, s in stats.items() if s.trades is not None and s.trades < FEW_TRADES_PER_DATASET
    ]
    if thin:
        s = stats[thin[0]]
        weaknesses.add(
            f"win rate {_pct(s.win)} on {thin[0]} with {_n(s.trades)} trades: too few trades "
            f"to judge; {_more_trades_advice(spec)}"
        )
    if len(thin) > 1:
        # one note for the rest, so thin datasets do not crowd out everything else
        others = ", ".join(f"{n} ({_n(stats[n].trades)})" for n in thin[1:])
        weaknesses.add(f"also too few trades on {others}")
    sharpes = {name: s.sharpe for name, s in stats.items() if s.sharpe is not None}
    if len(sharpes) < 2:
        return
    best = max(sharpes, key=lambda k: (sharpes[k], k))
    worst = min(sharpes, key=lambda k: (sharpes[k], k))
    if sharpes[best] > 0.5 and sharpes[worst] < 0:
        weaknesses.add(
            f"datasets disagree: Sharpe {_r(sharpes[best])} on {best} but "
            f"{_r(sharpes[worst])} on {worst}"
        )
        suggestions.add(f"the edge is uneven across datasets: study {best} alone, or drop {worst}")
        hypotheses.add(
            f"the edge is specific to {best}: a research trained on {best} alone keeps a "
            f"Sharpe above {_r(max(sharpes[best] * 0.75, 0.5))}"
        )
    elif all(v > 0 for v in sharpes.values()):
        strengths.add(
            f"positive Sharpe on all {len(sharpes)} datasets (lowest {_r(sharpes[worst])} on "
            f"{worst}, highest {_r(sharpes[best])} on {best})"
        )
    b = stats[best]
    if sharpes[best] > 0 and b.ret is not None and b.bh is not None and b.ret > b.bh:
        strengths.add(
            f"strongest on {best}: Sharpe {_r(b.sharpe)}, return {_pct(b.ret)} vs buy & hold "
            f"{_pct(b.bh)}"
        )


def _assess_training(
    spec: StrategySpec,
    training: Mapping[str, float],
    strengths: _Notes,
    weaknesses: _Notes,
    suggestions: _Notes,
) -> None:
    acc = _num(training, "test_accuracy")
    val = _num(training, "val_accuracy")
    train = _num(training, "train_accuracy")
    f1 = _num(training, "f1")
    decrease = _num(training, "loss_decrease")
    arch = spec.model.architecture
    lift = _num(training, "accuracy_lift")
    baseline = _num(training, "baseline_accuracy")
    loss_ratio = _num(training, "loss_ratio")
    if lift is not None:
        versus = (
            f"test accuracy {_r(acc)} vs {_r(baseline)} always predicting the majority "
            f"class (lift {_signed(lift)})"
        )
        if lift >= 0.03:
            strengths.add(f"{versus}: the inputs predict the labels")
        elif lift <= 0.01:
            weaknesses.add(f"{versus}: the inputs barely predict the labels")
    elif acc is not None and acc >= 0.55:
        strengths.add(f"test accuracy {_r(acc)} on unseen data")
    if loss_ratio is not None and loss_ratio >= 0.98:
        weaknesses.add(
            f"test loss is {loss_ratio:.0%} of the labels' entropy: the model predicts hardly "
            "better than the label frequencies"
        )
    overfit = None
    if acc is not None and val is not None and val - acc > 0.08:
        overfit = f"validation accuracy {_r(val)} well above test accuracy {_r(acc)}"
    elif acc is not None and train is not None and train - acc > 0.15:
        overfit = f"training accuracy {_r(train)} well above test accuracy {_r(acc)}"
    if overfit:
        weaknesses.add(f"sign of overfitting: {overfit}")
        smaller = [max(2, h // 2) for h in arch.hidden_layers]
        suggestions.add(
            f"against overfitting: raise dropout from {arch.dropout:g} to "
            f"{min(0.5, arch.dropout + 0.15):g} or shrink hidden layers from "
            f"{arch.hidden_layers} to {smaller}"
        )
    balance = {
        name: share
        for name in ("up", "flat", "down")
        if (share := _num(training, f"class_balance_{name}")) is not None
    }
    major = max(balance, key=lambda k: (balance[k], k)) if balance else None
    if major is not None and balance[major] > 0.6:
        weaknesses.add(
            f"labels are imbalanced: {major} is {balance[major]:.0%} of the training labels, so "
            "accuracy flatters the model"
        )
    if acc is not None and f1 is not None and f1 < acc - 0.15:
        weaknesses.add(
            f"F1 {_r(f1)} far below accuracy {_r(acc)}: the model mostly predicts one class"
        )
    if (major is not None and balance[major] > 0.6) or (
        acc is not None and f1 is not None and f1 < acc - 0.15
    ):
        suggestions.add(_balance_advice(spec))
    if decrease is not None and decrease < 0.3:
        weaknesses.add(f"loss fell only {decrease * 100:.0f}% during training: little was learned")
        suggestions.add(
            f"loss barely fell: raise the learning rate from {spec.training.learning_rate:g} to "
            f"{min(1.0, spec.training.learning_rate * 3):g} or add more informative inputs"
        )


def _next_hypotheses(spec: StrategySpec, verdict: str, a: _Stats, hypotheses: _Notes) -> None:
    symbols = spec.training_data.symbols
    timeframes = spec.training_data.timeframes
    types = _indicator_types(spec)
    if verdict == "promising":
        cost = spec.backtest.commission
        hypotheses.add(
            f"the edge survives doubled costs (commission {cost * 2:g} instead of {cost:g})"
        )
    if len(symbols) == 1:
        hypotheses.add(
            f"the same rules generalise to other {'/'.join(timeframes)} symbols than {symbols[0]}"
        )
    # a nearby period tests whether the edge depends on one exact parameter
    for ind_id, ind in sorted(spec.indicators.items()):
        period = ind.params.get("period")
        if period is not None:
            alt = int(period) * 2 if int(period) * 2 <= 200 else max(2, int(period) // 2)
            hypotheses.add(
                f"{ind_id} with period {alt} instead of {int(period)} keeps the result "
                "(the edge is not tied to one parameter)"
            )
            break
    if not _has_volatility_input(spec) and (a.dd is None or a.dd >= 10):
        hypotheses.add("an ATR volatility input lowers the max drawdown without losing Sharpe")
    if "adx" not in types and ({"sma", "ema", "macd"} & types):
        hypotheses.add("filtering trend signals by ADX trend strength raises the win rate")
    labels = spec.training.labels
    if isinstance(labels, ZigzagLabels):
        hypotheses.add(
            f"two-class forward_return labels (horizon {max(1, labels.lookahead // 2)}, "
            "threshold 0) predict as well as the zigzag labels"
        )
    else:
        hypotheses.add(
            f"a forward-return horizon of {labels.horizon * 2} bars instead of {labels.horizon} "
            "keeps the accuracy and lifts the win rate"
        )
