"""Jobs: one run per research goes through the whole chain; market data has its own job."""

import dagster as dg

from research_assets.defs.assets import (
    assessment,
    backtest_report,
    lockbox_report,
    market_data,
    strategy_spec,
    trained_model,
)
from research_assets.defs.tags import DEFAULT_WORKER, WORKER_TAG

RESEARCH_ASSETS = [strategy_spec, trained_model, backtest_report, assessment, lockbox_report]

research_job = dg.define_asset_job(
    "research_job",
    selection=dg.AssetSelection.assets(*RESEARCH_ASSETS),
    description="One research: design, train [training_gate], backtest [backtest_gate], assess, "
    "lockbox. Partitioned by research id.",
    # A run launched from the UI counts against the cpu worker class unless tagged otherwise.
    tags={WORKER_TAG: DEFAULT_WORKER},
)

market_data_job = dg.define_asset_job(
    "market_data_job",
    selection=dg.AssetSelection.assets(market_data),
    description="Load and validate every dataset in the market data directory.",
)
