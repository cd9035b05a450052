"""The daily LLM budget: the setting, today's spend (UTC) and the check."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from research_assets.core.budget import (
    BUDGET_EXHAUSTED,
    BudgetCheck,
    check_budget,
    daily_budget_usd,
    spent_today,
)
from research_assets.core.errors import ConfigError


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, 20.0),
        ({"RESEARCH_DAILY_BUDGET_USD": ""}, 20.0),
        ({"RESEARCH_DAILY_BUDGET_USD": "0"}, 0.0),
        ({"RESEARCH_DAILY_BUDGET_USD": " 5.5 "}, 5.5),
    ],
)
def test_daily_budget(env, expected):
    assert daily_budget_usd(env) == expected


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "$5"])
def test_bad_budget_names_the_variable(value):
    with pytest.raises(ConfigError) as e:
        daily_budget_usd({"RESEARCH_DAILY_BUDGET_USD": value})
    assert "RESEARCH_DAILY_BUDGET_USD" in str(e.value)


def test_spent_today_counts_the_utc_day_only():
    now = ts(2026, 3, 10, 12, 0, 0)
    usages = [
        (ts(2026, 3, 9, 23, 59, 59), 100.0),  # yesterday
        (ts(2026, 3, 10, 0, 0, 0), 1.25),  # first instant of today
        (ts(2026, 3, 10, 12, 0, 0), 0.5),
        (ts(2026, 3, 10, 23, 59, 59), 0.25),
        (ts(2026, 3, 11, 0, 0, 0), 50.0),  # tomorrow
        (ts(2026, 3, 10, 8, 0, 0), float("nan")),
        (ts(2026, 3, 10, 8, 0, 0), -3.0),
    ]
    assert spent_today(usages, now=now) == pytest.approx(2.0)
    assert spent_today(usages, now=datetime(2026, 3, 10, 1, 0)) == pytest.approx(2.0)  # naive: UTC
    # 01:00 on the 11th in UTC+3 is 22:00 on the 10th in UTC
    local = datetime(2026, 3, 11, 1, 0, tzinfo=timezone(timedelta(hours=3)))
    assert spent_today(usages, now=local) == pytest.approx(2.0)
    assert spent_today(usages, now=ts(2026, 3, 11, 0, 0, 0)) == pytest.approx(50.0)
    assert spent_today([], now=now) == 0.0


def test_spent_today_defaults_to_now():
    assert spent_today([(datetime.now(UTC).timestamp(), 0.75)]) == pytest.approx(0.75)


def test_check_budget():
    assert check_budget(19.99, 20.0) == BudgetCheck(True, 19.99, 20.0, None)
    exhausted = check_budget(20.0, 20.0)
    assert not exhausted.allowed and exhausted.reason == BUDGET_EXHAUSTED
    assert "RESEARCH_DAILY_BUDGET_USD" in exhausted.message()
    assert check_budget(25.0, 20.0).reason == BUDGET_EXHAUSTED
    unlimited = check_budget(1e9, 0.0)
    assert unlimited.allowed and unlimited.reason is None and "no limit" in unlimited.message()
