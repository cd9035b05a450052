"""The Claude assessor: the assessment of a research that passed both gates, written by Claude.

Claude gets the spec, the training metrics and the backtest-period statistics (aggregate and per
dataset, with the buy & hold benchmark and significance figures; lockbox figures never come
here), how many strategies the Deflated Sharpe Ratio was deflated by, the verdict rules of
``core.assessor`` (promising requires significance and beating buy & hold) and, for reference,
the rule-based verdict. It answers through one tool, ``save_assessment``, whose input
is validated against ``core.assessor.Assessment``; an invalid input is an ``is_error`` tool
result naming the fields to fix. Claude's verdict is kept even where it differs from the rules'
(it has been told the rules); the difference is logged.
"""

import logging
import math
from collections.abc import Mapping
from typing import Any

from research_assets.core import assessor as rules
from research_assets.core.assessor import Assessment
from research_assets.core.spec import StrategySpec
from research_assets.llm import prompts
from research_assets.llm.client import ClaudeClient
from research_assets.llm.config import LLMSettings
from research_assets.llm.loop import Tool, ToolResult, as_json, run_tool_loop
from research_assets.llm.pricing import UsageTotals

log = logging.getLogger(__name__)


def _figures(values: Mapping[str, Any]) -> dict[str, float | None]:
    """Numbers rounded for the prompt; NaN, infinities and non-numbers become null."""
    out: dict[str, float | None] = {}
    for k, v in values.items():
        try:
            x = float(v)
        except (TypeError, ValueError):
            out[str(k)] = None
            continue
        out[str(k)] = round(x, 4) if math.isfinite(x) else None
    return out


def assess_system_prompt() -> str:
    return prompts.ASSESS_SYSTEM.format(
        poor_trades=rules.POOR_MIN_TRADES,
        bh_margin=rules.POOR_BH_MARGIN,
        sharpe=rules.PROMISING_MIN_SHARPE,
        drawdown=rules.PROMISING_MAX_DRAWDOWN,
        trades=rules.PROMISING_MIN_TRADES,
        dsr=rules.PROMISING_MIN_DEFLATED_SHARPE,
        p_value=rules.PROMISING_MAX_P_VALUE,
        excess_sharpe=rules.PROMISING_MIN_EXCESS_SHARPE,
        excess_return=rules.PROMISING_MIN_EXCESS_RETURN,
        summary_chars=rules.MAX_SUMMARY_CHARS,
        items=rules.MAX_ITEMS,
        item_chars=rules.MAX_ITEM_CHARS,
    )


class ClaudeAssessor:
    """Writes an ``Assessment`` with Claude; see the module docstring."""

    name = "claude"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.client = ClaudeClient(settings)

    def __repr__(self) -> str:
        return f"ClaudeAssessor(model={self.settings.model!r})"

    def assess(
        self,
        spec: StrategySpec,
        training: Mapping[str, float],
        backtest_summary: Mapping[str, float],
        backtest_by_dataset: Mapping[str, Mapping[str, float]],
        *,
        trials: int | None = None,
    ) -> tuple[Assessment, dict[str, Any]]:
        """The assessment and the usage dict; raises ``LLMError`` / ``LLMConfigError`` (with
        ``usage``) on failure. ``trials``: what the Deflated Sharpe Ratio was deflated by."""
        reference = rules.assess(
            spec, training, backtest_summary, backtest_by_dataset, trials=trials
        )
        first = prompts.ASSESS_CONTEXT.format(
            spec=as_json(spec.to_dict()),
            training=as_json(_figures(training)),
            summary=as_json(_figures(backtest_summary)),
            by_dataset="\n".join(
                f"{key}: {as_json(_figures(stats))}"
                for key, stats in sorted(backtest_by_dataset.items())
            )
            or "none",
            trials="not recorded" if trials is None else trials,
            rule_verdict=reference.summary,  # "<verdict>: <why>. <figures>"
        )
        usage = UsageTotals(model=self.settings.model)
        tool = Tool(
            "save_assessment",
            prompts.TOOL_SAVE_ASSESSMENT,
            Assessment,
            lambda a: ToolResult(prompts.SAVED, done=True, value=a),
        )
        system = [
            {
                "type": "text",
                "text": assess_system_prompt(),
                "cache_control": {"type": "ephemeral"},
            }
        ]
        assessment: Assessment = run_tool_loop(
            self.client,
            task="assessment",
            system=system,
            tools=[tool],
            first_message=first,
            usage=usage,
        )
        if assessment.verdict != reference.verdict:
            log.info(
                "Claude's verdict %s differs from the rule-based %s for %s",
                assessment.verdict,
                reference.verdict,
                spec.name,
            )
        if assessment.verdict == "promising" and reference.verdict != "promising":
            # "promising" promises significance and an edge over buy & hold (the rules in
            # core/assessor.py): Claude may word the assessment, not lower that bar.
            assessment = assessment.model_copy(
                update={
                    "verdict": reference.verdict,
                    "summary": (
                        f"Not promising by the rules ({reference.summary}) "
                        f"Claude's view: {assessment.summary}"
                    )[: rules.MAX_SUMMARY_CHARS],
                }
            )
        return assessment, usage.to_dict()
