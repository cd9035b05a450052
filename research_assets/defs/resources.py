"""Resources: where the data is, which designer designs, the gate thresholds, training settings.

Each resource reads its environment defaults when a run uses it, not at import time.
"""

from pathlib import Path

import dagster as dg

from research_assets.core.data import DatasetInfo, list_datasets, market_data_dir
from research_assets.core.designer import Designer, OfflineDesigner
from research_assets.core.gates import GateThresholds


class MarketDataResource(dg.ConfigurableResource):
    """The directory of ``SYMBOL_TIMEFRAME.csv|parquet`` files; default ``$MARKET_DATA_DIR`` or
    the bundled sample."""

    data_dir: str | None = None

    def directory(self) -> Path:
        if self.data_dir:
            return market_data_dir({"MARKET_DATA_DIR": self.data_dir})
        return market_data_dir()

    def datasets(self) -> list[DatasetInfo]:
        return list_datasets(self.directory())


class DesignerResource(dg.ConfigurableResource):
    """Chooses the designer of strategy specs."""

    designer: str = "offline"

    def get_designer(self) -> Designer:
        return OfflineDesigner()


class QualityGatesResource(dg.ConfigurableResource):
    """Gate thresholds: a field set here wins over its ``GATE_*`` variable, which wins over the
    default."""

    min_accuracy: float | None = None
    max_loss: float | None = None
    min_loss_decrease: float | None = None
    min_win_rate: float | None = None
    max_drawdown: float | None = None
    min_sharpe: float | None = None

    def thresholds(self) -> GateThresholds:
        base = GateThresholds.from_env()
        overrides = {k: v for k, v in self.model_dump().items() if v is not None}
        return GateThresholds(**{**base.__dict__, **overrides})


class TrainingResource(dg.ConfigurableResource):
    """Training settings: one thread per run by default (runs go in parallel, not threads); the
    device is a GPU when one is present unless ``device`` says otherwise."""

    threads: int = 1
    device: str | None = None
