"""Loads the definitions and applies project-wide policy once; nothing else lives here."""

import dagster as dg

from research_assets.defs.assets import (
    ResearchIOManager,
    assessment,
    backtest_report,
    lockbox_report,
    market_data,
    strategy_spec,
    trained_model,
)
from research_assets.defs.cancel_watch import CancelWatchResource
from research_assets.defs.jobs import market_data_job, research_job
from research_assets.defs.leaderboard import (
    leaderboard,
    leaderboard_after_cancelled_run,
    leaderboard_after_failed_run,
    leaderboard_automation,
    leaderboard_job,
)
from research_assets.defs.pool_setup import PoolsResource, pool_watchdog
from research_assets.defs.resources import (
    DesignerResource,
    MarketDataResource,
    QualityGatesResource,
    TrainingResource,
)
from research_assets.defs.sensors import research_autopilot, research_intake, research_summaries

defs = dg.Definitions(
    assets=[
        market_data,
        strategy_spec,
        trained_model,
        backtest_report,
        assessment,
        lockbox_report,
        leaderboard,
    ],
    jobs=[research_job, market_data_job, leaderboard_job],
    sensors=[
        research_intake,
        research_autopilot,
        pool_watchdog,
        research_summaries,
        leaderboard_automation,
        leaderboard_after_failed_run,
        leaderboard_after_cancelled_run,
    ],
    resources={
        "cancel_watch": CancelWatchResource(),
        "datasets": MarketDataResource(),
        "designer": DesignerResource(),
        "gates": QualityGatesResource(),
        # The default filesystem IO manager, refusing with a reason to load what a research has
        # not materialized.
        "io_manager": ResearchIOManager(),
        "pools": PoolsResource(),
        "training": TrainingResource(),
    },
    # A research is a short chain of steps: one process per run, not one per step (the
    # multiprocess executor costs ~3 s per step here).
    executor=dg.in_process_executor,
)
