"""The Claude designer: a strategy spec designed by Claude through tool use.

The first request carries everything a design needs (the indicator catalogue and spec format in
the system prompt; the symbols, a compact view of recent researches and the brief in the user
message), so Claude can call ``save_strategy_config`` straight away; a typical design takes one
or two requests. Tools:

- ``get_available_indicators``, ``get_available_symbols``: the catalogue and the datasets.
- ``get_recent_strategies``: past researches as ``ResearchRecord.to_prompt_dict`` gives them
  (outcomes, gate rejections with their reasons and descriptions in numbers, training figures,
  backtest-period figures with the benchmark and significance ones; never lockbox figures, which
  memory does not hold), paged, optionally with full specs.

The system prompt says what the gates require (their default thresholds, from
``core.gates.GateThresholds``): a model that predicts its labels better than their frequencies,
and a backtest with enough trades that beats buy & hold and is significant against random
timing and the number of strategies tried.
- ``validate_strategy_config``: the checks of ``save_strategy_config`` without saving.
- ``save_strategy_config``: validates the spec (``StrategySpec.from_dict``), checks that every
  symbol has data on every timeframe and that the spec does not repeat a past research
  (``fingerprint``), then ends the design. A failed check is an ``is_error`` tool result that
  names what to fix.

Backtest costs are not Claude's to choose: they are set from the market, as the offline
designer sets them, so a design cannot look better by assuming cheaper trading.

Prompt caching: the system prompt (the same for every design) is a cache breakpoint, and the
request's top-level ``cache_control`` caches the conversation so far, so the later turns of a
design read the earlier ones at the cache-read rate.
"""

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from research_assets.core.designer import (
    Design,
    DesignRequest,
    asset_class,
    bar_sigma,
    dataset_sigma,
    market_costs,
)
from research_assets.core.errors import DataError, SpecError
from research_assets.core.gates import GateThresholds
from research_assets.core.indicator_catalog import CATALOG, describe_catalog
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.names import ACTIVE_STATUSES, FINAL_STATUSES
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.llm import prompts
from research_assets.llm.client import ClaudeClient
from research_assets.llm.config import LLMSettings
from research_assets.llm.loop import Tool, ToolResult, as_json, run_tool_loop
from research_assets.llm.pricing import UsageTotals

if TYPE_CHECKING:
    from research_assets.core.data import DatasetInfo

log = logging.getLogger(__name__)

RECENT_IN_PROMPT = 20  # researches shown in the first message; the tool pages through the rest
BEST_IN_PROMPT = 3
CLIP_CHARS = 160  # hypotheses and suggestions are clipped in the compact view
# The figures of a record shown in the first message, with short names (explained there).
_TRAINING_KEYS = {
    "test_accuracy": "acc",
    "test_loss": "loss",
    "loss_decrease": "loss_drop",
    "accuracy_lift": "lift",
    "loss_ratio": "loss_ratio",
}
_BACKTEST_KEYS = {
    "Return [%]": "ret%",
    "Buy & Hold Return [%]": "bh%",
    "Sharpe Ratio": "sharpe",
    "Excess Sharpe": "xs_sharpe",
    "Excess Return [%]": "xs_ret%",
    "Beta": "beta",
    "Deflated Sharpe Ratio": "dsr",
    "p-value": "p",
    "Max. Drawdown [%]": "dd%",
    "Win Rate [%]": "win%",
    "# Trades": "trades",
}
GATE_DESCRIPTION_CHARS = 240  # a rejection's failing checks, clipped in the compact view

# -- what the model sees ---------------------------------------------------------------------


def _clip(text: str, n: int = CLIP_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _day(ts: Any) -> str:
    return str(ts)[:10]


def _sig(x: float, digits: int = 3) -> float:
    """``x`` to ``digits`` significant figures (fewer tokens, same information)."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


def dataset_rows(datasets: Sequence["DatasetInfo"]) -> list[dict[str, Any]]:
    """The datasets as plain data, with the asset class and typical bar return."""
    return [
        {
            "symbol": ds.symbol,
            "timeframe": ds.timeframe,
            "asset_class": asset_class(ds.symbol),
            "rows": ds.rows,
            "start": _day(ds.start),
            "end": _day(ds.end),
            # measured on the bars before the lockbox; guessed from the name if unreadable
            "bar_sigma": _sig(dataset_sigma(ds) or bar_sigma([ds.symbol], ds.timeframe)),
        }
        for ds in sorted(datasets, key=lambda d: (d.symbol, d.timeframe))
    ]


def _labels_text(spec: StrategySpec) -> str:
    params = spec.training.labels.model_dump(exclude={"source"})
    inner = ",".join(f"{k}={v if isinstance(v, int) else _sig(v)}" for k, v in params.items())
    return f"{spec.training.labels.source}({inner})"


def _figures(values: Mapping[str, Any], names: Mapping[str, str]) -> str:
    return " ".join(f"{short} {_sig(values[k])}" for k, short in names.items() if k in values)


def record_line(record: ResearchRecord) -> str:
    """One research on one line, built from ``record.to_prompt_dict()`` (the designer's view:
    no lockbox figures) with the label parameters added, key figures only and text clipped."""
    d = record.to_prompt_dict()
    parts = [f"{d['id']} {d['status']}"]
    if d.get("rejection_reason"):
        # the failing checks in numbers, each with its reason; the bare reason in older records
        why = d.get("gate_description") or d["rejection_reason"]
        parts[0] += f" by {d.get('rejected_by')}: {_clip(why, GATE_DESCRIPTION_CHARS)}"
    if record.spec is not None:
        decisions = record.spec.decisions
        conf = (
            f" conf {_sig(decisions.confidence_threshold)}"
            if decisions is not None and decisions.confidence_threshold
            else ""
        )
        parts.append(
            f"{d['strategy']} {','.join(d['symbols'])} {','.join(d['timeframes'])} "
            f"[{','.join(d['indicators'])}] {_labels_text(record.spec)}{conf} "
            f"mlp[{','.join(str(n) for n in d['hidden_layers'])}]"
        )
    if d.get("training"):
        parts.append(_figures(d["training"], _TRAINING_KEYS))
    if d.get("backtest"):
        parts.append(_figures(d["backtest"], _BACKTEST_KEYS))
    if d.get("verdict"):
        parts.append(f"verdict {d['verdict']}")
    if d.get("hypothesis"):
        parts.append(f"hypothesis: {_clip(d['hypothesis'])}")
    if d.get("suggestions"):
        parts.append("suggested: " + "; ".join(_clip(x) for x in d["suggestions"][:2]))
    return " | ".join(p for p in parts if p)


def memory_text(memory: ResearchMemory) -> tuple[str, str, str]:
    """The introduction, the compact records and the rejection summary for the first message."""
    if not len(memory):
        return prompts.NO_MEMORY, "", ""
    recent = memory.recent(RECENT_IN_PROMPT)
    lines = [record_line(r) for r in recent]
    shown = {r.research_id for r in recent}
    best = [r for r in memory.best(BEST_IN_PROMPT) if r.research_id not in shown]
    if best:
        lines.append(prompts.BEST_INTRO)
        lines.extend(record_line(r) for r in best)
    intro = prompts.MEMORY_INTRO.format(shown=len(recent), total=len(memory))
    counts = memory.rejection_counts()
    rejections = (
        prompts.REJECTIONS.format(counts=", ".join(f"{k} {v}" for k, v in counts.items()))
        if counts
        else ""
    )
    return intro, "\n".join(lines), rejections


def catalogue_text() -> str:
    """The indicator catalogue, one line per indicator (the tool gives the same as JSON)."""
    lines = []
    for info in CATALOG.values():
        params = ", ".join(
            f"{name} {p.kind.__name__} {p.default} [{p.minimum}-{p.maximum}]"
            for name, p in info.params.items()
        )
        outputs = ", ".join(
            o
            + ("*" if o == info.default_output else "")
            + (
                f" ~[{info.typical_range[o][0]}, {info.typical_range[o][1]}]"
                if o in info.typical_range
                else ""
            )
            for o in info.outputs
        )
        lines.append(f"{info.name}: {info.description}. params: {params}. outputs: {outputs}")
    return "\n".join(lines)


def gates_text(t: GateThresholds | None = None) -> str:
    """What each gate requires, with the reason each check gives when it fails (the thresholds
    of the ``GATE_*`` variables, as the gates read them, unless ``t`` is given)."""
    t = t or GateThresholds.from_env()
    return (
        f"- training gate: the model must predict its labels better than their frequencies: "
        f"accuracy lift over always predicting the training labels' majority class at least "
        f"{t.min_accuracy_lift:g} (no_accuracy_lift), and test loss over the labels' entropy at "
        f"most {t.max_loss_ratio:g} (loss_above_baseline). The seeds' absolute checks "
        f"(accuracy_below_threshold, loss_too_high, insufficient_loss_decrease) apply only where "
        f"a deployment sets them.\n"
        f"- backtest gate, on the out-of-sample period pooled over the spec's datasets, in this "
        f"order: at least {t.min_trades:g} trades (too_few_trades); "
        + (
            f"win rate at least {t.min_win_rate:g} (win_rate_too_low); "
            if t.min_win_rate > 0
            else ""
        )  # off by default: a trend follower wins fewer than half its trades
        + f"max drawdown at most {t.max_drawdown:g} "
        f"(drawdown_too_high); Sharpe at least {t.min_sharpe:g} (sharpe_too_low); Sharpe above "
        f"buy & hold's on the same bars by more than {t.min_excess_sharpe:g} "
        f"(no_edge_over_benchmark); p-value against random timing of the same positions at most "
        f"{t.max_p_value:g} (no_edge_over_random); Deflated Sharpe Ratio at least "
        f"{t.min_deflated_sharpe:g} (not_significant). The first failing check is the reason."
    )


def design_system_prompt() -> str:
    """The system prompt: the same for every design (so it caches)."""
    example = StrategySpec.from_yaml(EXAMPLE_YAML).to_dict()
    example.pop("backtest", None)
    return prompts.DESIGN_SYSTEM.format(
        example=as_json(example), catalogue=catalogue_text(), gates=gates_text()
    )


# -- tool inputs -------------------------------------------------------------------------------


class _NoInput(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _RecentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=10, ge=1, le=50)
    offset: int = Field(default=0, ge=0)
    status: str | None = Field(default=None, description="e.g. completed, rejected, failed")
    include_specs: bool = Field(default=False, description="add each research's full spec")


class _SpecInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    spec: dict[str, Any] = Field(description=prompts.SPEC_FIELD)


class _SaveInput(_SpecInput):
    rationale: str = Field(min_length=1, max_length=2000, description=prompts.RATIONALE_FIELD)


_EMPTY_SCHEMA = {"type": "object", "properties": {}}


class _Session:
    """The state of one design: what the tools answer from."""

    def __init__(self, memory: ResearchMemory, datasets: Sequence["DatasetInfo"]):
        self.memory = memory
        self.datasets = datasets
        self.pairs = {(d.symbol, d.timeframe) for d in datasets}
        self.seen = {
            r.spec.fingerprint(): r
            for r in reversed(memory.with_spec())  # newest wins
            if r.status in (*FINAL_STATUSES, *ACTIVE_STATUSES) and r.spec is not None
        }

    def tools(self) -> list[Tool]:
        return [
            Tool(
                "get_available_indicators",
                prompts.TOOL_INDICATORS,
                _NoInput,
                lambda _: ToolResult(as_json(describe_catalog())),
                _EMPTY_SCHEMA,
            ),
            Tool(
                "get_available_symbols",
                prompts.TOOL_SYMBOLS,
                _NoInput,
                lambda _: ToolResult(as_json(dataset_rows(self.datasets))),
                _EMPTY_SCHEMA,
            ),
            Tool("get_recent_strategies", prompts.TOOL_RECENT, _RecentInput, self.recent),
            Tool("validate_strategy_config", prompts.TOOL_VALIDATE, _SpecInput, self.validate),
            Tool("save_strategy_config", prompts.TOOL_SAVE, _SaveInput, self.save),
        ]

    def recent(self, args: _RecentInput) -> ToolResult:
        records = self.memory.records
        if args.status:
            records = [r for r in records if r.status == args.status]
        page = records[args.offset : args.offset + args.limit]
        out = []
        for r in page:
            d = r.to_prompt_dict()
            if args.include_specs and r.spec is not None:
                d["spec"] = r.spec.to_dict()
            out.append(d)
        return ToolResult(as_json({"total": len(records), "offset": args.offset, "records": out}))

    def check(self, data: dict[str, Any], tool: str) -> tuple[StrategySpec | None, str]:
        """The spec, or None and what to fix."""
        d = {k: v for k, v in data.items() if k != "backtest"}
        td = d.get("training_data")
        symbols = td.get("symbols") if isinstance(td, dict) else None
        if isinstance(symbols, list) and symbols and all(isinstance(s, str) for s in symbols):
            d["backtest"] = market_costs(symbols)  # else from_dict names the bad field
        try:
            spec = StrategySpec.from_dict(d)
        except SpecError as e:
            return None, prompts.SPEC_INVALID.format(tool=tool, errors=str(e))
        td = spec.training_data
        missing = [
            f"{s}/{tf}" for s in td.symbols for tf in td.timeframes if (s, tf) not in self.pairs
        ]
        if missing:
            available = ", ".join(sorted(f"{s}/{tf}" for s, tf in self.pairs)) or "none"
            return None, prompts.SPEC_UNAVAILABLE.format(
                missing=", ".join(missing), available=available
            )
        past = self.seen.get(spec.fingerprint())
        if past is not None:
            assert past.spec is not None
            return None, prompts.SPEC_REPEAT.format(
                research_id=past.research_id, strategy=past.spec.name, status=past.status
            )
        return spec, ""

    def validate(self, args: _SpecInput) -> ToolResult:
        spec, problem = self.check(args.spec, "validate_strategy_config")
        if spec is None:
            return ToolResult(problem, is_error=True)
        return ToolResult(prompts.SPEC_OK.format(fingerprint=spec.fingerprint()))

    def save(self, args: _SaveInput) -> ToolResult:
        spec, problem = self.check(args.spec, "save_strategy_config")
        if spec is None:
            return ToolResult(problem, is_error=True)
        return ToolResult(prompts.SAVED, done=True, value=(spec, args.rationale.strip()))


class ClaudeDesigner:
    """Implements ``core.designer.Designer`` with Claude (see the module docstring)."""

    name = "claude"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.client = ClaudeClient(settings)

    def __repr__(self) -> str:
        return f"ClaudeDesigner(model={self.settings.model!r})"

    def design(
        self,
        request: DesignRequest,
        memory: ResearchMemory,
        datasets: Sequence["DatasetInfo"],
    ) -> Design:
        """Design one spec; raises ``LLMError`` / ``LLMConfigError`` (with ``usage``) on
        failure, ``DataError`` when there is no data at all."""
        if not datasets:
            raise DataError(
                "no market data is available to design a strategy on: add Parquet or CSV files "
                "named <SYMBOL>_<TIMEFRAME> to the market data folder"
            )
        usage = UsageTotals(model=self.settings.model)
        session = _Session(memory, datasets)
        system = [
            {
                "type": "text",
                "text": design_system_prompt(),
                "cache_control": {"type": "ephemeral"},  # the same for every design
            }
        ]
        spec, rationale = run_tool_loop(
            self.client,
            task="design",
            system=system,
            tools=session.tools(),
            first_message=first_message(request, memory, datasets),
            usage=usage,
        )
        log.info(
            "Claude designed %s for %s in %d turns ($%.4f)",
            spec.name,
            request.research_id,
            usage.turns,
            usage.cost_usd,
        )
        return Design(spec=spec, rationale=rationale, designer=self.name, usage=usage.to_dict())


def first_message(
    request: DesignRequest, memory: ResearchMemory, datasets: Sequence["DatasetInfo"]
) -> str:
    """The first user message: brief, datasets and recent researches."""
    intro, records, rejections = memory_text(memory)
    return (
        prompts.DESIGN_CONTEXT.format(
            research_id=request.research_id,
            brief=(request.brief or "").strip() or prompts.NO_BRIEF,
            datasets="\n".join(as_json(row) for row in dataset_rows(datasets)),
            memory_intro=intro,
            memory=records,
            rejections=rejections,
        ).rstrip()
        + "\n"
    )
