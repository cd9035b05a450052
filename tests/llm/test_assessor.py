"""ClaudeAssessor against the fake Messages API."""

import math

import pytest

from research_assets.core.assessor import Assessment
from research_assets.core.spec import EXAMPLE_YAML, StrategySpec
from research_assets.llm.assessor import ClaudeAssessor
from research_assets.llm.errors import LLM_GAVE_UP, LLMError
from tests.llm.fake_anthropic import FakeAnthropic, message, tool_use

SPEC = StrategySpec.from_yaml(EXAMPLE_YAML)
TRAINING = {"test_accuracy": 0.53, "test_loss": 0.7, "loss_decrease": 0.4, "f1": math.nan}
SUMMARY = {
    "Return [%]": 25.0,
    "Buy & Hold Return [%]": 10.0,
    "Sharpe Ratio": 1.5,
    "Max. Drawdown [%]": -12.0,
    "Win Rate [%]": 52.0,
    "# Trades": 80,
    "Buy & Hold Sharpe Ratio": 0.9,
    "Excess Sharpe": 0.6,
    "Excess Return [%]": 15.0,
    "Beta": 0.2,
    "Alpha [%]": 11.0,
    "Deflated Sharpe Ratio": 0.97,
    "p-value": 0.012,
}
BY_DATASET = {"EURUSD/1h": SUMMARY}
GOOD = {
    "verdict": "promising",
    "summary": "Sharpe 1.50 with 80 trades and a 12% drawdown; return 25% vs 10% buy & hold.",
    "strengths": ["Return 25.0% beats buy & hold 10.0% by 15 points."],
    "weaknesses": ["Win rate 52% leaves little margin over costs."],
    "suggestions": ["Add an ATR input (period 14) to stand aside in volatile hours."],
    "hypotheses": ["A 48-bar zigzag lookahead keeps the edge with fewer trades."],
}


def assess(settings, summary=SUMMARY, trials=12):
    return ClaudeAssessor(settings).assess(
        SPEC, TRAINING, summary, {"EURUSD/1h": summary}, trials=trials
    )


def test_assessment_happy_path(fake: FakeAnthropic, settings):
    fake.push(message(tool_use("save_assessment", GOOD), input_tokens=3000, output_tokens=400))
    assessment, usage = assess(settings)
    assert assessment == Assessment(**GOOD)
    assert usage["turns"] == 1 and usage["input_tokens"] == 3000
    assert usage["model"] == "claude-haiku-5-5" and usage["cost_usd"] > 0
    body = fake.requests[0]
    assert [t["name"] for t in body["tools"]] == ["save_assessment"]
    assert "verdict" in body["tools"][0]["input_schema"]["properties"]
    prompt = body["messages"][0]["content"]
    assert "rsi_trend_eurusd" in prompt and "EURUSD/1h" in prompt
    assert '"f1":null' in prompt  # NaN is not sent as invalid JSON
    assert "rule-based assessor's verdict, for reference: promising" in prompt
    assert "strategies tried on these datasets, this one included" in prompt.lower()
    assert "deflated by): 12." in prompt
    assert '"Excess Sharpe":0.6' in prompt and '"Deflated Sharpe Ratio":0.97' in prompt
    system = body["system"][0]["text"]
    assert (
        "promising: all of Sharpe above 1, max drawdown below 20% and more than 50 trades; "
        "significant: Deflated Sharpe Ratio at least 0.95 and p-value at most 0.05; and "
        "better than buy & hold: Excess Sharpe above 0 and Excess Return [%] above 0"
    ) in system
    assert "State the comparison with buy & hold in numbers" in system
    # The prompt never speaks of a lockbox. That no lockbox figure reaches it is checked where
    # one exists: tests/defs/test_lockbox_isolation.py gives researches' lockboxes sentinel
    # figures and looks for them in every assessment request.
    assert b"lockbox" not in fake.raw[0].lower()


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({**GOOD, "verdict": "great"}, "verdict"),
        ({**GOOD, "lockbox_sharpe": 2.0}, "lockbox_sharpe"),
        ({**GOOD, "strengths": ["x" * 400]}, "strengths.0"),
        ({**GOOD, "suggestions": ["a"] * 9}, "suggestions"),
        ({k: v for k, v in GOOD.items() if k != "summary"}, "summary"),
        ("promising", "must be a JSON object"),
    ],
)
def test_invalid_assessment_is_corrected(fake: FakeAnthropic, settings, bad, expected):
    fake.push(
        message(tool_use("save_assessment", bad, "s1")),
        message(tool_use("save_assessment", GOOD, "s2")),
    )
    assessment, usage = assess(settings)
    assert assessment.verdict == "promising"
    assert usage["turns"] == 2
    result = fake.tool_results(1)[0]
    assert result["tool_use_id"] == "s1" and result["is_error"] is True
    assert expected in result["content"]


def test_assessor_gives_up_at_the_turn_limit(fake: FakeAnthropic, settings):
    from dataclasses import replace

    fake.push(*[message(tool_use("save_assessment", {"verdict": "meh"}))] * 2)
    with pytest.raises(LLMError) as e:
        ClaudeAssessor(replace(settings, max_turns=2)).assess(SPEC, TRAINING, SUMMARY, BY_DATASET)
    assert e.value.reason == LLM_GAVE_UP and e.value.usage["turns"] == 2


def test_the_rule_based_reference_follows_the_new_rules(fake: FakeAnthropic, settings):
    # the same figures, but no better than holding the asset: the reference verdict is neutral
    riding = {**SUMMARY, "Buy & Hold Sharpe Ratio": 1.7, "Excess Sharpe": -0.2}
    fake.push(message(tool_use("save_assessment", {**GOOD, "verdict": "neutral"})))
    assessment, _ = assess(settings, riding, trials=None)
    assert assessment.verdict == "neutral"
    prompt = fake.requests[0]["messages"][0]["content"]
    assert "rule-based assessor's verdict, for reference: neutral: not promising yet: " in prompt
    assert "Sharpe 1.50 vs buy & hold 1.70 (excess -0.20) is not above buy & hold" in prompt
    assert "deflated by): not recorded." in prompt


def test_claude_cannot_call_promising_what_the_rules_do_not(fake: FakeAnthropic, settings):
    """ "promising" promises significance and an edge over buy & hold: a promising verdict from
    Claude on figures that have neither becomes the rules' verdict, with Claude's words kept."""
    riding = {
        **SUMMARY,
        "Buy & Hold Sharpe Ratio": 1.7,
        "Excess Sharpe": -0.2,
        "Deflated Sharpe Ratio": 0.6,
    }
    fake.push(message(tool_use("save_assessment", GOOD)))
    assessment, _ = assess(settings, riding)
    assert assessment.verdict == "neutral"
    assert assessment.summary.startswith("Not promising by the rules (")
    assert GOOD["summary"] in assessment.summary
    assert assessment.strengths == GOOD["strengths"]
