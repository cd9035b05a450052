"""ClaudeDesigner against the fake Messages API, through the real anthropic client."""

import json
import logging
import time

import pytest

from research_assets.core.designer import DesignRequest
from research_assets.core.memory import ResearchMemory, ResearchRecord
from research_assets.core.spec import StrategySpec
from research_assets.llm.designer import ClaudeDesigner
from research_assets.llm.errors import (
    LLM_BAD_RESPONSE,
    LLM_GAVE_UP,
    LLM_UNAVAILABLE,
    LLMConfigError,
    LLMError,
)
from research_assets.llm.pricing import PRICES
from research_assets.state.records import load_memory, load_statuses
from tests.defs.test_research_index import build
from tests.llm.conftest import DATASETS, KEY, example_spec_dict, realistic_memory
from tests.llm.fake_anthropic import (
    AUTO,
    FakeAnthropic,
    Reply,
    error,
    message,
    text,
    tool_use,
)
from tests.lockbox_support import LOCKBOX_STATS, assert_no_lockbox, lockbox_fields

REQUEST = DesignRequest("r100", seed=1, brief="mean reversion on EURUSD")
EMPTY = ResearchMemory()


def save(spec=None, rationale="RSI zones inside a trend; first try.", id=None, **kw):
    return message(
        tool_use(
            "save_strategy_config",
            {"spec": spec or example_spec_dict(), "rationale": rationale},
            id,
        ),
        **kw,
    )


def design(settings, memory=EMPTY):
    return ClaudeDesigner(settings).design(REQUEST, memory, DATASETS)


# -- the tool loop -----------------------------------------------------------------------------


def test_happy_path_discovers_corrects_and_saves(fake: FakeAnthropic, settings):
    memory = realistic_memory(6)
    bad = example_spec_dict()
    bad["indicators"]["rsi_14"] = {"type": "rsx", "period": 14}
    fake.push(
        message(
            text("Let me look."),
            tool_use("get_available_indicators", {}, "t1"),
            tool_use("get_available_symbols", {}, "t2"),
        ),
        message(tool_use("get_recent_strategies", {"limit": 3, "status": "rejected"}, "t3")),
        save(bad, id="t4"),
        save(id="t5"),
    )
    d = design(settings, memory)

    assert d.designer == "claude"
    assert d.rationale == "RSI zones inside a trend; first try."
    expected = {**example_spec_dict(), "backtest": {"commission": 0.0001, "slippage": 0.00005}}
    assert d.spec == StrategySpec.from_dict(expected)  # market costs, not the model's
    assert len(fake.requests) == 4

    first = fake.tool_results(1)
    assert [r["tool_use_id"] for r in first] == ["t1", "t2"]
    assert not any(r["is_error"] for r in first)
    assert "rsi" in first[0]["content"] and "EURUSD" in first[1]["content"]
    recent = json.loads(fake.tool_results(2)[0]["content"])
    assert recent["total"] == len(memory.rejected())
    assert all(r["status"] == "rejected" and r["rejection_reason"] for r in recent["records"])
    invalid = fake.tool_results(3)
    assert invalid[0]["is_error"] is True
    assert "rsx" in invalid[0]["content"] and "unknown" in invalid[0]["content"]


def test_request_shape_caching_and_context(fake: FakeAnthropic, settings):
    fake.push(save())
    design(settings, realistic_memory(4))
    body = fake.requests[0]
    assert body["model"] == "claude-haiku-5-5"
    assert body["max_tokens"] == settings.max_tokens
    assert body["cache_control"] == {"type": "ephemeral"}
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert [t["name"] for t in body["tools"]] == [
        "get_available_indicators",
        "get_available_symbols",
        "get_recent_strategies",
        "validate_strategy_config",
        "save_strategy_config",
    ]
    prompt = body["messages"][0]["content"]
    assert "mean reversion on EURUSD" in prompt
    assert "NASDAQ" in prompt and "bar_sigma" in prompt
    assert "r003" in prompt and "no_edge_over_benchmark" in prompt
    assert "macd: MACD line" in body["system"][0]["text"]  # the catalogue


def test_validate_tool_and_repeat_and_missing_data(fake: FakeAnthropic, settings):
    done = example_spec_dict()
    memory = ResearchMemory(
        [
            ResearchRecord(
                "r001",
                "completed",
                1.0,
                spec=StrategySpec.from_dict(
                    {**done, "backtest": {"commission": 0.0001, "slippage": 0.00005}}
                ),
            )
        ]
    )
    other = example_spec_dict()
    other["training_data"]["symbols"] = ["USDJPY"]
    fresh = example_spec_dict()
    fresh["training"]["epochs"] = 25
    fake.push(
        message(tool_use("validate_strategy_config", {"spec": done}, "a")),
        message(tool_use("validate_strategy_config", {"spec": other}, "b")),
        message(tool_use("validate_strategy_config", {"spec": fresh}, "c")),
        save(fresh),
    )
    d = design(settings, memory)
    assert d.spec.training.epochs == 25
    repeat, missing, ok = (fake.tool_results(i)[0] for i in (1, 2, 3))
    assert repeat["is_error"] and "repeats past research r001" in repeat["content"]
    assert missing["is_error"] and "USDJPY/1h" in missing["content"]
    assert "EURUSD/1h" in missing["content"]
    assert not ok["is_error"] and "valid" in ok["content"]


@pytest.mark.parametrize(
    "bad_input, expected",
    [
        ("spec: {name: x}", "must be a JSON object"),
        (["a", "list"], "must be a JSON object"),
        ({"spec": "name: x", "rationale": "r"}, "spec"),
        ({"spec": example_spec_dict()}, "rationale"),
        ({"spec": example_spec_dict(), "rationale": "r", "extra": 1}, "extra"),
        ({"spec": {**example_spec_dict(), "nn_inputs": "rsi_zone"}, "rationale": "r"}, "nn_inputs"),
    ],
)
def test_malformed_tool_input_is_an_error_result(fake, settings, bad_input, expected):
    fake.push(message(tool_use("save_strategy_config", bad_input, "bad")), save())
    d = design(settings)
    assert d.spec.name == "claude_rsi_sma_eurusd"
    result = fake.tool_results(1)[0]
    assert result["tool_use_id"] == "bad" and result["is_error"] is True
    assert expected in result["content"]


def test_unknown_tool_is_an_error_result(fake: FakeAnthropic, settings):
    fake.push(message(tool_use("run_backtest", {"x": 1}, "u1")), save())
    design(settings)
    result = fake.tool_results(1)[0]
    assert result["is_error"] is True
    assert "no tool 'run_backtest'" in result["content"]
    assert "save_strategy_config" in result["content"]


def test_thinking_blocks_are_echoed_unchanged(fake: FakeAnthropic, settings):
    blocks = [
        {
            "type": "thinking",
            "thinking": "Compare RSI and trend filters.",
            "signature": "EqQBCkYIARgCKkBz+/sig==",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT=="},
        {"type": "thinking", "thinking": "", "signature": "sig-2", "future_field": [1, 2]},
        text("Checking symbols."),
        tool_use("get_available_symbols", {}, "th1"),
    ]
    fake.push(message(*blocks), save())
    design(settings)
    second = fake.requests[1]["messages"]
    assert second[1] == {"role": "assistant", "content": blocks}
    assert second[0] == fake.requests[0]["messages"][0]  # earlier turns untouched


def test_usage_and_cost_are_summed_over_turns(fake: FakeAnthropic, settings):
    fake.push(
        message(
            tool_use("get_available_symbols", {}),
            input_tokens=6000,
            output_tokens=300,
            cache_creation=2000,
            cache_read=0,
        ),
        message(
            tool_use("get_available_indicators", {}),
            input_tokens=500,
            output_tokens=200,
            cache_creation=700,
            cache_read=8000,
        ),
        save(input_tokens=400, output_tokens=900, cache_creation=100, cache_read=8700),
    )
    usage = design(settings).usage
    p = PRICES["claude-haiku-5-5"]
    expected = (
        6900 * p.input + 1400 * p.output + 2800 * p.cache_write + 16700 * p.cache_read
    ) / 1e6
    assert usage == {
        "input_tokens": 6900,
        "output_tokens": 1400,
        "cache_creation_input_tokens": 2800,
        "cache_read_input_tokens": 16700,
        "model": "claude-haiku-5-5",
        "cost_usd": pytest.approx(expected),
        "turns": 3,
    }


def test_prompt_size_with_twenty_records(fake: FakeAnthropic, settings):
    """A design with a realistic memory of 20 records stays well under 15k input tokens (the
    fake server estimates 1 token per 3 bytes of request body, a cautious ratio). What the gates
    require and each record's benchmark and significance figures and gate description added
    about 2.5 kB (#11)."""
    fake.push(save(input_tokens=AUTO))
    d = ClaudeDesigner(settings).design(REQUEST, realistic_memory(20), DATASETS)
    assert len(fake.raw[0]) < 24_500
    assert d.usage["input_tokens"] < 8_200
    assert b"r019" in fake.raw[0] and b"r000" in fake.raw[0]


@pytest.mark.slow
def test_no_lockbox_and_no_key_in_request_bodies(
    fake: FakeAnthropic, settings, instance, small_spec
):
    """The memory is built from a real instance whose completed researches have lockbox reports
    with sentinel figures (tests/lockbox_support.py): none of them reaches a request, neither in
    the first message nor in any page of records the tool gives."""
    build(instance, small_spec, per_kind=1)  # researches of every kind
    statuses = load_statuses(instance)
    assert lockbox_fields([s.lockbox for s in statuses]) == set(LOCKBOX_STATS)
    memory = load_memory(instance)
    fake.push(
        message(tool_use("get_recent_strategies", {"limit": 50, "include_specs": True})),
        message(tool_use("get_recent_strategies", {"status": "completed"})),
        save(),
    )
    design(settings, memory)
    assert len(fake.raw) == 3
    assert_no_lockbox(*fake.raw, where="the design's requests")
    for raw in fake.raw:
        assert b"lockbox" not in raw.lower()
        assert KEY.encode() not in raw
    assert fake.headers[0]["authorization"].endswith(KEY)  # the key goes in a header only
    # The records did reach Claude, with the backtest-period figures a designer may see.
    every = json.loads(fake.tool_results(1)[0]["content"])
    assert every["total"] == len(statuses) and len(every["records"]) == len(statuses)
    completed = json.loads(fake.tool_results(2)[0]["content"])["records"]
    assert len(completed) == 2
    by_id = {s.id: s for s in statuses}
    for record in completed:
        assert record["backtest"] == {
            k: round(v, 4) for k, v in by_id[record["id"]].backtest_summary.items()
        }


# -- giving up ---------------------------------------------------------------------------------


def test_turn_limit_gives_up(fake: FakeAnthropic, settings):
    from dataclasses import replace

    fake.push(*[message(tool_use("get_available_indicators", {})) for _ in range(5)])
    with pytest.raises(LLMError) as e:
        design(replace(settings, max_turns=3))
    assert e.value.reason == LLM_GAVE_UP
    assert "3 turns" in str(e.value) and "RESEARCH_LLM_MAX_TURNS" in str(e.value)
    assert len(fake.requests) == 3
    assert e.value.usage["turns"] == 3 and e.value.usage["cost_usd"] > 0


def test_ending_without_saving_gets_one_reminder_then_gives_up(fake, settings):
    fake.push(message(text("I think RSI is good.")), message(text("Done.")))
    with pytest.raises(LLMError) as e:
        design(settings)
    assert e.value.reason == LLM_GAVE_UP
    assert "without saving" in str(e.value)
    reminder = fake.requests[1]["messages"][-1]
    assert reminder["role"] == "user" and "save tool" in reminder["content"]


def test_reminder_then_save_succeeds(fake: FakeAnthropic, settings):
    fake.push(message(text("Thinking..."), stop_reason="max_tokens"), save())
    assert design(settings).spec.name == "claude_rsi_sma_eurusd"
    assert "cut off" in fake.requests[1]["messages"][-1]["content"]


def test_empty_reply_is_left_out_and_reminded(fake: FakeAnthropic, settings):
    fake.push(message(), save())
    design(settings)
    roles = [m["role"] for m in fake.requests[1]["messages"]]
    assert roles == ["user", "user"]  # the API merges consecutive user turns


def test_refusal_gives_up(fake: FakeAnthropic, settings):
    fake.push(message(text(""), stop_reason="refusal"))
    with pytest.raises(LLMError) as e:
        design(settings)
    assert e.value.reason == LLM_GAVE_UP and "refusal" in str(e.value)


# -- HTTP errors, bad responses ----------------------------------------------------------------


def test_529_then_success_retries_once(fake: FakeAnthropic, settings):
    fake.push(error(529, "overloaded_error", "Overloaded"), save())
    assert design(settings).usage["turns"] == 1
    assert len(fake.requests) == 2
    assert fake.requests[0] == fake.requests[1]


def test_persistent_529_is_unavailable_and_bounded(fake: FakeAnthropic, settings):
    busy = error(529, "overloaded_error", "Overloaded", headers={"retry-after": "3600"})
    fake.push(*[busy] * 5)
    t0 = time.monotonic()
    with pytest.raises(LLMError) as e:
        design(settings)
    elapsed = time.monotonic() - t0
    assert e.value.reason == LLM_UNAVAILABLE
    assert "529" in str(e.value) and "3 attempts" in str(e.value)
    assert len(fake.requests) == settings.max_retries + 1
    # Honouring retry-after would wait an hour per retry; capped at max_retry_wait_s (0.05 s) the
    # call ends in well under a second. 30 s holds on a loaded machine and still tells them apart.
    assert elapsed < 30.0


def test_rate_limited_429_is_unavailable(fake: FakeAnthropic, settings):
    from dataclasses import replace

    fake.push(*[error(429, "rate_limit_error", "slow down", {"retry-after-ms": "5000000"})] * 2)
    with pytest.raises(LLMError) as e:
        design(replace(settings, max_retries=1))
    assert e.value.reason == LLM_UNAVAILABLE and "429" in str(e.value)
    assert len(fake.requests) == 2


def test_no_retry_when_the_server_says_so(fake: FakeAnthropic, settings):
    fake.push(error(429, "rate_limit_error", "daily limit", {"x-should-retry": "false"}))
    with pytest.raises(LLMError) as e:
        design(settings)
    assert e.value.reason == LLM_UNAVAILABLE and "1 attempt)" in str(e.value)
    assert len(fake.requests) == 1


def test_html_5xx_is_unavailable(fake: FakeAnthropic, settings):
    page = Reply(status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html")
    fake.push(page, page, page)
    with pytest.raises(LLMError) as e:
        design(settings)
    assert e.value.reason == LLM_UNAVAILABLE
    assert "502" in str(e.value) and "Bad Gateway" in str(e.value)


def test_timeout_is_unavailable_and_bounded(fake: FakeAnthropic, settings):
    from dataclasses import replace

    # The server would answer after 120 s; the 0.3 s timeout must end each attempt long before.
    fake.push(*[Reply(body={}, delay=120.0)] * 3)
    t0 = time.monotonic()
    with pytest.raises(LLMError) as e:
        design(replace(settings, timeout_s=0.3, max_retries=1))
    elapsed = time.monotonic() - t0
    assert e.value.reason == LLM_UNAVAILABLE
    assert "no answer within 0.3 s" in str(e.value)
    assert len(fake.requests) == 2
    assert elapsed < 30.0  # two attempts of 0.3 s, with a margin for a loaded machine


def test_connection_refused_is_unavailable(settings):
    from dataclasses import replace

    with FakeAnthropic() as closed:
        url = closed.url
    with pytest.raises(LLMError) as e:
        design(replace(settings, base_url=url, max_retries=1))
    assert e.value.reason == LLM_UNAVAILABLE and "cannot connect" in str(e.value)


@pytest.mark.parametrize(
    "reply, expected",
    [
        (
            Reply(body="<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
            "not JSON",
        ),
        (Reply(body=json.dumps(save().body)[:150]), "not JSON"),  # a truncated body
        (Reply(body={"type": "message", "content": "hello"}), "not a Messages API message"),
        (Reply(body={"foo": 1}), "not a Messages API message"),
        (Reply(body=[1, 2]), "JSON list"),
        (Reply(body="null"), "JSON NoneType"),
        (message(tool_use("save_strategy_config", {}, "x")).body | {"usage": {}}, "usage"),
    ],
)
def test_bad_responses(fake: FakeAnthropic, settings, reply, expected):
    fake.push(reply if isinstance(reply, Reply) else Reply(body=reply))
    with pytest.raises(LLMError) as e:
        design(settings)
    assert e.value.reason == LLM_BAD_RESPONSE
    assert expected in str(e.value)
    assert len(fake.requests) == 1


def test_tool_use_without_id_is_a_bad_response(fake: FakeAnthropic, settings):
    block = {"type": "tool_use", "name": "save_strategy_config", "input": {}}
    fake.push(message(block))
    with pytest.raises(LLMError) as e:
        design(settings)
    assert e.value.reason == LLM_BAD_RESPONSE


@pytest.mark.parametrize(
    "status, kind, expected",
    [
        (401, "authentication_error", ["ANTHROPIC_API_KEY was rejected", "check the key"]),
        (403, "permission_error", ["ANTHROPIC_API_KEY", "permissions"]),
        (
            404,
            "not_found_error",
            [
                "model 'claude-haiku-5-5' not found",
                "RESEARCH_LLM_MODEL",
                "claude-sonnet-5-5",
                "ANTHROPIC_BASE_URL",
            ],
        ),
        (400, "invalid_request_error", ["rejected the request", "RESEARCH_LLM_MODEL"]),
    ],
)
def test_client_errors_are_config_errors(fake, settings, status, kind, expected):
    fake.push(error(status, kind, f"problem {kind}"))
    with pytest.raises(LLMConfigError) as e:
        design(settings)
    for part in expected:
        assert part in str(e.value)
    assert f"problem {kind}" in str(e.value)
    assert len(fake.requests) == 1  # never retried


# -- the key never leaks -----------------------------------------------------------------------


def test_key_never_in_repr_errors_or_logs(fake: FakeAnthropic, settings, caplog):
    caplog.set_level(logging.DEBUG)
    designer = ClaudeDesigner(settings)
    errors: list[BaseException] = []
    echo = f"invalid x-api-key {KEY}"  # a proxy that echoes the key back
    scripts = [
        [error(401, "authentication_error", echo)],
        [error(404, "not_found_error", echo)],
        [error(400, "invalid_request_error", echo)],
        [error(529, "overloaded_error", echo)] * 3,
        [Reply(body=f"<html>{KEY}</html>", content_type="text/html")],
        [Reply(body={"foo": KEY})],
        [message(text("no save"))] * 2,
    ]
    for replies in scripts:
        fake.push(*replies)
        with pytest.raises((LLMError, LLMConfigError)) as e:
            designer.design(REQUEST, EMPTY, DATASETS)
        errors.append(e.value)
    fake.push(save())
    d = designer.design(REQUEST, EMPTY, DATASETS)
    texts = [
        repr(designer),
        str(designer),
        repr(designer.client),
        repr(settings),
        str(settings),
        repr(d.usage),
        caplog.text,
    ]
    texts += [f"{e!s} {e!r} {getattr(e, 'usage', '')}" for e in errors]
    for t in texts:
        assert KEY not in t
    assert "[redacted]" in str(errors[0])


# -- what the gates require, and the figures that show it ---------------------------------------


def test_system_prompt_explains_what_the_gates_require(fake: FakeAnthropic, settings):
    fake.push(save())
    design(settings)
    system = fake.requests[0]["system"][0]["text"]
    # every check with its default threshold and the reason it gives
    for phrase in (
        "accuracy lift over always predicting the training labels' majority class at least 0.005 "
        "(no_accuracy_lift)",
        "test loss over the labels' entropy at most 1 (loss_above_baseline)",
        "at least 30 trades (too_few_trades)",
        "max drawdown at most 0.4 (drawdown_too_high)",
        "Sharpe at least -0.5 (sharpe_too_low)",
        "Sharpe above buy & hold's on the same bars by more than 0 (no_edge_over_benchmark)",
        "p-value against random timing of the same positions at most 0.05 (no_edge_over_random)",
        "Deflated Sharpe Ratio at least 0.95 (not_significant)",
        "long on up, SHORT on down, none on flat",
        '"confidence_threshold": 0-0.99',
    ):
        assert phrase in system, phrase
    assert "win_rate_too_low" not in system  # off by default, so not a requirement


def test_first_message_carries_the_benchmark_figures_and_gate_descriptions(
    fake: FakeAnthropic, settings
):
    fake.push(save())
    design(settings, realistic_memory(8))
    prompt = fake.requests[0]["messages"][0]["content"]
    lines = {line.split(" ", 1)[0]: line for line in prompt.splitlines() if line[:2] == "r0"}
    # a backtest rejection: the failing checks in numbers, then the figures with short names
    r005 = lines["r005"]
    assert r005.startswith(
        "r005 rejected by backtest_gate: excess Sharpe -0.6 <= 0 "
        "(no_edge_over_benchmark); p-value 0.375 > 0.05 (no_edge_over_random)"
    )
    for figure in (
        "xs_sharpe -0.6",
        "xs_ret% -8.7",
        "beta 0.7",
        "dsr 0.4",
        "p 0.375",
        "lift -0.005",
        "loss_ratio 1",
    ):
        assert figure in r005, figure
    # a training rejection
    assert lines["r004"].startswith(
        "r004 rejected by training_gate: accuracy lift -0.008 < 0 (no_accuracy_lift)"
    )
    # the legend explains every short name
    for name in (
        "xs_sharpe (Sharpe minus buy & hold's)",
        "dsr (Deflated Sharpe Ratio)",
        "p (p-value against random timing)",
        "lift (accuracy minus always predicting",
        "confidence threshold (conf)",
    ):
        assert name in prompt, name


def test_a_record_without_a_description_shows_its_reason(fake: FakeAnthropic, settings):
    old = ResearchRecord(
        "r001",
        "rejected",
        1.0,
        spec=StrategySpec.from_dict(
            {**example_spec_dict(), "decisions": {"confidence_threshold": 0.55}}
        ),
        rejected_by="backtest_gate",
        rejection_reason="sharpe_too_low",
    )
    fake.push(message(tool_use("get_recent_strategies", {})), save())
    design(settings, ResearchMemory([old]))
    prompt = fake.requests[0]["messages"][0]["content"]
    assert "r001 rejected by backtest_gate: sharpe_too_low |" in prompt
    assert "zigzag(threshold=0.005,lookahead=24) conf 0.55 mlp" in prompt
    record = json.loads(fake.tool_results(1)[0]["content"])["records"][0]
    assert "gate_description" not in record
    assert record["rejection_reason"] == "sharpe_too_low"


def test_the_tool_gives_the_gate_description_and_every_figure(fake: FakeAnthropic, settings):
    memory = realistic_memory(8)
    fake.push(
        message(tool_use("get_recent_strategies", {"status": "rejected", "limit": 50})), save()
    )
    design(settings, memory)
    records = {r["id"]: r for r in json.loads(fake.tool_results(1)[0]["content"])["records"]}
    r005 = records["r005"]
    assert r005["gate_description"].startswith("excess Sharpe -0.6 <= 0 (no_edge_over_benchmark)")
    for key in (
        "Excess Sharpe",
        "Excess Return [%]",
        "Buy & Hold Sharpe Ratio",
        "Beta",
        "Deflated Sharpe Ratio",
        "p-value",
    ):
        assert key in r005["backtest"], key
    assert r005["training"]["accuracy_lift"] == -0.005


def test_best_researches_beyond_the_recent_ones_are_ranked_by_excess_sharpe(
    fake: FakeAnthropic, settings
):
    memory = realistic_memory(20)
    riding = ResearchRecord(
        "old-riding",
        "completed",
        1.0,
        spec=memory.records[3].spec,
        backtest={"Sharpe Ratio": 9.0, "Excess Sharpe": 4.0},
    )
    timing = ResearchRecord(
        "old-timing",
        "completed",
        2.0,
        spec=memory.records[7].spec,
        backtest={"Sharpe Ratio": 6.0, "Excess Sharpe": 5.0},
    )
    fake.push(save())
    design(settings, ResearchMemory([*memory.records, riding, timing]))
    prompt = fake.requests[0]["messages"][0]["content"]
    best = prompt.split("Best completed researches by excess Sharpe over buy & hold:\n")[1]
    assert best.index("old-timing") < best.index("old-riding")
