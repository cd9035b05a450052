"""The research assets. Each one calls one domain function and attaches metadata.

``strategy_spec`` → ``trained_model`` [training_gate] → ``backtest_report`` [backtest_gate] →
``assessment`` → ``lockbox_report``, all partitioned by research; ``market_data`` upstream.
Each research asset takes ``cancel_watch`` (cancel_watch.py), so a cancelled run stops even
when Dagster's one interrupt is lost; the two that take a pool slot take ``pools``
(pool_setup.py), so the pools' limits are ready before a run claims one. A research asset
whose upstream has not been materialized for its research refuses with a reason that says so
(``ResearchIOManager``), as it refuses when an upstream gate did not pass. The gates' checks
(one blocking check per criterion, partitioned by research) are in checks.py.
"""

import math
from typing import Any

import dagster as dg
import pandas as pd

from research_assets.core import pipeline
from research_assets.core.assessor import assess
from research_assets.core.data import load_bars
from research_assets.core.designer import Design, DesignRequest
from research_assets.core.errors import ResearchError
from research_assets.core.gates import (
    BACKTEST_GATE,
    TRAINING_GATE,
    evaluate_backtest_gate,
    evaluate_training_gate,
)
from research_assets.core.memory import ResearchMemory
from research_assets.core.metrics import json_safe
from research_assets.core.names import ASSESSMENT, BACKTEST_REPORT, GATED_ASSETS, LOCKBOX_REPORT
from research_assets.core.plots import equity_curve_png, png_markdown
from research_assets.core.spec import StrategySpec
from research_assets.core.training import TrainedModel
from research_assets.defs.cancel_watch import CancelWatchResource
from research_assets.defs.checks import (
    BACKTEST_GATE_CHECKS,
    TRAINING_GATE_CHECKS,
    gate_check_results,
    gate_metadata,
)
from research_assets.defs.partitions import research_partitions
from research_assets.defs.pool_setup import PoolsResource
from research_assets.defs.research_config import ResearchConfig, resolve_request
from research_assets.defs.resources import (
    DesignerResource,
    MarketDataResource,
    QualityGatesResource,
    TrainingResource,
)
from research_assets.defs.tags import GATE_PASSED, GATE_REASON
from research_assets.llm.errors import LLMConfigError, LLMError
from research_assets.state.records import (
    latest_metadata,
    load_memory,
    materialized,
    usage_metadata,
)

# The selection that runs a whole research, for `dagster asset materialize --select`.
WHOLE_RESEARCH = "strategy_spec*"


class ResearchIOManager(dg.ConfigurableIOManagerFactory):
    """Dagster's filesystem IO manager (the same files), except that an input whose asset has not
    been materialized for the research refuses with a reason instead of a FileNotFoundError."""

    base_dir: str | None = None

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.IOManager:
        return _RefusingIOManager(
            dg.FilesystemIOManager(base_dir=self.base_dir).create_io_manager(context)
        )


class _RefusingIOManager(dg.IOManager):
    def __init__(self, files: dg.IOManager):
        self._files = files

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self._files.handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> Any:
        if context.has_asset_key and context.has_asset_partitions:
            _require_materialized(
                context.instance,
                context.asset_key.to_user_string(),
                context.asset_partition_key,
                context.op_def.name,
            )
        return self._files.load_input(context)


def _user_failure(e: ResearchError) -> dg.Failure:
    # A user-caused problem: show the message, do not retry (it would fail the same way).
    return dg.Failure(description=str(e), allow_retries=False)


def _llm_failure(context: dg.AssetExecutionContext, e: ResearchError) -> dg.Failure:
    """A design or assessment that produced nothing usable. Tokens already billed are recorded
    (they count against the daily budget), and only an unavailable service is worth a retry."""
    usage = getattr(e, "usage", None)
    if usage and usage.get("turns"):
        context.instance.report_runless_asset_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=context.partition_key,
                metadata={**usage_metadata(usage), "failed": True},
            )
        )
    reason = getattr(e, "reason", None) or "llm_config_error"
    return dg.Failure(
        description=f"{reason}: {e}",
        metadata={"reason": reason},
        allow_retries=reason == "llm_unavailable",
    )


@dg.asset(group_name="data", kinds={"parquet"})
def market_data(datasets: MarketDataResource) -> dg.MaterializeResult:
    """The OHLCV datasets available to strategies, each loaded and validated."""
    try:
        found = datasets.datasets()
        for info in found:
            load_bars(info.symbol, info.timeframe, info.path.parent)
    except ResearchError as e:
        raise _user_failure(e) from e
    rows = [
        dg.TableRecord(
            {
                "dataset": d.key,
                "rows": d.rows,
                "start": str(d.start.date()),
                "end": str(d.end.date()),
                "file": d.path.name,
            }
        )
        for d in found
    ]
    return dg.MaterializeResult(
        metadata={
            "directory": str(datasets.directory()),
            "datasets": dg.MetadataValue.table(
                rows,
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn(c, "int" if c == "rows" else "string")
                        for c in ("dataset", "rows", "start", "end", "file")
                    ]
                ),
            ),
            "dataset_count": len(found),
        }
    )


@dg.asset(partitions_def=research_partitions, group_name="research", kinds={"python"})
def strategy_spec(
    context: dg.AssetExecutionContext,
    config: ResearchConfig,
    designer: DesignerResource,
    datasets: MarketDataResource,
    cancel_watch: CancelWatchResource,
) -> dg.Output[StrategySpec]:
    """A strategy designed for this research, from the brief and the memory of past researches.
    Its config (seed, brief, spec, worker) wins over the request recorded at trigger time."""
    research_id = context.partition_key
    try:
        request = resolve_request(context, config)
    except ResearchError as e:
        raise _user_failure(e) from e
    memory = load_memory(context.instance, exclude=[research_id])
    try:
        if request.spec is not None:
            design = Design(request.spec, "Given by the user (--spec or config).", "user", {})
        else:
            design = designer.get_designer().design(
                DesignRequest(research_id, request.seed, request.brief),
                memory,
                datasets.datasets(),
            )
    except (LLMError, LLMConfigError) as e:
        raise _llm_failure(context, e) from e
    except ResearchError as e:
        raise _user_failure(e) from e
    spec = design.spec
    metadata: dict[str, Any] = {
        "strategy": spec.name,
        "designer": design.designer,
        "fingerprint": spec.fingerprint(),
        "seed": request.seed,
        "spec": dg.MetadataValue.json(spec.to_dict()),
        "spec_yaml": dg.MetadataValue.md(f"```yaml\n{spec.to_yaml()}```"),
        "rationale": dg.MetadataValue.md(design.rationale or "-"),
        "memory_size": len(memory),
    }
    if request.brief:
        metadata["brief"] = request.brief
    metadata.update(usage_metadata(design.usage))
    return dg.Output(spec, metadata=metadata)


@dg.asset(
    partitions_def=research_partitions,
    group_name="research",
    kinds={"pytorch"},
    check_specs=TRAINING_GATE_CHECKS,
    pool="training",
    deps=[market_data],
)
def trained_model(
    context: dg.AssetExecutionContext,
    strategy_spec: StrategySpec,
    datasets: MarketDataResource,
    training: TrainingResource,
    gates: QualityGatesResource,
    pools: PoolsResource,
    cancel_watch: CancelWatchResource,
):
    """The spec's MLP, trained walk-forward: one network per fold, scored on the fold's test
    slice (together, the out-of-sample backtest period), and a final network trained on all the
    history before the lockbox."""
    try:
        model = pipeline.train(
            strategy_spec,
            datasets.directory(),
            threads=training.threads,
            device=training.device,
        )
    except ResearchError as e:
        raise _user_failure(e) from e
    metrics = model.metrics.as_dict()
    gate = evaluate_training_gate(metrics, gates.thresholds())
    yield dg.Output(
        model,
        metadata={
            **{k: v for k, v in metrics.items() if isinstance(v, int | float)},
            "device": model.device,
            "history": _table(model.history),
            "folds": _table(model.fold_metrics),
            "periods": dg.MetadataValue.json(model.periods),
            "fold_periods": dg.MetadataValue.json(
                {"walk_forward": model.fold_periods, "final": model.final_periods}
            ),
            **gate_metadata(gate),
        },
    )
    yield from gate_check_results(context, gate)


@dg.asset(
    partitions_def=research_partitions,
    group_name="research",
    kinds={"numpy"},
    check_specs=BACKTEST_GATE_CHECKS,
    pool="backtest",
)
def backtest_report(
    context: dg.AssetExecutionContext,
    trained_model: TrainedModel,
    datasets: MarketDataResource,
    gates: QualityGatesResource,
    pools: PoolsResource,
    cancel_watch: CancelWatchResource,
):
    """The model's signals backtested on the out-of-sample period of every symbol and timeframe:
    each walk-forward fold's network on its own test slice."""
    _require_gate(context, TRAINING_GATE)
    try:
        report = pipeline.backtest(
            trained_model, datasets.directory(), "backtest", _trial_history(context, trained_model)
        )
    except ResearchError as e:
        raise _user_failure(e) from e
    gate = evaluate_backtest_gate(report.summary, gates.thresholds())
    yield dg.Output(report, metadata={**_report_metadata(report), **gate_metadata(gate)})
    yield from gate_check_results(context, gate)


@dg.asset(partitions_def=research_partitions, group_name="research", kinds={"python"})
def assessment(
    context: dg.AssetExecutionContext,
    strategy_spec: StrategySpec,
    trained_model: TrainedModel,
    backtest_report: pipeline.BacktestReport,
    designer: DesignerResource,
    cancel_watch: CancelWatchResource,
) -> dg.Output[Any]:
    """What this research shows, and what to try next: read by later designs."""
    _require_gate(context, BACKTEST_GATE)
    args = (
        strategy_spec,
        trained_model.metrics.as_dict(),
        backtest_report.summary,
        backtest_report.stats,
    )
    trials = backtest_report.trials.count  # what the Deflated Sharpe Ratio was deflated by
    try:
        claude = designer.get_assessor()
        if claude is None:
            result, usage, assessor = assess(*args, trials=trials), {}, "rule-based"
        else:
            (result, usage), assessor = claude.assess(*args, trials=trials), "claude"
    except (LLMError, LLMConfigError) as e:
        raise _llm_failure(context, e) from e
    bullets = "\n".join(
        f"**{title}**\n" + "\n".join(f"- {item}" for item in items)
        for title, items in (
            ("Strengths", result.strengths),
            ("Weaknesses", result.weaknesses),
            ("Suggestions", result.suggestions),
            ("Hypotheses", result.hypotheses),
        )
        if items
    )
    return dg.Output(
        result,
        metadata={
            "verdict": result.verdict,
            "summary": dg.MetadataValue.md(f"{result.summary}\n\n{bullets}"),
            "suggestions": dg.MetadataValue.json(list(result.suggestions)),
            "assessment": dg.MetadataValue.json(result.model_dump()),
            "assessor": assessor,
            **usage_metadata(usage),
        },
    )


@dg.asset(
    partitions_def=research_partitions,
    group_name="leaderboard",
    kinds={"numpy"},
    deps=[assessment],
)
def lockbox_report(
    context: dg.AssetExecutionContext,
    trained_model: TrainedModel,
    datasets: MarketDataResource,
    cancel_watch: CancelWatchResource,
) -> dg.Output[pipeline.BacktestReport]:
    """The model on the lockbox, the newest slice of data. Only the leaderboard reads it: no
    designer, gate or assessment ever sees these figures."""
    _require_gate(context, BACKTEST_GATE)
    _require_materialized(context.instance, ASSESSMENT, context.partition_key, LOCKBOX_REPORT)
    try:
        report = pipeline.backtest(
            trained_model, datasets.directory(), "lockbox", _backtest_trials(context)
        )
    except ResearchError as e:
        raise _user_failure(e) from e
    return dg.Output(report, metadata=_report_metadata(report))


# -- helpers ---------------------------------------------------------------------------------


def _table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    """A table of ``rows`` (the same keys in each), floats rounded, NaN as an empty cell."""
    if not rows:
        return dg.MetadataValue.text("-")

    def cell(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 6) if math.isfinite(v) else None
        return v

    return dg.MetadataValue.table(
        [dg.TableRecord({k: cell(v) for k, v in row.items()}) for row in rows]
    )


def _require_gate(context: dg.AssetExecutionContext, gate: str) -> None:
    """Refuse to run unless the upstream gate passed for this research, so a later launch of
    what lies downstream of a rejection (the gate's blocking checks stop only their own run)
    cannot get past a gate."""
    upstream = GATED_ASSETS[gate]
    md = latest_metadata(context.instance, upstream, context.partition_key)
    if not md:  # no materialization for this research: not a rejection, a partial launch
        raise _not_materialized(upstream, context.partition_key, context.asset_key.to_user_string())
    if not md.get(GATE_PASSED, False):
        reason = md.get(GATE_REASON) or "not evaluated"
        raise dg.Failure(
            description=f"{gate} did not pass for research {context.partition_key} ({reason}); "
            f"this research was rejected and {context.asset_key.to_user_string()} will not run",
            metadata={"rejected_by": gate, "reason": reason},
            allow_retries=False,
        )


def _require_materialized(
    instance: dg.DagsterInstance, upstream: str, research_id: str, asset: str
) -> None:
    """Refuse to run on an upstream that was never materialized for this research (a launch that
    selected only part of it), with a reason, rather than fail on a file that is not there."""
    if not materialized(instance, upstream, research_id):
        raise _not_materialized(upstream, research_id, asset)


def _not_materialized(upstream: str, research_id: str, asset: str) -> dg.Failure:
    return dg.Failure(
        description=f"{upstream} has not been materialized for research {research_id}, so "
        f"{asset} cannot run; run the whole research with --select '{WHOLE_RESEARCH}'",
        metadata={"reason": f"{upstream}_not_materialized", "missing": upstream},
        allow_retries=False,
    )


def _trial_history(context: dg.AssetExecutionContext, model: TrainedModel) -> pipeline.TrialHistory:
    """The researches created before this one on its datasets, from the instance's records."""
    memory = load_memory(context.instance)
    mine = next((r for r in memory.records if r.research_id == context.partition_key), None)
    before = mine.created_at if mine is not None and mine.created_at else None
    others = ResearchMemory(r for r in memory.records if r.research_id != context.partition_key)
    return pipeline.TrialHistory.from_memory(others, model.spec, before)


def _backtest_trials(context: dg.AssetExecutionContext) -> pipeline.Trials:
    """The lockbox is deflated by the same trials as this research's backtest period."""
    md = latest_metadata(context.instance, BACKTEST_REPORT, context.partition_key)
    if isinstance(md.get("trials"), int):
        return pipeline.Trials(md["trials"], float(md.get("trials_sharpe_variance") or 0.0))
    return pipeline.Trials()


def _report_metadata(report: pipeline.BacktestReport) -> dict[str, Any]:
    stats = {k: json_safe(v) for k, v in report.stats.items()}
    summary = json_safe(report.summary)
    # Every row has every column (Dagster requires it): a figure one dataset lacks (no trades,
    # so no Sharpe ratio) is an empty cell.
    columns = ["dataset", *dict.fromkeys(c for s in stats.values() for c in s)]
    rows = [
        dg.TableRecord({"dataset": k, **{c: s.get(c) for c in columns[1:]}})
        for k, s in stats.items()
    ]
    metadata: dict[str, Any] = {
        "period": report.period,
        "stats": dg.MetadataValue.json(stats),
        "summary": dg.MetadataValue.json(summary),
        "statistics": dg.MetadataValue.table(
            rows,
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn(c, "string" if c == "dataset" else "float") for c in columns
                ]
            ),
        ),
        "bounds": dg.MetadataValue.json({k: list(v) for k, v in report.bounds.items()}),
        # what the Deflated Sharpe Ratio was deflated by
        "trials": report.trials.count,
        "trials_sharpe_variance": report.trials.sharpe_variance,
    }
    for key in ("Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "Win Rate [%]", "# Trades"):
        if summary.get(key) is not None:
            metadata[key] = float(summary[key])
    if report.folds:
        metadata["folds"] = _table(
            [{"dataset": key, **row} for key, rows in report.folds.items() for row in rows]
        )
    if report.equity:
        # a fold's first bar, where its network takes over (the first fold's is the start)
        starts = sorted(
            {pd.Timestamp(row["start"]) for rows in report.folds.values() for row in rows[1:]}
        )
        title = f"{report.period} period" + (
            f", {len(next(iter(report.folds.values())))} walk-forward folds" if starts else ""
        )
        metadata["equity_curve"] = dg.MetadataValue.md(
            png_markdown(
                equity_curve_png(report.equity, title=title, boundaries=starts),
                alt=f"{report.period} equity curve",
            )
        )
    return metadata
