"""LLMSettings from the environment, and which designer runs."""

import pytest

from research_assets.core.errors import ConfigError, ResearchError
from research_assets.llm.assessor import ClaudeAssessor
from research_assets.llm.config import LLMSettings, choose_designer_kind
from research_assets.llm.designer import ClaudeDesigner
from research_assets.llm.errors import LLMConfigError, LLMError
from research_assets.llm.pricing import DEFAULT_MODEL
from tests.llm.conftest import KEY


def test_defaults():
    s = LLMSettings.from_env({})
    assert s.api_key is None and s.base_url is None and not s.has_key
    assert s.model == DEFAULT_MODEL
    assert (s.max_retries, s.timeout_s, s.max_retry_wait_s, s.max_turns, s.max_tokens) == (
        2,
        60.0,
        10.0,
        8,
        4096,
    )


def test_values_from_env():
    s = LLMSettings.from_env(
        {
            "ANTHROPIC_API_KEY": f" {KEY} ",
            "ANTHROPIC_BASE_URL": "http://proxy.local:8080",
            "RESEARCH_LLM_MODEL": "claude-sonnet-5-5",
            "RESEARCH_LLM_MAX_TURNS": "5",
            "RESEARCH_LLM_MAX_RETRIES": "1",
            "RESEARCH_LLM_TIMEOUT_S": "30",
            "RESEARCH_LLM_MAX_RETRY_WAIT_S": "2.5",
            "RESEARCH_LLM_MAX_TOKENS": "8000",
        }
    )
    assert s.api_key == KEY and s.base_url == "http://proxy.local:8080"
    assert (s.model, s.max_turns, s.max_retries, s.timeout_s, s.max_retry_wait_s, s.max_tokens) == (
        "claude-sonnet-5-5",
        5,
        1,
        30.0,
        2.5,
        8000,
    )
    assert KEY not in repr(s) and KEY not in str(s)


@pytest.mark.parametrize(
    "name, value",
    [
        ("RESEARCH_LLM_MAX_TURNS", "0"),
        ("RESEARCH_LLM_MAX_TURNS", "many"),
        ("RESEARCH_LLM_MAX_RETRIES", "-1"),
        ("RESEARCH_LLM_TIMEOUT_S", "0"),
        ("RESEARCH_LLM_TIMEOUT_S", "inf"),
        ("RESEARCH_LLM_MAX_RETRY_WAIT_S", "nan"),
        ("RESEARCH_LLM_MAX_TOKENS", "10"),
        ("ANTHROPIC_BASE_URL", "api.anthropic.com"),
        ("RESEARCH_LLM_MODEL", "claude haiku"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError) as e:
        LLMSettings.from_env({name: value})
    assert name in str(e.value)


@pytest.mark.parametrize(
    "env, kind",
    [
        ({}, "offline"),
        ({"ANTHROPIC_API_KEY": KEY}, "claude"),
        ({"ANTHROPIC_API_KEY": "  "}, "offline"),
        ({"RESEARCH_DESIGNER": "AUTO", "ANTHROPIC_API_KEY": KEY}, "claude"),
        ({"RESEARCH_DESIGNER": "offline", "ANTHROPIC_API_KEY": KEY}, "offline"),
        ({"RESEARCH_DESIGNER": "claude", "ANTHROPIC_API_KEY": KEY}, "claude"),
    ],
)
def test_choose_designer_kind(env, kind):
    assert choose_designer_kind(env) == kind


def test_claude_without_key_says_what_to_set():
    with pytest.raises(LLMConfigError) as e:
        choose_designer_kind({"RESEARCH_DESIGNER": "claude"})
    assert "ANTHROPIC_API_KEY" in str(e.value) and "RESEARCH_DESIGNER=offline" in str(e.value)
    assert isinstance(e.value, ResearchError)


def test_bad_designer_kind():
    with pytest.raises(ConfigError) as e:
        choose_designer_kind({"RESEARCH_DESIGNER": "gpt"})
    assert "RESEARCH_DESIGNER" in str(e.value) and "offline" in str(e.value)


def test_designer_and_assessor_need_a_key():
    for cls in (ClaudeDesigner, ClaudeAssessor):
        with pytest.raises(LLMConfigError) as e:
            cls(LLMSettings.from_env({}))
        assert "ANTHROPIC_API_KEY" in str(e.value)


def test_error_classes():
    e = LLMError("llm_unavailable", "down")
    assert isinstance(e, ResearchError) and e.reason == "llm_unavailable" and e.usage is None
    assert issubclass(LLMConfigError, ResearchError)
    with pytest.raises(ValueError):
        LLMError("tired", "no such reason")
