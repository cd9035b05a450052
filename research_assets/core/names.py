"""The names every layer shares, defined once: a research's statuses, its assets and its gates.

Plain strings underneath (``Status`` is a ``StrEnum``), so they compare equal to what the JSON
output, the event log and older stored statuses hold. Asset names stay plain constants: they
are Dagster asset keys, and Dagster's serializer stores a ``str``, not an enum member.
"""

from enum import StrEnum


class Status(StrEnum):
    """Where a research stands (``research status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    REJECTED = "rejected"  # a gate did not pass
    FAILED = "failed"
    CANCELLED = "cancelled"


# Outcomes a research can end with, and the ones that are still going.
FINAL_STATUSES = (Status.COMPLETED, Status.REJECTED, Status.FAILED, Status.CANCELLED)
ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

# The assets (Dagster asset keys), upstream first.
MARKET_DATA = "market_data"
STRATEGY_SPEC = "strategy_spec"
TRAINED_MODEL = "trained_model"
BACKTEST_REPORT = "backtest_report"
ASSESSMENT = "assessment"
LOCKBOX_REPORT = "lockbox_report"
LEADERBOARD = "leaderboard"
# The assets one research materializes, partitioned by its id, in the order it reaches them.
RESEARCH_ASSETS = (STRATEGY_SPEC, TRAINED_MODEL, BACKTEST_REPORT, ASSESSMENT, LOCKBOX_REPORT)

# The quality gates, and the asset whose checks each one is.
TRAINING_GATE = "training_gate"
BACKTEST_GATE = "backtest_gate"
GATED_ASSETS = {TRAINING_GATE: TRAINED_MODEL, BACKTEST_GATE: BACKTEST_REPORT}
