"""Resources: where the data is, which designer designs, the gate thresholds, training settings.

Each resource reads its environment defaults when a run uses it, not at import time.
"""

import os
from pathlib import Path

import dagster as dg

from research_assets.core.data import DatasetInfo, list_datasets, market_data_dir
from research_assets.core.designer import Designer, OfflineDesigner
from research_assets.core.gates import GateThresholds
from research_assets.llm.assessor import ClaudeAssessor
from research_assets.llm.config import ENV_DESIGNER, ENV_KEY, LLMSettings, choose_designer_kind
from research_assets.llm.designer import ClaudeDesigner


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
    """Who designs strategies and writes assessments: Claude or the offline designer.

    ``designer`` is ``auto`` (Claude when ``ANTHROPIC_API_KEY`` is set), ``claude`` or
    ``offline``; unset, ``RESEARCH_DESIGNER`` decides. The key is read through ``dg.EnvVar`` when
    a run needs it, so it is never part of run config, tags or the instance's storage.
    """

    designer: str | None = None
    model: str | None = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[ENV_KEY] = dg.EnvVar(ENV_KEY).get_value("") or ""
        if self.designer:
            env[ENV_DESIGNER] = self.designer
        if self.model:
            env["RESEARCH_LLM_MODEL"] = self.model
        return env

    def kind(self) -> str:
        return choose_designer_kind(self._env())

    def settings(self) -> LLMSettings:
        return LLMSettings.from_env(self._env())

    def get_designer(self) -> Designer:
        return ClaudeDesigner(self.settings()) if self.kind() == "claude" else OfflineDesigner()

    def get_assessor(self) -> ClaudeAssessor | None:
        """Claude's assessor, or None where the rule-based one applies."""
        return ClaudeAssessor(self.settings()) if self.kind() == "claude" else None


class QualityGatesResource(dg.ConfigurableResource):
    """Gate thresholds: a field set here wins over its ``GATE_*`` variable, which wins over the
    default."""

    min_accuracy: float | None = None
    max_loss: float | None = None
    min_loss_decrease: float | None = None
    min_win_rate: float | None = None
    max_drawdown: float | None = None
    min_sharpe: float | None = None
    min_accuracy_lift: float | None = None
    max_loss_ratio: float | None = None
    min_trades: float | None = None
    min_deflated_sharpe: float | None = None
    max_p_value: float | None = None
    min_excess_sharpe: float | None = None

    def thresholds(self) -> GateThresholds:
        base = GateThresholds.from_env()
        overrides = {k: v for k, v in self.model_dump().items() if v is not None}
        return GateThresholds(**{**base.__dict__, **overrides})


class TrainingResource(dg.ConfigurableResource):
    """Training settings: one thread per run by default (runs go in parallel, not threads); the
    device is a GPU when one is present unless ``device`` says otherwise."""

    threads: int = 1
    device: str | None = None
