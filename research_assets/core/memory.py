"""What past researches taught: the designer's view of history.

Records are built from the Dagster instance's own event log (see ``state/records.py``); there is no
separate database. A record carries only what a designer may see: the spec, the outcome, the gate
that rejected it and why (the reason code, and the gate's description in numbers: ``Deflated
Sharpe 0.61 < 0.95 (not_significant)``), the training metrics (with the lift over the labels' own
baseline), the backtest-period figures (the aggregate over the spec's datasets, with the benchmark
and significance figures: ``Excess Sharpe``, ``Excess Return [%]``, ``Buy & Hold Sharpe Ratio``,
``Beta``, ``Deflated Sharpe Ratio``, ``p-value``...) and the assessment. Lockbox figures are never
put into a record, so no designer can select on them.

The best researches are ranked by their excess Sharpe over buy & hold, not by Sharpe: a Sharpe
ratio earned by holding a rising market is no design to build on.
"""

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from research_assets.core.names import FINAL_STATUSES, Status
from research_assets.core.spec import StrategySpec


@dataclass(frozen=True)
class ResearchRecord:
    research_id: str
    status: str
    created_at: float = 0.0
    spec: StrategySpec | None = None
    brief: str | None = None
    rejected_by: str | None = None  # TRAINING_GATE | BACKTEST_GATE
    rejection_reason: str | None = None  # e.g. "accuracy_below_threshold"
    # the rejecting gate's outcome in numbers, e.g. "p-value 0.31 > 0.05 (no_edge_over_random)"
    gate_description: str | None = None
    training: dict[str, float] = field(default_factory=dict)  # test_accuracy, test_loss, ...
    backtest: dict[str, float] = field(default_factory=dict)  # aggregate backtest-period stats
    verdict: str | None = None  # promising | neutral | poor
    suggestions: tuple[str, ...] = ()

    def figure(self, key: str) -> float | None:
        """A finite backtest-period figure, or None (missing, NaN or infinite)."""
        value = self.backtest.get(key)
        if value is None or isinstance(value, bool):
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    @property
    def sharpe(self) -> float | None:
        value = self.backtest.get("Sharpe Ratio")
        return None if value is None else float(value)

    @property
    def excess_sharpe(self) -> float | None:
        """Sharpe over buy & hold's on the same bars: the report's ``Excess Sharpe``, or the
        difference of the two Sharpe ratios in a report that lacks it; None when unknown."""
        excess = self.figure("Excess Sharpe")
        if excess is not None:
            return excess
        sharpe, held = self.figure("Sharpe Ratio"), self.figure("Buy & Hold Sharpe Ratio")
        return None if sharpe is None or held is None else sharpe - held

    def to_prompt_dict(self) -> dict[str, Any]:
        """The record as a designer sees it (compact; no lockbox figures exist here)."""
        out: dict[str, Any] = {"id": self.research_id, "status": self.status}
        if self.spec is not None:
            out["strategy"] = self.spec.name
            out["hypothesis"] = self.spec.hypothesis
            out["symbols"] = self.spec.training_data.symbols
            out["timeframes"] = self.spec.training_data.timeframes
            out["indicators"] = sorted({i.type for i in self.spec.indicators.values()})
            out["labels"] = self.spec.training.labels.source
            out["hidden_layers"] = self.spec.model.architecture.hidden_layers
        if self.rejection_reason:
            out["rejected_by"] = self.rejected_by
            out["rejection_reason"] = self.rejection_reason
            if self.gate_description:
                out["gate_description"] = self.gate_description
        if self.training:
            out["training"] = {k: round(v, 4) for k, v in self.training.items()}
        if self.backtest:
            out["backtest"] = {k: round(v, 4) for k, v in self.backtest.items()}
        if self.verdict:
            out["verdict"] = self.verdict
        if self.suggestions:
            out["suggestions"] = list(self.suggestions)
        return out


class ResearchMemory:
    """Past researches, newest first, with the queries designers need."""

    def __init__(self, records: Iterable[ResearchRecord] = ()):
        self.records: list[ResearchRecord] = sorted(
            records, key=lambda r: r.created_at, reverse=True
        )

    def __len__(self) -> int:
        return len(self.records)

    def recent(self, n: int = 10) -> list[ResearchRecord]:
        return self.records[:n]

    def with_spec(self) -> list[ResearchRecord]:
        return [r for r in self.records if r.spec is not None]

    def completed(self) -> list[ResearchRecord]:
        return [r for r in self.with_spec() if r.status == Status.COMPLETED]

    def rejected(self) -> list[ResearchRecord]:
        return [r for r in self.with_spec() if r.status == Status.REJECTED]

    def best(self, n: int = 3) -> list[ResearchRecord]:
        """Completed researches ranked by backtest-period excess Sharpe over buy & hold (never
        by lockbox); those without the benchmark figures (older reports) after them, by
        Sharpe."""
        ranked = [r for r in self.completed() if r.sharpe is not None]

        def skill(r: ResearchRecord) -> tuple[bool, float]:
            excess = r.excess_sharpe
            return (excess is not None, excess if excess is not None else r.sharpe or 0.0)

        return sorted(ranked, key=skill, reverse=True)[:n]

    def fingerprints(self, statuses: Sequence[str] = FINAL_STATUSES) -> set[str]:
        """Fingerprints of specs already tried, so a designer does not repeat them."""
        return {r.spec.fingerprint() for r in self.with_spec() if r.status in statuses}

    def trials_on(
        self, datasets: Collection[str], before: float | None = None
    ) -> tuple[int, list[float]]:
        """The strategies tried on any of ``datasets`` (``SYMBOL/TIMEFRAME``), created before
        ``before`` (a unix time; all when None), and their finite backtest-period Sharpe ratios:
        what a Deflated Sharpe Ratio deflates by."""
        wanted = set(datasets)
        tried = [
            r
            for r in self.with_spec()
            if wanted & set(r.spec.dataset_keys()) and (before is None or r.created_at < before)
        ]
        sharpes = [r.sharpe for r in tried if r.sharpe is not None and math.isfinite(r.sharpe)]
        return len(tried), sharpes

    def rejection_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.rejected():
            if r.rejection_reason:
                counts[r.rejection_reason] = counts.get(r.rejection_reason, 0) + 1
        return counts
