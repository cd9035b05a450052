"""The daily spending limit on LLM calls.

``RESEARCH_DAILY_BUDGET_USD`` (default 20; 0 means no limit) caps what Claude designs and
assessments may cost per UTC day. The caller collects ``(timestamp, cost_usd)`` pairs of past
calls (failed designs included: their turns were billed too), sums today's with
``spent_today`` and asks ``check_budget`` before starting another.

>>> check_budget(spent=20.5, budget=20.0).reason
'budget_exhausted'
>>> check_budget(spent=1e6, budget=0.0).allowed
True
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from research_assets.core.config import env_float
from research_assets.core.errors import ConfigError

BUDGET_ENV = "RESEARCH_DAILY_BUDGET_USD"
DEFAULT_DAILY_BUDGET_USD = 20.0
BUDGET_EXHAUSTED = "budget_exhausted"


def daily_budget_usd(env: Mapping[str, str] | None = None) -> float:
    """The daily budget in USD; 0 means no limit. A bad value is a ``ConfigError``."""
    value = env_float(BUDGET_ENV, DEFAULT_DAILY_BUDGET_USD, env)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"{BUDGET_ENV}={value} must be a finite amount of US dollars of 0 or more, such as "
            f"{DEFAULT_DAILY_BUDGET_USD:g} (0 means no limit)"
        )
    return value


def _utc_day_start(now: float | datetime | None) -> datetime:
    if now is None:
        moment = datetime.now(UTC)
    elif isinstance(now, datetime):
        moment = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    else:
        moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def spent_today(
    usages: Iterable[tuple[float, float]], now: float | datetime | None = None
) -> float:
    """USD spent on the UTC day of ``now`` (default: the current time).

    ``usages`` are ``(unix timestamp, cost_usd)`` pairs; a naive ``now`` datetime is taken as
    UTC. Costs that are missing, negative or not finite count as 0.
    """
    start = _utc_day_start(now).timestamp()
    end = (_utc_day_start(now) + timedelta(days=1)).timestamp()
    total = 0.0
    for ts, cost in usages:
        if start <= ts < end and isinstance(cost, int | float) and math.isfinite(cost) and cost > 0:
            total += float(cost)
    return total


@dataclass(frozen=True)
class BudgetCheck:
    """Whether another LLM call may start; ``reason`` is ``budget_exhausted`` when not."""

    allowed: bool
    spent: float
    budget: float
    reason: str | None = None

    def message(self) -> str:
        if self.allowed:
            limit = "no limit" if self.budget == 0 else _usd(self.budget)
            return f"LLM spend today {_usd(self.spent)} of {limit}"
        return (
            f"today's LLM budget is spent: {_usd(self.spent)} of {_usd(self.budget)} "
            f"({BUDGET_ENV}); new researches wait until 00:00 UTC, or raise {BUDGET_ENV} "
            "(0 means no limit)"
        )


def _usd(amount: float) -> str:
    # Cents hide a budget of fractions of a cent, as a test or a cheap model may have.
    return f"${amount:.2f}" if amount >= 1 else f"${amount:.4f}"


def check_budget(spent: float, budget: float) -> BudgetCheck:
    """Allowed while ``spent`` is below ``budget``; a budget of 0 never stops anything."""
    if budget == 0 or spent < budget:
        return BudgetCheck(allowed=True, spent=spent, budget=budget)
    return BudgetCheck(allowed=False, spent=spent, budget=budget, reason=BUDGET_EXHAUSTED)
